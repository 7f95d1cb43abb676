//! `churn`: rounds of many sessions that open, subscribe to `queue`, get their snapshot and all
//! close again; the server's resident memory (`VmRSS`) at the start and after each round, once
//! the server has let go of the round's sockets (its count of open descriptors is back where it
//! was). Memory that keeps growing round after round is memory the server does not give back.

use std::time::Duration;

use anyhow::{bail, Result};
use clap::Args;

use crate::procfs;
use crate::setup::{Common, Ctx, SUBSCRIBE_QUEUE};
use crate::stats::{self, Table};

#[derive(Debug, Args)]
pub struct ChurnArgs {
    #[command(flatten)]
    common: Common,

    /// Sessions per round.
    #[arg(long, default_value_t = 3000)]
    sessions: usize,

    #[arg(long, default_value_t = 8)]
    rounds: usize,

    /// Seconds to wait, after a round's sessions closed, for the server's descriptors to go.
    #[arg(long, default_value_t = 30.0)]
    release_timeout: f64,
}

/// Waits until the server has at most `fds` descriptors open, or the time is up.
async fn released(pid: u32, fds: usize, limit: Duration) -> Result<bool> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if procfs::open_fds(pid)? <= fds {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn run(args: ChurnArgs) -> Result<()> {
    if args.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    let ctx = Ctx::new(args.common.clone()).await?;
    let pid = ctx.pid()?;
    let mut settings = ctx.settings("churn: settings");
    settings.row(
        "rounds",
        format!(
            "{} × {} sessions: open, subscribe to queue, snapshot, close",
            args.rounds, args.sessions
        ),
    );
    settings.print();

    let fds = procfs::open_fds(pid)?;
    let start = procfs::rss_kib(&pid.to_string())?;
    let mut t = Table::new("churn: results");
    t.row("server VmRSS at start", format!("{start} KiB"));
    let mut after = Vec::with_capacity(args.rounds);
    for round in 1..=args.rounds {
        let opened = ctx.open(args.sessions, Some(SUBSCRIBE_QUEUE)).await;
        let peak = procfs::rss_kib(&pid.to_string())?;
        let closed = ctx.engine.close_all(Duration::from_secs(30)).await;
        let let_go = released(pid, fds, Duration::from_secs_f64(args.release_timeout)).await?;
        let rss = procfs::rss_kib(&pid.to_string())?;
        after.push(rss);
        t.row(
            format!("round {round}"),
            format!(
                "{} opened ({}), peak {peak} KiB, {} closed ({} dropped) → {rss} KiB{}; load {}",
                opened.opened,
                opened.failures.summary(),
                closed.closed,
                closed.dropped,
                if let_go {
                    ""
                } else {
                    " (server still held sockets)"
                },
                procfs::loadavg()
            ),
        );
    }
    let (first, last) = (after[0], after[after.len() - 1]);
    let (counts, _) = ctx.engine.counts().await;
    t.row(
        "snapshot size (mean)",
        format!("{} bytes", counts.snapshot_bytes / counts.snapshots.max(1)),
    );
    let growth = (last as f64 / first as f64 - 1.0) * 100.0;
    t.row(
        format!("after round {} vs after round 1", args.rounds),
        format!("{last} KiB vs {first} KiB: {growth:+.1} %"),
    );
    t.print();
    stats::result(
        "churn",
        &format!(
            "{} MiB after round {} vs {} MiB after round 1 ({growth:+.0} %; {} MiB at start)",
            last / 1024,
            args.rounds,
            first / 1024,
            start / 1024
        ),
    );
    Ok(())
}
