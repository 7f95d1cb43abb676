//! Reading a `postgres://…` URL: the connection settings tokio-postgres understands, plus the
//! one Adjudicator adds (`pool_size`, the read connections one process keeps at most).

use std::time::Duration;

use tokio_postgres::Config;

use crate::store::StoreError;

/// Read connections one process keeps open at most, unless the URL says otherwise.
pub const DEFAULT_POOL_SIZE: usize = 8;
/// The largest `pool_size` accepted.
const MAX_POOL_SIZE: usize = 256;
/// How long connecting may take when the URL does not say (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the store needs to connect (`Debug` hides the password).
#[derive(Clone, Debug)]
pub struct Target {
    pub config: Config,
    pub pool_size: usize,
}

/// Parses `url`. Errors never repeat the URL (it may hold a password).
pub fn parse(url: &str) -> Result<Target, StoreError> {
    let (without_pool, pool_size) = take_pool_size(url)?;
    let mut config: Config = without_pool
        .parse()
        .map_err(|e| StoreError::InvalidRequest(format!("not a valid PostgreSQL URL: {e}")))?;
    if config.get_application_name().is_none() {
        config.application_name("adjudicator");
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    Ok(Target { config, pool_size })
}

/// Removes the `pool_size=N` query parameter, which tokio-postgres would refuse, and reads it.
fn take_pool_size(url: &str) -> Result<(String, usize), StoreError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), DEFAULT_POOL_SIZE));
    };
    let mut pool_size = DEFAULT_POOL_SIZE;
    let mut kept = Vec::new();
    for param in query.split('&').filter(|p| !p.is_empty()) {
        match param.split_once('=') {
            Some(("pool_size", value)) => {
                pool_size = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_POOL_SIZE).contains(n))
                    .ok_or_else(|| {
                        StoreError::InvalidRequest(format!(
                            "pool_size is a number from 1 to {MAX_POOL_SIZE}, not {value:?}"
                        ))
                    })?;
            }
            _ => kept.push(param),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, pool_size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_size_is_taken_out_of_the_url() {
        let t = parse("postgres://u:p@db:5433/adj?pool_size=3&sslmode=disable").expect("valid");
        assert_eq!(t.pool_size, 3);
        assert_eq!(t.config.get_dbname(), Some("adj"));
        assert_eq!(t.config.get_ports(), &[5433]);
        let t = parse("postgres://db/adj").expect("valid");
        assert_eq!(t.pool_size, DEFAULT_POOL_SIZE);
        assert_eq!(t.config.get_application_name(), Some("adjudicator"));
    }

    #[test]
    fn a_unix_socket_directory_is_a_host() {
        let t = parse("postgres://postgres@%2Ftmp%2Fpg/adj").expect("valid");
        assert_eq!(t.config.get_dbname(), Some("adj"));
        assert_eq!(t.config.get_hosts().len(), 1);
    }

    #[test]
    fn bad_values_are_refused_without_echoing_the_url() {
        for bad in [
            "postgres://u:s3cret@db/adj?pool_size=0",
            "postgres://u:s3cret@db/adj?pool_size=x",
        ] {
            let e = parse(bad).expect_err(bad).to_string();
            assert!(e.contains("pool_size"), "{e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
        let e = parse("postgres://u:s3cret@db/adj?nonsense=1").expect_err("unknown option");
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }
}
