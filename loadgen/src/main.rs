//! `adjudicator-loadgen`: the project's own load generator for WebSocket sessions.
//!
//! * `connect`: new sessions at a fixed rate; latency from the start of the TCP connect to the
//!   receipt of `welcome`.
//! * `fanout`: many `queue` subscribers; latency from sending a decision over HTTP to its
//!   `case_decided` update reaching the last subscriber.
//! * `idle`: many idle sessions; the server's resident memory per session.
//! * `snapshots`: many sessions subscribe to `queue` at once; time to the last snapshot, and
//!   HTTP latency meanwhile.
//!
//! Start the server with limits that let one machine open this many sessions:
//! `ulimit -n 65536; adjudicator serve --demo --max-connections-per-user 100000
//! --connect-attempts-per-ip 1000000 …` (see `loadgen/run.sh`).

mod common;
mod connect;
mod fanout;
mod idle;
mod snapshots;

use clap::{Args, Parser, Subcommand};

use common::Credential;

#[derive(Debug, Parser)]
#[command(name = "adjudicator-loadgen", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Open new sessions at a fixed rate and measure connect + authenticate latency.
    Connect(connect::ConnectArgs),
    /// Measure decision → delivery latency at the last of many `queue` subscribers.
    Fanout(fanout::FanoutArgs),
    /// Hold many idle sessions and measure the server's resident memory per session.
    Idle(idle::IdleArgs),
    /// Many sessions subscribe to `queue` at once: time to the last snapshot, HTTP meanwhile.
    Snapshots(snapshots::SnapshotsArgs),
}

/// Flags every subcommand takes.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// The server's base URL (plain HTTP).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,

    /// Users whose tokens the sessions use, round-robin: `name` (password `<name>-demo`) or
    /// `name:password`, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "reviewer,senior,auditor,classifier"
    )]
    pub users: Vec<Credential>,

    /// Seconds allowed from the TCP connect to `welcome` before an attempt counts as failed.
    #[arg(long, default_value_t = 10.0)]
    pub open_timeout: f64,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // One descriptor per session: take all the hard limit allows before opening any.
    common::raise_nofile_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Connect(args) => connect::run(args).await,
            Command::Fanout(args) => fanout::run(args).await,
            Command::Idle(args) => idle::run(args).await,
            Command::Snapshots(args) => snapshots::run(args).await,
        }
    })
}
