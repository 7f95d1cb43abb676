//! The `Origin` check of a WebSocket handshake against `--allowed-origins` (see
//! [`crate::config::origins`] for why it exists).
//!
//! "The server's own origin" is judged from the request itself: the `Origin`'s host and port
//! must be those of the `Host` header the browser sent, a port left out meaning the default of
//! the origin's scheme (80 for `http`/`ws`, 443 for `https`/`wss`). Behind a reverse proxy that
//! rewrites `Host`, either pass the original `Host` on or list the public origin.

use crate::config::AllowedOrigins;

/// Whether a handshake whose `Origin` header is `origin` and whose `Host` header is `host` may
/// open a WebSocket. A request without `Origin` (not a browser) is not judged here.
pub fn allowed(policy: &AllowedOrigins, origin: &str, host: Option<&str>) -> bool {
    let origin = origin.trim().to_ascii_lowercase();
    match policy {
        AllowedOrigins::Any => true,
        // The app this server serves must keep working when other origins are listed.
        AllowedOrigins::List(list) => {
            list.contains(&origin) || host.is_some_and(|host| same_origin(&origin, host))
        }
        AllowedOrigins::SameOrigin => host.is_some_and(|host| same_origin(&origin, host)),
    }
}

/// `origin` (`scheme://host[:port]`, lower case) names the same host and port as `host`
/// (`host[:port]`, as in the `Host` header).
fn same_origin(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false; // `null`, or garbage
    };
    let Some(default_port) = default_port(scheme) else {
        return false;
    };
    let host = host.trim().to_ascii_lowercase();
    let (Some((origin_host, origin_port)), Some((host_host, host_port))) =
        (split_authority(authority), split_authority(&host))
    else {
        return false;
    };
    origin_host == host_host
        && origin_port.unwrap_or(default_port) == host_port.unwrap_or(default_port)
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

/// `host[:port]` or `[v6]:port` → the host and the port if one is written. `None` for
/// anything else (a path, a user, a port that is not a number).
fn split_authority(authority: &str) -> Option<(&str, Option<u16>)> {
    if authority.is_empty() || authority.contains(['/', '@', '?', '#', ' ']) {
        return None;
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (&authority[..v6.len() + 2], port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    match port {
        None => Some((host, None)),
        Some(p) => p.parse::<u16>().ok().map(|p| (host, Some(p))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(origin: &str, host: &str) -> bool {
        allowed(&AllowedOrigins::SameOrigin, origin, Some(host))
    }

    #[test]
    fn the_servers_own_origin_is_allowed_by_default() {
        assert!(same("http://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(same("HTTP://Review.Example.org", "review.example.org"));
        assert!(same("https://review.example.org", "review.example.org"));
        assert!(same("https://review.example.org:443", "review.example.org"));
        assert!(same("https://review.example.org", "review.example.org:443"));
        assert!(same("http://[::1]:8080", "[::1]:8080"));
    }

    #[test]
    fn another_host_port_or_a_null_origin_is_refused_by_default() {
        assert!(!same("http://evil.example", "127.0.0.1:8080"));
        assert!(!same("http://127.0.0.1:8081", "127.0.0.1:8080"));
        assert!(!same("http://127.0.0.1", "127.0.0.1:8080"));
        assert!(!same(
            "https://review.example.org",
            "review.example.org:8443"
        ));
        assert!(!same("null", "127.0.0.1:8080"));
        assert!(!same("file://", "127.0.0.1:8080"));
        assert!(!same(
            "http://127.0.0.1:8080.evil.example",
            "127.0.0.1:8080"
        ));
        assert!(!same("http://[::1]:8080", "[::2]:8080"));
        assert!(!allowed(
            &AllowedOrigins::SameOrigin,
            "http://127.0.0.1:8080",
            None
        ));
    }

    #[test]
    fn a_list_allows_its_entries_and_the_server_itself_and_a_star_allows_all() {
        let list = AllowedOrigins::List(vec!["https://a.example".into()]);
        assert!(allowed(&list, "https://A.example", Some("b.example")));
        assert!(allowed(&list, "https://b.example", Some("b.example")));
        assert!(!allowed(&list, "https://c.example", Some("b.example")));
        assert!(allowed(&AllowedOrigins::Any, "http://evil.example", None));
    }
}
