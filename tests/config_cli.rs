//! The configuration and command line as the binary uses them, through the public API only:
//! parse a command line, resolve the settings, read a TOML file.

use std::time::Duration;

use adjudicator::cli::{Cli, Command};
use adjudicator::config::{ConfigError, Settings, StoreUrl};
use clap::{CommandFactory, Parser};

fn serve(argv: &[&str]) -> adjudicator::cli::ServeArgs {
    let argv = ["adjudicator", "serve"].iter().chain(argv);
    match Cli::try_parse_from(argv).expect("parses").command {
        Command::Serve(args) => args,
        other => panic!("expected serve, got {other:?}"),
    }
}

#[test]
fn top_level_help_lists_subcommands() {
    let help = Cli::command().render_help().to_string();
    assert!(help.contains("serve") && help.contains("bench"), "{help}");
}

#[test]
fn serve_with_a_file_and_flags() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("adjudicator.toml");
    std::fs::write(
        &config,
        "store = \"postgresql://db/adj\"\nclaim_lease = \"20m\"\nmessage_burst = 60\n",
    )
    .expect("write config");
    let args = serve(&[
        "--config",
        config.to_str().expect("utf-8 path"),
        "--claim-lease",
        "5m",
    ]);
    let settings = Settings::resolve(&args).expect("valid settings");
    assert_eq!(
        settings.store,
        StoreUrl::Postgres("postgresql://db/adj".into())
    );
    assert_eq!(settings.claim_lease, Duration::from_secs(300));
    assert_eq!(settings.message_burst, 60);
    assert_eq!(settings.heartbeat_interval, Duration::from_secs(30));
}

#[test]
fn a_bad_setting_names_its_flag() {
    let err = Settings::resolve(&serve(&["--max-connections", "none"])).expect_err("invalid");
    assert!(matches!(
        err,
        ConfigError::InvalidValue {
            flag: "max-connections",
            ..
        }
    ));
    assert!(err.to_string().contains("--max-connections"), "{err}");
}
