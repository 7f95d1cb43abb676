//! `POST /api/v1/cases` with `Idempotency-Key`, over real HTTP against the real binary: a retry
//! answers the first submission's case (200) and appends nothing, however many race and across
//! a restart; another body with the key is refused; another user's key is another key; a key
//! binds for 24 hours after its first submission; bad keys answer 400.

mod common;

use std::time::Duration;

use common::*;
use events::store::sqlite::FILE_NAME;
use serde_json::{json, Value};

fn submission(subject_ref: &str) -> Value {
    json!({
        "subject_ref": subject_ref,
        "excerpt": "He said he would do it, and then he did it.",
        "assessment": {"culpability": "knowingly", "confidence": 0.87, "rationale": "Aware."},
        "priority": "high",
    })
}

async fn submit_keyed(server: &Server, token: &str, key: &[u8], body: &Value) -> reqwest::Response {
    client()
        .post(server.url("/api/v1/cases"))
        .bearer_auth(token)
        .header(
            "idempotency-key",
            reqwest::header::HeaderValue::from_bytes(key).expect("a header value"),
        )
        .json(body)
        .send()
        .await
        .expect("POST /cases")
}

/// The `case_submitted` events of a case's stream.
async fn submissions_of(server: &Server, auditor: &str, id: &str) -> usize {
    let path = format!("/api/v1/audit/events?type=case_submitted&stream=case-{id}&limit=1000");
    let page = assert_json(get(server, &path, Some(auditor)).await, 200).await;
    page["events"].as_array().unwrap().len()
}

async fn head_position(server: &Server, auditor: &str) -> u64 {
    let head = assert_json(get(server, "/api/v1/audit/head", Some(auditor)).await, 200).await;
    head["position"].as_u64().unwrap()
}

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

#[tokio::test]
async fn a_retried_submission_answers_its_first_case_and_appends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start_demo(&data, &[]);
    let classifier = login(&server, "classifier", &demo_password("classifier")).await;
    let auditor = login(&server, "auditor", &demo_password("auditor")).await;
    let admin = login(&server, "admin", &admin_password(&data)).await;
    let body = submission("IDEM-1");

    let first = submit_keyed(&server, &classifier, b"order-17/attempt", &body).await;
    assert_eq!(location(&first).len(), "/api/v1/cases/".len() + 36);
    let first_location = location(&first);
    let case = assert_json(first, 201).await;
    assert_case_shape(&case);
    let id = case["id"].as_str().unwrap().to_owned();
    assert_eq!(first_location, format!("/api/v1/cases/{id}"));
    let head = head_position(&server, &auditor).await;

    // The same body and key again: 200, the same case, nothing appended.
    let again = submit_keyed(&server, &classifier, b"order-17/attempt", &body).await;
    assert_eq!(location(&again), first_location);
    let again = assert_json(again, 200).await;
    assert_eq!(again, case);
    assert_eq!(head_position(&server, &auditor).await, head);
    assert_eq!(submissions_of(&server, &auditor, &id).await, 1);

    // Another body with the key: refused, nothing appended.
    let mut other = body.clone();
    other["assessment"]["confidence"] = json!(0.5);
    let r = submit_keyed(&server, &classifier, b"order-17/attempt", &other).await;
    let problem = assert_problem(r, 422, "idempotency_key_reused").await;
    assert!(problem["detail"].as_str().unwrap().contains("24 hours"));
    assert_eq!(head_position(&server, &auditor).await, head);

    // Another user's key of the same text is another key.
    let theirs = submit_keyed(&server, &admin, b"order-17/attempt", &body).await;
    let theirs = assert_json(theirs, 201).await;
    assert_ne!(theirs["id"], case["id"]);

    // Without a key, every submission is a new case.
    for _ in 0..2 {
        let r = post(&server, "/api/v1/cases", Some(&classifier), &body).await;
        assert_ne!(assert_json(r, 201).await["id"], case["id"]);
    }

    // Only those who may submit.
    let reviewer = login(&server, "reviewer", &demo_password("reviewer")).await;
    let r = submit_keyed(&server, &reviewer, b"order-17/attempt", &body).await;
    assert_problem(r, 403, "forbidden").await;

    // Bad keys, before anything else happens.
    let head = head_position(&server, &auditor).await;
    let long = vec![b'k'; 129];
    for bad in [&b""[..], &long, b"caf\xc3\xa9", b"tab\there"] {
        let r = submit_keyed(&server, &classifier, bad, &body).await;
        assert_problem(r, 400, "bad_idempotency_key").await;
    }
    let twice = client()
        .post(server.url("/api/v1/cases"))
        .bearer_auth(&classifier)
        .header("idempotency-key", "a")
        .header("idempotency-key", "b")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_problem(twice, 400, "bad_idempotency_key").await;
    let ok = submit_keyed(&server, &classifier, &[b'~'; 128], &body).await;
    assert_eq!(ok.status(), 201, "128 printable characters are a key");
    assert_eq!(head_position(&server, &auditor).await, head + 1);

    // Sixteen at once with a fresh key: one case, one 201, fifteen 200s.
    let racing = futures_util::future::join_all(
        (0..16).map(|_| submit_keyed(&server, &classifier, b"race", &body)),
    )
    .await;
    let mut created = 0;
    let mut ids = std::collections::HashSet::new();
    for r in racing {
        match r.status().as_u16() {
            201 => created += 1,
            200 => {}
            other => panic!("status {other}"),
        }
        ids.insert(r.json::<Value>().await.unwrap()["id"].clone());
    }
    assert_eq!((created, ids.len()), (1, 1), "{ids:?}");
    let raced = ids.into_iter().next().unwrap();
    assert_eq!(
        submissions_of(&server, &auditor, raced.as_str().unwrap()).await,
        1
    );

    // After a restart the key still answers its case.
    assert!(server.terminate().success());
    let server = Server::start(&data, &[]);
    let classifier = login(&server, "classifier", &demo_password("classifier")).await;
    let auditor = login(&server, "auditor", &demo_password("auditor")).await;
    let head = head_position(&server, &auditor).await;
    let r = submit_keyed(&server, &classifier, b"order-17/attempt", &body).await;
    assert_eq!(assert_json(r, 200).await["id"], case["id"]);
    assert_eq!(head_position(&server, &auditor).await, head);

    // 24 hours later the key is free: move the first submission back 25 hours in the store.
    assert!(server.terminate().success());
    let db = rusqlite::Connection::open(data.join(FILE_NAME)).unwrap();
    let day_and_an_hour = Duration::from_secs(25 * 3600).as_micros() as i64;
    let moved = db
        .execute(
            "UPDATE events SET recorded_at = recorded_at - ?1 \
             WHERE stream = ?2 AND version = 1",
            rusqlite::params![day_and_an_hour, format!("case-{id}")],
        )
        .unwrap();
    assert_eq!(moved, 1);
    drop(db);
    let server = Server::start(&data, &[]);
    let classifier = login(&server, "classifier", &demo_password("classifier")).await;
    let auditor = login(&server, "auditor", &demo_password("auditor")).await;
    let r = submit_keyed(&server, &classifier, b"order-17/attempt", &other).await;
    let renewed = assert_json(r, 201).await;
    assert_ne!(renewed["id"], case["id"]);
    assert_eq!(renewed["assessment"]["confidence"], 0.5);
    // …and binds again, to its new case.
    let r = submit_keyed(&server, &classifier, b"order-17/attempt", &other).await;
    assert_eq!(assert_json(r, 200).await["id"], renewed["id"]);
    let r = submit_keyed(&server, &classifier, b"order-17/attempt", &body).await;
    assert_problem(r, 422, "idempotency_key_reused").await;
    assert_eq!(
        submissions_of(&server, &auditor, renewed["id"].as_str().unwrap()).await,
        1
    );
}
