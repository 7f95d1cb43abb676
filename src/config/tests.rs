//! Tests of [`Settings::resolve`]: defaults, precedence of flag, environment and file, and the
//! messages of bad values.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::cli::tests::serve_args;

fn resolve(args: &[&str]) -> Result<Settings, ConfigError> {
    Settings::resolve(&serve_args(args))
}

/// Writes `content` to a TOML file in a fresh temporary directory.
fn toml_file(content: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("adjudicator.toml");
    std::fs::write(&path, content).expect("write config");
    (dir, path)
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

fn error_of(args: &[&str]) -> String {
    resolve(args).expect_err("should be rejected").to_string()
}

#[test]
fn defaults_follow_the_design() {
    let s = resolve(&[]).expect("defaults are valid");
    assert_eq!(s.listen, "127.0.0.1:8080".parse().expect("addr"));
    assert_eq!(s.data_dir, PathBuf::from("./data"));
    assert_eq!(s.store, StoreUrl::Sqlite);
    assert_eq!(s.jwt_secret_file, PathBuf::from("./data/jwt-secret"));
    assert_eq!(s.jwt_issuer, "adjudicator");
    assert_eq!(s.jwt_audience, "adjudicator");
    assert_eq!(s.jwt_algorithm, JwtAlgorithm::Hs256);
    assert_eq!(s.jwt_public_key_file, None);
    assert_eq!(s.jwt_private_key_file, None);
    assert_eq!(s.jwt_leeway, Duration::ZERO);
    assert_eq!(s.access_token_ttl, Duration::from_secs(15 * 60));
    assert_eq!(s.refresh_token_ttl, Duration::from_secs(7 * 24 * 3600));
    assert_eq!(s.login_failures_per_ip, 20);
    assert_eq!(s.login_failures_per_user, 5);
    assert_eq!(s.login_window, Duration::from_secs(15 * 60));
    assert_eq!(s.max_connections_per_user, 5);
    assert_eq!(s.connect_attempts_per_ip, 20);
    assert_eq!(s.connect_window, Duration::from_secs(60));
    assert_eq!(s.message_rate, 20);
    assert_eq!(s.message_burst, 40);
    assert_eq!(s.max_frame_bytes, 65_536);
    assert_eq!(s.heartbeat_interval, Duration::from_secs(30));
    assert_eq!(s.heartbeat_missed, 3);
    assert_eq!(s.outbound_queue_messages, 1024);
    assert_eq!(s.outbound_queue_bytes, 4_194_304);
    assert_eq!(s.max_connections, 100_000);
    assert_eq!(s.allowed_origins, AllowedOrigins::SameOrigin);
    assert_eq!(s.claim_lease, Duration::from_secs(15 * 60));
    assert!(!s.demo);
    assert_eq!(s.log, "info");
    assert_eq!(
        s.log_format, None,
        "decided at start by whether stderr is a terminal"
    );
    assert_eq!(s.shutdown_timeout, Duration::from_secs(30));
    assert_eq!(s.max_body_bytes, 65_536);
    assert_eq!(s.config_file, None);
}

#[test]
fn flags_set_every_setting() {
    let s = resolve(&[
        "--listen=[::1]:9000",
        "--data-dir=/srv/adj",
        "--store=postgres://adj:pw@db/adj",
        "--jwt-secret-file=/run/secrets/jwt",
        "--jwt-issuer=iss",
        "--jwt-audience=aud",
        "--jwt-algorithm=EdDSA",
        "--jwt-public-key-file=/run/keys/jwt.pub.pem",
        "--jwt-private-key-file=/run/keys/jwt.pem",
        "--jwt-leeway=5s",
        "--access-token-ttl=5m",
        "--refresh-token-ttl=1d",
        "--login-failures-per-ip=7",
        "--login-failures-per-user=2",
        "--login-window=1h",
        "--max-connections-per-user=2",
        "--connect-attempts-per-ip=3",
        "--connect-window=10s",
        "--message-rate=4",
        "--message-burst=4",
        "--max-frame-bytes=1000",
        "--heartbeat-interval=500ms",
        "--heartbeat-missed=2",
        "--outbound-queue-messages=10",
        "--outbound-queue-bytes=2000",
        "--max-connections=50",
        "--allowed-origins= https://A.example , http://b.example:8080",
        "--claim-lease=1h30m",
        "--demo",
        "--log=info,adjudicator=debug",
        "--log-format=json",
        "--shutdown-timeout=0s",
        "--max-body-bytes=100",
    ])
    .expect("valid flags");
    assert_eq!(s.listen, "[::1]:9000".parse().expect("addr"));
    assert_eq!(s.data_dir, PathBuf::from("/srv/adj"));
    assert_eq!(
        s.store,
        StoreUrl::Postgres("postgres://adj:pw@db/adj".into())
    );
    assert_eq!(s.jwt_secret_file, PathBuf::from("/run/secrets/jwt"));
    assert_eq!(
        (s.jwt_issuer.as_str(), s.jwt_audience.as_str()),
        ("iss", "aud")
    );
    assert_eq!(s.jwt_algorithm, JwtAlgorithm::EdDsa);
    assert_eq!(
        s.jwt_public_key_file,
        Some(PathBuf::from("/run/keys/jwt.pub.pem"))
    );
    assert_eq!(
        s.jwt_private_key_file,
        Some(PathBuf::from("/run/keys/jwt.pem"))
    );
    assert_eq!(s.jwt_leeway, Duration::from_secs(5));
    assert_eq!(s.access_token_ttl, Duration::from_secs(300));
    assert_eq!(s.refresh_token_ttl, Duration::from_secs(86_400));
    assert_eq!((s.login_failures_per_ip, s.login_failures_per_user), (7, 2));
    assert_eq!(s.login_window, Duration::from_secs(3600));
    assert_eq!(s.max_connections_per_user, 2);
    assert_eq!(s.connect_attempts_per_ip, 3);
    assert_eq!(s.connect_window, Duration::from_secs(10));
    assert_eq!((s.message_rate, s.message_burst), (4, 4));
    assert_eq!(s.max_frame_bytes, 1000);
    assert_eq!(s.heartbeat_interval, Duration::from_millis(500));
    assert_eq!(s.heartbeat_missed, 2);
    assert_eq!(s.outbound_queue_messages, 10);
    assert_eq!(s.outbound_queue_bytes, 2000);
    assert_eq!(s.max_connections, 50);
    assert_eq!(
        s.allowed_origins,
        AllowedOrigins::List(vec![
            "https://a.example".to_owned(),
            "http://b.example:8080".to_owned()
        ])
    );
    assert_eq!(s.claim_lease, Duration::from_secs(5400));
    assert!(s.demo);
    assert_eq!(s.log, "info,adjudicator=debug");
    assert_eq!(s.log_format, Some(crate::logging::LogFormat::Json));
    assert_eq!(s.shutdown_timeout, Duration::ZERO);
    assert_eq!(s.max_body_bytes, 100);
}

#[test]
fn secret_file_follows_data_dir() {
    let s = resolve(&["--data-dir", "/srv/adj"]).expect("valid");
    assert_eq!(s.jwt_secret_file, PathBuf::from("/srv/adj/jwt-secret"));
}

#[test]
fn file_overrides_defaults_and_flags_override_file() {
    let (_dir, path) = toml_file(
        r#"
        listen = "0.0.0.0:7000"
        data_dir = "/from/file"
        heartbeat_interval = "10s"
        max_connections_per_user = 9
        allowed_origins = ["https://file.example"]
        demo = true
        log = "warn"
        log_format = "text"
        "#,
    );
    let s = resolve(&[
        "--config",
        path_str(&path),
        "--heartbeat-interval",
        "20s",
        "--demo=false",
    ])
    .expect("valid");
    assert_eq!(s.listen, "0.0.0.0:7000".parse().expect("addr"));
    assert_eq!(s.data_dir, PathBuf::from("/from/file"));
    assert_eq!(s.jwt_secret_file, PathBuf::from("/from/file/jwt-secret"));
    assert_eq!(s.heartbeat_interval, Duration::from_secs(20));
    assert_eq!(s.max_connections_per_user, 9);
    assert_eq!(
        s.allowed_origins,
        AllowedOrigins::List(vec!["https://file.example".to_owned()])
    );
    assert!(!s.demo);
    assert_eq!(s.log, "warn");
    assert_eq!(s.log_format, Some(crate::logging::LogFormat::Text));
    assert_eq!(s.message_rate, 20, "untouched settings keep their default");
    assert_eq!(s.config_file, Some(path));
}

#[test]
fn environment_variable_feeds_a_setting() {
    let _guard = crate::cli::tests::env_lock();
    std::env::set_var("ADJUDICATOR_MAX_CONNECTIONS", "77");
    let parsed = <crate::cli::Cli as clap::Parser>::try_parse_from(["adjudicator", "serve"]);
    std::env::remove_var("ADJUDICATOR_MAX_CONNECTIONS");
    let crate::cli::Command::Serve(args) = parsed.expect("parses").command else {
        panic!("expected serve");
    };
    let s = Settings::resolve(&args).expect("valid");
    assert_eq!(s.max_connections, 77);
}

#[test]
fn bad_values_name_their_flag() {
    let cases: &[(&str, &str)] = &[
        ("listen", "localhost"),
        ("data-dir", " "),
        ("store", "mysql://db"),
        ("store", "postgres://"),
        ("jwt-secret-file", " "),
        ("jwt-issuer", ""),
        ("jwt-audience", "  "),
        ("jwt-algorithm", "none"),
        ("jwt-algorithm", "HS384"),
        ("jwt-public-key-file", "  "),
        ("jwt-private-key-file", " "),
        ("jwt-leeway", "5"),
        ("jwt-leeway", "5m1s"),
        ("access-token-ttl", "15"),
        ("refresh-token-ttl", "0s"),
        ("login-failures-per-ip", "0"),
        ("login-failures-per-user", "many"),
        ("login-window", "0s"),
        ("max-connections-per-user", "0"),
        ("connect-attempts-per-ip", "-1"),
        ("connect-window", "0ms"),
        ("message-rate", "fast"),
        ("message-burst", "0"),
        ("max-frame-bytes", "64k"),
        ("heartbeat-interval", "abc"),
        ("heartbeat-missed", "4294967296"),
        ("outbound-queue-messages", "0"),
        ("outbound-queue-bytes", "1.5"),
        ("max-connections", ""),
        ("allowed-origins", "https://a.example,,https://b.example"),
        ("allowed-origins", "https://a.example/"),
        ("allowed-origins", "a.example"),
        ("allowed-origins", "*,https://a.example"),
        ("claim-lease", "30m1h"),
        ("log", "info,[=bad"),
        ("log-format", "xml"),
        ("shutdown-timeout", "soon"),
        ("max-body-bytes", "0"),
    ];
    for (flag, value) in cases {
        let arg = format!("--{flag}={value}");
        let shown = error_of(&[&arg]);
        assert!(
            shown.starts_with(&format!("invalid value for --{flag}: {value:?} (expected ")),
            "{arg}: {shown}"
        );
    }
}

#[test]
fn bad_duration_message_is_exact() {
    assert_eq!(
        error_of(&["--heartbeat-interval", "abc"]),
        r#"invalid value for --heartbeat-interval: "abc" (expected a duration like 30s, 15m, 7d)"#
    );
    assert_eq!(
        error_of(&["--heartbeat-interval", "0s"]),
        r#"invalid value for --heartbeat-interval: "0s" (expected a duration greater than zero, like 30s, 15m, 7d)"#
    );
}

#[test]
fn demo_is_refused_beyond_loopback() {
    assert!(
        resolve(&["--demo", "--listen", "127.0.0.1:0"])
            .expect("loopback")
            .demo
    );
    assert!(
        resolve(&["--demo", "--listen", "[::1]:0"])
            .expect("loopback")
            .demo
    );
    for listen in ["0.0.0.0:8080", "[::]:8080", "192.0.2.7:8080"] {
        let shown = error_of(&["--demo", "--listen", listen]);
        assert!(
            shown.starts_with(&format!("--demo is refused on --listen {}", listen)),
            "{shown}"
        );
    }
    assert!(
        !resolve(&["--listen", "0.0.0.0:8080"])
            .expect("no demo")
            .demo
    );
}

#[test]
fn tls_takes_a_certificate_and_its_key_together() {
    let s = resolve(&[
        "--tls-cert",
        "/etc/adj/cert.pem",
        "--tls-key",
        "/etc/adj/key.pem",
    ])
    .expect("both");
    assert_eq!(
        s.tls,
        Some(TlsFiles {
            cert: PathBuf::from("/etc/adj/cert.pem"),
            key: PathBuf::from("/etc/adj/key.pem"),
        })
    );
    assert!(s
        .to_string()
        .contains("tls_cert=/etc/adj/cert.pem tls_key=/etc/adj/key.pem"));
    assert_eq!(resolve(&[]).expect("neither").tls, None);
    assert_eq!(
        error_of(&["--tls-cert", "/c.pem"]),
        "--tls-cert needs --tls-key (the certificate's private key, PEM)"
    );
    assert_eq!(
        error_of(&["--tls-key", "/k.pem"]),
        "--tls-key needs --tls-cert (the certificate chain, PEM)"
    );
    let (_dir, path) = toml_file("tls_cert = \"/f/cert.pem\"\ntls_key = \"/f/key.pem\"\n");
    let s = resolve(&["--config", path_str(&path)]).expect("from the file");
    assert_eq!(s.tls.map(|t| t.key), Some(PathBuf::from("/f/key.pem")));
}

#[test]
fn jwt_leeway_is_bounded() {
    assert_eq!(
        resolve(&["--jwt-leeway", "5m"])
            .expect("at the bound")
            .jwt_leeway,
        MAX_JWT_LEEWAY
    );
    assert_eq!(
        error_of(&["--jwt-leeway", "1h"]),
        r#"invalid value for --jwt-leeway: "1h" (expected a duration of at most 5m (clock skew between servers, not a longer token life))"#
    );
}

#[test]
fn allowed_origins_default_to_the_servers_own_and_star_opens_them() {
    assert_eq!(
        resolve(&[]).expect("valid").allowed_origins,
        AllowedOrigins::SameOrigin
    );
    assert_eq!(
        resolve(&["--allowed-origins", "*"])
            .expect("valid")
            .allowed_origins,
        AllowedOrigins::Any
    );
    let (_dir, path) = toml_file("allowed_origins = [\"*\"]\n");
    assert_eq!(
        resolve(&["--config", path_str(&path)])
            .expect("valid")
            .allowed_origins,
        AllowedOrigins::Any
    );
}

#[test]
fn bad_value_in_file_names_flag_key_and_file() {
    let (_dir, path) = toml_file("message_rate = 0\n");
    let shown = error_of(&["--config", path_str(&path)]);
    assert_eq!(
        shown,
        format!(
            "invalid value for --message-rate (key message_rate in {}): \"0\" \
             (expected a whole number, at least 1)",
            path.display()
        )
    );
}

#[test]
fn count_messages() {
    assert_eq!(
        error_of(&["--message-rate", "4294967296"]),
        r#"invalid value for --message-rate: "4294967296" (expected a whole number from 1 to 4294967295)"#
    );
    assert_eq!(
        error_of(&["--max-connections=-5"]),
        r#"invalid value for --max-connections: "-5" (expected a whole number, at least 1)"#
    );
}

#[test]
fn flag_hides_a_bad_file_value() {
    let (_dir, path) = toml_file("heartbeat_interval = \"never\"\n");
    let s = resolve(&["--config", path_str(&path), "--heartbeat-interval", "5s"])
        .expect("the flag wins, the file's value is not used");
    assert_eq!(s.heartbeat_interval, Duration::from_secs(5));
}

#[test]
fn refresh_must_outlive_access() {
    let shown = error_of(&["--access-token-ttl", "1d", "--refresh-token-ttl", "1d"]);
    assert!(shown.contains("--refresh-token-ttl"), "{shown}");
    assert!(shown.contains("--access-token-ttl"), "{shown}");
    let s = resolve(&["--access-token-ttl", "1h", "--refresh-token-ttl", "1h1s"]);
    assert!(s.is_ok());
}

#[test]
fn asymmetric_algorithms_need_a_public_key() {
    for alg in ["RS256", "EdDSA"] {
        let shown = error_of(&["--jwt-algorithm", alg]);
        assert_eq!(
            shown,
            format!("--jwt-algorithm {alg} needs --jwt-public-key-file (a PEM public key)")
        );
        let shown = error_of(&["--jwt-algorithm", alg, "--jwt-private-key-file=/k.pem"]);
        assert!(shown.contains("--jwt-public-key-file"), "{shown}");
    }
    let s = resolve(&["--jwt-algorithm=rs256", "--jwt-public-key-file=/k.pub.pem"])
        .expect("verification only");
    assert_eq!(s.jwt_algorithm, JwtAlgorithm::Rs256);
    assert_eq!(s.jwt_private_key_file, None);
}

#[test]
fn key_files_are_refused_with_hs256() {
    for flag in ["--jwt-public-key-file", "--jwt-private-key-file"] {
        let arg = format!("{flag}=/k.pem");
        let shown = error_of(&[&arg]);
        assert!(shown.starts_with(flag), "{shown}");
        assert!(shown.contains("HS256"), "{shown}");
    }
}

#[test]
fn auth_settings_from_a_file() {
    let (_dir, path) = toml_file(
        r#"
        jwt_algorithm = "RS256"
        jwt_public_key_file = "/etc/adj/jwt.pub.pem"
        jwt_leeway = "2s"
        login_failures_per_ip = 50
        login_failures_per_user = 3
        login_window = "30m"
        "#,
    );
    let s = resolve(&["--config", path_str(&path)]).expect("valid");
    assert_eq!(s.jwt_algorithm, JwtAlgorithm::Rs256);
    assert_eq!(
        s.jwt_public_key_file,
        Some(PathBuf::from("/etc/adj/jwt.pub.pem"))
    );
    assert_eq!(s.jwt_leeway, Duration::from_secs(2));
    assert_eq!(
        (s.login_failures_per_ip, s.login_failures_per_user),
        (50, 3)
    );
    assert_eq!(s.login_window, Duration::from_secs(1800));

    let (_dir, path) = toml_file("jwt_algorithm = \"HS512\"\n");
    assert_eq!(
        error_of(&["--config", path_str(&path)]),
        format!(
            "invalid value for --jwt-algorithm (key jwt_algorithm in {}): \"HS512\" \
             (expected HS256, RS256 or EdDSA)",
            path.display()
        )
    );
}

#[test]
fn unknown_file_key_names_key_and_file() {
    let (_dir, path) = toml_file("listen = \"127.0.0.1:1\"\nheartbeat = \"30s\"\n");
    let err = resolve(&["--config", path_str(&path)]).expect_err("unknown key");
    assert!(matches!(err, ConfigError::FileParse { .. }), "{err:?}");
    let shown = err.to_string();
    assert!(shown.contains("`heartbeat`"), "{shown}");
    assert!(shown.contains(&path.display().to_string()), "{shown}");
}

#[test]
fn missing_config_file_is_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("absent.toml");
    let err = resolve(&["--config", path_str(&path)]).expect_err("missing file");
    assert!(matches!(err, ConfigError::FileMissing { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("config file {} (--config) does not exist", path.display())
    );
}

#[test]
fn summary_shows_settings_but_no_password() {
    let s = resolve(&[
        "--store",
        "postgres://adj:hunter2@db/adj",
        "--allowed-origins",
        "https://a.example",
    ])
    .expect("valid");
    let shown = s.to_string();
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(!format!("{s:?}").contains("hunter2"));
    for part in [
        "listen=127.0.0.1:8080",
        "store=postgres://adj:***@db/adj",
        "heartbeat_interval=30s",
        "refresh_token_ttl=7d",
        "jwt_algorithm=HS256",
        "jwt_public_key_file=none",
        "jwt_leeway=0s",
        "login_failures_per_user=5",
        "login_window=15m",
        "allowed_origins=https://a.example",
        "demo=false",
    ] {
        assert!(shown.contains(part), "{part} in {shown}");
    }
    assert!(!shown.contains('\n'));
}
