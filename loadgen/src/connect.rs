//! `connect`: opens new sessions at a fixed rate (open loop: the schedule does not wait for
//! slow answers) and measures, per session, the time from the start of the TCP connect to the
//! receipt of `welcome`. Each session is closed right after its welcome.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Args;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use crate::common::{self, Latencies, Tally, Target};
use crate::Common;

#[derive(Debug, Args)]
pub struct ConnectArgs {
    #[command(flatten)]
    common: Common,

    /// New connections per second.
    #[arg(long, default_value_t = 200)]
    rate: u32,

    /// How long to keep opening connections.
    #[arg(long, default_value_t = 10)]
    seconds: u32,
}

/// What one attempt reports: its latency and how late it started against the schedule.
type Outcome = Result<(Duration, Duration), String>;

pub async fn run(args: ConnectArgs) -> Result<()> {
    if args.rate == 0 || args.seconds == 0 {
        bail!("--rate and --seconds must be positive");
    }
    let target = Arc::new(Target::parse(&args.common.url)?);
    let mut settings = common::common_settings(&target, &args.common.users);
    let client = common::http_client()?;
    let tokens = Arc::new(common::login_all(&client, &target, &args.common.users).await?);
    let limit = Duration::from_secs_f64(args.common.open_timeout);
    let total = args.rate as usize * args.seconds as usize;
    let period = Duration::from_secs_f64(1.0 / f64::from(args.rate));
    settings.extend([
        ("rate".into(), format!("{} connections/s", args.rate)),
        ("seconds".into(), args.seconds.to_string()),
        ("connections".into(), total.to_string()),
        ("open timeout".into(), format!("{limit:?}")),
        (
            "measured".into(),
            "TCP connect start → welcome received; closed after welcome".into(),
        ),
    ]);
    common::print_table("connect: settings", &settings);

    let (tx, mut rx) = mpsc::unbounded_channel::<Outcome>();
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let start = Instant::now();
    for i in 0..total {
        ticks.tick().await;
        let lag = Instant::now().saturating_duration_since(start + period * i as u32);
        let (target, tokens, tx) = (target.clone(), tokens.clone(), tx.clone());
        tokio::spawn(async move {
            match common::open_session(&target, &tokens[i % tokens.len()], limit).await {
                Ok((mut ws, latency)) => {
                    let _ = tx.send(Ok((latency, lag)));
                    let _ = tokio::time::timeout(Duration::from_secs(2), async {
                        let _ = ws.close(None).await;
                        while let Some(Ok(_)) = ws.next().await {}
                    })
                    .await;
                }
                Err(reason) => {
                    let _ = tx.send(Err(reason));
                }
            }
        });
    }
    let issued_in = start.elapsed();
    drop(tx);

    let mut latencies = Vec::with_capacity(total);
    let mut max_lag = Duration::ZERO;
    let mut failures = Tally::default();
    while let Some(outcome) = rx.recv().await {
        match outcome {
            Ok((latency, lag)) => {
                latencies.push(latency);
                max_lag = max_lag.max(lag);
            }
            Err(reason) => failures.add(reason),
        }
    }
    let latencies = Latencies::new(latencies);
    let p99 = latencies.pct(99.0);

    let mut rows = vec![
        ("attempted".into(), total.to_string()),
        ("welcomed".into(), latencies.len().to_string()),
        ("failed".into(), failures.total().to_string()),
    ];
    rows.extend(failures.rows());
    rows.extend([
        (
            "achieved rate".into(),
            format!(
                "{:.1} connections/s over {:.2} s",
                total as f64 / issued_in.as_secs_f64(),
                issued_in.as_secs_f64()
            ),
        ),
        (
            "latest start vs schedule (loadgen lag)".into(),
            common::ms(Some(max_lag)),
        ),
    ]);
    rows.extend(latencies.rows("connect+auth", &[50.0, 90.0, 99.0]));
    rows.extend([
        ("load average at end (1/5/15 min)".into(), common::loadavg()),
        (
            "target: p99 < 5 ms".into(),
            common::verdict(p99.map(|d| d.as_secs_f64() * 1e3), 5.0),
        ),
    ]);
    common::print_table("connect: results", &rows);
    Ok(())
}
