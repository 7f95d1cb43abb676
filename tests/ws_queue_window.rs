//! The queue window over real sockets against the real binary, on a store of a few hundred
//! cases: a `queue` snapshot holds the first `limit` cases in the order `GET /api/v1/cases`
//! lists them, with the total and the cursor to page on; a status filter narrows the snapshot
//! and the updates, and a case that leaves the filter is still pushed once; a topic named twice
//! counts once; a session holds at most 256 topics, and a subscribe that would pass them applies
//! nothing; bad window options name their field.

mod common;

use common::ws::*;
use common::*;
use futures_util::StreamExt;
use serde_json::{json, Value};

/// Cases the store holds besides the demo's.
const CASES: usize = 300;

fn submission(i: usize) -> Value {
    let priority = ["low", "normal", "high", "urgent"][i % 4];
    json!({
        "subject_ref": format!("window-{i}"),
        "excerpt": format!("excerpt {i}"),
        "assessment": {"culpability": "recklessly", "confidence": 0.5, "rationale": "r"},
        "priority": priority,
    })
}

/// Submits [`CASES`] cases, eight requests at a time; answers their ids.
async fn submit_all(server: &Server, classifier: &str) -> Vec<String> {
    let http = client();
    let url = server.url("/api/v1/cases");
    futures_util::stream::iter(0..CASES)
        .map(|i| {
            let request = http.post(&url).bearer_auth(classifier).json(&submission(i));
            async move {
                let answer = assert_json(request.send().await.expect("POST a case"), 201).await;
                answer["id"].as_str().expect("an id").to_owned()
            }
        })
        .buffer_unordered(8)
        .collect()
        .await
}

async fn act(server: &Server, token: &str, id: &str, what: &str, body: &Value) -> Value {
    let path = format!("/api/v1/cases/{id}/{what}");
    assert_json(post(server, &path, Some(token), body).await, 200).await
}

/// Sends `subscribe` with `extra` fields; answers `subscribed`.
async fn subscribe(ws: &mut Ws, id: &str, topics: &[&str], extra: Value) -> Value {
    let mut message = json!({"type": "subscribe", "id": id, "topics": topics});
    if let Value::Object(fields) = extra {
        message.as_object_mut().unwrap().extend(fields);
    }
    ws.send_json(&message).await;
    let answer = ws.recv_type("subscribed").await;
    assert_eq!(answer["id"], id, "{answer}");
    answer
}

/// A subscriber of `queue` with `window`; answers it with its snapshot's `data`.
async fn window_subscriber(server: &Server, token: &str, window: Value) -> (Ws, Value) {
    let (mut ws, _) = open(server, token).await;
    let subscribed = subscribe(&mut ws, "w", &["queue"], json!({"queue": window})).await;
    assert_eq!(subscribed["topics"], json!(["queue"]));
    let snapshot = ws.recv_type("snapshot").await;
    assert_eq!(snapshot["topic"], "queue");
    assert_eq!(snapshot["position"], subscribed["position"]);
    let data = snapshot["data"].clone();
    let mut keys: Vec<&str> = data
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["cases", "next", "total"], "{data}");
    (ws, data)
}

/// Asserts that nothing but the pong of a ping comes next: no update was pushed before it.
async fn nothing_before_pong(ws: &mut Ws, id: &str) {
    ws.send_json(&json!({"type": "ping", "id": id})).await;
    let next = ws.recv().await;
    assert_eq!(
        next["type"], "pong",
        "expected nothing before the pong, got {next}"
    );
    assert_eq!(next["id"], id);
}

/// The next `queue` update, which must be `event` about case `id`.
async fn update_about(ws: &mut Ws, event: &str, id: &str) -> Value {
    let update = ws.recv_type("update").await;
    assert_eq!(update["topic"], "queue", "{update}");
    assert_eq!(update["event"], event, "{update}");
    assert_eq!(update["data"]["id"], id, "{update}");
    update
}

/// How many topics the operators' view lists for a session.
async fn held(server: &Server, admin: &str, session: &Value) -> usize {
    let listed = sessions(server, admin).await;
    let me = listed
        .iter()
        .find(|s| &s["id"] == session)
        .expect("the session");
    me["topics"].as_array().unwrap().len()
}

fn count(stats: &Value, key: &str) -> u64 {
    stats[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} in {stats}"))
}

#[tokio::test]
async fn a_queue_window_shows_its_first_cases_its_total_and_where_to_page_on() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_demo(&dir.path().join("data"), &[]);
    let classifier = login(&server, "classifier", &demo_password("classifier")).await;
    let reviewer = login(&server, "reviewer", &demo_password("reviewer")).await;
    submit_all(&server, &classifier).await;
    let stats = assert_json(get(&server, "/api/v1/stats", Some(&reviewer)).await, 200).await;
    let undecided =
        count(&stats, "pending") + count(&stats, "in_review") + count(&stats, "escalated");
    assert!(undecided > CASES as u64, "{stats}");

    // The default window: the first 100 undecided cases, exactly as the HTTP listing has them.
    let (_default, data) = window_subscriber(&server, &reviewer, json!({})).await;
    let listed = assert_json(
        get(&server, "/api/v1/cases?limit=100", Some(&reviewer)).await,
        200,
    )
    .await;
    assert_eq!(data["cases"].as_array().unwrap().len(), 100);
    assert_eq!(data["cases"], listed["cases"]);
    assert_eq!(data["total"], undecided);
    assert_eq!(data["next"], listed["next"]);
    for case in data["cases"].as_array().unwrap() {
        assert_case_shape(case);
    }
    // `next` pages on over HTTP from where the window ends.
    let next = data["next"].as_str().expect("a cursor");
    let path = format!("/api/v1/cases?limit=500&after={next}");
    let rest = assert_json(get(&server, &path, Some(&reviewer)).await, 200).await;
    assert_eq!(
        rest["cases"].as_array().unwrap().len() as u64 + 100,
        undecided,
        "the window and the pages after it are the whole queue"
    );

    // A window of 7, and one wide enough for all: then no `next`.
    let (_seven, data) = window_subscriber(&server, &reviewer, json!({"limit": 7})).await;
    let seven = assert_json(
        get(&server, "/api/v1/cases?limit=7", Some(&reviewer)).await,
        200,
    )
    .await;
    assert_eq!(
        data["cases"],
        json!(listed["cases"].as_array().unwrap()[..7])
    );
    assert_eq!(data["total"], undecided);
    assert_eq!(data["next"], seven["next"]);
    assert_ne!(data["next"], Value::Null);
    let (_all, data) = window_subscriber(&server, &reviewer, json!({"limit": 1000})).await;
    assert_eq!(data["cases"].as_array().unwrap().len() as u64, undecided);
    assert_eq!(data["total"], undecided);
    assert_eq!(data["next"], Value::Null);

    // Statuses: the window of `pending` and `escalated` is the HTTP listing of both.
    let (_two, data) = window_subscriber(
        &server,
        &reviewer,
        json!({"limit": 50, "status": ["escalated", "pending"]}),
    )
    .await;
    let listed = assert_json(
        get(
            &server,
            "/api/v1/cases?limit=50&status=pending,escalated",
            Some(&reviewer),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(data["cases"], listed["cases"]);
    assert_eq!(data["next"], listed["next"]);
    assert_eq!(
        data["total"],
        count(&stats, "pending") + count(&stats, "escalated")
    );
    assert!(data["cases"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["adjudication_status"] == "pending" || c["adjudication_status"] == "escalated"));
}

#[tokio::test]
async fn a_status_filter_narrows_the_updates_and_still_tells_of_a_case_that_leaves_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_demo(&dir.path().join("data"), &[]);
    let classifier = login(&server, "classifier", &demo_password("classifier")).await;
    let reviewer = login(&server, "reviewer", &demo_password("reviewer")).await;
    let senior = login(&server, "senior", &demo_password("senior")).await;
    submit_all(&server, &classifier).await;

    let (mut pending, data) = window_subscriber(
        &server,
        &reviewer,
        json!({"status": ["pending"], "limit": 1000}),
    )
    .await;
    assert!(data["cases"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["adjudication_status"] == "pending"));
    let (mut in_review, data) =
        window_subscriber(&server, &senior, json!({"status": ["in_review"]})).await;
    let stats = assert_json(get(&server, "/api/v1/stats", Some(&reviewer)).await, 200).await;
    assert_eq!(data["total"], count(&stats, "in_review"));
    let (mut escalated, _) =
        window_subscriber(&server, &senior, json!({"status": ["escalated"]})).await;
    let (mut everything, _) = window_subscriber(&server, &reviewer, json!({"limit": 1})).await;

    // A new case: pending only.
    let case = assert_json(
        post(
            &server,
            "/api/v1/cases",
            Some(&classifier),
            &submission(9999),
        )
        .await,
        201,
    )
    .await;
    let id = case["id"].as_str().unwrap();
    for ws in [&mut pending, &mut everything] {
        update_about(ws, "case_submitted", id).await;
    }

    // Claimed: it leaves `pending` (told once more) and enters `in_review`.
    act(&server, &reviewer, id, "claim", &json!({})).await;
    for ws in [&mut pending, &mut in_review, &mut everything] {
        let update = update_about(ws, "case_claimed", id).await;
        assert_eq!(update["data"]["adjudication_status"], "in_review");
    }

    // Escalated: it leaves `in_review` and enters `escalated`; `pending` hears nothing.
    let notes = json!({"decision": "escalate", "notes": "Needs a senior."});
    act(&server, &reviewer, id, "decision", &notes).await;
    for ws in [&mut in_review, &mut escalated, &mut everything] {
        update_about(ws, "case_escalated", id).await;
    }

    // A senior claims and decides it: `escalated` hears it leave, then `in_review` hears it
    // come and go; a decided case leaves the queue.
    act(&server, &senior, id, "claim", &json!({})).await;
    let confirm = json!({"decision": "confirm", "notes": "Agreed."});
    act(&server, &senior, id, "decision", &confirm).await;
    update_about(&mut escalated, "case_claimed", id).await;
    update_about(&mut in_review, "case_claimed", id).await;
    let decided = update_about(&mut in_review, "case_decided", id).await;
    assert_eq!(decided["data"]["adjudication_status"], "decided");
    update_about(&mut everything, "case_claimed", id).await;
    update_about(&mut everything, "case_decided", id).await;

    // Nobody got more than that.
    for (ws, name) in [
        (&mut pending, "pending"),
        (&mut in_review, "in_review"),
        (&mut escalated, "escalated"),
        (&mut everything, "everything"),
    ] {
        nothing_before_pong(ws, name).await;
    }

    // Subscribing again replaces the window: `escalated` now watches `pending`.
    let again = json!({"queue": {"status": ["pending"], "limit": 2}});
    subscribe(&mut escalated, "again", &["queue"], again).await;
    let snapshot = escalated.recv_type("snapshot").await;
    let cases = snapshot["data"]["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    assert!(cases.iter().all(|c| c["adjudication_status"] == "pending"));
    let case = assert_json(
        post(
            &server,
            "/api/v1/cases",
            Some(&classifier),
            &submission(10_000),
        )
        .await,
        201,
    )
    .await;
    update_about(
        &mut escalated,
        "case_submitted",
        case["id"].as_str().unwrap(),
    )
    .await;
    nothing_before_pong(&mut escalated, "replaced").await;
}

#[tokio::test]
async fn a_topic_named_twice_counts_once_and_a_session_holds_at_most_256_topics() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_demo(&dir.path().join("data"), &[]);
    let reviewer = login(&server, "reviewer", &demo_password("reviewer")).await;
    let admin = admin_token(&server).await;
    let (mut ws, welcome) = open(&server, &reviewer).await;

    // Named twice: one topic, one snapshot each.
    let subscribed = subscribe(
        &mut ws,
        "d",
        &["queue", "stats", "queue", "stats"],
        json!({}),
    )
    .await;
    assert_eq!(subscribed["topics"], json!(["queue", "stats"]));
    for topic in ["queue", "stats"] {
        assert_eq!(ws.recv_type("snapshot").await["topic"], topic);
    }
    nothing_before_pong(&mut ws, "after-dedupe").await;

    // 254 more case topics (some named twice, one already held): 256 in all.
    let case_topic = |n: u128| format!("case:{}", uuid::Uuid::from_u128(n));
    let mut names: Vec<String> = (1..=254).map(case_topic).collect();
    names.extend((1..=20).map(case_topic));
    names.push("queue".into());
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let subscribed = subscribe(&mut ws, "fill", &refs, json!({})).await;
    assert_eq!(subscribed["topics"].as_array().unwrap().len(), 255);
    for _ in 0..255 {
        ws.recv_type("snapshot").await;
    }
    let session = &welcome["session_id"];
    assert_eq!(held(&server, &admin, session).await, 256);

    // One more, with topics it holds already: refused whole, nothing applied.
    let over = json!({"type": "subscribe", "id": "over", "topics": ["stats", case_topic(999)]});
    ws.send_json(&over).await;
    let error = ws.recv_error("too_many_topics").await;
    assert_eq!(error["id"], "over");
    nothing_before_pong(&mut ws, "after-refusal").await;
    assert_eq!(held(&server, &admin, session).await, 256);

    // Topics it holds already add nothing: it may subscribe to them again.
    let again = subscribe(&mut ws, "again", &["stats", &case_topic(3)], json!({})).await;
    assert_eq!(again["topics"], json!(["stats", case_topic(3)]));
    ws.recv_type("snapshot").await;
    ws.recv_type("snapshot").await;

    // After an unsubscribe there is room again.
    ws.send_json(&json!({"type": "unsubscribe", "id": "u", "topics": [case_topic(1)]}))
        .await;
    ws.recv_type("unsubscribed").await;
    subscribe(&mut ws, "room", &[&case_topic(999)], json!({})).await;
    ws.recv_type("snapshot").await;
    assert_eq!(held(&server, &admin, session).await, 256);

    // A fresh session naming 257 distinct topics at once is refused too.
    let (mut fresh, _) = open(&server, &reviewer).await;
    let many: Vec<String> = (1000..1257).map(case_topic).collect();
    fresh
        .send_json(&json!({"type": "subscribe", "id": "many", "topics": many}))
        .await;
    fresh.recv_error("too_many_topics").await;
    nothing_before_pong(&mut fresh, "fresh").await;

    let text = scrape(&server).await;
    assert_eq!(
        metric(
            &text,
            "websocket_errors_total{error_type=\"too_many_topics\"}"
        ),
        2.0
    );
}

#[tokio::test]
async fn bad_window_options_answer_bad_message_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_demo(&dir.path().join("data"), &[]);
    let reviewer = login(&server, "reviewer", &demo_password("reviewer")).await;
    let (mut ws, _) = open(&server, &reviewer).await;
    for (n, (options, field)) in [
        (json!({"limit": 0}), "queue.limit"),
        (json!({"limit": 1001}), "queue.limit"),
        (json!({"status": ["decided"]}), "queue.status"),
        (json!({"status": []}), "queue.status"),
        (json!({"order": "oldest"}), "queue.order"),
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("bad-{n}");
        ws.send_json(
            &json!({"type": "subscribe", "id": id, "topics": ["queue"], "queue": options}),
        )
        .await;
        let error = ws.recv_error("bad_message").await;
        assert_eq!(error["id"], id);
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(field), "{field} in {message}");
        // A good message in between, so that the run of bad ones never closes the session.
        nothing_before_pong(&mut ws, &id).await;
    }
    // Nothing was subscribed.
    let (_, data) = window_subscriber(&server, &reviewer, json!({"limit": 1})).await;
    assert_eq!(data["cases"].as_array().unwrap().len(), 1);
    nothing_before_pong(&mut ws, "end").await;
}
