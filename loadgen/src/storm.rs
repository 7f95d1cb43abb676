//! `storm`: many open sessions send `subscribe` to `queue` at the same instant; the time until
//! the last of them has its whole snapshot, and meanwhile the answer time of an open-loop stream
//! of `GET /api/v1/stats` requests (which pass the token check and the read models, as every
//! API call does). Meant for a store with a big queue (`bench generate`).

use std::time::Duration;

use anyhow::{bail, Result};
use clap::Args;

use crate::openloop;
use crate::procfs;
use crate::setup::{Common, Ctx, SUBSCRIBE_QUEUE};
use crate::stats::{self, Latencies, Table};

#[derive(Debug, Args)]
pub struct StormArgs {
    #[command(flatten)]
    common: Common,

    /// Sessions that subscribe at once.
    #[arg(long, default_value_t = 1000)]
    sessions: usize,

    /// `GET /api/v1/stats` per second while the snapshots go out.
    #[arg(long, default_value_t = 100.0)]
    http_rate: f64,

    /// Seconds of that HTTP stream (from the subscribes on).
    #[arg(long, default_value_t = 3.0)]
    http_seconds: f64,

    /// Seconds to wait for the last snapshot.
    #[arg(long, default_value_t = 120.0)]
    timeout: f64,
}

pub async fn run(args: StormArgs) -> Result<()> {
    let ctx = Ctx::new(args.common.clone()).await?;
    let mut settings = ctx.settings("storm: settings");
    settings
        .row("sessions subscribing at once", args.sessions.to_string())
        .row("subscribe", SUBSCRIBE_QUEUE)
        .row(
            "HTTP meanwhile",
            format!(
                "GET /api/v1/stats at {}/s for {} s",
                args.http_rate, args.http_seconds
            ),
        );
    settings.print();

    let opened = ctx.open(args.sessions, None).await;
    if opened.opened < args.sessions {
        bail!(
            "only {} of {} sessions opened: {}",
            opened.opened,
            args.sessions,
            opened.failures.summary()
        );
    }
    let (before, _) = ctx.engine.counts().await;
    let http_count = (args.http_rate * args.http_seconds).round() as usize;
    let storm = ctx.engine.subscribe_all(
        SUBSCRIBE_QUEUE.into(),
        Duration::from_secs_f64(args.timeout),
    );
    let http = openloop::run(args.http_rate, http_count, 256, |_| {
        let (api, token) = (ctx.api.clone(), ctx.reviewer.clone());
        async move { api.head(&token).await }
    });
    let started_ns = crate::tracker::now_ns();
    let (storm, http) = tokio::join!(storm, http);
    let (after, _) = ctx.engine.counts().await;

    let snapshots = after.snapshots - before.snapshots;
    let avg_bytes = (after.snapshot_bytes - before.snapshot_bytes) / snapshots.max(1);
    let storm_end_ns = started_ns + storm.all_delivered.unwrap_or_default().as_nanos() as u64;
    let during = Latencies::new(
        http.sent
            .iter()
            .filter(|s| s.result.is_ok() && s.sent_ns <= storm_end_ns)
            .map(|s| Duration::from_nanos(s.answered_ns - s.sent_ns))
            .collect(),
    );
    let mut t = Table::new("storm: results");
    t.row("subscribes sent", storm.sent.to_string())
        .row("snapshots received", snapshots.to_string())
        .row("failures", storm.failures.summary())
        .row(
            "first subscribe → last snapshot read",
            stats::ms(storm.all_delivered),
        )
        .row(
            "each: subscribe → its snapshot",
            Latencies::new(storm.to_snapshot.clone()).summary(),
        )
        .row("snapshot size (mean)", format!("{avg_bytes} bytes"))
        .row("HTTP answer, sent during the storm", during.summary())
        .row(
            "HTTP answer, whole stream",
            format!(
                "{} ({} failed)",
                http.answer_latencies().summary(),
                http.failures().total()
            ),
        )
        .row("load average at end (1/5/15 min)", procfs::loadavg());
    t.print();
    stats::result(
        "storm",
        &match storm.all_delivered {
            Some(d) => format!(
                "all {} in {:.2} s ({} KB each); HTTP p99 {} meanwhile ({} requests)",
                storm.sent,
                d.as_secs_f64(),
                avg_bytes / 1000,
                stats::ms(during.pct(99.0)),
                during.len()
            ),
            None => format!(
                "{} of {} snapshots by the deadline ({})",
                snapshots,
                storm.sent,
                storm.failures.summary()
            ),
        },
    );
    ctx.engine.close_all(Duration::from_secs(20)).await;
    Ok(())
}
