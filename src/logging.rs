//! Log output on stderr, filtered by `--log` (an `EnvFilter` directive such as `info` or
//! `adjudicator=debug,actix_web=warn`), in the format `--log-format` names: `text`, lines for
//! people, or `json`, one JSON object per line for a log collector. Unset, the format is `text`
//! when stderr is a terminal and `json` otherwise (a service manager, a container, a pipe).
//!
//! A JSON line carries the event's fields at the top level (`message`, `request_id`, …) and the
//! fields of the span it happened in under `span` (a request's `request_id`; a WebSocket
//! session's `request_id`, `session_id` and `user_id`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    /// `text` or `json`.
    pub fn parse(s: &str) -> Option<LogFormat> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }

    /// The default: text for a person at a terminal, JSON for everything else.
    pub fn for_stderr() -> LogFormat {
        if std::io::stderr().is_terminal() {
            LogFormat::Text
        } else {
            LogFormat::Json
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// Installs the global subscriber (once; later calls change nothing).
pub fn init(filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::LogFormat;

    #[test]
    fn formats_by_name() {
        assert_eq!(LogFormat::parse("json"), Some(LogFormat::Json));
        assert_eq!(LogFormat::parse(" Text "), Some(LogFormat::Text));
        assert_eq!(LogFormat::parse("xml"), None);
        assert_eq!(LogFormat::Json.as_str(), "json");
    }
}
