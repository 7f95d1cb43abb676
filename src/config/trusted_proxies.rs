//! `--trusted-proxies`: the networks of the reverse proxies whose `X-Forwarded-For` the server
//! believes. A comma-separated list of CIDRs (`10.0.0.0/8, fd00::/8`) or bare addresses (taken as
//! one host: `/32`, `/128`). Empty by default: the header is then never believed.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

/// The trusted proxies' networks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses the setting's text; the error says what is wrong with which entry.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for entry in text.split(',').map(str::trim) {
            if entry.is_empty() {
                if text.trim().is_empty() {
                    break;
                }
                return Err("an empty entry".to_owned());
            }
            let net = match entry.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => entry
                    .parse::<IpAddr>()
                    .map(IpNet::from)
                    .map_err(|_| format!("{entry:?} is neither a CIDR nor an IP address"))?,
            };
            // `10.1.2.3/8` means the network `10.0.0.0/8`: say it the way it is meant.
            nets.push(net.trunc());
        }
        Ok(TrustedProxies(nets))
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is one of the trusted proxies. IPv4 addresses written as IPv6
    /// (`::ffff:10.0.0.1`, as a dual-stack socket reports them) count as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        let list: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&list.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an IP address")
    }

    #[test]
    fn cidrs_and_bare_addresses() {
        let t = TrustedProxies::parse(" 10.0.0.0/8 ,192.168.1.7, fd00::/8").expect("parses");
        assert_eq!(t.to_string(), "10.0.0.0/8,192.168.1.7/32,fd00::/8");
        assert!(t.contains(ip("10.200.3.4")));
        assert!(t.contains(ip("::ffff:10.0.0.1")), "IPv4 written as IPv6");
        assert!(t.contains(ip("192.168.1.7")));
        assert!(!t.contains(ip("192.168.1.8")));
        assert!(t.contains(ip("fd12::1")));
        assert!(!t.contains(ip("2001:db8::1")));
    }

    #[test]
    fn host_bits_are_dropped() {
        let t = TrustedProxies::parse("10.1.2.3/8").expect("parses");
        assert_eq!(t.to_string(), "10.0.0.0/8");
    }

    #[test]
    fn empty_means_none() {
        let t = TrustedProxies::parse("").expect("parses");
        assert!(t.is_empty());
        assert_eq!(t.to_string(), "none");
        assert!(!t.contains(ip("127.0.0.1")));
    }

    #[test]
    fn bad_entries_are_named() {
        for (text, needle) in [
            ("10.0.0.0/33", "\"10.0.0.0/33\""),
            ("proxy.example", "\"proxy.example\""),
            ("10.0.0.1,,10.0.0.2", "empty entry"),
        ] {
            let err = TrustedProxies::parse(text).expect_err(text);
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
