//! Snapshots over real sockets against the real binary, now that they are built away from the
//! projector: sessions that subscribe while a writer appends get snapshots that meet their
//! updates exactly (none missed, none repeated); subscribes and unsubscribes sent together are
//! answered in order; and subscribes beyond the per-session rate are refused with
//! `subscribe_rate` while the session stays open.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::ws::*;
use common::*;
use futures_util::StreamExt;
use serde_json::{json, Value};

fn submission(i: usize) -> Value {
    let priority = ["low", "normal", "high", "urgent"][i % 4];
    json!({
        "subject_ref": format!("snapshot-{i}"),
        "excerpt": format!("excerpt {i}"),
        "assessment": {"culpability": "negligently", "confidence": 0.6, "rationale": "r"},
        "priority": priority,
    })
}

/// The ids of every undecided case, over HTTP.
async fn undecided_ids(server: &Server, token: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(cursor) => format!("/api/v1/cases?limit=500&after={cursor}"),
            None => "/api/v1/cases?limit=500".to_owned(),
        };
        let page = assert_json(get(server, &path, Some(token)).await, 200).await;
        for case in page["cases"].as_array().unwrap() {
            ids.insert(case["id"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => return ids,
        }
    }
}

#[tokio::test]
async fn snapshots_taken_while_a_writer_appends_meet_their_updates_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_demo(
        &dir.path().join("data"),
        &[
            "--max-connections-per-user",
            "100",
            "--connect-attempts-per-ip",
            "1000",
        ],
    );
    let classifier = login(&server, "classifier", &demo_password("classifier")).await;
    let reviewer = login(&server, "reviewer", &demo_password("reviewer")).await;

    // The writer: 600 cases, one event each, four requests at a time.
    const CASES: usize = 600;
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (base_url, written, token) = (server.base_url.clone(), written.clone(), classifier);
        tokio::spawn(async move {
            let http = client();
            let url = format!("{base_url}/api/v1/cases");
            futures_util::stream::iter(0..CASES)
                .map(|i| {
                    let request = http.post(&url).bearer_auth(&token).json(&submission(i));
                    let written = written.clone();
                    async move {
                        let case = assert_json(request.send().await.expect("POST"), 201).await;
                        written.fetch_add(1, Ordering::Relaxed);
                        case["position"].as_u64().expect("a position")
                    }
                })
                .buffer_unordered(4)
                .collect::<Vec<u64>>()
                .await
        })
    };

    // Twenty sessions subscribe one after the other while the writer goes on.
    let mut sessions = Vec::new();
    for i in 0..20u64 {
        let w = &written;
        let target = i * CASES as u64 / 25;
        eventually(
            "the writer to go on",
            Duration::from_secs(60),
            || async move { (w.load(Ordering::Relaxed) >= target).then_some(()) },
        )
        .await;
        let (mut ws, _) = open(&server, &reviewer).await;
        let subscribe = json!({"type": "subscribe", "id": i, "topics": ["queue", "stats"],
                               "queue": {"limit": 1000}});
        ws.send_json(&subscribe).await;
        let subscribed = ws.recv_type("subscribed").await;
        let position = subscribed["position"].as_u64().unwrap();
        let queue = ws.recv_type("snapshot").await;
        assert_eq!(
            (&queue["topic"], &queue["position"]),
            (&json!("queue"), &json!(position))
        );
        assert_eq!(
            queue["data"]["next"],
            Value::Null,
            "the window holds every case"
        );
        let stats = ws.recv_type("snapshot").await;
        assert_eq!(
            (&stats["topic"], &stats["position"]),
            (&json!("stats"), &json!(position))
        );
        let ids: BTreeSet<String> = queue["data"]["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(queue["data"]["total"], ids.len());
        sessions.push((ws, position, ids));
    }
    let positions = tokio::time::timeout(Duration::from_secs(120), writer)
        .await
        .expect("the writer finished in time")
        .expect("the writer");
    let last = *positions.iter().max().unwrap();
    let expected = undecided_ids(&server, &reviewer).await;

    // Each session: after its snapshot at P, one `queue` and one `stats` update for every
    // position from P + 1 to the last, in order; its snapshot and updates make the whole queue.
    for (mut ws, start, mut ids) in sessions {
        let mut next = [start + 1, start + 1];
        while next.iter().any(|p| *p <= last) {
            let update = ws.recv_type("update").await;
            let position = update["position"].as_u64().unwrap();
            let which = match update["topic"].as_str() {
                Some("queue") => 0,
                Some("stats") => 1,
                other => panic!("an update of {other:?}: {update}"),
            };
            assert_eq!(position, next[which], "a gap or a repeat: {update}");
            next[which] += 1;
            if which == 0 {
                assert_eq!(update["event"], "case_submitted", "{update}");
                let id = update["data"]["id"].as_str().unwrap().to_owned();
                assert!(ids.insert(id), "a case of the snapshot again: {update}");
            }
        }
        assert_eq!(ids, expected, "the snapshot of {start} and its updates");
        ws.send_json(&json!({"type": "ping", "id": "end"})).await;
        assert_eq!(ws.recv_type("pong").await["id"], "end", "nothing more");
    }
}

#[tokio::test]
async fn subscribes_and_unsubscribes_sent_together_are_answered_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_demo(&dir.path().join("data"), &[]);
    let reviewer = login(&server, "reviewer", &demo_password("reviewer")).await;
    let classifier = login(&server, "classifier", &demo_password("classifier")).await;
    let (mut ws, _) = open(&server, &reviewer).await;
    for message in [
        json!({"type": "subscribe", "id": 1, "topics": ["queue"]}),
        json!({"type": "unsubscribe", "id": 2, "topics": ["queue"]}),
        json!({"type": "subscribe", "id": 3, "topics": ["stats"]}),
        json!({"type": "ping", "id": 4}),
    ] {
        ws.send_json(&message).await;
    }
    let mut seen = Vec::new();
    for _ in 0..6 {
        let m = ws.recv().await;
        seen.push(format!("{} {} {}", m["type"], m["id"], m["topic"]).replace('"', ""));
    }
    // The ping is answered at once, whatever waits for snapshots; the rest in order.
    let pong = seen.iter().position(|m| m.starts_with("pong")).unwrap();
    seen.remove(pong);
    assert_eq!(
        seen,
        [
            "subscribed 1 null",
            "snapshot null queue",
            "unsubscribed 2 null",
            "subscribed 3 null",
            "snapshot null stats",
        ]
    );
    // Subscribed to `stats` only.
    post(&server, "/api/v1/cases", Some(&classifier), &submission(1)).await;
    let update = ws.recv_type("update").await;
    assert_eq!(update["topic"], "stats", "{update}");
    ws.send_json(&json!({"type": "ping", "id": "end"})).await;
    assert_eq!(ws.recv_type("pong").await["id"], "end");
}

#[tokio::test]
async fn subscribes_beyond_the_rate_are_refused_and_the_session_stays() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_demo(&dir.path().join("data"), &[]);
    let reviewer = login(&server, "reviewer", &demo_password("reviewer")).await;
    let (mut ws, _) = open(&server, &reviewer).await;
    // Twenty at once: the burst (10) and whatever the rate (5 a second) refilled meanwhile.
    for id in 0..20 {
        ws.send_json(&json!({"type": "subscribe", "id": id, "topics": ["stats"]}))
            .await;
    }
    // A refusal comes from the session at once, so it may arrive between another subscribe's
    // answer and its snapshot (which the registry sends): count them in any order.
    let (mut subscribed, mut snapshots, mut refused) = (0, 0, 0);
    while subscribed + refused < 20 || snapshots < subscribed {
        let m = ws.recv().await;
        match m["type"].as_str() {
            Some("subscribed") => subscribed += 1,
            Some("snapshot") => {
                assert_eq!(m["topic"], "stats", "{m}");
                snapshots += 1;
                assert!(snapshots <= subscribed, "a snapshot before its answer: {m}");
            }
            Some("error") => {
                assert_error(&m, "subscribe_rate");
                assert!(m["id"].is_u64(), "{m}");
                refused += 1;
            }
            _ => panic!("{m}"),
        }
    }
    assert!(subscribed >= 10, "the burst is allowed: {subscribed}");
    assert!(refused >= 1, "twenty at once exceed the burst");
    ws.send_json(&json!({"type": "ping", "id": "still"})).await;
    assert_eq!(ws.recv_type("pong").await["id"], "still");
    let text = scrape(&server).await;
    assert_eq!(
        metric(
            &text,
            "websocket_rate_limited_total{limit=\"subscribe_rate\"}"
        ),
        refused as f64
    );
}
