//! `--allowed-origins`: which web pages may open a WebSocket to this server.
//!
//! Browsers send `Origin` with every WebSocket handshake and let any page open one to any host,
//! with the user's cookies and network position: a page the user visits could otherwise talk to
//! the server as if it were the app. So by default a handshake that carries `Origin` must come
//! from the server's own origin (the host and port the request was sent to); clients that are
//! not browsers send no `Origin` and are not affected. An operator lists further origins (the
//! server's own stays allowed), or opens the door to every origin with `*`.

use std::fmt;

/// The origins allowed to open WebSockets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AllowedOrigins {
    /// The default: an `Origin` must name the host and port of the request's `Host`.
    #[default]
    SameOrigin,
    /// `*`: any origin.
    Any,
    /// These as well as the server's own, each `scheme://host[:port]` in ASCII lower case.
    List(Vec<String>),
}

const EXPECTED: &str =
    "expected * or a comma-separated list of origins like https://review.example.org";

impl AllowedOrigins {
    /// Parses the flag's text: `*`, or a comma-separated list of origins.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.trim() == "*" {
            return Ok(AllowedOrigins::Any);
        }
        s.split(',')
            .map(|entry| {
                let entry = entry.trim();
                if entry == "*" {
                    return Err(format!("{EXPECTED}; * stands alone, not in a list"));
                }
                check_origin(entry)
                    .map(|()| entry.to_ascii_lowercase())
                    .map_err(|why| format!("{EXPECTED}; {why}"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(AllowedOrigins::List)
    }
}

impl fmt::Display for AllowedOrigins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllowedOrigins::SameOrigin => f.write_str("same-origin"),
            AllowedOrigins::Any => f.write_str("*"),
            AllowedOrigins::List(list) => f.write_str(&list.join(",")),
        }
    }
}

/// An origin is `scheme://host[:port]`: no user, path, query, fragment or trailing slash.
fn check_origin(entry: &str) -> Result<(), String> {
    if entry.is_empty() {
        return Err("empty entry".to_owned());
    }
    let Some((scheme, host)) = entry.split_once("://") else {
        return Err(format!("{entry:?} has no scheme such as https://"));
    };
    let scheme_ok = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return Err(format!("{entry:?} has no scheme such as https://"));
    }
    if host.is_empty() {
        return Err(format!("{entry:?} has no host"));
    }
    if host.contains(['/', '?', '#', '@']) || host.contains(char::is_whitespace) {
        return Err(format!(
            "{entry:?} is not an origin (no path, trailing slash, user or query)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_star_alone_opens_and_a_list_is_lower_cased() {
        assert_eq!(AllowedOrigins::parse(" * "), Ok(AllowedOrigins::Any));
        assert_eq!(
            AllowedOrigins::parse("https://A.example, http://b.example:8080"),
            Ok(AllowedOrigins::List(vec![
                "https://a.example".into(),
                "http://b.example:8080".into()
            ]))
        );
        let err = AllowedOrigins::parse("*,https://a.example").expect_err("mixed");
        assert!(err.contains("stands alone"), "{err}");
        assert_eq!(AllowedOrigins::default(), AllowedOrigins::SameOrigin);
    }
}
