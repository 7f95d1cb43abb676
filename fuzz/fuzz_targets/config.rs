//! The configuration parsers: the command line of `serve` (clap, then every value's check) and
//! the TOML file, resolved together as the server does. Input lines that start with `--` are
//! flags, the other lines are the file. Never a panic: a bad value is an error that names its
//! flag, and the settings that resolve can be shown (the start-up log line).

#![no_main]

use std::path::Path;

use adjudicator::cli::{Cli, Command};
use adjudicator::config::file::FileSettings;
use adjudicator::config::{ConfigError, Settings};
use clap::Parser;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (flags, file): (Vec<&str>, Vec<&str>) = text.lines().partition(|l| l.starts_with("--"));
    let file = file.join("\n");
    let path = Path::new("/fuzz/adjudicator.toml");
    let argv = ["adjudicator", "serve", "--config", "/fuzz/adjudicator.toml"]
        .into_iter()
        .chain(flags);
    let Ok(cli) = Cli::try_parse_from(argv) else {
        return;
    };
    let Command::Serve(args) = cli.command else {
        return;
    };
    let Ok(file) = FileSettings::parse(&file, path) else {
        return;
    };
    match Settings::resolve_with_file(&args, file) {
        Ok(settings) => {
            let _ = settings.to_string();
        }
        Err(ConfigError::InvalidValue { flag, .. }) => {
            assert!(adjudicator::config::FLAGS.contains(&flag), "{flag}");
        }
        Err(_) => {}
    }
});
