//! `adjudicator-loadgen`: the project's load generator for the WebSocket push path, built to
//! measure the server rather than itself. One thread holds every session on an `epoll` loop and
//! reads raw frames, keeping only each message's first bytes to find its `type` and `position`
//! (no JSON parse, no allocation per message); submissions go out open loop from concurrent
//! requests on a fixed schedule; the server's CPU time and memory come from `/proc/<pid>`.
//! `loadgen/run.sh` runs the issue-11 table with the server and this program on separate cores.
//!
//! | subcommand | measures |
//! | --- | --- |
//! | `calibrate` | frames/s the receive side handles on one core, from a built-in sender |
//! | `fanout` | CPU per delivered update, delivered/s, submit → first/last subscriber, HTTP answer |
//! | `search` | the most delivered updates/s with the last subscriber's p99 under a bound |
//! | `idle` | server memory per subscribed idle session |
//! | `storm` | many sessions subscribing at once: time to the last snapshot, HTTP meanwhile |
//! | `churn` | server memory after rounds of sessions opening and closing |
//! | `startup` | spawn → `/readyz` 200 of a server command |
//! | `connect` | connect → welcome at a fixed rate of new sessions |
//!
//! The server needs limits that let one address open this many sessions:
//! `--max-connections-per-user 100000 --connect-attempts-per-ip 1000000`.

mod calibrate;
mod churn;
mod connect;
mod engine;
mod fanout;
mod frame;
mod handshake;
mod http;
mod idle;
mod openloop;
mod procfs;
mod scan;
mod search;
mod setup;
mod startup;
mod stats;
mod storm;
mod tracker;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "adjudicator-loadgen", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Frames per second the receive side handles on one core, from a built-in sender.
    Calibrate(calibrate::CalibrateArgs),
    /// Subscribers, then submissions at a fixed rate: CPU per update, latencies.
    Fanout(fanout::FanoutArgs),
    /// The most delivered updates/s with the last subscriber's p99 under a bound.
    Search(search::SearchArgs),
    /// Server memory per subscribed idle session.
    Idle(idle::IdleArgs),
    /// Sessions subscribing at once: time to the last snapshot, HTTP latency meanwhile.
    Storm(storm::StormArgs),
    /// Server memory after rounds of sessions opening and closing.
    Churn(churn::ChurnArgs),
    /// Time from starting a server command to `/readyz` 200.
    Startup(startup::StartupArgs),
    /// Connect → welcome latency at a fixed rate of new sessions.
    Connect(connect::ConnectArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // One descriptor per session: take all the hard limit allows before opening any.
    procfs::raise_nofile_limit();
    tracker::now_ns();
    if let Command::Startup(args) = cli.command {
        return startup::run(args);
    }
    // The async side only sends requests and waits; the receive engine has its own thread.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Calibrate(args) => calibrate::run(args).await,
            Command::Fanout(args) => fanout::run(args).await,
            Command::Search(args) => search::run(args).await,
            Command::Idle(args) => idle::run(args).await,
            Command::Storm(args) => storm::run(args).await,
            Command::Churn(args) => churn::run(args).await,
            Command::Connect(args) => connect::run(args).await,
            Command::Startup(_) => unreachable!("handled above"),
        }
    })
}
