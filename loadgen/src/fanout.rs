//! `fanout`: many sessions subscribed to `queue`; then decisions over HTTP, one at a time, each
//! timed from sending the decision request to the moment the last subscriber has received the
//! `case_decided` update for that case.
//!
//! Per decision: the classifier submits a case, the reviewer claims it, the load generator
//! waits until every subscriber has the `case_claimed` update (so each decision starts from a
//! quiet server), then sends the decision. Receipt times are taken as soon as a subscriber's
//! socket yields the frame, before any parsing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use clap::Args;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_tungstenite::tungstenite::Message;

use crate::common::{self, Credential, Latencies, Tally, Target};
use crate::Common;

#[derive(Debug, Args)]
pub struct FanoutArgs {
    #[command(flatten)]
    common: Common,

    /// Sessions subscribed to `queue`.
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,

    /// Decisions to time, one after the other.
    #[arg(long, default_value_t = 50)]
    decisions: usize,

    /// Sessions being opened (connect to snapshot) at once.
    #[arg(long, default_value_t = 100)]
    open_concurrency: usize,

    /// Who submits the cases.
    #[arg(long, default_value = "classifier")]
    classifier: Credential,

    /// Who claims and decides them.
    #[arg(long, default_value = "reviewer")]
    reviewer: Credential,

    /// Seconds to wait for every subscriber to receive one update before giving up on it.
    #[arg(long, default_value_t = 30.0)]
    update_timeout: f64,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Event {
    Claimed,
    Decided,
}

enum Report {
    /// A subscriber received an update for a case.
    Update {
        at: Instant,
        event: Event,
        case_id: String,
    },
    /// A subscriber's session ended early.
    Gone(String),
}

pub async fn run(args: FanoutArgs) -> Result<()> {
    if args.subscribers == 0 || args.open_concurrency == 0 {
        bail!("--subscribers and --open-concurrency must be positive");
    }
    let target = Arc::new(Target::parse(&args.common.url)?);
    let mut settings = common::common_settings(&target, &args.common.users);
    let client = common::http_client()?;
    let tokens = common::login_all(&client, &target, &args.common.users).await?;
    let classifier = common::login(&client, &target, &args.classifier).await?;
    let reviewer = common::login(&client, &target, &args.reviewer).await?;
    let limit = Duration::from_secs_f64(args.common.open_timeout);
    let wait_limit = Duration::from_secs_f64(args.update_timeout);
    settings.extend([
        (
            "subscribers (topic queue)".into(),
            args.subscribers.to_string(),
        ),
        ("decisions".into(), args.decisions.to_string()),
        ("open concurrency".into(), args.open_concurrency.to_string()),
        (
            "classifier / reviewer".into(),
            format!("{} / {}", args.classifier, args.reviewer),
        ),
        (
            "measured".into(),
            "decision request sent → case_decided received by the last subscriber".into(),
        ),
    ]);
    common::print_table("fanout: settings", &settings);

    // Open the subscribers.
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<Result<(), String>>();
    let (report_tx, mut reports) = mpsc::unbounded_channel::<Report>();
    let (stop_tx, stop_rx) = watch::channel(false);
    let gate = Arc::new(Semaphore::new(args.open_concurrency));
    let opening = Instant::now();
    let mut tasks = Vec::with_capacity(args.subscribers);
    for i in 0..args.subscribers {
        let token = tokens[i % tokens.len()].clone();
        let (target, gate) = (target.clone(), gate.clone());
        let (ready, report, stop) = (ready_tx.clone(), report_tx.clone(), stop_rx.clone());
        tasks.push(tokio::spawn(async move {
            subscriber(&target, &token, limit, gate, ready, report, stop).await
        }));
    }
    drop((ready_tx, report_tx));
    let mut failures = Tally::default();
    let mut alive = 0usize;
    while let Some(r) = ready_rx.recv().await {
        match r {
            Ok(()) => alive += 1,
            Err(reason) => failures.add(reason),
        }
        if alive + failures.total() == args.subscribers {
            break;
        }
    }
    let opened_in = opening.elapsed();
    let subscribed = alive;
    println!(
        "{subscribed} of {} subscribers have their snapshot after {:.2} s; load average {}",
        args.subscribers,
        opened_in.as_secs_f64(),
        common::loadavg()
    );
    if alive == 0 {
        bail!("no subscriber got its snapshot");
    }

    // The decisions.
    let mut to_last = Vec::with_capacity(args.decisions);
    let mut to_first = Vec::with_capacity(args.decisions);
    let mut answered = Vec::with_capacity(args.decisions);
    let mut incomplete = 0usize;
    let mut lost = Tally::default();
    for k in 0..args.decisions {
        let case = common::post_json(
            &client,
            &format!("{}/api/v1/cases", target.base),
            Some(&classifier),
            &json!({
                "subject_ref": format!("loadgen-fanout-{k}"),
                "excerpt": "Synthetic case from adjudicator-loadgen fanout.",
                "assessment": {"culpability": "knowingly", "confidence": 0.7, "rationale": ""},
                "priority": "normal",
            }),
        )
        .await?;
        let id = case["id"]
            .as_str()
            .ok_or_else(|| anyhow!("submitted case has no id: {case}"))?
            .to_owned();
        let case_url = format!("{}/api/v1/cases/{id}", target.base);
        common::post_json(
            &client,
            &format!("{case_url}/claim"),
            Some(&reviewer),
            &json!({}),
        )
        .await?;
        let claimed = collect(
            &mut reports,
            &id,
            Event::Claimed,
            &mut alive,
            &mut lost,
            wait_limit,
        )
        .await;
        if claimed.count < alive {
            println!(
                "decision {k}: only {} of {alive} subscribers saw the claim",
                claimed.count
            );
        }

        let sent = Instant::now();
        common::post_json(
            &client,
            &format!("{case_url}/decision"),
            Some(&reviewer),
            &json!({"decision": "confirm", "notes": "ok"}),
        )
        .await?;
        answered.push(sent.elapsed());
        let decided = collect(
            &mut reports,
            &id,
            Event::Decided,
            &mut alive,
            &mut lost,
            wait_limit,
        )
        .await;
        match (decided.first, decided.last) {
            (Some(first), Some(last)) if decided.count >= alive => {
                to_first.push(first.saturating_duration_since(sent));
                to_last.push(last.saturating_duration_since(sent));
            }
            _ => {
                incomplete += 1;
                println!(
                    "decision {k}: only {} of {alive} subscribers received case_decided within {wait_limit:?}",
                    decided.count
                );
            }
        }
    }

    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }

    let to_last = Latencies::new(to_last);
    let to_first = Latencies::new(to_first);
    let answered = Latencies::new(answered);
    let p99 = to_last.pct(99.0);
    let mut rows = vec![
        (
            "subscribers with snapshot".into(),
            format!("{subscribed} of {}", args.subscribers),
        ),
        (
            "subscriber open failures".into(),
            failures.total().to_string(),
        ),
    ];
    rows.extend(failures.rows());
    rows.extend([
        (
            "time to open all and get snapshots".into(),
            format!("{:.2} s", opened_in.as_secs_f64()),
        ),
        (
            "subscribers lost during the run".into(),
            lost.total().to_string(),
        ),
    ]);
    rows.extend(lost.rows());
    rows.extend([
        ("decisions timed".into(), to_last.len().to_string()),
        (
            "decisions not delivered to all".into(),
            incomplete.to_string(),
        ),
    ]);
    rows.extend(to_last.rows("decision → last subscriber", &[50.0, 90.0, 99.0]));
    rows.extend(to_first.rows("decision → first subscriber", &[50.0, 99.0]));
    rows.extend(answered.rows("decision HTTP answer", &[50.0, 99.0]));
    rows.extend([
        ("load average at end (1/5/15 min)".into(), common::loadavg()),
        (
            format!("target: last of {} p99 < 50 ms", args.subscribers),
            common::verdict(p99.map(|d| d.as_secs_f64() * 1e3), 50.0),
        ),
    ]);
    common::print_table("fanout: results", &rows);
    Ok(())
}

/// Opens one subscriber, subscribes it to `queue`, waits for the snapshot, then reports every
/// `case_claimed` and `case_decided` update until told to stop.
async fn subscriber(
    target: &Target,
    token: &str,
    limit: Duration,
    gate: Arc<Semaphore>,
    ready: mpsc::UnboundedSender<Result<(), String>>,
    report: mpsc::UnboundedSender<Report>,
    mut stop: watch::Receiver<bool>,
) {
    let permit = gate.acquire_owned().await;
    let mut ws = match common::open_session(target, token, limit).await {
        Ok((ws, _)) => ws,
        Err(reason) => {
            let _ = ready.send(Err(reason));
            return;
        }
    };
    let subscribed = tokio::time::timeout(limit, async {
        ws.send(Message::text(
            r#"{"type":"subscribe","id":1,"topics":["queue"]}"#,
        ))
        .await
        .map_err(|e| format!("subscribe: {}", common::ws_error(&e)))?;
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    match v["type"].as_str() {
                        Some("snapshot") => return Ok(()),
                        Some("error") => {
                            return Err(format!("error {}", v["code"].as_str().unwrap_or("?")))
                        }
                        _ => {}
                    }
                }
                Some(Ok(Message::Close(frame))) => return Err(common::close_reason(frame)),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(format!("read: {}", common::ws_error(&e))),
                None => return Err("end of stream before snapshot".into()),
            }
        }
    })
    .await
    .unwrap_or_else(|_| Err("no snapshot in time".into()));
    drop(permit);
    let ok = subscribed.is_ok();
    let _ = ready.send(subscribed);
    if !ok {
        return;
    }
    loop {
        tokio::select! {
            _ = stop.changed() => {
                let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
                return;
            }
            message = ws.next() => {
                let at = Instant::now();
                match message {
                    Some(Ok(Message::Text(text))) => {
                        if let Some((event, case_id)) = update_of(&text) {
                            let _ = report.send(Report::Update { at, event, case_id });
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        let _ = report.send(Report::Gone(common::close_reason(frame)));
                        return;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        let _ = report.send(Report::Gone(common::ws_error(&e)));
                        return;
                    }
                    None => {
                        let _ = report.send(Report::Gone("end of stream".into()));
                        return;
                    }
                }
            }
        }
    }
}

/// The event and case id of a `queue` update that matters here; other messages are skipped
/// without a full parse.
fn update_of(text: &str) -> Option<(Event, String)> {
    if !(text.contains("case_decided") || text.contains("case_claimed")) {
        return None;
    }
    let v: Value = serde_json::from_str(text).ok()?;
    if v["type"] != "update" || v["topic"] != "queue" {
        return None;
    }
    let event = match v["event"].as_str()? {
        "case_claimed" => Event::Claimed,
        "case_decided" => Event::Decided,
        _ => return None,
    };
    Some((event, v["data"]["id"].as_str()?.to_owned()))
}

/// Receipts of one update across the subscribers.
struct Collected {
    count: usize,
    first: Option<Instant>,
    last: Option<Instant>,
}

/// Gathers the receipts of `event` for `case_id` until every live subscriber has one or the
/// time is up. Subscribers that end meanwhile are no longer waited for.
async fn collect(
    reports: &mut mpsc::UnboundedReceiver<Report>,
    case_id: &str,
    event: Event,
    alive: &mut usize,
    lost: &mut Tally,
    limit: Duration,
) -> Collected {
    let deadline = tokio::time::Instant::now() + limit;
    let mut got = Collected {
        count: 0,
        first: None,
        last: None,
    };
    while got.count < *alive {
        let report = match tokio::time::timeout_at(deadline, reports.recv()).await {
            Ok(Some(r)) => r,
            Ok(None) | Err(_) => break,
        };
        match report {
            Report::Update {
                at,
                event: e,
                case_id: id,
            } if e == event && id == case_id => {
                got.count += 1;
                got.first = Some(got.first.map_or(at, |f| f.min(at)));
                got.last = Some(got.last.map_or(at, |l| l.max(at)));
            }
            Report::Update { .. } => {}
            Report::Gone(reason) => {
                *alive = alive.saturating_sub(1);
                lost.add(reason);
            }
        }
    }
    got
}
