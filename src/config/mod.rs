//! Runtime configuration: the settings of `adjudicator serve`, resolved from flags and
//! environment variables, an optional TOML file and the defaults of the design, in that order,
//! then checked. A bad value stops the start with a [`ConfigError`] that names its flag.

pub mod duration;
pub mod file;
pub mod jwt_algorithm;
pub mod origins;
pub mod store;
pub mod trusted_proxies;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use thiserror::Error;

use crate::cli::ServeArgs;
use crate::logging::LogFormat;
use duration::{format_duration, parse_duration, DurationError};
use file::{FileSettings, OriginList};
pub use jwt_algorithm::JwtAlgorithm;
pub use origins::AllowedOrigins;
pub use store::{StoreUrl, StoreUrlError};
pub use trusted_proxies::TrustedProxies;

/// The flag names of every setting of `serve` (without `--config`), in the order of the design.
/// The environment variable of each is `ADJUDICATOR_` and the name in upper snake case; its TOML
/// key is the name with `_` for `-`.
pub const FLAGS: [&str; 43] = [
    "listen",
    "data-dir",
    "store",
    "jwt-secret-file",
    "jwt-issuer",
    "jwt-audience",
    "jwt-algorithm",
    "jwt-public-key-file",
    "jwt-private-key-file",
    "jwt-leeway",
    "access-token-ttl",
    "refresh-token-ttl",
    "login-failures-per-ip",
    "login-failures-per-user",
    "login-window",
    "max-connections-per-user",
    "connect-attempts-per-ip",
    "connect-window",
    "message-rate",
    "message-burst",
    "max-frame-bytes",
    "max-bad-messages",
    "heartbeat-interval",
    "heartbeat-missed",
    "outbound-queue-messages",
    "outbound-queue-bytes",
    "max-connections",
    "allowed-origins",
    "claim-lease",
    "snapshot-every",
    "snapshot-interval",
    "demo",
    "log",
    "log-format",
    "shutdown-timeout",
    "max-body-bytes",
    "trusted-proxies",
    "login-failures-per-user-global",
    "refresh-rate-per-ip",
    "refresh-rate-per-family",
    "tls-cert",
    "tls-key",
    "resume-buffer-updates",
];

/// The resolved, checked settings of the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `--listen`: the address of the HTTP and WebSocket server.
    pub listen: SocketAddr,
    /// `--data-dir`: where the SQLite store, the signing secret and the admin password live.
    pub data_dir: PathBuf,
    /// `--store`: the event-store backend.
    pub store: StoreUrl,
    /// `--jwt-secret-file`: the HS256 key file; `<data_dir>/jwt-secret` unless set.
    pub jwt_secret_file: PathBuf,
    /// `--jwt-issuer`.
    pub jwt_issuer: String,
    /// `--jwt-audience`.
    pub jwt_audience: String,
    /// `--jwt-algorithm`: the only algorithm tokens may be signed with.
    pub jwt_algorithm: JwtAlgorithm,
    /// `--jwt-public-key-file`: PEM public key; set exactly when the algorithm is asymmetric.
    pub jwt_public_key_file: Option<PathBuf>,
    /// `--jwt-private-key-file`: PEM private key; only with an asymmetric algorithm, and without
    /// it this node verifies tokens but cannot issue them.
    pub jwt_private_key_file: Option<PathBuf>,
    /// `--jwt-leeway`: clock skew allowed on `exp` and `nbf`; may be zero.
    pub jwt_leeway: Duration,
    /// `--access-token-ttl`, never zero.
    pub access_token_ttl: Duration,
    /// `--refresh-token-ttl`, longer than `access_token_ttl`.
    pub refresh_token_ttl: Duration,
    /// `--login-failures-per-ip` within `login_window`, at least 1.
    pub login_failures_per_ip: u32,
    /// `--login-failures-per-user` within `login_window`, at least 1.
    pub login_failures_per_user: u32,
    /// `--login-window`, the sliding window of failed logins, never zero.
    pub login_window: Duration,
    /// `--max-connections-per-user`, at least 1.
    pub max_connections_per_user: u32,
    /// `--connect-attempts-per-ip` within `connect_window`, at least 1.
    pub connect_attempts_per_ip: u32,
    /// `--connect-window`, the sliding window of connect attempts, never zero.
    pub connect_window: Duration,
    /// `--message-rate`: inbound messages per second per connection, at least 1.
    pub message_rate: u32,
    /// `--message-burst`: the bucket size of the inbound limiter, at least 1.
    pub message_burst: u32,
    /// `--max-frame-bytes`, at least 1.
    pub max_frame_bytes: usize,
    /// `--heartbeat-interval`, never zero.
    pub heartbeat_interval: Duration,
    /// `--heartbeat-missed`: silent intervals before a session is closed, at least 1.
    pub heartbeat_missed: u32,
    /// `--outbound-queue-messages`, at least 1.
    pub outbound_queue_messages: usize,
    /// `--outbound-queue-bytes`, at least 1.
    pub outbound_queue_bytes: usize,
    /// `--max-connections` on this node, at least 1.
    pub max_connections: usize,
    /// `--allowed-origins`: the server's own origin by default, `*` for any, or a list whose
    /// entries are `scheme://host[:port]` in ASCII lower case.
    pub allowed_origins: AllowedOrigins,
    /// `--claim-lease`, never zero.
    pub claim_lease: Duration,
    /// `--max-bad-messages`: malformed WebSocket messages in a row before a 4400 close.
    pub max_bad_messages: u32,
    /// `--snapshot-every`: events between two snapshots of the read models, never zero.
    pub snapshot_every: u64,
    /// `--snapshot-interval`: time between two snapshots (if anything changed), never zero.
    pub snapshot_interval: Duration,
    /// `--demo`.
    pub demo: bool,
    /// `--log`: a `tracing_subscriber::EnvFilter` directive string.
    pub log: String,
    /// `--log-format`: `None` leaves the choice to [`LogFormat::for_stderr`] at start.
    pub log_format: Option<LogFormat>,
    /// `--shutdown-timeout`: how long to wait for draining; zero means do not wait.
    pub shutdown_timeout: Duration,
    /// `--max-body-bytes`, at least 1.
    pub max_body_bytes: usize,
    /// `--trusted-proxies`: reverse proxies whose `X-Forwarded-For` is believed; none by default.
    pub trusted_proxies: TrustedProxies,
    /// `--login-failures-per-user-global`: failed logins per username from every address that
    /// is not one the user logged in from lately, together, within `login_window`; at least 1.
    pub login_failures_per_user_global: u32,
    /// `--refresh-rate-per-ip`: refresh attempts per client IP per minute, at least 1.
    pub refresh_rate_per_ip: u32,
    /// `--refresh-rate-per-family`: refresh attempts per login (refresh family) per minute, at
    /// least 1.
    pub refresh_rate_per_family: u32,
    /// `--tls-cert` and `--tls-key`: serve HTTPS and `wss://` with this pair; both or neither.
    pub tls: Option<TlsFiles>,
    /// `--resume-buffer-updates`: recent pushes kept in memory for resumes with `since`, at
    /// least 1; older ones are read from the event log.
    pub resume_buffer_updates: usize,
    /// `--config`: the TOML file the settings were read from, if any.
    pub config_file: Option<PathBuf>,
}

/// The PEM files of `--tls-cert` (the certificate chain, leaf first) and `--tls-key` (its
/// private key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Where a bad value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The flag or its environment variable (clap merges the two).
    CommandLine,
    /// The TOML file at this path.
    File(PathBuf),
}

/// Why the settings could not be resolved. Every message names the setting by its flag.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// A value that does not parse or is out of range.
    #[error(
        "invalid value for --{flag}{}: {value:?} ({expected})",
        origin_note(flag, origin)
    )]
    InvalidValue {
        /// The flag name without `--`, e.g. `heartbeat-interval`.
        flag: &'static str,
        /// Where the value came from.
        origin: Origin,
        /// The value as given.
        value: String,
        /// What was expected instead, e.g. `expected a duration like 30s, 15m, 7d`.
        expected: String,
    },
    /// Two values that are fine alone but not together.
    #[error("{0}")]
    Inconsistent(String),
    /// `--config` names a file that does not exist.
    #[error("config file {} (--config) does not exist", path.display())]
    FileMissing {
        /// The path given.
        path: PathBuf,
    },
    /// `--config` names a file that cannot be read.
    #[error("cannot read config file {} (--config): {source}", path.display())]
    FileRead {
        /// The path given.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file is not valid TOML, has an unknown key, or a value of the wrong type.
    #[error("invalid config file {}: {message}", path.display())]
    FileParse {
        /// The path given.
        path: PathBuf,
        /// Line, key and reason.
        message: String,
    },
}

fn origin_note(flag: &str, origin: &Origin) -> String {
    match origin {
        Origin::CommandLine => String::new(),
        Origin::File(path) => format!(" (key {} in {})", flag.replace('-', "_"), path.display()),
    }
}

/// A value before it is checked, with its origin.
struct Raw {
    value: String,
    origin: Origin,
}

/// Picks each setting's raw value: the flag (or its variable) first, then the file.
struct Layers<'a> {
    file: FileSettings,
    file_path: Option<&'a Path>,
}

impl Layers<'_> {
    fn pick(&self, cli: Option<&String>, file: Option<String>) -> Option<Raw> {
        if let Some(value) = cli {
            return Some(Raw {
                value: value.clone(),
                origin: Origin::CommandLine,
            });
        }
        match (file, self.file_path) {
            (Some(value), Some(path)) => Some(Raw {
                value,
                origin: Origin::File(path.to_owned()),
            }),
            _ => None,
        }
    }

    fn pick_path(&self, cli: Option<&PathBuf>, file: Option<&PathBuf>) -> Option<Raw> {
        let to_string = |p: &PathBuf| p.to_string_lossy().into_owned();
        self.pick(cli.map(to_string).as_ref(), file.map(to_string))
    }
}

/// Checks `raw` with `parse`, or takes `default` when nothing was given.
fn setting<T>(
    flag: &'static str,
    raw: Option<Raw>,
    default: T,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, ConfigError> {
    match raw {
        None => Ok(default),
        Some(Raw { value, origin }) => {
            parse(&value).map_err(|expected| ConfigError::InvalidValue {
                flag,
                origin,
                value,
                expected,
            })
        }
    }
}

const DURATION_EXPECTED: &str = "expected a duration like 30s, 15m, 7d";

fn duration_value(s: &str, allow_zero: bool) -> Result<Duration, String> {
    match parse_duration(s) {
        Ok(d) if d.is_zero() && !allow_zero => {
            Err("expected a duration greater than zero, like 30s, 15m, 7d".to_owned())
        }
        Ok(d) => Ok(d),
        Err(DurationError::Empty | DurationError::MissingNumber(_)) => {
            Err(DURATION_EXPECTED.to_owned())
        }
        Err(e) => Err(format!("{DURATION_EXPECTED}; {e}")),
    }
}

/// The most clock skew `--jwt-leeway` may allow: more would quietly lengthen every token's life
/// (and the time a revoked-by-expiry token still works), which is what the TTLs are for.
pub const MAX_JWT_LEEWAY: Duration = Duration::from_secs(5 * 60);

fn leeway_value(s: &str) -> Result<Duration, String> {
    let leeway = duration_value(s, true)?;
    if leeway > MAX_JWT_LEEWAY {
        return Err(format!(
            "expected a duration of at most {} (clock skew between servers, not a longer \
             token life)",
            format_duration(MAX_JWT_LEEWAY)
        ));
    }
    Ok(leeway)
}

fn positive_duration(s: &str) -> Result<Duration, String> {
    duration_value(s, false)
}

/// A whole number from 1 to the type's maximum.
fn count<T>(s: &str) -> Result<T, String>
where
    T: FromStr + Default + PartialEq + fmt::Display + Bounded,
{
    let s = s.trim();
    match s.parse::<T>() {
        Ok(n) if n != T::default() => Ok(n),
        Err(_) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => Err(format!(
            "expected a whole number from 1 to {}",
            T::MAX_VALUE
        )),
        _ => Err("expected a whole number, at least 1".to_owned()),
    }
}

/// The largest value of a count type, for messages.
trait Bounded {
    const MAX_VALUE: Self;
}

impl Bounded for u32 {
    const MAX_VALUE: Self = u32::MAX;
}

impl Bounded for usize {
    const MAX_VALUE: Self = usize::MAX;
}

impl Bounded for u64 {
    const MAX_VALUE: Self = u64::MAX;
}

fn listen_value(s: &str) -> Result<SocketAddr, String> {
    s.trim()
        .parse()
        .map_err(|_| "expected an IP address and port like 127.0.0.1:8080 or [::]:8080".to_owned())
}

fn store_value(s: &str) -> Result<StoreUrl, String> {
    StoreUrl::parse(s).map_err(|e| {
        let hint = "expected sqlite, or a URL postgres://…, postgresql://…, esdb://…, \
                    esdb+discover://…, kurrentdb://… or kurrentdb+discover://…";
        match e {
            StoreUrlError::Unknown => hint.to_owned(),
            other => format!("{hint}; {other}"),
        }
    })
}

fn path_value(s: &str) -> Result<PathBuf, String> {
    if s.trim().is_empty() {
        Err("expected a path".to_owned())
    } else {
        Ok(PathBuf::from(s))
    }
}

fn optional_path_value(s: &str) -> Result<Option<PathBuf>, String> {
    path_value(s).map(Some)
}

fn jwt_algorithm_value(s: &str) -> Result<JwtAlgorithm, String> {
    JwtAlgorithm::parse(s).ok_or_else(|| "expected HS256, RS256 or EdDSA".to_owned())
}

fn text_value(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty() {
        Err("expected a non-empty text".to_owned())
    } else {
        Ok(s.to_owned())
    }
}

fn log_format_value(s: &str) -> Result<Option<LogFormat>, String> {
    LogFormat::parse(s)
        .map(Some)
        .ok_or_else(|| "expected text or json".to_owned())
}

fn log_value(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("expected a log filter like info or info,adjudicator=debug".to_owned());
    }
    tracing_subscriber::EnvFilter::try_new(s)
        .map(|_| s.to_owned())
        .map_err(|e| format!("expected a log filter like info or info,adjudicator=debug; {e}"))
}

/// The file's `allowed_origins` as one comma-separated text, like the flag takes it.
fn origins_text(list: &OriginList) -> String {
    match list {
        OriginList::Text(text) => text.clone(),
        OriginList::List(entries) => entries.join(","),
    }
}

impl Settings {
    /// Resolves the settings: flag or environment variable, else the TOML file named by
    /// `--config` (which must exist), else the default of the design; then checks them.
    pub fn resolve(args: &ServeArgs) -> Result<Settings, ConfigError> {
        let file = match &args.config {
            Some(path) => FileSettings::load(path)?,
            None => FileSettings::default(),
        };
        Self::resolve_with_file(args, file)
    }

    /// [`Settings::resolve`] with the file (the one `args.config` names, if any) already read:
    /// for callers that hold its text rather than a path, such as the fuzz targets.
    pub fn resolve_with_file(
        args: &ServeArgs,
        file: FileSettings,
    ) -> Result<Settings, ConfigError> {
        let layers = Layers {
            file,
            file_path: args.config.as_deref(),
        };
        let f = &layers.file;
        let num = |n: Option<i64>| n.map(|n| n.to_string());

        let listen = setting(
            "listen",
            layers.pick(args.listen.as_ref(), f.listen.clone()),
            SocketAddr::from(([127, 0, 0, 1], 8080)),
            listen_value,
        )?;
        let data_dir = setting(
            "data-dir",
            layers.pick_path(args.data_dir.as_ref(), f.data_dir.as_ref()),
            PathBuf::from("./data"),
            path_value,
        )?;
        let store = setting(
            "store",
            layers.pick(args.store.as_ref(), f.store.clone()),
            StoreUrl::Sqlite,
            store_value,
        )?;
        let jwt_secret_file = setting(
            "jwt-secret-file",
            layers.pick_path(args.jwt_secret_file.as_ref(), f.jwt_secret_file.as_ref()),
            data_dir.join("jwt-secret"),
            path_value,
        )?;
        let jwt_issuer = setting(
            "jwt-issuer",
            layers.pick(args.jwt_issuer.as_ref(), f.jwt_issuer.clone()),
            "adjudicator".to_owned(),
            text_value,
        )?;
        let jwt_audience = setting(
            "jwt-audience",
            layers.pick(args.jwt_audience.as_ref(), f.jwt_audience.clone()),
            "adjudicator".to_owned(),
            text_value,
        )?;
        let jwt_algorithm = setting(
            "jwt-algorithm",
            layers.pick(args.jwt_algorithm.as_ref(), f.jwt_algorithm.clone()),
            JwtAlgorithm::Hs256,
            jwt_algorithm_value,
        )?;
        let jwt_public_key_file = setting(
            "jwt-public-key-file",
            layers.pick_path(
                args.jwt_public_key_file.as_ref(),
                f.jwt_public_key_file.as_ref(),
            ),
            None,
            optional_path_value,
        )?;
        let jwt_private_key_file = setting(
            "jwt-private-key-file",
            layers.pick_path(
                args.jwt_private_key_file.as_ref(),
                f.jwt_private_key_file.as_ref(),
            ),
            None,
            optional_path_value,
        )?;
        let jwt_leeway = setting(
            "jwt-leeway",
            layers.pick(args.jwt_leeway.as_ref(), f.jwt_leeway.clone()),
            Duration::ZERO,
            leeway_value,
        )?;
        let access_token_ttl = setting(
            "access-token-ttl",
            layers.pick(args.access_token_ttl.as_ref(), f.access_token_ttl.clone()),
            Duration::from_secs(15 * 60),
            positive_duration,
        )?;
        let refresh_token_ttl = setting(
            "refresh-token-ttl",
            layers.pick(args.refresh_token_ttl.as_ref(), f.refresh_token_ttl.clone()),
            Duration::from_secs(7 * 86_400),
            positive_duration,
        )?;
        let login_failures_per_ip = setting(
            "login-failures-per-ip",
            layers.pick(
                args.login_failures_per_ip.as_ref(),
                num(f.login_failures_per_ip),
            ),
            20,
            count::<u32>,
        )?;
        let login_failures_per_user = setting(
            "login-failures-per-user",
            layers.pick(
                args.login_failures_per_user.as_ref(),
                num(f.login_failures_per_user),
            ),
            5,
            count::<u32>,
        )?;
        let login_window = setting(
            "login-window",
            layers.pick(args.login_window.as_ref(), f.login_window.clone()),
            Duration::from_secs(15 * 60),
            positive_duration,
        )?;
        let max_connections_per_user = setting(
            "max-connections-per-user",
            layers.pick(
                args.max_connections_per_user.as_ref(),
                num(f.max_connections_per_user),
            ),
            5,
            count::<u32>,
        )?;
        let connect_attempts_per_ip = setting(
            "connect-attempts-per-ip",
            layers.pick(
                args.connect_attempts_per_ip.as_ref(),
                num(f.connect_attempts_per_ip),
            ),
            20,
            count::<u32>,
        )?;
        let connect_window = setting(
            "connect-window",
            layers.pick(args.connect_window.as_ref(), f.connect_window.clone()),
            Duration::from_secs(60),
            positive_duration,
        )?;
        let message_rate = setting(
            "message-rate",
            layers.pick(args.message_rate.as_ref(), num(f.message_rate)),
            20,
            count::<u32>,
        )?;
        let message_burst = setting(
            "message-burst",
            layers.pick(args.message_burst.as_ref(), num(f.message_burst)),
            40,
            count::<u32>,
        )?;
        let max_frame_bytes = setting(
            "max-frame-bytes",
            layers.pick(args.max_frame_bytes.as_ref(), num(f.max_frame_bytes)),
            65_536,
            count::<usize>,
        )?;
        let heartbeat_interval = setting(
            "heartbeat-interval",
            layers.pick(
                args.heartbeat_interval.as_ref(),
                f.heartbeat_interval.clone(),
            ),
            Duration::from_secs(30),
            positive_duration,
        )?;
        let heartbeat_missed = setting(
            "heartbeat-missed",
            layers.pick(args.heartbeat_missed.as_ref(), num(f.heartbeat_missed)),
            3,
            count::<u32>,
        )?;
        let outbound_queue_messages = setting(
            "outbound-queue-messages",
            layers.pick(
                args.outbound_queue_messages.as_ref(),
                num(f.outbound_queue_messages),
            ),
            1024,
            count::<usize>,
        )?;
        let outbound_queue_bytes = setting(
            "outbound-queue-bytes",
            layers.pick(
                args.outbound_queue_bytes.as_ref(),
                num(f.outbound_queue_bytes),
            ),
            4_194_304,
            count::<usize>,
        )?;
        let max_connections = setting(
            "max-connections",
            layers.pick(args.max_connections.as_ref(), num(f.max_connections)),
            100_000,
            count::<usize>,
        )?;
        let allowed_origins = setting(
            "allowed-origins",
            layers.pick(
                args.allowed_origins.as_ref(),
                f.allowed_origins.as_ref().map(origins_text),
            ),
            AllowedOrigins::SameOrigin,
            AllowedOrigins::parse,
        )?;
        let claim_lease = setting(
            "claim-lease",
            layers.pick(args.claim_lease.as_ref(), f.claim_lease.clone()),
            Duration::from_secs(15 * 60),
            positive_duration,
        )?;
        let max_bad_messages = setting(
            "max-bad-messages",
            layers.pick(args.max_bad_messages.as_ref(), num(f.max_bad_messages)),
            10,
            count::<u32>,
        )?;
        let snapshot_every = setting(
            "snapshot-every",
            layers.pick(args.snapshot_every.as_ref(), num(f.snapshot_every)),
            50_000,
            count::<u64>,
        )?;
        let snapshot_interval = setting(
            "snapshot-interval",
            layers.pick(args.snapshot_interval.as_ref(), f.snapshot_interval.clone()),
            Duration::from_secs(30),
            positive_duration,
        )?;
        let demo = args.demo.or(f.demo).unwrap_or(false);
        let log = setting(
            "log",
            layers.pick(args.log.as_ref(), f.log.clone()),
            "info".to_owned(),
            log_value,
        )?;
        let log_format = setting(
            "log-format",
            layers.pick(args.log_format.as_ref(), f.log_format.clone()),
            None,
            log_format_value,
        )?;
        let shutdown_timeout = setting(
            "shutdown-timeout",
            layers.pick(args.shutdown_timeout.as_ref(), f.shutdown_timeout.clone()),
            Duration::from_secs(30),
            |s| duration_value(s, true),
        )?;
        let max_body_bytes = setting(
            "max-body-bytes",
            layers.pick(args.max_body_bytes.as_ref(), num(f.max_body_bytes)),
            65_536,
            count::<usize>,
        )?;

        let trusted_proxies = setting(
            "trusted-proxies",
            layers.pick(
                args.trusted_proxies.as_ref(),
                f.trusted_proxies.as_ref().map(origins_text),
            ),
            TrustedProxies::default(),
            |s| {
                TrustedProxies::parse(s).map_err(|why| {
                    format!(
                        "expected a comma-separated list of CIDRs or addresses like \
                         10.0.0.0/8, 192.168.1.7; {why}"
                    )
                })
            },
        )?;
        let login_failures_per_user_global = setting(
            "login-failures-per-user-global",
            layers.pick(
                args.login_failures_per_user_global.as_ref(),
                num(f.login_failures_per_user_global),
            ),
            100,
            count::<u32>,
        )?;
        let refresh_rate_per_ip = setting(
            "refresh-rate-per-ip",
            layers.pick(
                args.refresh_rate_per_ip.as_ref(),
                num(f.refresh_rate_per_ip),
            ),
            300,
            count::<u32>,
        )?;
        let refresh_rate_per_family = setting(
            "refresh-rate-per-family",
            layers.pick(
                args.refresh_rate_per_family.as_ref(),
                num(f.refresh_rate_per_family),
            ),
            10,
            count::<u32>,
        )?;
        let tls_cert = setting(
            "tls-cert",
            layers.pick_path(args.tls_cert.as_ref(), f.tls_cert.as_ref()),
            None,
            optional_path_value,
        )?;
        let tls_key = setting(
            "tls-key",
            layers.pick_path(args.tls_key.as_ref(), f.tls_key.as_ref()),
            None,
            optional_path_value,
        )?;
        let resume_buffer_updates = setting(
            "resume-buffer-updates",
            layers.pick(
                args.resume_buffer_updates.as_ref(),
                num(f.resume_buffer_updates),
            ),
            200_000,
            count::<usize>,
        )?;
        let tls = match (tls_cert, tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::Inconsistent(
                    "--tls-cert needs --tls-key (the certificate's private key, PEM)".to_owned(),
                ))
            }
            (None, Some(_)) => {
                return Err(ConfigError::Inconsistent(
                    "--tls-key needs --tls-cert (the certificate chain, PEM)".to_owned(),
                ))
            }
        };

        if refresh_token_ttl <= access_token_ttl {
            return Err(ConfigError::Inconsistent(format!(
                "--refresh-token-ttl ({}) must be longer than --access-token-ttl ({})",
                format_duration(refresh_token_ttl),
                format_duration(access_token_ttl),
            )));
        }
        if demo && !listen.ip().is_loopback() {
            return Err(ConfigError::Inconsistent(
                crate::demo_store::DemoRefusal::NotLoopback(listen).to_string(),
            ));
        }
        check_jwt_keys(
            jwt_algorithm,
            jwt_public_key_file.is_some(),
            jwt_private_key_file.is_some(),
        )?;

        Ok(Settings {
            listen,
            data_dir,
            store,
            jwt_secret_file,
            jwt_issuer,
            jwt_audience,
            jwt_algorithm,
            jwt_public_key_file,
            jwt_private_key_file,
            jwt_leeway,
            access_token_ttl,
            refresh_token_ttl,
            login_failures_per_ip,
            login_failures_per_user,
            login_window,
            max_connections_per_user,
            connect_attempts_per_ip,
            connect_window,
            message_rate,
            message_burst,
            max_frame_bytes,
            heartbeat_interval,
            heartbeat_missed,
            outbound_queue_messages,
            outbound_queue_bytes,
            max_connections,
            allowed_origins,
            claim_lease,
            max_bad_messages,
            snapshot_every,
            snapshot_interval,
            demo,
            log,
            log_format,
            shutdown_timeout,
            max_body_bytes,
            trusted_proxies,
            login_failures_per_user_global,
            refresh_rate_per_ip,
            refresh_rate_per_family,
            tls,
            resume_buffer_updates,
            config_file: args.config.clone(),
        })
    }
}

impl Settings {
    /// Whether `--jwt-secret-file` is the default `<data-dir>/jwt-secret`, which the server
    /// creates on first start (a file named by the flag must exist).
    pub fn jwt_secret_file_is_default(&self) -> bool {
        self.jwt_secret_file == self.data_dir.join("jwt-secret")
    }
}

/// An asymmetric algorithm needs a public key to verify with; HS256 takes no key file, so that a
/// forgotten `--jwt-algorithm` does not leave the server on HS256 while the operator believes it
/// uses the keys given.
fn check_jwt_keys(
    algorithm: JwtAlgorithm,
    public_key: bool,
    private_key: bool,
) -> Result<(), ConfigError> {
    if algorithm.is_asymmetric() && !public_key {
        return Err(ConfigError::Inconsistent(format!(
            "--jwt-algorithm {algorithm} needs --jwt-public-key-file (a PEM public key)"
        )));
    }
    if !algorithm.is_asymmetric() {
        for (given, flag) in [
            (public_key, "--jwt-public-key-file"),
            (private_key, "--jwt-private-key-file"),
        ] {
            if given {
                return Err(ConfigError::Inconsistent(format!(
                    "{flag} is only used with --jwt-algorithm RS256 or EdDSA, \
                     but the algorithm is {algorithm} (which signs with --jwt-secret-file)"
                )));
            }
        }
    }
    Ok(())
}

/// One line of `key=value` pairs for the start-up log. Holds no secret: the store URL's
/// password is masked and the signing keys appear only as their files' paths.
impl fmt::Display for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = |d: Duration| format_duration(d);
        let origins = &self.allowed_origins;
        let config = match &self.config_file {
            None => "none".to_owned(),
            Some(path) => path.display().to_string(),
        };
        let key_file = |file: &Option<PathBuf>| match file {
            None => "none".to_owned(),
            Some(path) => path.display().to_string(),
        };
        write!(
            f,
            "config={config} listen={} data_dir={} store={} jwt_secret_file={} jwt_issuer={} \
             jwt_audience={} jwt_algorithm={} jwt_public_key_file={} jwt_private_key_file={} \
             jwt_leeway={} access_token_ttl={} refresh_token_ttl={} login_failures_per_ip={} \
             login_failures_per_user={} login_window={} max_connections_per_user={} connect_attempts_per_ip={} connect_window={} \
             message_rate={} message_burst={} max_frame_bytes={} heartbeat_interval={} \
             heartbeat_missed={} outbound_queue_messages={} outbound_queue_bytes={} \
             max_connections={} allowed_origins={origins} claim_lease={} max_bad_messages={} snapshot_every={} \
             snapshot_interval={} demo={} log={} \
             shutdown_timeout={} max_body_bytes={} trusted_proxies={} \
             login_failures_per_user_global={} refresh_rate_per_ip={} refresh_rate_per_family={} \
             tls_cert={} tls_key={} resume_buffer_updates={}",
            self.listen,
            self.data_dir.display(),
            self.store,
            self.jwt_secret_file.display(),
            self.jwt_issuer,
            self.jwt_audience,
            self.jwt_algorithm,
            key_file(&self.jwt_public_key_file),
            key_file(&self.jwt_private_key_file),
            d(self.jwt_leeway),
            d(self.access_token_ttl),
            d(self.refresh_token_ttl),
            self.login_failures_per_ip,
            self.login_failures_per_user,
            d(self.login_window),
            self.max_connections_per_user,
            self.connect_attempts_per_ip,
            d(self.connect_window),
            self.message_rate,
            self.message_burst,
            self.max_frame_bytes,
            d(self.heartbeat_interval),
            self.heartbeat_missed,
            self.outbound_queue_messages,
            self.outbound_queue_bytes,
            self.max_connections,
            d(self.claim_lease),
            self.max_bad_messages,
            self.snapshot_every,
            d(self.snapshot_interval),
            self.demo,
            self.log,
            d(self.shutdown_timeout),
            self.max_body_bytes,
            self.trusted_proxies,
            self.login_failures_per_user_global,
            self.refresh_rate_per_ip,
            self.refresh_rate_per_family,
            key_file(&self.tls.as_ref().map(|t| t.cert.clone())),
            key_file(&self.tls.as_ref().map(|t| t.key.clone())),
            self.resume_buffer_updates,
        )
    }
}

#[cfg(test)]
mod tests;
