//! Pushes over real sockets against the real binary: a slow consumer is closed with 1013 and
//! the server's memory stays bounded; an HTTP decision reaches 50 subscribers; a resume with
//! `since` while a writer appends loses and repeats nothing; a shutdown closes every session
//! with 1001; and `/metrics` shows every WebSocket metric with what these caused.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::ws::*;
use common::*;
use futures_util::future::join_all;
use futures_util::StreamExt;
use serde_json::{json, Value};

fn submission(subject_ref: &str, excerpt_len: usize) -> Value {
    json!({
        "subject_ref": subject_ref,
        "excerpt": "e".repeat(excerpt_len),
        "assessment": {"culpability": "knowingly", "confidence": 0.87,
                       "rationale": "Aware of the near-certain result."},
        "priority": "normal",
    })
}

/// Submits `count` cases as `token`, `concurrency` at a time, with one HTTP client; calls
/// `each` with every answer's position. Returns the positions.
async fn submit_cases(
    base_url: &str,
    token: &str,
    count: usize,
    excerpt_len: usize,
    concurrency: usize,
    each: impl Fn(u64),
) -> Vec<u64> {
    let http = client();
    let url = format!("{base_url}/api/v1/cases");
    futures_util::stream::iter(0..count)
        .map(|i| {
            let request = http
                .post(&url)
                .bearer_auth(token)
                .json(&submission(&format!("subject-{i}"), excerpt_len));
            async move {
                let response = request.send().await.expect("POST a case");
                assert_json(response, 201).await["position"]
                    .as_u64()
                    .expect("a position")
            }
        })
        .buffer_unordered(concurrency)
        .map(|position| {
            each(position);
            position
        })
        .collect()
        .await
}

/// The resident memory of a process, in bytes.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kb * 1024
}

/// Checks one `audit` update of the resume test: the next position after the last one seen
/// (or after the snapshot's `start`), for the event at that position.
fn check_update(update: &Value, start: u64, seen: &mut Vec<u64>) {
    assert_eq!(update["type"], "update", "{update}");
    assert_eq!(update["topic"], "audit", "{update}");
    assert_eq!(update["event"], "case_submitted", "{update}");
    let position = update["position"].as_u64().unwrap();
    assert_eq!(update["data"]["position"], position, "{update}");
    assert_eq!(update["data"]["type"], "case_submitted", "{update}");
    let expected = seen.last().map_or(start + 1, |p| p + 1);
    assert_eq!(
        position,
        expected,
        "a gap or a repeat after {:?}",
        seen.last()
    );
    seen.push(position);
}

#[tokio::test]
async fn a_slow_consumer_is_closed_with_1013_and_the_server_memory_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start_demo(
        &data,
        &[
            "--outbound-queue-messages",
            "16",
            "--outbound-queue-bytes",
            "65536",
        ],
    );
    let classifier = login(&server, "classifier", &demo_password("classifier")).await;
    let reviewer = login(&server, "reviewer", &demo_password("reviewer")).await;

    // A warm-up round, so that the comparison measures the pushes and not the first
    // allocations of the store, the models and the HTTP stack.
    submit_cases(&server.base_url, &classifier, 100, 1000, 8, |_| {}).await;

    // A subscriber to `queue` that stops reading after its snapshot. Its socket's receive
    // buffer is small, so the server's buffers fill, then its outbound queue.
    let mut slow = connect_small_buffer(&server, &reviewer, 4096).await;
    slow.recv_type("welcome").await;
    let subscribed = slow.subscribe("q", &["queue"], None).await;
    // The snapshot is larger than the whole byte bound of the queue; it is sent all the same.
    let snapshot = slow.recv_type("snapshot").await;
    assert!(snapshot.to_string().len() > 65536);
    let after = subscribed["position"].as_u64().unwrap();

    let pid = server.child.id();
    let before = rss_bytes(pid);

    // 2,000 updates while it does not read: the server's memory does not follow them.
    let s = &server;
    let mut last = *submit_cases(&s.base_url, &classifier, 2000, 1000, 8, |_| {})
        .await
        .iter()
        .max()
        .unwrap();
    let grown = rss_bytes(pid).saturating_sub(before);
    assert!(
        grown < 50 * 1024 * 1024,
        "the server grew by {} MiB while a client did not read",
        grown / (1024 * 1024)
    );

    // More until the server has given up on it (its socket and its queue are full), then
    // many more: the client stays away for a while after its close.
    let mut pushed = 2000;
    loop {
        let text = scrape(s).await;
        if metric(&text, "websocket_slow_consumer_disconnects_total") == 1.0 {
            break;
        }
        assert!(pushed < 10_000, "no slow consumer after {pushed} updates");
        let positions = submit_cases(&s.base_url, &classifier, 100, 1000, 8, |_| {}).await;
        last = last.max(*positions.iter().max().unwrap());
        pushed += 100;
    }
    let positions = submit_cases(&s.base_url, &classifier, 2000, 10, 8, |_| {}).await;
    last = last.max(*positions.iter().max().unwrap());

    // Reading now: updates in order, then the close 1013 `slow_consumer` (no error message:
    // codes under 4000 come alone).
    let before_close = slow.expect_close(1013, "slow_consumer").await;
    assert!(!before_close.is_empty());
    let mut previous = after;
    for update in &before_close {
        assert_eq!(update["type"], "update", "{update}");
        assert_eq!(update["topic"], "queue", "{update}");
        assert_eq!(update["event"], "case_submitted", "{update}");
        let position = update["position"].as_u64().unwrap();
        assert!(position > previous, "{position} after {previous}");
        previous = position;
    }
    assert!(
        previous < last,
        "the slow consumer got everything ({previous} of {last}): it was not slow"
    );

    let text = scrape(&server).await;
    assert_eq!(
        metric(&text, "websocket_slow_consumer_disconnects_total"),
        1.0
    );
    assert_eq!(metric(&text, "registry_sessions"), 0.0);
    assert_eq!(metric(&text, "websocket_active_connections"), 0.0);
    assert_eq!(
        metric(&text, "registry_subscriptions{topic=\"queue\"}"),
        0.0
    );
}

#[tokio::test]
async fn a_decision_reaches_fifty_subscribers_and_a_shutdown_closes_them_going_away() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start_demo(
        &data,
        &[
            "--max-connections-per-user",
            "100",
            "--connect-attempts-per-ip",
            "1000",
        ],
    );
    let mut tokens = Vec::new();
    for user in ["reviewer", "senior", "auditor", "classifier"] {
        tokens.push(login(&server, user, &demo_password(user)).await);
    }
    tokens.push(admin_token(&server).await);
    let reviewer = tokens[0].clone();
    let classifier = tokens[3].clone();

    // 50 subscribers of `queue`, ten per user.
    let mut subscribers = Vec::new();
    for i in 0..50 {
        let (mut ws, _) = open(&server, &tokens[i % tokens.len()]).await;
        ws.subscribe(&format!("s{i}"), &["queue"], None).await;
        let snapshot = ws.recv_type("snapshot").await;
        assert_eq!(snapshot["topic"], "queue");
        let data = &snapshot["data"];
        assert!(
            data["cases"].is_array() && data["total"].is_u64(),
            "{snapshot}"
        );
        subscribers.push(ws);
    }
    let text = scrape(&server).await;
    assert_eq!(
        metric(&text, "registry_subscriptions{topic=\"queue\"}"),
        50.0
    );
    assert_eq!(metric(&text, "registry_sessions"), 50.0);
    assert_eq!(metric(&text, "websocket_active_connections"), 50.0);

    // A case submitted, claimed and decided over HTTP.
    let case = assert_json(
        post(
            &server,
            "/api/v1/cases",
            Some(&classifier),
            &submission("fifty", 100),
        )
        .await,
        201,
    )
    .await;
    let id = case["id"].as_str().unwrap().to_owned();
    let claimed = client()
        .post(server.url(&format!("/api/v1/cases/{id}/claim")))
        .bearer_auth(&reviewer)
        .send()
        .await
        .unwrap();
    assert_json(claimed, 200).await;
    let decided = post(
        &server,
        &format!("/api/v1/cases/{id}/decision"),
        Some(&reviewer),
        &json!({"decision": "confirm", "notes": "Agreed."}),
    )
    .await;
    let decided = assert_json(decided, 200).await;
    let decided_at = decided["position"].as_u64().unwrap();

    // Every subscriber gets the three updates of the case, in order, the last `case_decided`
    // with the case as decided.
    let received = join_all(subscribers.iter_mut().map(|ws| {
        let id = id.clone();
        async move {
            let mut events = Vec::new();
            loop {
                let update = ws.recv_type("update").await;
                assert_eq!(update["topic"], "queue", "{update}");
                assert_eq!(update["data"]["id"], id.as_str(), "{update}");
                events.push(update["event"].as_str().unwrap().to_owned());
                if update["event"] == "case_decided" {
                    return (events, update);
                }
            }
        }
    }))
    .await;
    assert_eq!(received.len(), 50);
    for (events, update) in &received {
        assert_eq!(events, &["case_submitted", "case_claimed", "case_decided"]);
        assert_eq!(update["position"], decided_at, "{update}");
        assert_eq!(update["data"], decided, "{update}");
        assert_case_shape(&update["data"]);
    }

    // One leaves: the server answers its close with 1000.
    let leaving = subscribers.pop().unwrap();
    assert_eq!(
        leaving.close_normally().await,
        Some((1000, "normal".to_owned()))
    );
    let s = &server;
    eventually(
        "the registry to forget the closed session",
        Duration::from_secs(5),
        || async move {
            let text = scrape(s).await;
            (metric(&text, "registry_sessions") == 49.0).then_some(())
        },
    )
    .await;

    // Every WebSocket metric of the doc is there, with what this test caused.
    let text = scrape(&server).await;
    assert_every_ws_metric(&text);
    for (series, value) in [
        ("websocket_connections_total{status=\"accepted\"}", 50.0),
        ("websocket_active_connections", 49.0),
        ("registry_sessions", 49.0),
        ("registry_subscriptions{topic=\"queue\"}", 49.0),
        ("websocket_connection_duration_seconds_count", 1.0),
        ("websocket_auth_latency_seconds_count", 50.0),
        (
            "websocket_messages_sent_total{message_type=\"welcome\"}",
            50.0,
        ),
        (
            "websocket_messages_sent_total{message_type=\"subscribed\"}",
            50.0,
        ),
        (
            "websocket_messages_sent_total{message_type=\"snapshot\"}",
            50.0,
        ),
        (
            "websocket_messages_sent_total{message_type=\"update\"}",
            150.0,
        ),
        ("websocket_messages_received_total", 50.0),
    ] {
        assert_eq!(metric(&text, series), value, "{series}");
    }
    assert!(metric(&text, "push_fanout_duration_seconds_count") >= 3.0);

    // SIGTERM: every open session gets 1001 `going_away`, and the process exits 0.
    let status = tokio::task::spawn_blocking(move || server.terminate());
    let closes = join_all(subscribers.iter_mut().map(|ws| async move {
        let before = ws.expect_close(1001, "going_away").await;
        assert!(before.is_empty(), "{before:?}");
    }));
    closes.await;
    let status = tokio::time::timeout(Duration::from_secs(60), status)
        .await
        .expect("the server stopped in time")
        .expect("the waiting task");
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn a_resume_with_since_while_a_writer_appends_misses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start_demo(&data, &["--connect-attempts-per-ip", "1000"]);
    let auditor = login(&server, "auditor", &demo_password("auditor")).await;
    let classifier = login(&server, "classifier", &demo_password("classifier")).await;

    // The writer: 2,200 cases, one event each, four requests at a time.
    const CASES: usize = 2200;
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let base_url = server.base_url.clone();
        let written = written.clone();
        tokio::spawn(async move {
            submit_cases(&base_url, &classifier, CASES, 200, 4, |_| {
                written.fetch_add(1, Ordering::Relaxed);
            })
            .await
        })
    };
    let w = &written;
    eventually(
        "the writer to start",
        Duration::from_secs(30),
        || async move { (w.load(Ordering::Relaxed) >= 20).then_some(()) },
    )
    .await;

    // First session: a snapshot at P, then every update after P, one position at a time.
    let (mut first, _) = open(&server, &auditor).await;
    let subscribed = first.subscribe("a", &["audit"], None).await;
    let start = subscribed["position"].as_u64().unwrap();
    let snapshot = first.recv_type("snapshot").await;
    assert_eq!(snapshot["topic"], "audit");
    assert_eq!(snapshot["position"], start);
    let mut seen: Vec<u64> = Vec::new();
    while seen.len() < 600 {
        let update = first.recv().await;
        if seen.is_empty() {
            assert_audit_event_shape(&update["data"]);
        }
        check_update(&update, start, &mut seen);
    }
    let highest = *seen.last().unwrap();

    // Gone (the connection drops), while the writer goes on.
    drop(first);
    let at_drop = written.load(Ordering::Relaxed);
    let w = &written;
    eventually(
        "the writer to append while the client is away",
        Duration::from_secs(60),
        || async move { (w.load(Ordering::Relaxed) >= at_drop + 300).then_some(()) },
    )
    .await;

    // Back with `since`: every update after `highest`, once each, in order, then live ones,
    // up to the writer's last.
    let (mut second, _) = open(&server, &auditor).await;
    second.subscribe("b", &["audit"], Some(highest)).await;
    let positions = tokio::time::timeout(Duration::from_secs(120), writer)
        .await
        .expect("the writer finished in time")
        .expect("the writer");
    let last = *positions.iter().max().unwrap();
    assert_eq!(positions.len(), CASES);
    while *seen.last().unwrap() < last {
        let update = second.recv().await;
        check_update(&update, start, &mut seen);
    }
    assert!(seen.len() >= 2000, "{} updates", seen.len());
    assert_eq!(seen.len() as u64, last - start);
    // Nothing more: a ping's pong is the next message.
    second
        .send_json(&json!({"type": "ping", "id": "end"}))
        .await;
    assert_eq!(second.recv_type("pong").await["id"], "end");
}

/// A WebSocket opened by a connection's first request is written straight into its socket; one
/// opened after another request on the same connection goes through the response body
/// (`docs/adr/0018-direct-websocket-writes.md`). Both get the same frames and close the same way.
#[tokio::test]
async fn a_websocket_opened_after_another_request_on_its_connection_gets_the_same_frames() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_demo(&dir.path().join("data"), &[]);
    let reviewer = login(&server, "reviewer", &demo_password("reviewer")).await;
    let classifier = login(&server, "classifier", &demo_password("classifier")).await;
    let (mut first, _) = open(&server, &reviewer).await;
    let mut later = connect_after_a_request(&server, &reviewer).await;
    let welcome = later.recv_type("welcome").await;
    assert_eq!(welcome["user"]["username"], "reviewer", "{welcome}");
    let mut sessions = [first, later];
    for (i, ws) in sessions.iter_mut().enumerate() {
        ws.subscribe(&format!("s{i}"), &["queue"], None).await;
        let snapshot = ws.recv_type("snapshot").await;
        assert_eq!(snapshot["topic"], "queue", "{snapshot}");
    }
    let case = assert_json(
        post(
            &server,
            "/api/v1/cases",
            Some(&classifier),
            &submission("second-request", 20_000),
        )
        .await,
        201,
    )
    .await;
    let mut updates = Vec::new();
    for ws in sessions.iter_mut() {
        let update = ws.recv_type("update").await;
        assert_eq!(update["event"], "case_submitted", "{update}");
        assert_eq!(update["data"]["id"], case["id"], "{update}");
        updates.push(update);
    }
    assert_eq!(updates[0], updates[1]);
    [first, later] = sessions;
    assert_eq!(
        first.close_normally().await,
        Some((1000, "normal".to_owned()))
    );
    assert_eq!(
        later.close_normally().await,
        Some((1000, "normal".to_owned()))
    );
}
