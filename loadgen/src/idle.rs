//! `idle`: many sessions, each subscribed to `queue` (or, for comparison, to nothing) and then
//! idle, and the server's resident memory (`VmRSS`) before they open and with all of them open:
//! the difference per session. The sessions keep reading (and answer pings) while they are held.

use std::time::Duration;

use anyhow::{bail, Result};
use clap::Args;

use crate::procfs;
use crate::setup::{Common, Ctx, SUBSCRIBE_QUEUE};
use crate::stats::{self, Latencies, Table};

#[derive(Debug, Args)]
pub struct IdleArgs {
    #[command(flatten)]
    common: Common,

    /// Sessions to hold open at once.
    #[arg(long, default_value_t = 10_000)]
    sessions: usize,

    /// Open the sessions without subscribing them (for comparison).
    #[arg(long)]
    no_subscribe: bool,

    /// Seconds between the last snapshot and the memory reading (lets the server's buffers
    /// and the allocator settle).
    #[arg(long, default_value_t = 3.0)]
    settle: f64,
}

pub async fn run(args: IdleArgs) -> Result<()> {
    let ctx = Ctx::new(args.common.clone()).await?;
    let pid = ctx.pid()?.to_string();
    let subscribe = (!args.no_subscribe).then_some(SUBSCRIBE_QUEUE);
    let mut settings = ctx.settings("idle: settings");
    settings
        .row(
            "sessions (then idle)",
            format!(
                "{}, {}",
                args.sessions,
                subscribe.map_or("not subscribed", |_| "subscribed to queue")
            ),
        )
        .row("settle", format!("{} s", args.settle));
    settings.print();

    let before = procfs::rss_kib(&pid)?;
    let opened = ctx.open(args.sessions, subscribe).await;
    if opened.opened == 0 {
        bail!("no session opened: {}", opened.failures.summary());
    }
    tokio::time::sleep(Duration::from_secs_f64(args.settle)).await;
    let held = procfs::rss_kib(&pid)?;
    let live = ctx.engine.live();
    let mine = procfs::rss_kib("self")?;
    let load = procfs::loadavg();
    let per = (held as f64 - before as f64) / live.max(1) as f64;
    let (counts, lost) = ctx.engine.counts().await;

    let mut t = Table::new("idle: results");
    t.row(
        "sessions ready / held at the reading",
        format!("{} / {live}", opened.opened),
    )
    .row("open failures", opened.failures.summary())
    .row("sessions lost while held", lost.summary())
    .row(
        "time to open all (connect → snapshot)",
        format!(
            "{:.2} s; each {}",
            opened.elapsed.as_secs_f64(),
            Latencies::new(opened.to_ready).summary()
        ),
    )
    .row(
        "snapshot size (mean)",
        format!("{} bytes", counts.snapshot_bytes / counts.snapshots.max(1)),
    )
    .row(
        "server VmRSS before → with all",
        format!("{before} KiB → {held} KiB"),
    )
    .row("server KiB per idle session", format!("{per:.2} KiB"))
    .row("loadgen VmRSS with all", format!("{mine} KiB"))
    .row("load average while held (1/5/15 min)", load);
    t.print();
    stats::result(
        "idle",
        &format!(
            "{per:.1} KiB ({} → {} MiB at {live} sessions)",
            before / 1024,
            held / 1024
        ),
    );
    ctx.engine.close_all(Duration::from_secs(20)).await;
    Ok(())
}
