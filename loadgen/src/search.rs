//! `search`: the most updates per second the server delivers to N `queue` subscribers while the
//! last subscriber's p99 stays under a bound. Runs `fanout` steps of new cases at rising offered
//! rates (doubling from a start rate up to a cap, then bisecting between the last rate that met
//! the bound and the first that did not), each step bounded in time; a step passes if every
//! update reached every subscriber, nothing failed or was skipped, the send rate held and the
//! p99 is under the bound.

use std::time::Duration;

use anyhow::Result;
use clap::Args;

use crate::fanout::{self, Step};
use crate::procfs;
use crate::setup::{Common, Ctx, SUBSCRIBE_QUEUE};
use crate::stats::{self, Table};

#[derive(Debug, Args)]
pub struct SearchArgs {
    #[command(flatten)]
    common: Common,

    /// Sessions subscribed to `queue`.
    #[arg(long, default_value_t = 2000)]
    subscribers: usize,

    /// The bound on the last subscriber's p99, in milliseconds.
    #[arg(long, default_value_t = 100.0)]
    p99_ms: f64,

    /// First offered rate, in submissions per second.
    #[arg(long, default_value_t = 10.0)]
    start_rate: f64,

    /// Highest offered rate tried, in submissions per second.
    #[arg(long, default_value_t = 160.0)]
    max_rate: f64,

    /// Bisection steps after the doubling.
    #[arg(long, default_value_t = 3)]
    bisections: u32,

    /// Seconds of submissions per step.
    #[arg(long, default_value_t = 4.0)]
    seconds: f64,

    /// Submissions per step at least (a low rate runs longer than `--seconds`), so that a
    /// step's p99 rests on enough samples.
    #[arg(long, default_value_t = 30)]
    min_samples: usize,

    /// Requests in flight at most.
    #[arg(long, default_value_t = 256)]
    max_in_flight: usize,

    /// Seconds a step waits after its last submission for its updates to arrive.
    #[arg(long, default_value_t = 30.0)]
    drain: f64,
}

/// Whether a step met the bound, and if not why.
fn verdict(s: &Step, rate: f64, p99_bound: Duration) -> Result<(), String> {
    let p99 = s.to_last().pct(99.0);
    if !s.drained || s.deliveries.incomplete > 0 {
        return Err(format!(
            "{} updates not delivered to all",
            s.deliveries.incomplete
        ));
    }
    if s.run.failures().total() > 0 || s.run.skipped > 0 {
        return Err("submissions failed or skipped".into());
    }
    if s.subscribers.1 < s.subscribers.0 {
        return Err("subscribers lost".into());
    }
    if s.run.achieved_rate() < 0.95 * rate {
        return Err(format!(
            "sent only {:.1}/s (load generator late)",
            s.run.achieved_rate()
        ));
    }
    match p99 {
        Some(p) if p < p99_bound => Ok(()),
        _ => Err(format!("p99 {}", stats::ms(p99))),
    }
}

pub async fn run(args: SearchArgs) -> Result<()> {
    let ctx = Ctx::new(args.common.clone()).await?;
    let bound = Duration::from_secs_f64(args.p99_ms / 1e3);
    let mut settings = ctx.settings("search: settings");
    settings
        .row(
            "subscribers (queue, default window)",
            args.subscribers.to_string(),
        )
        .row(
            "rates (submissions/s)",
            format!(
                "from {} doubling up to {}, then {} bisections; {} s each, {} submissions at least",
                args.start_rate, args.max_rate, args.bisections, args.seconds, args.min_samples
            ),
        )
        .row("bound", format!("last-subscriber p99 < {} ms", args.p99_ms));
    settings.print();
    ctx.subscribers(args.subscribers).await?;

    let mut steps = Table::new("search: steps (offered submissions/s → what happened)");
    let mut best: Option<(f64, Step)> = None;
    let (mut lo, mut hi) = (0.0f64, None::<f64>);
    let mut rate = args.start_rate;
    let mut bisections = 0;
    let mut lowest = rate;
    loop {
        lowest = lowest.min(rate);
        // Subscribers the server closed in an earlier step are replaced first.
        let missing = args.subscribers.saturating_sub(ctx.engine.live());
        if missing > 0 {
            ctx.open(missing, Some(SUBSCRIBE_QUEUE)).await;
        }
        let count = ((rate * args.seconds).round() as usize).max(args.min_samples);
        let s = fanout::step(
            &ctx,
            rate,
            count,
            None,
            args.max_in_flight,
            Duration::from_secs_f64(args.drain),
        )
        .await?;
        let outcome = verdict(&s, rate, bound);
        steps.row(
            format!("{rate:.1}/s × {}", s.subscribers.0),
            format!(
                "{:.0} updates/s; last p50 {} p99 {}; HTTP p99 {}; CPU/update {}; load {}: {}",
                s.delivered_per_second(),
                stats::ms(s.to_last().pct(50.0)),
                stats::ms(s.to_last().pct(99.0)),
                stats::ms(s.run.answer_latencies().pct(99.0)),
                s.cpu_per_update()
                    .map_or("n/a".into(), |c| format!("{:.1} µs", c.as_secs_f64() * 1e6)),
                procfs::loadavg(),
                match &outcome {
                    Ok(()) => "PASS".to_owned(),
                    Err(why) => format!("MISS ({why})"),
                }
            ),
        );
        println!(
            "step at {rate:.1}/s done; load average {}",
            procfs::loadavg()
        );
        match (outcome.is_ok(), hi) {
            (true, _) => {
                lo = rate;
                if best.as_ref().is_none_or(|(r, _)| *r < rate) {
                    best = Some((rate, s));
                }
            }
            (false, _) => hi = Some(rate),
        }
        rate = match hi {
            None if rate * 2.0 <= args.max_rate => rate * 2.0,
            None => break,
            Some(h) if bisections < args.bisections && h - lo > 0.5 => {
                bisections += 1;
                (lo + h) / 2.0
            }
            Some(_) => break,
        };
    }
    steps.print();
    let mut t = Table::new("search: result");
    match &best {
        Some((rate, s)) => {
            t.row(
                "highest passing offered rate",
                format!("{rate:.1} submissions/s"),
            );
            s.rows(&mut t);
            stats::result(
                "max",
                &format!(
                    "{:.0} updates/s (offered {rate:.1}/s × {}; p99 {}){}",
                    s.delivered_per_second(),
                    s.subscribers.0,
                    stats::ms(s.to_last().pct(99.0)),
                    if hi.is_none() {
                        " — the search's cap"
                    } else {
                        ""
                    }
                ),
            );
        }
        None => {
            t.row("highest passing offered rate", "none");
            stats::result(
                "max",
                &format!(
                    "none met the bound ({}/s down to {lowest:.2}/s × {} tried)",
                    args.start_rate, args.subscribers
                ),
            );
        }
    }
    t.row("load average at end (1/5/15 min)", procfs::loadavg());
    t.print();
    ctx.engine.close_all(Duration::from_secs(10)).await;
    Ok(())
}
