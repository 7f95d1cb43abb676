//! `idle`: opens many sessions that do nothing after their welcome, and reads the server's
//! resident memory (`VmRSS` of `/proc/<pid>/status`) before and after: the difference per
//! session. The sessions still read (and so answer the server's pings) while they are held.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Args;
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch, Semaphore};

use crate::common::{self, Latencies, Tally, Target};
use crate::Common;

#[derive(Debug, Args)]
pub struct IdleArgs {
    #[command(flatten)]
    common: Common,

    /// Idle sessions to hold open at once.
    #[arg(long, default_value_t = 10_000)]
    sessions: usize,

    /// Process id of the server, whose `VmRSS` is read.
    #[arg(long)]
    pid: u32,

    /// Sessions being opened at once.
    #[arg(long, default_value_t = 100)]
    open_concurrency: usize,

    /// Seconds to wait after the last session opened (and after they closed) before reading
    /// the memory again.
    #[arg(long, default_value_t = 3.0)]
    settle: f64,
}

pub async fn run(args: IdleArgs) -> Result<()> {
    if args.sessions == 0 || args.open_concurrency == 0 {
        bail!("--sessions and --open-concurrency must be positive");
    }
    let pid = args.pid.to_string();
    let target = Arc::new(Target::parse(&args.common.url)?);
    let mut settings = common::common_settings(&target, &args.common.users);
    let client = common::http_client()?;
    let tokens = common::login_all(&client, &target, &args.common.users).await?;
    let limit = Duration::from_secs_f64(args.common.open_timeout);
    let settle = Duration::from_secs_f64(args.settle);
    settings.extend([
        ("sessions".into(), args.sessions.to_string()),
        ("server pid".into(), pid.clone()),
        ("open concurrency".into(), args.open_concurrency.to_string()),
        ("settle".into(), format!("{settle:?}")),
        (
            "measured".into(),
            "(server VmRSS with all open − before) / sessions open".into(),
        ),
    ]);
    common::print_table("idle: settings", &settings);

    let before = common::vm_rss_kib(&pid)?;
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<Result<Duration, String>>();
    let (stop_tx, stop_rx) = watch::channel(false);
    let gate = Arc::new(Semaphore::new(args.open_concurrency));
    let opening = Instant::now();
    let mut tasks = Vec::with_capacity(args.sessions);
    for i in 0..args.sessions {
        let token = tokens[i % tokens.len()].clone();
        let (target, gate, ready, mut stop) = (
            target.clone(),
            gate.clone(),
            ready_tx.clone(),
            stop_rx.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await;
            let opened = common::open_session(&target, &token, limit).await;
            drop(permit);
            let mut ws = match opened {
                Ok((ws, latency)) => {
                    let _ = ready.send(Ok(latency));
                    ws
                }
                Err(reason) => {
                    let _ = ready.send(Err(reason));
                    return None;
                }
            };
            // Hold the session; reading answers pings. Report an early end.
            let ended = loop {
                tokio::select! {
                    _ = stop.changed() => break None,
                    message = ws.next() => match message {
                        Some(Ok(tokio_tungstenite::tungstenite::Message::Close(f))) => {
                            break Some(common::close_reason(f))
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => break Some(common::ws_error(&e)),
                        None => break Some("end of stream".to_owned()),
                    }
                }
            };
            if ended.is_none() {
                let _ = tokio::time::timeout(Duration::from_secs(5), async {
                    let _ = ws.close(None).await;
                    while let Some(Ok(_)) = ws.next().await {}
                })
                .await;
            }
            ended
        }));
    }
    drop(ready_tx);

    let mut latencies = Vec::with_capacity(args.sessions);
    let mut failures = Tally::default();
    while let Some(r) = ready_rx.recv().await {
        match r {
            Ok(latency) => latencies.push(latency),
            Err(reason) => failures.add(reason),
        }
        if latencies.len() + failures.total() == args.sessions {
            break;
        }
    }
    let opened_in = opening.elapsed();
    let open = latencies.len();
    println!(
        "{open} of {} sessions open after {:.2} s; settling {settle:?}",
        args.sessions,
        opened_in.as_secs_f64()
    );
    tokio::time::sleep(settle).await;
    let with_all = common::vm_rss_kib(&pid)?;
    let loadgen_rss = common::vm_rss_kib("self")?;
    let load_held = common::loadavg();

    let _ = stop_tx.send(true);
    let mut lost = Tally::default();
    for t in tasks {
        if let Ok(Some(reason)) = t.await {
            lost.add(reason);
        }
    }
    tokio::time::sleep(settle).await;
    let after_close = common::vm_rss_kib(&pid)?;

    let per_session = (open > 0).then(|| (with_all as f64 - before as f64) / open as f64);
    let latencies = Latencies::new(latencies);
    let mut rows = vec![
        ("sessions requested".into(), args.sessions.to_string()),
        ("sessions open (welcomed)".into(), open.to_string()),
        ("open failures".into(), failures.total().to_string()),
    ];
    rows.extend(failures.rows());
    rows.extend([(
        "sessions that ended while held".into(),
        lost.total().to_string(),
    )]);
    rows.extend(lost.rows());
    rows.extend([
        (
            "time to open all".into(),
            format!(
                "{:.2} s ({:.0} sessions/s)",
                opened_in.as_secs_f64(),
                open as f64 / opened_in.as_secs_f64()
            ),
        ),
        ("server VmRSS before".into(), format!("{before} KiB")),
        (
            "server VmRSS with all open".into(),
            format!("{with_all} KiB"),
        ),
        (
            "server VmRSS after all closed".into(),
            format!("{after_close} KiB"),
        ),
        (
            "server KiB per idle session".into(),
            per_session.map_or("n/a".into(), |k| format!("{k:.2} KiB")),
        ),
        (
            "loadgen VmRSS with all open".into(),
            format!("{loadgen_rss} KiB"),
        ),
    ]);
    rows.extend(latencies.rows("connect+auth while opening", &[50.0, 99.0]));
    rows.extend([
        ("load average while held (1/5/15 min)".into(), load_held),
        (
            format!("target: < 20 KiB per session at {}", args.sessions),
            if open < args.sessions {
                format!(
                    "{} (only {open} of {} open)",
                    common::verdict(per_session, 20.0),
                    args.sessions
                )
            } else {
                common::verdict(per_session, 20.0)
            },
        ),
    ]);
    common::print_table("idle: results", &rows);
    Ok(())
}
