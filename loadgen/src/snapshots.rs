//! `snapshots`: many sessions subscribe to `queue` at the same moment; measured are the time
//! from that moment to the last snapshot received, the size of the snapshots, and meanwhile the
//! latency of authenticated HTTP reads (`GET /api/v1/stats`, which checks its token against the
//! read models), from a few clients that each send one request after the other.
//!
//! All sessions are opened and welcomed first; then one signal releases every `subscribe`.
//! With `--sessions 1` it times one snapshot.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Args;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_tungstenite::tungstenite::Message;

use crate::common::{self, Latencies, Tally, Target};
use crate::Common;

#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    #[command(flatten)]
    common: Common,

    /// Sessions that subscribe to `queue` at once.
    #[arg(long, default_value_t = 1000)]
    sessions: usize,

    /// The window's `limit` (the server's default when absent).
    #[arg(long)]
    limit: Option<usize>,

    /// Sessions being opened at once (before the subscribes).
    #[arg(long, default_value_t = 100)]
    open_concurrency: usize,

    /// HTTP clients reading `/api/v1/stats` one request after the other while the snapshots go
    /// out (0: none).
    #[arg(long, default_value_t = 4)]
    http_clients: usize,

    /// Seconds allowed for every snapshot to arrive.
    #[arg(long, default_value_t = 60.0)]
    snapshot_timeout: f64,
}

/// What one session saw after the signal.
type Received = Result<(Duration, usize), String>;

pub async fn run(args: SnapshotsArgs) -> Result<()> {
    if args.sessions == 0 || args.open_concurrency == 0 {
        bail!("--sessions and --open-concurrency must be positive");
    }
    let target = Arc::new(Target::parse(&args.common.url)?);
    let mut settings = common::common_settings(&target, &args.common.users);
    let client = common::http_client()?;
    let tokens = common::login_all(&client, &target, &args.common.users).await?;
    let limit = Duration::from_secs_f64(args.common.open_timeout);
    let wait = Duration::from_secs_f64(args.snapshot_timeout);
    let subscribe = match args.limit {
        Some(l) => {
            json!({"type": "subscribe", "id": 1, "topics": ["queue"], "queue": {"limit": l}})
        }
        None => json!({"type": "subscribe", "id": 1, "topics": ["queue"]}),
    }
    .to_string();
    settings.extend([
        (
            "sessions subscribing at once".into(),
            args.sessions.to_string(),
        ),
        ("subscribe".into(), subscribe.clone()),
        (
            "HTTP clients meanwhile".into(),
            args.http_clients.to_string(),
        ),
        (
            "measured".into(),
            "signal → last snapshot received; GET /api/v1/stats latency meanwhile".into(),
        ),
    ]);
    common::print_table("snapshots: settings", &settings);

    // Open and welcome every session; each then waits for the signal.
    let (opened_tx, mut opened_rx) = mpsc::unbounded_channel::<Result<(), String>>();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Received>();
    let (go_tx, go_rx) = watch::channel::<Option<Instant>>(None);
    let gate = Arc::new(Semaphore::new(args.open_concurrency));
    let subscribe: Arc<str> = subscribe.into();
    let mut tasks = Vec::with_capacity(args.sessions);
    for i in 0..args.sessions {
        let token = tokens[i % tokens.len()].clone();
        let (target, gate, subscribe) = (target.clone(), gate.clone(), subscribe.clone());
        let (opened, done, go) = (opened_tx.clone(), done_tx.clone(), go_rx.clone());
        tasks.push(tokio::spawn(async move {
            session(
                &target, &token, limit, wait, gate, &subscribe, opened, done, go,
            )
            .await
        }));
    }
    drop((opened_tx, done_tx));
    let mut failures = Tally::default();
    let mut open = 0;
    while let Some(r) = opened_rx.recv().await {
        match r {
            Ok(()) => open += 1,
            Err(reason) => failures.add(reason),
        }
        if open + failures.total() == args.sessions {
            break;
        }
    }
    println!(
        "{open} of {} sessions open; load average {}",
        args.sessions,
        common::loadavg()
    );
    if open == 0 {
        bail!("no session opened");
    }

    // The HTTP readers, then the signal.
    let (stop_tx, stop_rx) = watch::channel(false);
    let reader_token = tokens[0].clone();
    let readers: Vec<_> = (0..args.http_clients)
        .map(|_| {
            let (client, target, token, stop) = (
                client.clone(),
                target.clone(),
                reader_token.clone(),
                stop_rx.clone(),
            );
            tokio::spawn(async move { read_stats(&client, &target, &token, stop).await })
        })
        .collect();
    let go = Instant::now();
    let _ = go_tx.send(Some(go));
    let mut received = Vec::with_capacity(open);
    let mut sizes = Vec::with_capacity(open);
    let mut lost = Tally::default();
    while let Some(r) = done_rx.recv().await {
        match r {
            Ok((at, bytes)) => {
                received.push(at);
                sizes.push(bytes);
            }
            Err(reason) => lost.add(reason),
        }
        if received.len() + lost.total() == open {
            break;
        }
    }
    let all_in = go.elapsed();
    let _ = stop_tx.send(true);
    let mut http = Vec::new();
    let mut http_errors = 0;
    for r in readers {
        let (samples, errors) = r.await?;
        http.extend(samples);
        http_errors += errors;
    }
    for t in tasks {
        let _ = t.await;
    }

    let received = Latencies::new(received);
    let http = Latencies::new(http);
    let bytes = sizes.iter().max().copied().unwrap_or(0);
    let mut rows = vec![
        (
            "sessions open".into(),
            format!("{open} of {}", args.sessions),
        ),
        ("open failures".into(), failures.total().to_string()),
    ];
    rows.extend(failures.rows());
    rows.extend([
        ("snapshots received".into(), received.len().to_string()),
        (
            "sessions without a snapshot".into(),
            lost.total().to_string(),
        ),
    ]);
    rows.extend(lost.rows());
    rows.extend([
        ("snapshot size (largest)".into(), format!("{bytes} bytes")),
        (
            "signal → last snapshot".into(),
            format!("{:.3} s", all_in.as_secs_f64()),
        ),
    ]);
    rows.extend(received.rows("signal → snapshot", &[50.0, 99.0]));
    rows.push(("HTTP reads meanwhile".into(), http.len().to_string()));
    rows.push(("HTTP errors meanwhile".into(), http_errors.to_string()));
    rows.extend(http.rows("GET /api/v1/stats", &[50.0, 99.0]));
    rows.extend([
        ("load average at end (1/5/15 min)".into(), common::loadavg()),
        (
            "target: all snapshots in < 2 s".into(),
            common::verdict((lost.total() == 0).then_some(all_in.as_secs_f64()), 2.0),
        ),
        (
            "target: HTTP p99 < 50 ms".into(),
            common::verdict(http.pct(99.0).map(|d| d.as_secs_f64() * 1e3), 50.0),
        ),
    ]);
    common::print_table("snapshots: results", &rows);
    Ok(())
}

/// Opens a session, waits for the signal, subscribes, and reports when the snapshot came and
/// its size.
#[allow(clippy::too_many_arguments)]
async fn session(
    target: &Target,
    token: &str,
    limit: Duration,
    wait: Duration,
    gate: Arc<Semaphore>,
    subscribe: &str,
    opened: mpsc::UnboundedSender<Result<(), String>>,
    done: mpsc::UnboundedSender<Received>,
    mut go: watch::Receiver<Option<Instant>>,
) {
    let permit = gate.acquire_owned().await;
    let ws = common::open_session(target, token, limit).await;
    drop(permit);
    let mut ws = match ws {
        Ok((ws, _)) => ws,
        Err(reason) => {
            let _ = opened.send(Err(reason));
            return;
        }
    };
    let _ = opened.send(Ok(()));
    let start = loop {
        if let Some(at) = *go.borrow_and_update() {
            break at;
        }
        if go.changed().await.is_err() {
            return;
        }
    };
    let outcome = tokio::time::timeout(wait, async {
        ws.send(Message::text(subscribe))
            .await
            .map_err(|e| format!("subscribe: {}", common::ws_error(&e)))?;
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    let at = start.elapsed();
                    // The snapshot is the one big message: look at its start only.
                    let head = &text.as_bytes()[..text.len().min(64)];
                    if head.starts_with(br#"{"type":"snapshot""#) {
                        return Ok((at, text.len()));
                    }
                    if head.starts_with(br#"{"type":"error""#) {
                        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                        return Err(format!("error {}", v["code"].as_str().unwrap_or("?")));
                    }
                }
                Some(Ok(Message::Close(frame))) => return Err(common::close_reason(frame)),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(format!("read: {}", common::ws_error(&e))),
                None => return Err("end of stream before the snapshot".into()),
            }
        }
    })
    .await
    .unwrap_or_else(|_| Err(format!("no snapshot within {wait:?}")));
    let _ = done.send(outcome);
    let _ = tokio::time::timeout(Duration::from_secs(5), ws.close(None)).await;
}

/// `GET /api/v1/stats`, one after the other, until told to stop: the latencies and the count
/// of failed requests.
async fn read_stats(
    client: &reqwest::Client,
    target: &Target,
    token: &str,
    stop: watch::Receiver<bool>,
) -> (Vec<Duration>, usize) {
    let url = format!("{}/api/v1/stats", target.base);
    let mut samples = Vec::new();
    let mut errors = 0;
    while !*stop.borrow() {
        let sent = Instant::now();
        match client.get(&url).bearer_auth(token).send().await {
            Ok(r) if r.status().is_success() => {
                let _ = r.bytes().await;
                samples.push(sent.elapsed());
            }
            _ => errors += 1,
        }
    }
    (samples, errors)
}
