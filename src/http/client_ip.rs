//! The client's IP address, for limits, logs and the sessions list.
//!
//! It is the socket's peer, unless the peer is one of `--trusted-proxies`: then it is the
//! right-most address of `X-Forwarded-For` that is not a trusted proxy. Each proxy appends the
//! address it received the request from, so reading from the right, every hop up to the first
//! untrusted one was written by a proxy we trust; anything left of it was written by the client
//! and proves nothing. A request from an untrusted peer never has its header believed, so a
//! client cannot choose its own address by sending the header.

use std::net::{IpAddr, SocketAddr};

use actix_web::{web, HttpRequest};

use crate::config::TrustedProxies;

/// The client IP of `req`, with the trusted proxies of the app's data (none if absent).
pub fn client_ip(req: &HttpRequest) -> IpAddr {
    let peer = req
        .peer_addr()
        .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip());
    let Some(trusted) = req.app_data::<web::Data<TrustedProxies>>() else {
        return peer.to_canonical();
    };
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok());
    resolve(peer, forwarded, trusted)
}

/// The client IP, given the peer, the `X-Forwarded-For` header lines in order, and the trusted
/// proxies (see the module's documentation). An entry that is not an address ends the walk: the
/// last hop known good answers.
pub fn resolve<'a>(
    peer: IpAddr,
    forwarded: impl Iterator<Item = &'a str>,
    trusted: &TrustedProxies,
) -> IpAddr {
    let mut client = peer.to_canonical();
    if !trusted.contains(client) {
        return client;
    }
    let hops: Vec<&str> = forwarded.flat_map(|line| line.split(',')).collect();
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop.trim()) else {
            break;
        };
        client = ip;
        if !trusted.contains(ip) {
            break;
        }
    }
    client
}

/// One hop: an address, possibly with a port (`203.0.113.7:4711`, `[2001:db8::1]:443`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            hop.strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .and_then(|h| h.parse::<IpAddr>().ok())
        })
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an IP address")
    }

    fn proxies(text: &str) -> TrustedProxies {
        TrustedProxies::parse(text).expect("parses")
    }

    fn client(peer: &str, header: &[&str], trusted: &str) -> IpAddr {
        resolve(ip(peer), header.iter().copied(), &proxies(trusted))
    }

    #[test]
    fn without_trusted_proxies_the_header_is_never_believed() {
        assert_eq!(
            client("198.51.100.1", &["203.0.113.9"], ""),
            ip("198.51.100.1")
        );
        assert_eq!(
            client("198.51.100.1", &["203.0.113.9"], "10.0.0.0/8"),
            ip("198.51.100.1"),
            "the peer is not a trusted proxy"
        );
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let trusted = "10.0.0.0/8";
        // The client's own claim (1.1.1.1) is left of the address the proxy saw.
        assert_eq!(
            client("10.0.0.2", &["1.1.1.1, 203.0.113.9"], trusted),
            ip("203.0.113.9")
        );
        // Two trusted proxies in a row, over two header lines.
        assert_eq!(
            client("10.0.0.2", &["1.1.1.1, 203.0.113.9", "10.0.0.3"], trusted),
            ip("203.0.113.9")
        );
        // Ports and brackets.
        assert_eq!(
            client("10.0.0.2", &["[2001:db8::7]:443"], trusted),
            ip("2001:db8::7")
        );
        assert_eq!(
            client("10.0.0.2", &["203.0.113.9:4711"], trusted),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn odd_headers_fall_back_to_the_last_good_hop() {
        let trusted = "10.0.0.0/8";
        assert_eq!(
            client("10.0.0.2", &[], trusted),
            ip("10.0.0.2"),
            "no header"
        );
        assert_eq!(
            client("10.0.0.2", &["unknown, 10.0.0.5"], trusted),
            ip("10.0.0.5"),
            "garbage ends the walk"
        );
        assert_eq!(
            client("10.0.0.2", &["10.0.0.9, 10.0.0.5"], trusted),
            ip("10.0.0.9"),
            "every hop trusted: the left-most"
        );
        assert_eq!(
            client("::ffff:10.0.0.2", &["203.0.113.9"], trusted),
            ip("203.0.113.9"),
            "a dual-stack peer"
        );
    }
}
