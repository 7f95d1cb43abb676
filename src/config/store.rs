//! The `--store` setting: which event-store backend to use, and how to show its URL without
//! the password in it.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// Where the events are kept.
///
/// `Debug` and `Display` show the URL with any password replaced by `***`; match on the variant
/// to get the URL itself.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// Embedded SQLite, a file in the data directory (`sqlite`).
    Sqlite,
    /// PostgreSQL (`postgres://…` or `postgresql://…`), the URL as given.
    Postgres(String),
    /// KurrentDB / EventStoreDB (`esdb://…`, `esdb+discover://…`, `kurrentdb://…`,
    /// `kurrentdb+discover://…`), the URL as given.
    EventStoreDb(String),
}

/// Why a `--store` value was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StoreUrlError {
    /// Neither `sqlite` nor a URL with a known scheme.
    #[error("unknown store")]
    Unknown,
    /// A known scheme with nothing after `://`.
    #[error("{0}:// needs a host")]
    MissingHost(String),
}

const POSTGRES_SCHEMES: [&str; 2] = ["postgres", "postgresql"];
const ESDB_SCHEMES: [&str; 4] = ["esdb", "esdb+discover", "kurrentdb", "kurrentdb+discover"];

impl StoreUrl {
    /// Reads a `--store` value: `sqlite`, `postgres://…` or `esdb://…` (see the variants).
    pub fn parse(s: &str) -> Result<Self, StoreUrlError> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("sqlite") {
            return Ok(Self::Sqlite);
        }
        let (scheme, rest) = s.split_once("://").ok_or(StoreUrlError::Unknown)?;
        let scheme = scheme.to_ascii_lowercase();
        let make: fn(String) -> Self = if POSTGRES_SCHEMES.contains(&scheme.as_str()) {
            Self::Postgres
        } else if ESDB_SCHEMES.contains(&scheme.as_str()) {
            Self::EventStoreDb
        } else {
            return Err(StoreUrlError::Unknown);
        };
        if rest.is_empty() || rest.starts_with(['/', '?', '#']) {
            return Err(StoreUrlError::MissingHost(scheme));
        }
        Ok(make(s.to_owned()))
    }

    /// A short name of the backend: `sqlite`, `postgres` or `eventstoredb`.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres(_) => "postgres",
            Self::EventStoreDb(_) => "eventstoredb",
        }
    }

    /// The URL with the password of its user part, and any query parameter whose name mentions
    /// a password, secret or token, replaced by `***`.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite => "sqlite".to_owned(),
            Self::Postgres(url) | Self::EventStoreDb(url) => redact_url(url),
        }
    }
}

impl FromStr for StoreUrl {
    type Err = StoreUrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite => f.write_str("Sqlite"),
            Self::Postgres(_) => f.debug_tuple("Postgres").field(&self.redacted()).finish(),
            Self::EventStoreDb(_) => f
                .debug_tuple("EventStoreDb")
                .field(&self.redacted())
                .finish(),
        }
    }
}

fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{hosts}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let (query, fragment) = match query.split_once('#') {
                Some((query, fragment)) => (query, Some(fragment)),
                None => (query, None),
            };
            let query = query
                .split('&')
                .map(redact_param)
                .collect::<Vec<_>>()
                .join("&");
            match fragment {
                Some(fragment) => format!("{path}?{query}#{fragment}"),
                None => format!("{path}?{query}"),
            }
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

fn redact_param(param: &str) -> String {
    match param.split_once('=') {
        Some((name, _value)) => {
            let lower = name.to_ascii_lowercase();
            if ["password", "secret", "token"]
                .iter()
                .any(|word| lower.contains(word))
            {
                format!("{name}=***")
            } else {
                param.to_owned()
            }
        }
        None => param.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_backend() {
        assert_eq!(StoreUrl::parse("sqlite"), Ok(StoreUrl::Sqlite));
        for url in ["postgres://db/adj", "postgresql://u:p@db:5432/adj"] {
            assert_eq!(StoreUrl::parse(url), Ok(StoreUrl::Postgres(url.into())));
        }
        for url in [
            "esdb://localhost:2113?tls=false",
            "esdb+discover://a,b,c",
            "kurrentdb://admin:changeit@localhost:2113",
            "kurrentdb+discover://cluster.example",
        ] {
            assert_eq!(StoreUrl::parse(url), Ok(StoreUrl::EventStoreDb(url.into())));
        }
    }

    #[test]
    fn rejects_unknown_stores() {
        for bad in ["", "mysql://db", "sqlite:./x.db", "postgres", "http://x"] {
            assert_eq!(StoreUrl::parse(bad), Err(StoreUrlError::Unknown), "{bad}");
        }
        assert_eq!(
            StoreUrl::parse("postgres://"),
            Err(StoreUrlError::MissingHost("postgres".into()))
        );
        assert_eq!(
            StoreUrl::parse("esdb:///x"),
            Err(StoreUrlError::MissingHost("esdb".into()))
        );
    }

    #[test]
    fn redacts_passwords() {
        let url = StoreUrl::parse("postgres://adj:s3cret@db:5432/adj?sslmode=require&password=p2")
            .expect("valid");
        assert_eq!(
            url.to_string(),
            "postgres://adj:***@db:5432/adj?sslmode=require&password=***"
        );
        assert!(!format!("{url:?}").contains("s3cret"));
        let url = StoreUrl::parse("esdb+discover://admin:pw@a,b?tls=true#x").expect("valid");
        assert_eq!(url.redacted(), "esdb+discover://admin:***@a,b?tls=true#x");
        let url = StoreUrl::parse("postgres://db/adj").expect("valid");
        assert_eq!(url.redacted(), "postgres://db/adj");
        assert_eq!(StoreUrl::Sqlite.redacted(), "sqlite");
    }
}
