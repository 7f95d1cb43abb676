//! `connect`: new sessions at a fixed rate (open loop: a connect starts on schedule whether or
//! not earlier ones are done), each timed from the start of its TCP connect to its `welcome`
//! (TCP handshake, upgrade, token check, registration) and closed right after.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::Args;

use crate::engine::OpenSpec;
use crate::procfs;
use crate::setup::{Common, Ctx};
use crate::stats::{self, Latencies, Table};

#[derive(Debug, Args)]
pub struct ConnectArgs {
    #[command(flatten)]
    common: Common,

    /// New connections per second.
    #[arg(long, default_value_t = 200.0)]
    rate: f64,

    /// How long to keep opening connections.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
}

pub async fn run(args: ConnectArgs) -> Result<()> {
    if args.rate <= 0.0 || args.seconds <= 0.0 {
        bail!("--rate and --seconds must be positive");
    }
    let ctx = Ctx::new(args.common.clone()).await?;
    let count = (args.rate * args.seconds).round() as usize;
    let mut settings = ctx.settings("connect: settings");
    settings.row(
        "offered",
        format!(
            "{} connections/s for {} s = {count}",
            args.rate, args.seconds
        ),
    );
    settings.print();
    let report = ctx
        .engine
        .open(OpenSpec {
            count,
            concurrency: count,
            rate: Some(args.rate),
            tokens: Arc::clone(&ctx.tokens),
            subscribe: None,
            close_when_ready: true,
            timeout: Duration::from_secs_f64(args.common.open_timeout),
        })
        .await;
    let latencies = Latencies::new(report.to_ready);
    let mut t = Table::new("connect: results");
    t.row(
        "welcomed / failed",
        format!("{} / {}", report.opened, report.failures.summary()),
    )
    .row(
        "latest connect start vs schedule (loadgen lag)",
        stats::ms(Some(report.max_lag)),
    )
    .row("connect → welcome", latencies.summary())
    .row("connect → welcome p90", stats::ms(latencies.pct(90.0)))
    .row("load average at end (1/5/15 min)", procfs::loadavg());
    t.print();
    stats::result(
        "connect",
        &format!(
            "p99 {} (p50 {}; {} failed)",
            stats::ms(latencies.pct(99.0)),
            stats::ms(latencies.pct(50.0)),
            report.failures.total()
        ),
    );
    ctx.engine.close_all(Duration::from_secs(10)).await;
    Ok(())
}
