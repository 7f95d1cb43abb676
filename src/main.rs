//! The `adjudicator` binary: parses the command line and runs the subcommand. Errors end here,
//! printed once, with a non-zero exit status.

use std::process::ExitCode;

use adjudicator::cli::{BenchCommand, Cli, Command};
use adjudicator::config::Settings;
use adjudicator::logging::LogFormat;
use adjudicator::ops;
use adjudicator::ops::args::{AuditCommand, StoreCommand, UserCommand};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let settings = match Settings::resolve(&args) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("adjudicator: {e}");
                    return ExitCode::from(2);
                }
            };
            let format = settings.log_format.unwrap_or_else(LogFormat::for_stderr);
            adjudicator::logging::init(&settings.log, format);
            run(adjudicator::server::serve(settings))
        }
        Command::Bench(bench) => {
            adjudicator::logging::init("warn", LogFormat::Text);
            match bench.command {
                BenchCommand::Append(args) => run_multi_threaded(ops::append_bench::append(args)),
                BenchCommand::Generate(args) => run_multi_threaded(ops::generate::generate(args)),
            }
        }
        Command::Replay(args) => {
            adjudicator::logging::init("warn", LogFormat::Text);
            run_multi_threaded(ops::replay::replay(args))
        }
        Command::User(user) => {
            adjudicator::logging::init("warn", LogFormat::Text);
            match user.command {
                UserCommand::Add(args) => run_multi_threaded(ops::users::add(args)),
                UserCommand::List(args) => run_multi_threaded(ops::users::list(args)),
            }
        }
        Command::Store(store) => {
            adjudicator::logging::init("warn", LogFormat::Text);
            match store.command {
                StoreCommand::Copy(args) => run_multi_threaded(ops::copy::copy(args)),
            }
        }
        Command::Audit(audit) => {
            adjudicator::logging::init("warn", LogFormat::Text);
            match audit.command {
                AuditCommand::Verify(args) => run_multi_threaded(ops::audit::verify(args)),
                AuditCommand::Head(args) => run_multi_threaded(ops::audit::head(args)),
                AuditCommand::Export(args) => run_multi_threaded(ops::audit::export(args)),
            }
        }
    }
}

fn run(task: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    match actix_web::rt::System::new().block_on(task) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("adjudicator: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a task that needs no actix System on a multi-threaded tokio runtime.
fn run_multi_threaded(task: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("adjudicator: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(task) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("adjudicator: {e:#}");
            ExitCode::FAILURE
        }
    }
}
