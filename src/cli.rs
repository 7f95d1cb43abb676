//! The command line: `adjudicator serve` with every setting as a flag and an environment
//! variable, and `adjudicator bench append` for the event-store write benchmark.
//!
//! `serve` takes its settings as raw, optional values: "not given" must stay distinguishable
//! from any value so that [`crate::config::Settings::resolve`] can fall back to the TOML file
//! and then to the defaults, and so that every bad value, wherever it came from, is reported the
//! same way, naming its flag.

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{BoolishValueParser, RangedU64ValueParser};
use clap::{Args, Parser, Subcommand};

use crate::config::duration::parse_duration;

/// Event-sourced human adjudication of machine-made mens rea assessments.
#[derive(Debug, Parser)]
#[command(name = "adjudicator", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once at start; boxing would only complicate matching"
)]
pub enum Command {
    /// Run the adjudication server (HTTP API, WebSockets, projections).
    Serve(ServeArgs),
    /// Measure the event store.
    Bench(BenchArgs),
    /// Rebuild every read model from position 0 and check it against the live models.
    Replay(crate::ops::args::ReplayArgs),
    /// Verify hash chains or export the history.
    Audit(crate::ops::args::AuditArgs),
    /// Add or list users without a running server.
    User(crate::ops::args::UserArgs),
    /// Move a whole store (`store copy --from … --to …`).
    Store(crate::ops::args::StoreCommandArgs),
}

/// Flags of `adjudicator serve`. Each is also read from `ADJUDICATOR_<FLAG_IN_UPPER_SNAKE>`;
/// a flag wins over its variable. Values are checked by `Settings::resolve`, not here.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML file with settings; keys are the flag names with `_` for `-`. Flags and environment
    /// variables override it.
    #[arg(long, env = "ADJUDICATOR_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "ADJUDICATOR_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,

    /// Directory for the embedded store, the signing secret and the admin password
    /// [default: ./data].
    #[arg(long, env = "ADJUDICATOR_DATA_DIR", value_name = "PATH")]
    pub data_dir: Option<PathBuf>,

    /// Event store: `sqlite` (a file in the data directory), `postgres://…` or `esdb://…`
    /// [default: sqlite].
    #[arg(
        long,
        env = "ADJUDICATOR_STORE",
        value_name = "URL",
        hide_env_values = true
    )]
    pub store: Option<String>,

    /// File whose whole content is the HS256 signing key; created on first start
    /// [default: <data-dir>/jwt-secret].
    #[arg(long, env = "ADJUDICATOR_JWT_SECRET_FILE", value_name = "PATH")]
    pub jwt_secret_file: Option<PathBuf>,

    /// `iss` of issued tokens, required of presented ones [default: adjudicator].
    #[arg(long, env = "ADJUDICATOR_JWT_ISSUER", value_name = "TEXT")]
    pub jwt_issuer: Option<String>,

    /// `aud` of issued tokens, required of presented ones [default: adjudicator].
    #[arg(long, env = "ADJUDICATOR_JWT_AUDIENCE", value_name = "TEXT")]
    pub jwt_audience: Option<String>,

    /// The only algorithm tokens may be signed with: `HS256` (key: the secret file), `RS256` or
    /// `EdDSA` (keys: PEM files) [default: HS256].
    #[arg(long, env = "ADJUDICATOR_JWT_ALGORITHM", value_name = "ALG")]
    pub jwt_algorithm: Option<String>,

    /// PEM public key that verifies tokens; required for RS256 and EdDSA.
    #[arg(long, env = "ADJUDICATOR_JWT_PUBLIC_KEY_FILE", value_name = "PATH")]
    pub jwt_public_key_file: Option<PathBuf>,

    /// PEM private key that signs tokens, for RS256 and EdDSA; without it this node verifies
    /// tokens but cannot issue them (login and refresh fail).
    #[arg(long, env = "ADJUDICATOR_JWT_PRIVATE_KEY_FILE", value_name = "PATH")]
    pub jwt_private_key_file: Option<PathBuf>,

    /// Clock skew allowed when checking a token's `exp` and `nbf` [default: 0s].
    #[arg(long, env = "ADJUDICATOR_JWT_LEEWAY", value_name = "DURATION")]
    pub jwt_leeway: Option<String>,

    /// Lifetime of access tokens [default: 15m].
    #[arg(long, env = "ADJUDICATOR_ACCESS_TOKEN_TTL", value_name = "DURATION")]
    pub access_token_ttl: Option<String>,

    /// Lifetime of refresh tokens; must exceed the access token's [default: 7d].
    #[arg(long, env = "ADJUDICATOR_REFRESH_TOKEN_TTL", value_name = "DURATION")]
    pub refresh_token_ttl: Option<String>,

    /// Failed logins allowed per client IP within the login window; more answer 429
    /// [default: 20].
    #[arg(long, env = "ADJUDICATOR_LOGIN_FAILURES_PER_IP", value_name = "N")]
    pub login_failures_per_ip: Option<String>,

    /// Failed logins allowed per username and client IP together within the login window; more
    /// answer 429 [default: 5].
    #[arg(long, env = "ADJUDICATOR_LOGIN_FAILURES_PER_USER", value_name = "N")]
    pub login_failures_per_user: Option<String>,

    /// Sliding window for failed logins [default: 15m].
    #[arg(long, env = "ADJUDICATOR_LOGIN_WINDOW", value_name = "DURATION")]
    pub login_window: Option<String>,

    /// Open WebSocket sessions allowed per user [default: 5].
    #[arg(long, env = "ADJUDICATOR_MAX_CONNECTIONS_PER_USER", value_name = "N")]
    pub max_connections_per_user: Option<String>,

    /// WebSocket connect attempts allowed per IP within the connect window [default: 20].
    #[arg(long, env = "ADJUDICATOR_CONNECT_ATTEMPTS_PER_IP", value_name = "N")]
    pub connect_attempts_per_ip: Option<String>,

    /// Sliding window for connect attempts [default: 60s].
    #[arg(long, env = "ADJUDICATOR_CONNECT_WINDOW", value_name = "DURATION")]
    pub connect_window: Option<String>,

    /// Inbound messages per second allowed per connection [default: 20].
    #[arg(long, env = "ADJUDICATOR_MESSAGE_RATE", value_name = "N")]
    pub message_rate: Option<String>,

    /// Inbound messages a connection may send at once above the rate [default: 40].
    #[arg(long, env = "ADJUDICATOR_MESSAGE_BURST", value_name = "N")]
    pub message_burst: Option<String>,

    /// Largest inbound WebSocket frame [default: 65536].
    #[arg(long, env = "ADJUDICATOR_MAX_FRAME_BYTES", value_name = "BYTES")]
    pub max_frame_bytes: Option<String>,

    /// Interval of server pings [default: 30s].
    #[arg(long, env = "ADJUDICATOR_HEARTBEAT_INTERVAL", value_name = "DURATION")]
    pub heartbeat_interval: Option<String>,

    /// Silent heartbeat intervals after which a session is closed [default: 3].
    #[arg(long, env = "ADJUDICATOR_HEARTBEAT_MISSED", value_name = "N")]
    pub heartbeat_missed: Option<String>,

    /// Pushes queued per session before it is closed as a slow consumer [default: 1024].
    #[arg(long, env = "ADJUDICATOR_OUTBOUND_QUEUE_MESSAGES", value_name = "N")]
    pub outbound_queue_messages: Option<String>,

    /// Bytes queued per session before it is closed as a slow consumer [default: 4194304].
    #[arg(long, env = "ADJUDICATOR_OUTBOUND_QUEUE_BYTES", value_name = "BYTES")]
    pub outbound_queue_bytes: Option<String>,

    /// Open WebSocket sessions allowed on this node [default: 100000].
    #[arg(long, env = "ADJUDICATOR_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<String>,

    /// Origins allowed to open WebSockets from a browser: a comma-separated list like
    /// `https://review.example.org`, or `*` for any [default: the server's own origin].
    #[arg(long, env = "ADJUDICATOR_ALLOWED_ORIGINS", value_name = "LIST")]
    pub allowed_origins: Option<String>,

    /// How long a claim holds before the case returns to the queue [default: 15m].
    #[arg(long, env = "ADJUDICATOR_CLAIM_LEASE", value_name = "DURATION")]
    pub claim_lease: Option<String>,

    /// Malformed WebSocket messages in a row before the session is closed 4400 [default: 10].
    #[arg(long, env = "ADJUDICATOR_MAX_BAD_MESSAGES", value_name = "N")]
    pub max_bad_messages: Option<String>,

    /// Save the read models after this many events [default: 50000].
    #[arg(long, env = "ADJUDICATOR_SNAPSHOT_EVERY", value_name = "N")]
    pub snapshot_every: Option<String>,

    /// Save the read models at least this often, if anything changed [default: 30s].
    #[arg(long, env = "ADJUDICATOR_SNAPSHOT_INTERVAL", value_name = "DURATION")]
    pub snapshot_interval: Option<String>,

    /// Add demo users and sample cases on start. `--demo` alone means true; the variable takes
    /// true/false/1/0 [default: false].
    #[arg(
        long,
        env = "ADJUDICATOR_DEMO",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = BoolishValueParser::new(),
    )]
    pub demo: Option<bool>,

    /// Log filter, `tracing` env-filter syntax, e.g. `info,adjudicator=debug` [default: info].
    #[arg(long, env = "ADJUDICATOR_LOG", value_name = "FILTER")]
    pub log: Option<String>,

    /// Log line format: `text` or `json` (one JSON object per line) [default: text when stderr
    /// is a terminal, json otherwise].
    #[arg(long, env = "ADJUDICATOR_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,

    /// How long shutdown waits for sessions and requests to drain [default: 30s].
    #[arg(long, env = "ADJUDICATOR_SHUTDOWN_TIMEOUT", value_name = "DURATION")]
    pub shutdown_timeout: Option<String>,

    /// Largest HTTP request body [default: 65536].
    #[arg(long, env = "ADJUDICATOR_MAX_BODY_BYTES", value_name = "BYTES")]
    pub max_body_bytes: Option<String>,

    /// Comma-separated CIDRs of reverse proxies whose `X-Forwarded-For` is believed: for their
    /// requests the client is the right-most address that is not a trusted proxy
    /// [default: none, the header is never believed].
    #[arg(long, env = "ADJUDICATOR_TRUSTED_PROXIES", value_name = "LIST")]
    pub trusted_proxies: Option<String>,

    /// Failed logins allowed per username within the login window from all the addresses the
    /// user has not logged in from lately, together; more answer 429 [default: 100].
    #[arg(
        long,
        env = "ADJUDICATOR_LOGIN_FAILURES_PER_USER_GLOBAL",
        value_name = "N"
    )]
    pub login_failures_per_user_global: Option<String>,

    /// Refresh attempts allowed per client IP per minute; more answer 429 [default: 300].
    #[arg(long, env = "ADJUDICATOR_REFRESH_RATE_PER_IP", value_name = "N")]
    pub refresh_rate_per_ip: Option<String>,

    /// Refresh attempts allowed per login (refresh family) per minute; more answer 429
    /// [default: 10].
    #[arg(long, env = "ADJUDICATOR_REFRESH_RATE_PER_FAMILY", value_name = "N")]
    pub refresh_rate_per_family: Option<String>,
    /// PEM certificate chain (leaf first): with --tls-key, serve HTTPS and wss:// instead of
    /// plain HTTP; reloaded with the key on SIGHUP.
    #[arg(long, env = "ADJUDICATOR_TLS_CERT", value_name = "PATH")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert (mode 0600); reloaded on SIGHUP.
    #[arg(long, env = "ADJUDICATOR_TLS_KEY", value_name = "PATH")]
    pub tls_key: Option<PathBuf>,

    /// Recent pushes kept in memory for WebSocket resumes with `since`; an older `since` is
    /// served from the event log [default: 200000].
    #[arg(long, env = "ADJUDICATOR_RESUME_BUFFER_UPDATES", value_name = "N")]
    pub resume_buffer_updates: Option<String>,
}

/// Flags of `adjudicator bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Which benchmark.
    #[command(subcommand)]
    pub command: BenchCommand,
}

/// The benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Append events from concurrent writers and report throughput and latency.
    Append(BenchAppendArgs),
    /// Append realistic case histories, e.g. a million events for the replay benchmark.
    Generate(crate::ops::args::GenerateArgs),
}

/// Flags of `adjudicator bench append`.
#[derive(Debug, Clone, Args)]
pub struct BenchAppendArgs {
    /// Data directory of the store under test [default: a fresh temporary directory].
    #[arg(long, value_name = "PATH")]
    pub data_dir: Option<PathBuf>,

    /// Measure this store instead of a fresh SQLite one: `postgres://…` (use a scratch
    /// database; the benchmark's events stay in it).
    #[arg(long, value_name = "URL", hide_env_values = true)]
    pub store: Option<String>,

    /// Comma-separated numbers of concurrent writers; one run for each.
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "1,8,64",
        value_parser = RangedU64ValueParser::<usize>::new().range(1..),
    )]
    pub writers: Vec<usize>,

    /// How long each run lasts.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_positive_duration)]
    pub duration: Duration,

    /// Size of each event's payload.
    #[arg(long, value_name = "BYTES", default_value_t = 256)]
    pub payload_bytes: usize,
}

/// A duration for a flag that makes no sense at zero.
fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    match parse_duration(s) {
        Ok(d) if d.is_zero() => Err("must be greater than zero".to_owned()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::{Mutex, MutexGuard};

    use clap::CommandFactory;

    use super::*;

    /// Serializes the tests that parse a command line: clap reads the `ADJUDICATOR_*`
    /// variables on every parse, and one test sets one of them.
    static ENV_LOCK: Mutex<()> = Mutex::new(());

    pub(crate) fn env_lock() -> MutexGuard<'static, ()> {
        ENV_LOCK
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Parses `adjudicator serve <args>` under the environment lock.
    pub(crate) fn serve_args(args: &[&str]) -> ServeArgs {
        let _guard = env_lock();
        parse_serve(args).expect("command line should parse")
    }

    fn parse_serve(args: &[&str]) -> Result<ServeArgs, clap::Error> {
        let argv = ["adjudicator", "serve"].iter().chain(args);
        match Cli::try_parse_from(argv)?.command {
            Command::Serve(serve) => Ok(serve),
            other => panic!("expected serve, got {other:?}"),
        }
    }

    fn bench_append(args: &[&str]) -> Result<BenchAppendArgs, clap::Error> {
        let argv = ["adjudicator", "bench", "append"].iter().chain(args);
        let _guard = env_lock();
        match Cli::try_parse_from(argv)?.command {
            Command::Bench(BenchArgs {
                command: BenchCommand::Append(append),
            }) => Ok(append),
            other => panic!("expected bench append, got {other:?}"),
        }
    }

    #[test]
    fn command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn help_lists_subcommands() {
        let help = Cli::command().render_help().to_string();
        assert!(help.contains("serve"), "{help}");
        assert!(help.contains("bench"), "{help}");
    }

    #[test]
    fn serve_help_names_every_flag_and_variable() {
        let mut cmd = Cli::command();
        let serve = cmd.find_subcommand_mut("serve").expect("serve subcommand");
        let help = serve.render_long_help().to_string();
        for flag in crate::config::FLAGS {
            assert!(help.contains(&format!("--{flag}")), "--{flag} in {help}");
            let var = format!("ADJUDICATOR_{}", flag.replace('-', "_").to_uppercase());
            assert!(help.contains(&var), "{var} in {help}");
        }
    }

    #[test]
    fn serve_without_flags_gives_nothing() {
        let args = serve_args(&[]);
        assert!(args.listen.is_none());
        assert!(args.config.is_none());
        assert!(args.demo.is_none());
        assert!(args.log.is_none());
    }

    #[test]
    fn serve_flags_are_kept_raw() {
        let args = serve_args(&[
            "--listen",
            "0.0.0.0:9000",
            "--heartbeat-interval",
            "abc",
            "--data-dir",
            "/var/lib/adj",
        ]);
        assert_eq!(args.listen.as_deref(), Some("0.0.0.0:9000"));
        assert_eq!(args.heartbeat_interval.as_deref(), Some("abc"));
        assert_eq!(args.data_dir, Some(PathBuf::from("/var/lib/adj")));
    }

    #[test]
    fn demo_flag_forms() {
        assert_eq!(serve_args(&["--demo"]).demo, Some(true));
        assert_eq!(serve_args(&["--demo=false"]).demo, Some(false));
        assert_eq!(serve_args(&["--demo=1"]).demo, Some(true));
        assert_eq!(serve_args(&["--demo=0"]).demo, Some(false));
        let _guard = env_lock();
        let err = parse_serve(&["--demo=maybe"]).expect_err("not a boolean");
        assert!(err.to_string().contains("--demo"), "{err}");
    }

    #[test]
    fn environment_variables_feed_flags_and_flags_win() {
        let _guard = env_lock();
        std::env::set_var("ADJUDICATOR_HEARTBEAT_INTERVAL", "45s");
        std::env::set_var("ADJUDICATOR_DEMO", "1");
        std::env::set_var("ADJUDICATOR_LISTEN", "0.0.0.0:1");
        let from_env = parse_serve(&[]);
        let from_flag = parse_serve(&["--listen", "127.0.0.1:2"]);
        std::env::set_var("ADJUDICATOR_DEMO", "0");
        let demo_off = parse_serve(&[]);
        std::env::remove_var("ADJUDICATOR_HEARTBEAT_INTERVAL");
        std::env::remove_var("ADJUDICATOR_DEMO");
        std::env::remove_var("ADJUDICATOR_LISTEN");

        let from_env = from_env.expect("parses");
        assert_eq!(from_env.heartbeat_interval.as_deref(), Some("45s"));
        assert_eq!(from_env.demo, Some(true));
        assert_eq!(from_env.listen.as_deref(), Some("0.0.0.0:1"));
        let from_flag = from_flag.expect("parses");
        assert_eq!(from_flag.listen.as_deref(), Some("127.0.0.1:2"));
        assert_eq!(demo_off.expect("parses").demo, Some(false));
    }

    #[test]
    fn bench_append_defaults() {
        let args = bench_append(&[]).expect("parses");
        assert_eq!(args.data_dir, None);
        assert_eq!(args.writers, vec![1, 8, 64]);
        assert_eq!(args.duration, Duration::from_secs(5));
        assert_eq!(args.payload_bytes, 256);
    }

    #[test]
    fn bench_append_flags() {
        let args = bench_append(&[
            "--data-dir",
            "/tmp/x",
            "--writers",
            "2,4",
            "--duration",
            "1m30s",
            "--payload-bytes",
            "1024",
        ])
        .expect("parses");
        assert_eq!(args.data_dir, Some(PathBuf::from("/tmp/x")));
        assert_eq!(args.writers, vec![2, 4]);
        assert_eq!(args.duration, Duration::from_secs(90));
        assert_eq!(args.payload_bytes, 1024);
    }

    #[test]
    fn bench_append_bad_values_name_the_flag() {
        for (flag, value) in [
            ("--writers", "1,x"),
            ("--writers", "0"),
            ("--duration", "5"),
            ("--duration", "0s"),
            ("--payload-bytes", "-1"),
        ] {
            let arg = format!("{flag}={value}");
            let err = bench_append(&[&arg]).expect_err("bad value");
            assert!(err.to_string().contains(flag), "{flag} {value}: {err}");
        }
    }
}
