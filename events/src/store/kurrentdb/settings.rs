//! The `--store` URL of this backend: KurrentDB's own connection string (`kurrentdb://`,
//! `kurrentdb+discover://`, `esdb://`, `esdb+discover://`, with its parameters such as `tls` and
//! `nodePreference`), plus one parameter of ours, `logStream`, naming the stream that holds the
//! store (default `adjudicator-log`), so several stores can share one server.

use kurrentdb::{ClientSettings, ClientSettingsParseError};

use crate::store::StoreError;

/// The log stream when the URL names none.
pub const DEFAULT_LOG_STREAM: &str = "adjudicator-log";
const LOG_STREAM_PARAM: &str = "logStream";
const MAX_LOG_STREAM_LEN: usize = 128;

/// A parsed `--store` URL.
pub(super) struct Settings {
    pub client: ClientSettings,
    pub log_stream: String,
}

/// Reads a `--store` URL. Errors never repeat the URL, which may hold a password.
pub(super) fn parse(url: &str) -> Result<Settings, StoreError> {
    let (connection, log_stream) = split_log_stream(url.trim())?;
    let client = connection
        .parse::<ClientSettings>()
        .map_err(|e| invalid(&describe(&e, &connection)))?;
    Ok(Settings {
        client,
        log_stream: log_stream.unwrap_or_else(|| DEFAULT_LOG_STREAM.to_owned()),
    })
}

fn invalid(reason: &str) -> StoreError {
    StoreError::InvalidRequest(format!("the KurrentDB --store URL is invalid: {reason}"))
}

/// The parser's reason, unless it quotes the connection string (and so perhaps its password).
fn describe(e: &ClientSettingsParseError, connection: &str) -> String {
    let message = e.message();
    if message.contains(connection) || message.contains('@') {
        match e.error() {
            Some(cause) => cause.to_string(),
            None => "it does not parse".to_owned(),
        }
    } else {
        message.to_owned()
    }
}

/// Takes our `logStream` parameter out of the query; returns the rest of the URL and the
/// stream's name, if given.
fn split_log_stream(url: &str) -> Result<(String, Option<String>), StoreError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), None));
    };
    let mut log_stream = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name.eq_ignore_ascii_case(LOG_STREAM_PARAM) {
            check_log_stream(value)?;
            log_stream = Some(value.to_owned());
        } else {
            kept.push(pair);
        }
    }
    let rest = match kept.is_empty() {
        true => base.to_owned(),
        false => format!("{base}?{}", kept.join("&")),
    };
    Ok((rest, log_stream))
}

/// A log stream's name: letters, digits, `.`, `_` and `-` (so never a `$` system stream, and
/// nothing that needs escaping in a URL).
pub(super) fn check_log_stream(name: &str) -> Result<(), StoreError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name.len() > MAX_LOG_STREAM_LEN || !name.chars().all(allowed) {
        return Err(invalid(&format!(
            "{LOG_STREAM_PARAM} must be 1 to {MAX_LOG_STREAM_LEN} letters, digits, '.', '_' or '-'"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_stream_parameter_is_ours() {
        let (rest, log) =
            split_log_stream("esdb://h:2113?tls=false&logStream=adj-test.1").expect("valid");
        assert_eq!(rest, "esdb://h:2113?tls=false");
        assert_eq!(log.as_deref(), Some("adj-test.1"));
        let (rest, log) = split_log_stream("kurrentdb://h?LOGSTREAM=x").expect("valid");
        assert_eq!(
            (rest.as_str(), log.as_deref()),
            ("kurrentdb://h", Some("x"))
        );
        let (rest, log) = split_log_stream("kurrentdb://a,b,c?tls=true").expect("valid");
        assert_eq!((rest.as_str(), log), ("kurrentdb://a,b,c?tls=true", None));
    }

    #[test]
    fn bad_log_stream_names_are_refused() {
        for bad in ["", "$all", "a b", "a/b", &"x".repeat(129)] {
            let url = format!("esdb://h?logStream={bad}");
            assert!(
                matches!(split_log_stream(&url), Err(StoreError::InvalidRequest(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn urls_parse_into_client_settings() {
        let s = parse("kurrentdb://admin:changeit@localhost:2113?tls=false&logStream=l")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.log_stream, "l");
        assert!(!s.client.is_secure_mode_enabled());
        assert_eq!(s.client.hosts().len(), 1);
        assert_eq!(s.client.hosts()[0].port, 2113);
        assert!(s.client.default_authenticated_user().is_some());
        let s = parse("esdb://a:1,b:2,c:3").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.log_stream, DEFAULT_LOG_STREAM);
        assert_eq!(s.client.hosts().len(), 3);
        assert!(s.client.is_secure_mode_enabled(), "TLS unless tls=false");
    }

    #[test]
    fn errors_never_show_the_password() {
        for url in [
            "esdb://admin:s3cret@h:notaport",
            "esdb://admin:s3cret@h:1,h:x",
            "esdb://admin:s3cret@h/path",
            "esdb://admin:s3cret@h?nodePreference=nowhere",
        ] {
            match parse(url) {
                Err(e) => assert!(!e.to_string().contains("s3cret"), "{url}: {e}"),
                Ok(_) => panic!("{url} parsed"),
            }
        }
    }
}
