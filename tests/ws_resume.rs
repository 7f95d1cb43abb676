//! Resumes from the event log over real sockets against the real binary: `subscribe` with a
//! `since` that the registry's recent pushes no longer (or never) held gets every missed update
//! from the log, exactly once and in order, then the live ones with no gap: across a restart,
//! from before a small `--resume-buffer-updates`, and for `audit` from position 1 while writers
//! append. A `since` above the head answers `bad_since`.

mod common;

use common::ws::*;
use common::*;
use futures_util::future::join_all;
use serde_json::{json, Value};

fn submission(subject_ref: &str) -> Value {
    json!({
        "subject_ref": subject_ref,
        "excerpt": "The defendant said he knew the gun was loaded.",
        "assessment": {"culpability": "knowingly", "confidence": 0.87,
                       "rationale": "Aware of the near-certain result."},
        "priority": "normal",
    })
}

/// Submits a case as `token`; answers the case.
async fn submit(server: &Server, token: &str, subject_ref: &str) -> Value {
    let answer = post(
        server,
        "/api/v1/cases",
        Some(token),
        &submission(subject_ref),
    )
    .await;
    assert_json(answer, 201).await
}

/// Claims a case as `token`; answers the case after it.
async fn claim(server: &Server, token: &str, id: &str) -> Value {
    let answer = post(
        server,
        &format!("/api/v1/cases/{id}/claim"),
        Some(token),
        &json!({}),
    )
    .await;
    assert_json(answer, 200).await
}

/// The positions of every event after `after`, from the audit API (as `auditor`).
async fn logged_after(server: &Server, auditor: &str, after: u64) -> Vec<u64> {
    let mut positions = Vec::new();
    let mut after = after;
    loop {
        let page = assert_json(
            get(
                server,
                &format!("/api/v1/audit/events?after={after}&limit=1000"),
                Some(auditor),
            )
            .await,
            200,
        )
        .await;
        let events = page["events"].as_array().expect("events");
        positions.extend(events.iter().map(|e| e["position"].as_u64().unwrap()));
        match page["next"].as_u64() {
            Some(next) => after = next,
            None => return positions,
        }
    }
}

/// The head of the log as the read models have it.
async fn head(server: &Server, auditor: &str) -> u64 {
    let head = assert_json(get(server, "/api/v1/audit/head", Some(auditor)).await, 200).await;
    head["position"].as_u64().expect("a head position")
}

/// Reads `update`s until one at `last` on `topic` arrived; answers them all, and fails on any
/// other message.
async fn updates_up_to(ws: &mut Ws, topic: &str, last: u64) -> Vec<Value> {
    let mut got = Vec::new();
    loop {
        let update = ws.recv_type("update").await;
        let done = update["topic"] == topic && update["position"] == last;
        got.push(update);
        if done {
            return got;
        }
    }
}

/// The positions of the updates on `topic`, asserting they increase across the whole session.
fn positions_of(updates: &[Value], topic: &str) -> Vec<u64> {
    let all: Vec<u64> = updates
        .iter()
        .map(|u| u["position"].as_u64().unwrap())
        .collect();
    assert!(
        all.windows(2).all(|w| w[0] <= w[1]),
        "updates out of position order: {all:?}"
    );
    updates
        .iter()
        .filter(|u| u["topic"] == topic)
        .map(|u| u["position"].as_u64().unwrap())
        .collect()
}

/// Proves that nothing else is on its way: the pong is the next message.
async fn nothing_more(ws: &mut Ws) {
    ws.send_json(&json!({"type": "ping", "id": "end"})).await;
    let pong = ws.recv().await;
    assert_eq!(
        pong["type"], "pong",
        "expected nothing before the pong: {pong}"
    );
}

#[tokio::test]
async fn a_resume_after_a_restart_gets_every_missed_update_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start_demo(&data, &[]);
    let auditor = login(&server, "auditor", &demo_password("auditor")).await;
    let classifier = login(&server, "classifier", &demo_password("classifier")).await;
    let watched = submit(&server, &classifier, "watched").await;
    let id = watched["id"].as_str().unwrap().to_owned();
    let case_topic = format!("case:{id}");

    // Before the restart: the client saw up to `highest`.
    let (mut ws, _) = open(&server, &auditor).await;
    let subscribed = ws.subscribe("a", &["audit"], None).await;
    ws.recv_type("snapshot").await;
    let mut highest = subscribed["position"].as_u64().unwrap();
    for i in 0..5 {
        highest = submit(&server, &classifier, &format!("before-{i}")).await["position"]
            .as_u64()
            .unwrap();
    }
    let seen = updates_up_to(&mut ws, "audit", highest).await;
    assert_eq!(positions_of(&seen, "audit").last(), Some(&highest));
    drop(ws);
    // Missed before the stop: the restarted server's recent pushes never held these.
    for i in 0..3 {
        submit(&server, &classifier, &format!("missed-{i}")).await;
    }
    assert!(server.terminate().success());

    // After it: more events, the watched case's among them, while the client is away.
    let server = start_demo(&data, &[]);
    let auditor = login(&server, "auditor", &demo_password("auditor")).await;
    let classifier = login(&server, "classifier", &demo_password("classifier")).await;
    let reviewer = login(&server, "reviewer", &demo_password("reviewer")).await;
    for i in 0..5 {
        submit(&server, &classifier, &format!("after-{i}")).await;
    }
    let claimed = claim(&server, &reviewer, &id).await;
    let claimed_at = claimed["position"].as_u64().unwrap();
    let missed = logged_after(&server, &auditor, highest).await;
    let last = *missed.last().expect("events after the restart");
    assert_eq!(head(&server, &auditor).await, last);

    // Back with `since`: every event after `highest` from the log, and the watched case's
    // claim on its own topic, each once, in order.
    let (mut ws, _) = open(&server, &auditor).await;
    let topics = ["audit", case_topic.as_str()];
    let subscribed = ws.subscribe("b", &topics, Some(highest)).await;
    assert_eq!(subscribed["position"], last, "{subscribed}");
    let got = updates_up_to(&mut ws, "audit", last).await;
    assert_eq!(positions_of(&got, "audit"), missed);
    assert_eq!(positions_of(&got, &case_topic), [claimed_at]);
    let case_update = got.iter().find(|u| u["topic"] == case_topic).unwrap();
    assert_eq!(case_update["event"], "case_claimed");
    assert_eq!(case_update["data"], claimed);
    for update in got.iter().filter(|u| u["topic"] == "audit") {
        assert_audit_event_shape(&update["data"]);
        assert_eq!(update["data"]["position"], update["position"]);
    }
    nothing_more(&mut ws).await;

    // Then live, once: the watched case's release.
    let released = post(
        &server,
        &format!("/api/v1/cases/{id}/release"),
        Some(&reviewer),
        &json!({}),
    )
    .await;
    let released = assert_json(released, 200).await;
    let at = released["position"].as_u64().unwrap();
    let live = updates_up_to(&mut ws, "audit", at).await;
    assert_eq!(positions_of(&live, &case_topic), [at]);
    assert_eq!(positions_of(&live, "audit"), [at]);
    nothing_more(&mut ws).await;
}

#[tokio::test]
async fn a_resume_from_before_the_recent_buffer_comes_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Two recent pushes: each case submission pushes four (queue, case, stats, audit).
    let server = start_demo(&data, &["--resume-buffer-updates", "2"]);
    let auditor = login(&server, "auditor", &demo_password("auditor")).await;
    let classifier = login(&server, "classifier", &demo_password("classifier")).await;
    let reviewer = login(&server, "reviewer", &demo_password("reviewer")).await;

    let (mut ws, _) = open(&server, &auditor).await;
    let subscribed = ws.subscribe("a", &["audit"], None).await;
    ws.recv_type("snapshot").await;
    let since = subscribed["position"].as_u64().unwrap();
    let first = submit(&server, &classifier, "first").await;
    let id = first["id"].as_str().unwrap().to_owned();
    let mut last = 0;
    for i in 0..10 {
        last = submit(&server, &classifier, &format!("case-{i}")).await["position"]
            .as_u64()
            .unwrap();
    }
    let claimed = claim(&server, &reviewer, &id).await;
    last = last.max(claimed["position"].as_u64().unwrap());
    // The live session saw them all; the resume must see the same from the log.
    let live = updates_up_to(&mut ws, "audit", last).await;
    drop(ws);

    let case_topic = format!("case:{id}");
    let (mut ws, _) = open(&server, &auditor).await;
    let topics = ["audit", case_topic.as_str(), "stats"];
    let subscribed = ws.subscribe("b", &topics, Some(since)).await;
    assert_eq!(subscribed["position"], last, "{subscribed}");
    // `stats` depends on every case: a fresh snapshot (the protocol allows it), first.
    let stats = ws.recv_type("snapshot").await;
    assert_eq!(stats["topic"], "stats");
    assert_eq!(stats["position"], last);
    let got = updates_up_to(&mut ws, "audit", last).await;
    let audit: Vec<&Value> = got.iter().filter(|u| u["topic"] == "audit").collect();
    assert_eq!(
        audit,
        live.iter().collect::<Vec<_>>(),
        "the log's updates are the live pushes"
    );
    assert_eq!(
        positions_of(&got, &case_topic),
        [first["position"].as_u64().unwrap(), last]
    );
    assert_eq!(
        got.iter()
            .filter(|u| u["topic"] == case_topic)
            .map(|u| u["data"].clone())
            .collect::<Vec<_>>(),
        [first, claimed]
    );
    nothing_more(&mut ws).await;

    // Live from here, every topic once.
    let next = submit(&server, &classifier, "next").await;
    let at = next["position"].as_u64().unwrap();
    let after = updates_up_to(&mut ws, "audit", at).await;
    let topics_seen: Vec<&str> = after.iter().map(|u| u["topic"].as_str().unwrap()).collect();
    assert_eq!(topics_seen, ["stats", "audit"], "{after:?}");
    nothing_more(&mut ws).await;
}

#[tokio::test]
async fn an_audit_resume_from_position_one_while_writers_append_misses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start_demo(&data, &["--outbound-queue-messages", "256"]);
    let auditor = login(&server, "auditor", &demo_password("auditor")).await;
    let classifier = login(&server, "classifier", &demo_password("classifier")).await;

    // Three writers, 200 cases each, while the auditor resumes from position 1.
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let base_url = server.base_url.clone();
            let token = classifier.clone();
            tokio::spawn(async move {
                let http = client();
                for i in 0..200 {
                    let answer = http
                        .post(format!("{base_url}/api/v1/cases"))
                        .bearer_auth(&token)
                        .json(&submission(&format!("writer-{w}-{i}")))
                        .send()
                        .await
                        .expect("POST a case");
                    assert_json(answer, 201).await;
                }
            })
        })
        .collect();
    let (mut ws, _) = open(&server, &auditor).await;
    ws.subscribe("a", &["audit"], Some(1)).await;
    for w in join_all(writers).await {
        w.expect("a writer");
    }
    let last = head(&server, &auditor).await;
    let got = updates_up_to(&mut ws, "audit", last).await;
    let positions = positions_of(&got, "audit");
    assert_eq!(
        positions,
        (2..=last).collect::<Vec<u64>>(),
        "a gap or a repeat"
    );
    assert!(last > 600, "the writers' 600 events and the demo's: {last}");
    nothing_more(&mut ws).await;
}

#[tokio::test]
async fn a_since_above_the_head_answers_bad_since_and_subscribes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start_demo(&data, &[]);
    let auditor = login(&server, "auditor", &demo_password("auditor")).await;
    let classifier = login(&server, "classifier", &demo_password("classifier")).await;
    let position = head(&server, &auditor).await;

    let (mut ws, _) = open(&server, &auditor).await;
    ws.send_json(&json!({"type": "subscribe", "id": "x", "topics": ["audit"],
                         "since": position + 1}))
        .await;
    let error = ws.recv_error("bad_since").await;
    assert_eq!(error["id"], "x", "{error}");
    // Nothing was subscribed: a new event is not pushed, and the session stays open.
    let next = submit(&server, &classifier, "unseen").await;
    nothing_more(&mut ws).await;

    // `since` at the head is fine: nothing missed, then live.
    let at = next["position"].as_u64().unwrap();
    ws.subscribe("y", &["audit"], Some(at)).await;
    let later = submit(&server, &classifier, "seen").await;
    let got = updates_up_to(&mut ws, "audit", later["position"].as_u64().unwrap()).await;
    assert_eq!(got.len(), 1, "{got:?}");
    nothing_more(&mut ws).await;
}
