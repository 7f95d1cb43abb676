//! `fanout`: many `queue` subscribers, then submissions at a fixed offered rate from concurrent
//! requests (open loop): new cases, or decisions of cases submitted and claimed before the
//! subscribers connect. Each submission makes one update per subscriber. Reports the server's
//! CPU time per delivered update, the delivered updates per second, the time from a submission's
//! send to its update at the first and at the last subscriber, and the submissions' own HTTP
//! answer time. `search` runs the same step at rising rates.

use std::time::Duration;

use anyhow::Result;
use clap::{Args, ValueEnum};

use crate::openloop::{self, Run};
use crate::procfs;
use crate::setup::{Common, Ctx};
use crate::stats::{self, Latencies, Table};
use crate::tracker::{now_ns, Deliveries};

#[derive(Debug, Args)]
pub struct FanoutArgs {
    #[command(flatten)]
    pub common: Common,

    /// Sessions subscribed to `queue`.
    #[arg(long, default_value_t = 2000)]
    pub subscribers: usize,

    /// Submissions per second (each makes one update per subscriber).
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,

    /// How long to submit.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,

    /// What is submitted.
    #[arg(long, value_enum, default_value = "cases")]
    pub submit: Submit,

    /// Requests in flight at most; a request due beyond it is skipped and counted.
    #[arg(long, default_value_t = 256)]
    pub max_in_flight: usize,

    /// Seconds to wait after the last submission for every update to arrive.
    #[arg(long, default_value_t = 30.0)]
    pub drain: f64,

    /// Write one line per submission to this file: seconds since the first send, then
    /// milliseconds to the first and to the last subscriber and to the HTTP answer.
    #[arg(long)]
    pub samples: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Submit {
    /// `POST /api/v1/cases` (event `case_submitted`).
    Cases,
    /// `POST /api/v1/cases/{id}/decision` of cases claimed beforehand (event `case_decided`).
    Decisions,
}

/// What one run at one rate measured.
pub struct Step {
    pub run: Run,
    pub deliveries: Deliveries,
    /// Sessions ready at the start, and at the end.
    pub subscribers: (usize, usize),
    /// Server CPU time over the step, if its pid is known.
    pub cpu: Option<Duration>,
    /// Tracked updates received.
    pub delivered: u64,
    /// First send → last arrival (or the end of the drain).
    pub window: Duration,
    pub drained: bool,
    /// CPU time of the load generator's receive thread over the step.
    pub receive_cpu: Option<Duration>,
    /// How long the server's threads were runnable but waiting for a CPU over the step.
    pub server_waited: Option<Duration>,
    /// The same for the load generator's receive thread.
    pub receive_waited: Option<Duration>,
}

impl Step {
    /// `t_s first_ms last_ms http_ms` per successful submission (`-` where not all received it).
    pub fn samples(&self) -> String {
        let ok = self.run.sent.iter().filter(|s| s.result.is_ok());
        let start = self.run.sent.first().map_or(0, |s| s.sent_ns);
        let ms = |d: Duration| format!("{:.3}", d.as_secs_f64() * 1e3);
        let mut out = String::from("t_s first_ms last_ms http_ms\n");
        for (s, each) in ok.zip(&self.deliveries.each) {
            let (first, last) = each.map_or(("-".into(), "-".into()), |(f, l)| (ms(f), ms(l)));
            out += &format!(
                "{:.3} {first} {last} {}\n",
                (s.sent_ns - start) as f64 / 1e9,
                ms(Duration::from_nanos(s.answered_ns - s.sent_ns))
            );
        }
        out
    }

    pub fn cpu_per_update(&self) -> Option<Duration> {
        let cpu = self.cpu?;
        (self.delivered > 0).then(|| cpu.div_f64(self.delivered as f64))
    }

    pub fn delivered_per_second(&self) -> f64 {
        self.delivered as f64 / self.window.as_secs_f64().max(1e-9)
    }

    pub fn to_last(&self) -> Latencies {
        Latencies::new(self.deliveries.to_last.clone())
    }

    /// Rows describing the step.
    pub fn rows(&self, t: &mut Table) {
        let failures = self.run.failures();
        t.row(
            "submissions sent / failed / skipped (in-flight cap)",
            format!(
                "{} / {} / {}{}",
                self.run.sent.len(),
                failures.total(),
                self.run.skipped,
                if failures.total() > 0 {
                    format!(" ({})", failures.summary())
                } else {
                    String::new()
                }
            ),
        );
        t.row(
            "achieved send rate; latest start vs schedule",
            format!(
                "{:.1}/s; {}",
                self.run.achieved_rate(),
                stats::ms(Some(self.run.max_lag))
            ),
        );
        t.row(
            "subscribers at start / end",
            format!("{} / {}", self.subscribers.0, self.subscribers.1),
        );
        t.row(
            "updates delivered; per second (first send → last arrival)",
            format!(
                "{}; {:.0}/s over {:.2} s{}",
                self.delivered,
                self.delivered_per_second(),
                self.window.as_secs_f64(),
                if self.drained {
                    ""
                } else {
                    " (not all arrived)"
                }
            ),
        );
        t.row(
            "server CPU; per delivered update",
            match (self.cpu, self.cpu_per_update()) {
                (Some(c), Some(per)) => format!(
                    "{:.2} s; {:.2} µs",
                    c.as_secs_f64(),
                    per.as_secs_f64() * 1e6
                ),
                _ => "n/a (no --pid)".into(),
            },
        );
        t.row(
            "server threads runnable but waiting for a CPU",
            self.server_waited
                .map_or("n/a".into(), |w| format!("{:.2} s in all", w.as_secs_f64())),
        );
        t.row(
            "submissions not received by every subscriber",
            self.deliveries.incomplete.to_string(),
        );
        t.row("send → last subscriber", self.to_last().summary());
        t.row(
            "send → first subscriber",
            Latencies::new(self.deliveries.to_first.clone()).summary(),
        );
        t.row("HTTP answer", self.run.answer_latencies().summary());
        t.row(
            "loadgen receive thread CPU over the window",
            self.receive_cpu.map_or("n/a".into(), |c| {
                format!(
                    "{:.2} s ({:.0} % of a core); waiting for a CPU {}",
                    c.as_secs_f64(),
                    c.as_secs_f64() / self.window.as_secs_f64().max(1e-9) * 100.0,
                    self.receive_waited
                        .map_or("n/a".into(), |w| format!("{:.2} s", w.as_secs_f64()))
                )
            }),
        );
    }
}

/// Cases submitted and claimed, ready to be decided.
pub async fn claimed_cases(ctx: &Ctx, count: usize) -> Result<Vec<String>> {
    let mut ids = Vec::with_capacity(count);
    for i in 0..count {
        let (id, _) = ctx.api.submit_case(&ctx.classifier, i).await?;
        ctx.api.claim(&ctx.reviewer, &id).await?;
        ids.push(id);
    }
    Ok(ids)
}

/// Submits `count` at `rate` per second to the subscribers already open and waits (up to
/// `drain`) for every update to reach every subscriber. `decide`: the claimed cases to decide,
/// one per submission; otherwise new cases are submitted.
pub async fn step(
    ctx: &Ctx,
    rate: f64,
    count: usize,
    decide: Option<&[String]>,
    max_in_flight: usize,
    drain: Duration,
) -> Result<Step> {
    let head = ctx.api.head(&ctx.reviewer).await?;
    ctx.engine.track(head + 1, count * 4 + 10_000).await;
    let at_start = ctx.engine.live();
    let tracked_before = ctx.engine.tracked();
    let cpu_before = ctx.common.pid.map(procfs::cpu_time).transpose()?;
    let receive_before = ctx.engine.receive_cpu();
    let waited_before = ctx.common.pid.and_then(|p| procfs::run_delay(p).ok());
    let receive_waited_before = ctx.engine.receive_waited();
    let first_ns = now_ns();
    let run = match decide {
        Some(ids) => {
            openloop::run(rate, count.min(ids.len()), max_in_flight, |i| {
                let (api, token, id) = (ctx.api.clone(), ctx.reviewer.clone(), ids[i].clone());
                async move { api.decide(&token, &id).await }
            })
            .await
        }
        None => {
            openloop::run(rate, count, max_in_flight, |i| {
                let (api, token) = (ctx.api.clone(), ctx.classifier.clone());
                async move { api.submit_case(&token, i).await.map(|(_, p)| p) }
            })
            .await
        }
    };
    let ok = run.positions().len() as u64;
    let deadline = tokio::time::Instant::now() + drain;
    let drained = loop {
        let expected = ok * ctx.engine.live() as u64;
        if ctx.engine.tracked() - tracked_before >= expected {
            break true;
        }
        if tokio::time::Instant::now() >= deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let cpu_after = ctx.common.pid.map(procfs::cpu_time).transpose()?;
    let receive_after = ctx.engine.receive_cpu();
    let waited_after = ctx.common.pid.and_then(|p| procfs::run_delay(p).ok());
    let receive_waited_after = ctx.engine.receive_waited();
    let tracker = ctx.engine.take_tracker().await;
    let at_end = ctx.engine.live();
    let deliveries = tracker.deliveries(&run.positions(), at_end as u32);
    let end_ns = if drained && deliveries.last_arrival_ns > 0 {
        deliveries.last_arrival_ns
    } else {
        now_ns()
    };
    Ok(Step {
        delivered: ctx.engine.tracked() - tracked_before,
        window: Duration::from_nanos(end_ns.saturating_sub(first_ns)),
        cpu: cpu_before.zip(cpu_after).map(|(b, a)| a.saturating_sub(b)),
        subscribers: (at_start, at_end),
        server_waited: waited_before
            .zip(waited_after)
            .map(|(b, a)| a.saturating_sub(b)),
        receive_waited: receive_waited_before
            .zip(receive_waited_after)
            .map(|(b, a)| a.saturating_sub(b)),
        receive_cpu: receive_before
            .zip(receive_after)
            .map(|(b, a)| a.saturating_sub(b)),
        run,
        deliveries,
        drained,
    })
}

pub async fn run(args: FanoutArgs) -> Result<()> {
    let ctx = Ctx::new(args.common.clone()).await?;
    let count = (args.rate * args.seconds).round().max(1.0) as usize;
    let mut settings = ctx.settings("fanout: settings");
    settings
        .row(
            "subscribers (queue, default window)",
            args.subscribers.to_string(),
        )
        .row(
            "offered",
            format!(
                "{:?} at {}/s for {} s = {count}, i.e. {:.0} updates/s",
                args.submit,
                args.rate,
                args.seconds,
                args.rate * args.subscribers as f64
            ),
        );
    settings.print();

    let ids = match args.submit {
        Submit::Decisions => {
            let started = std::time::Instant::now();
            let ids = claimed_cases(&ctx, count).await?;
            println!(
                "{count} cases submitted and claimed in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            Some(ids)
        }
        Submit::Cases => None,
    };
    let opened = ctx.subscribers(args.subscribers).await?;
    println!(
        "{} subscribers have their snapshot after {:.2} s; load average {}",
        opened.opened,
        opened.elapsed.as_secs_f64(),
        procfs::loadavg()
    );
    let s = step(
        &ctx,
        args.rate,
        count,
        ids.as_deref(),
        args.max_in_flight,
        Duration::from_secs_f64(args.drain),
    )
    .await?;
    if let Some(path) = &args.samples {
        std::fs::write(path, s.samples())?;
    }
    let (_, lost) = ctx.engine.counts().await;
    let mut t = Table::new("fanout: results");
    s.rows(&mut t);
    t.row("subscribers lost", lost.summary());
    t.row("load average at end (1/5/15 min)", procfs::loadavg());
    t.print();

    let last = s.to_last();
    let http = s.run.answer_latencies();
    if let Some(per) = s.cpu_per_update() {
        stats::result(
            "cpu",
            &format!(
                "{:.1} µs ({:.2} s CPU / {} updates at {:.0}/s)",
                per.as_secs_f64() * 1e6,
                s.cpu.unwrap_or_default().as_secs_f64(),
                s.delivered,
                s.delivered_per_second()
            ),
        );
    }
    let mut incomplete = match s.deliveries.incomplete {
        0 => String::new(),
        n => format!("; {n} not delivered to all"),
    };
    if let Some(w) = s.server_waited {
        incomplete += &format!("; server queued for a CPU {:.1} s", w.as_secs_f64());
    }
    stats::result(
        "last",
        &format!(
            "p99 {} (p50 {}; {} samples{incomplete})",
            stats::ms(last.pct(99.0)),
            stats::ms(last.pct(50.0)),
            last.len()
        ),
    );
    stats::result(
        "http",
        &format!(
            "p99 {} (p50 {}) at {:.0} updates/s delivered{}",
            stats::ms(http.pct(99.0)),
            stats::ms(http.pct(50.0)),
            s.delivered_per_second(),
            s.server_waited.map_or(String::new(), |w| format!(
                "; server queued for a CPU {:.1} s",
                w.as_secs_f64()
            ))
        ),
    );
    ctx.engine.close_all(Duration::from_secs(10)).await;
    Ok(())
}
