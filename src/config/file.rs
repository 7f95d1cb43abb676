//! The optional TOML settings file (`--config`).
//!
//! Keys are the flag names with `_` for `-` (`heartbeat_interval = "30s"`,
//! `max_connections_per_user = 5`, `demo = true`). Durations, addresses and URLs are strings,
//! counts and sizes are integers, `allowed_origins` and `trusted_proxies` are a string
//! (comma-separated) or an array of strings. An unknown key or a value of the wrong type is an error naming the file, the line and
//! the key; values are checked further by [`super::Settings::resolve`], like flags are.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigError;

/// The settings a TOML file may hold; every key is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub store: Option<String>,
    pub jwt_secret_file: Option<PathBuf>,
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
    pub jwt_algorithm: Option<String>,
    pub jwt_public_key_file: Option<PathBuf>,
    pub jwt_private_key_file: Option<PathBuf>,
    pub jwt_leeway: Option<String>,
    pub access_token_ttl: Option<String>,
    pub refresh_token_ttl: Option<String>,
    pub login_failures_per_ip: Option<i64>,
    pub login_failures_per_user: Option<i64>,
    pub login_window: Option<String>,
    pub max_connections_per_user: Option<i64>,
    pub connect_attempts_per_ip: Option<i64>,
    pub connect_window: Option<String>,
    pub message_rate: Option<i64>,
    pub message_burst: Option<i64>,
    pub max_frame_bytes: Option<i64>,
    pub heartbeat_interval: Option<String>,
    pub heartbeat_missed: Option<i64>,
    pub outbound_queue_messages: Option<i64>,
    pub outbound_queue_bytes: Option<i64>,
    pub max_connections: Option<i64>,
    pub allowed_origins: Option<OriginList>,
    pub claim_lease: Option<String>,
    pub max_bad_messages: Option<i64>,
    pub snapshot_every: Option<i64>,
    pub snapshot_interval: Option<String>,
    pub demo: Option<bool>,
    pub log: Option<String>,
    pub log_format: Option<String>,
    pub shutdown_timeout: Option<String>,
    pub max_body_bytes: Option<i64>,
    pub trusted_proxies: Option<OriginList>,
    pub login_failures_per_user_global: Option<i64>,
    pub refresh_rate_per_ip: Option<i64>,
    pub refresh_rate_per_family: Option<i64>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub resume_buffer_updates: Option<i64>,
}

/// `allowed_origins` as the file may write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginList {
    /// `allowed_origins = "https://a.example, https://b.example"`
    Text(String),
    /// `allowed_origins = ["https://a.example", "https://b.example"]`
    List(Vec<String>),
}

impl<'de> Deserialize<'de> for OriginList {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(OriginListVisitor)
    }
}

/// Reads a string or an array of strings, with a message saying so for anything else.
struct OriginListVisitor;

impl<'de> serde::de::Visitor<'de> for OriginListVisitor {
    type Value = OriginList;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or an array of strings")
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Self::Value, E> {
        Ok(OriginList::Text(value.to_owned()))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = seq.next_element::<String>()? {
            entries.push(entry);
        }
        Ok(OriginList::List(entries))
    }
}

impl FileSettings {
    /// Reads and parses the file at `path`. A file that does not exist is an error: it was asked
    /// for by name.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                ConfigError::FileMissing {
                    path: path.to_owned(),
                }
            } else {
                ConfigError::FileRead {
                    path: path.to_owned(),
                    source,
                }
            }
        })?;
        Self::parse(&text, path)
    }

    /// Parses `text`, the content of the file at `path` (used only in messages).
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|error| ConfigError::FileParse {
            path: path.to_owned(),
            message: describe(text, &error),
        })
    }
}

/// One line naming where in the file the error is and what it is, e.g.
/// ``line 3, key `heartbeat_interval`: invalid type: integer `30`, expected a string``.
/// The value itself is not repeated: it might be a store URL with a password.
fn describe(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim();
    let Some(span) = error.span() else {
        return message.to_owned();
    };
    let start = span.start.min(text.len());
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let line_number = text[..start].matches('\n').count() + 1;
    let line = text[line_start..line_end].trim();
    let key = match line.split_once('=') {
        Some((key, _value)) => key.trim(),
        None if line.starts_with('[') => line,
        None => "",
    };
    if key.is_empty() {
        format!("line {line_number}: {message}")
    } else {
        format!("line {line_number}, key `{key}`: {message}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<FileSettings, ConfigError> {
        FileSettings::parse(text, Path::new("/etc/adjudicator.toml"))
    }

    #[test]
    fn empty_file_sets_nothing() {
        assert_eq!(parse("").expect("valid file"), FileSettings::default());
    }

    #[test]
    fn reads_every_kind_of_value() {
        let file = parse(
            r#"
            listen = "0.0.0.0:80"
            data_dir = "/var/lib/adjudicator"
            heartbeat_interval = "10s"
            max_connections_per_user = 2
            demo = true
            allowed_origins = ["https://a.example", "https://b.example"]
            "#,
        )
        .expect("valid file");
        assert_eq!(file.listen.as_deref(), Some("0.0.0.0:80"));
        assert_eq!(file.data_dir, Some(PathBuf::from("/var/lib/adjudicator")));
        assert_eq!(file.heartbeat_interval.as_deref(), Some("10s"));
        assert_eq!(file.max_connections_per_user, Some(2));
        assert_eq!(file.demo, Some(true));
        assert_eq!(
            file.allowed_origins,
            Some(OriginList::List(vec![
                "https://a.example".into(),
                "https://b.example".into()
            ]))
        );
        let text = parse(r#"allowed_origins = "https://a.example""#).expect("valid file");
        assert_eq!(
            text.allowed_origins,
            Some(OriginList::Text("https://a.example".into()))
        );
    }

    #[test]
    fn unknown_key_names_key_file_and_line() {
        let err = parse("listen = \"0.0.0.0:80\"\nheartbeat_intervall = \"5s\"\n")
            .expect_err("unknown key");
        let shown = err.to_string();
        assert!(shown.contains("/etc/adjudicator.toml"), "{shown}");
        assert!(shown.contains("heartbeat_intervall"), "{shown}");
        assert!(shown.contains("line 2"), "{shown}");
    }

    #[test]
    fn wrong_type_names_key_and_file() {
        let err = parse("demo = true\nheartbeat_interval = 30\n").expect_err("wrong type");
        let shown = err.to_string();
        assert!(shown.contains("/etc/adjudicator.toml"), "{shown}");
        assert!(shown.contains("heartbeat_interval"), "{shown}");
        assert!(shown.contains("line 2"), "{shown}");

        let err = parse("max_connections = \"many\"").expect_err("wrong type");
        assert!(err.to_string().contains("max_connections"), "{err}");

        let err = parse("allowed_origins = 5").expect_err("wrong type");
        assert_eq!(
            err.to_string(),
            "invalid config file /etc/adjudicator.toml: line 1, key `allowed_origins`: \
             invalid type: integer `5`, expected a string or an array of strings"
        );
    }

    #[test]
    fn syntax_error_does_not_echo_the_value() {
        let err = parse("store = postgres://adj:hunter2@db/adj").expect_err("unquoted");
        let shown = err.to_string();
        assert!(shown.contains("key `store`"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn syntax_error_names_file() {
        let err = parse("listen = ").expect_err("bad syntax");
        assert!(err.to_string().contains("/etc/adjudicator.toml"), "{err}");
    }

    #[test]
    fn missing_file_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("nope.toml");
        let err = FileSettings::load(&path).expect_err("missing file");
        assert!(matches!(err, ConfigError::FileMissing { .. }), "{err:?}");
        assert!(err.to_string().contains("nope.toml"), "{err}");
    }

    #[test]
    fn loads_a_file_from_disk() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("adjudicator.toml");
        std::fs::write(&path, "message_rate = 7\n").expect("write");
        let file = FileSettings::load(&path).expect("loads");
        assert_eq!(file.message_rate, Some(7));
    }
}
