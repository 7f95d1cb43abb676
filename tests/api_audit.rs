//! The audit API over real HTTP against the real binary: the event log in pages and with
//! filters, a case and the queue as they stood at a past time or position, chain verification,
//! the head commitment, the NDJSON export, who may read any of it, and that no password hash ever shows.

mod common;

use std::collections::HashSet;

use common::*;
use serde_json::{json, Value};
use uuid::Uuid;

fn text(value: &Value, key: &str) -> String {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {value}"))
        .to_owned()
}

/// Every event the filters `query` select, page by page of `limit`, checking each page.
async fn all_events(server: &Server, token: &str, query: &str, limit: usize) -> Vec<Value> {
    let mut events: Vec<Value> = Vec::new();
    let mut after = 0u64;
    for _ in 0..10_000 {
        let path = format!("/api/v1/audit/events?after={after}&limit={limit}{query}");
        let page = assert_json(get(server, &path, Some(token)).await, 200).await;
        let keys: Vec<&String> = page.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["events", "next"], "{page}");
        let batch = page["events"].as_array().expect("events");
        assert!(batch.len() <= limit, "{path}");
        for event in batch {
            assert_audit_event_shape(event);
            let position = event["position"].as_u64().unwrap();
            assert!(position > after, "{path}: positions grow: {event}");
            after = position;
            events.push(event.clone());
        }
        match page["next"].as_u64() {
            Some(next) => {
                assert!(next >= after, "{path}: next {next} is not behind the page");
                after = next;
            }
            None => {
                assert!(page["next"].is_null(), "{page}");
                return events;
            }
        }
    }
    panic!("paging {query} did not end");
}

async fn audit_case(server: &Server, token: &str, id: &str, as_of: &str) -> reqwest::Response {
    get(
        server,
        &format!("/api/v1/audit/cases/{id}?as_of={as_of}"),
        Some(token),
    )
    .await
}

async fn audit_queue(server: &Server, token: &str, as_of: &str) -> Vec<Value> {
    let queue = assert_json(
        get(
            server,
            &format!("/api/v1/audit/queue?as_of={as_of}"),
            Some(token),
        )
        .await,
        200,
    )
    .await;
    let cases = queue["cases"].as_array().expect("cases").clone();
    for case in &cases {
        assert_case_shape(case);
        assert_ne!(case["adjudication_status"], "decided", "{case}");
    }
    cases
}

fn rfc3339(micros: i64) -> String {
    events::Timestamp::from_micros(micros).to_rfc3339()
}

#[tokio::test]
async fn auditors_read_the_whole_trail_and_nobody_else_does() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start_demo(&data, &[]);
    let auditor = login(&server, "auditor", &demo_password("auditor")).await;
    let reviewer = login(&server, "reviewer", &demo_password("reviewer")).await;
    let senior = login(&server, "senior", &demo_password("senior")).await;
    let classifier = login(&server, "classifier", &demo_password("classifier")).await;
    let admin = login(&server, "admin", &admin_password(&data)).await;
    let reviewer_id = text(&me(&server, &reviewer).await, "id");

    // A case through two decisions: the reviewer escalates, the senior amends.
    let body = json!({
        "subject_ref": "AUDIT-1",
        "excerpt": "She knew the brakes were gone and lent the car anyway.",
        "assessment": {"culpability": "recklessly", "confidence": 0.6, "rationale": "Known risk."},
        "priority": "high",
    });
    let new = assert_json(
        post(&server, "/api/v1/cases", Some(&classifier), &body).await,
        201,
    )
    .await;
    let id = text(&new, "id");
    let path = |what: &str| format!("/api/v1/cases/{id}/{what}");
    let claimed = assert_json(
        post(&server, &path("claim"), Some(&reviewer), &json!({})).await,
        200,
    )
    .await;
    let escalated = assert_json(
        post(
            &server,
            &path("decision"),
            Some(&reviewer),
            &json!({"decision": "escalate", "notes": "Knowing, perhaps."}),
        )
        .await,
        200,
    )
    .await;
    assert_json(
        post(&server, &path("claim"), Some(&senior), &json!({})).await,
        200,
    )
    .await;
    let decided = assert_json(
        post(
            &server,
            &path("decision"),
            Some(&senior),
            &json!({"decision": "amend", "final_culpability": "knowingly", "notes": "She knew."}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(decided["adjudication_status"], "decided");
    // A password change, so that the log holds one of those too.
    let classifier_id = text(&me(&server, &classifier).await, "id");
    assert_json(
        patch(
            &server,
            &format!("/api/v1/users/{classifier_id}"),
            &admin,
            &json!({"password": "classifier-new-password"}),
        )
        .await,
        200,
    )
    .await;
    // The old token is void now; the new password works.
    let r = get(&server, "/api/v1/me", Some(&classifier)).await;
    assert_problem(r, 401, "token_revoked").await;
    let classifier = login(&server, "classifier", "classifier-new-password").await;

    let history = assert_json(get(&server, &path("history"), Some(&auditor)).await, 200).await;
    let history = history.as_array().unwrap().clone();
    assert_eq!(history.len(), 5);
    let recorded: Vec<i64> = history
        .iter()
        .map(|e| assert_time(&e["recorded_at"]))
        .collect();
    let position = |n: usize| history[n]["position"].as_u64().unwrap();

    // ---- a case as it stood then -------------------------------------------------------------

    // A time between the two decisions: after the escalation, before the senior's claim.
    assert!(recorded[3] - recorded[2] >= 2, "{recorded:?}");
    let between = rfc3339(recorded[2] + (recorded[3] - recorded[2]) / 2);
    let then = assert_json(audit_case(&server, &auditor, &id, &between).await, 200).await;
    assert_case_shape(&then);
    assert_eq!(
        then, escalated,
        "as of {between}: the case as the escalation left it"
    );
    assert_eq!(then["adjudication_status"], "escalated");
    // At the exact time of an event, the event counts.
    let at_claim = rfc3339(recorded[1]);
    let then = assert_json(audit_case(&server, &auditor, &id, &at_claim).await, 200).await;
    assert_eq!(then, claimed);
    // By position.
    let then = assert_json(
        audit_case(&server, &auditor, &id, &position(1).to_string()).await,
        200,
    )
    .await;
    assert_eq!(then, claimed);
    assert_eq!(then["position"], position(1));
    let then = assert_json(
        audit_case(&server, &auditor, &id, &(position(2) - 1).to_string()).await,
        200,
    )
    .await;
    assert_eq!(then, claimed, "a position between two of the case's events");
    // Now, and without as_of: the live case.
    let live = assert_json(
        get(&server, &format!("/api/v1/cases/{id}"), Some(&auditor)).await,
        200,
    )
    .await;
    assert_eq!(live, decided);
    let now = rfc3339(events::Timestamp::now().as_micros());
    let then = assert_json(audit_case(&server, &auditor, &id, &now).await, 200).await;
    assert_eq!(then, decided);
    let then = assert_json(
        get(
            &server,
            &format!("/api/v1/audit/cases/{id}"),
            Some(&auditor),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(then, decided);
    // Before the submission, the case did not exist.
    let before = rfc3339(recorded[0] - 1);
    assert_problem(
        audit_case(&server, &auditor, &id, &before).await,
        404,
        "not_found",
    )
    .await;
    let r = audit_case(&server, &auditor, &id, &(position(0) - 1).to_string()).await;
    assert_problem(r, 404, "not_found").await;
    let r = audit_case(&server, &auditor, &Uuid::now_v7().to_string(), &now).await;
    assert_problem(r, 404, "not_found").await;
    // Nonsense as_of.
    for bad in ["yesterday", "-1", "2024-13-01T00:00:00Z"] {
        let r = audit_case(&server, &auditor, &id, bad).await;
        assert_eq!(assert_invalid(r).await, ["as_of"], "{bad}");
    }

    // ---- the queue as it stood then ----------------------------------------------------------

    let queue = audit_queue(&server, &auditor, &between).await;
    let ours: Vec<&Value> = queue.iter().filter(|c| c["id"] == json!(id)).collect();
    assert_eq!(ours, [&escalated], "in the queue as of {between}");
    let queue = audit_queue(&server, &auditor, &now).await;
    assert!(
        queue.iter().all(|c| c["id"] != json!(id)),
        "decided: out of the queue"
    );
    // Now, it is the live queue.
    let live = assert_json(
        get(&server, "/api/v1/cases?limit=500", Some(&auditor)).await,
        200,
    )
    .await;
    assert_eq!(json!(queue), live["cases"]);
    let queue = audit_queue(&server, &auditor, &position(2).to_string()).await;
    assert!(queue.iter().any(|c| c == &escalated));
    let queue = audit_queue(&server, &auditor, &(position(0) - 1).to_string()).await;
    assert!(
        queue.iter().all(|c| c["id"] != json!(id)),
        "not yet submitted"
    );
    let r = get(&server, "/api/v1/audit/queue?as_of=soon", Some(&auditor)).await;
    assert_eq!(assert_invalid(r).await, ["as_of"]);

    // ---- the event log -----------------------------------------------------------------------

    let everything = all_events(&server, &auditor, "", 7).await;
    assert!(
        everything.len() > 40,
        "the demo data and ours: {}",
        everything.len()
    );
    let in_one = all_events(&server, &auditor, "", 1000).await;
    assert_eq!(in_one, everything, "page size changes nothing");
    // `after` starts past a position.
    let middle = everything[10]["position"].as_u64().unwrap();
    let page = assert_json(
        get(
            &server,
            &format!("/api/v1/audit/events?after={middle}&limit=3"),
            Some(&auditor),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(page["events"], json!(everything[11..14]));
    assert_eq!(page["next"], everything[13]["position"]);
    // The last page says there is no next.
    let last = everything.last().unwrap()["position"].as_u64().unwrap();
    let page = assert_json(
        get(
            &server,
            &format!("/api/v1/audit/events?after={last}"),
            Some(&auditor),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(page, json!({"events": [], "next": null}));
    // Our case's events are the history.
    let ours: Vec<Value> = everything
        .iter()
        .filter(|e| e["stream"] == format!("case-{id}"))
        .cloned()
        .collect();
    assert_eq!(ours, history);

    // Filters: each selects exactly what it names, across pages.
    fn select(
        everything: &[Value],
        query: &str,
        keep: impl Fn(&Value) -> bool,
    ) -> (String, Vec<Value>) {
        let expected = everything.iter().filter(|e| keep(e)).cloned().collect();
        (query.to_owned(), expected)
    }
    let filtered = |query: &str, keep: &dyn Fn(&Value) -> bool| select(&everything, query, keep);
    let checks = [
        filtered("&type=case_escalated", &|e| e["type"] == "case_escalated"),
        filtered("&type=user_registered", &|e| e["type"] == "user_registered"),
        filtered(&format!("&stream=case-{id}"), &|e| {
            e["stream"] == format!("case-{id}")
        }),
        filtered(&format!("&user_id={reviewer_id}"), &|e| {
            e["user_id"] == json!(reviewer_id)
        }),
        filtered(&format!("&type=case_claimed&user_id={reviewer_id}"), &|e| {
            e["type"] == "case_claimed" && e["user_id"] == json!(reviewer_id)
        }),
        filtered("&type=no_such_type", &|_| false),
    ];
    for (query, expected) in &checks {
        let got = all_events(&server, &auditor, query, 4).await;
        assert_eq!(&got, expected, "{query}");
    }
    assert!(
        checks[0].1.iter().any(|e| e == &history[2]),
        "our escalation"
    );
    assert_eq!(checks[1].1.len(), 5, "admin and the four demo users");
    assert_eq!(checks[2].1, history);
    assert!(checks[3].1.iter().any(|e| e == &history[1]), "our claim");
    for (query, field) in [
        ("user_id=someone", "user_id"),
        ("limit=many", "limit"),
        ("limit=1001", "limit"),
        ("after=-1", "after"),
        ("kind=x", "kind"),
    ] {
        let r = get(
            &server,
            &format!("/api/v1/audit/events?{query}"),
            Some(&auditor),
        )
        .await;
        assert_eq!(assert_invalid(r).await, [field], "{query}");
    }

    // ---- the chains --------------------------------------------------------------------------

    let verified = assert_json(
        get(&server, "/api/v1/audit/verify", Some(&auditor)).await,
        200,
    )
    .await;
    let streams: HashSet<&str> = everything
        .iter()
        .map(|e| e["stream"].as_str().unwrap())
        .collect();
    let head = head_of(&everything);
    assert_eq!(
        verified,
        json!({"streams_checked": streams.len(), "events_checked": everything.len(),
               "ok": true, "failures": [], "head": head})
    );
    // The projector's running commitment is the same as a fold of the log.
    let served = assert_json(
        get(&server, "/api/v1/audit/head", Some(&auditor)).await,
        200,
    )
    .await;
    assert_eq!(served, head);

    // ---- the export --------------------------------------------------------------------------

    let export = get(&server, "/api/v1/audit/export", Some(&auditor)).await;
    assert_eq!(export.status(), 200);
    assert_eq!(content_type(&export), "application/x-ndjson");
    let ndjson = export.text().await.unwrap();
    assert!(ndjson.ends_with('\n'), "every line ends with a newline");
    let lines: Vec<Value> = ndjson
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines, everything, "the export is the event log");
    let export = get(
        &server,
        &format!("/api/v1/audit/export?after={middle}"),
        Some(&auditor),
    )
    .await;
    assert_eq!(content_type(&export), "application/x-ndjson");
    let tail: Vec<Value> = export
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(tail, everything[11..]);

    // No password hash anywhere: the registrations and the password change show it redacted.
    assert!(!ndjson.contains("argon2"), "a password hash in the export");
    assert!(!ndjson.contains("classifier-new-password"));
    let with_hash: Vec<&Value> = everything
        .iter()
        .filter(|e| e["data"].get("password_hash").is_some())
        .collect();
    let types: HashSet<&str> = with_hash
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        HashSet::from(["user_registered", "user_password_changed"])
    );
    for event in with_hash {
        assert_eq!(event["data"]["password_hash"], "[redacted]", "{event}");
    }
    let all = json!(everything).to_string();
    assert!(!all.contains("argon2"), "a password hash in the events");
    let users = assert_json(get(&server, "/api/v1/users", Some(&admin)).await, 200).await;
    assert!(!users.to_string().contains("argon2"));

    // ---- who may read it ---------------------------------------------------------------------

    let endpoints = [
        "/api/v1/audit/events".to_owned(),
        format!("/api/v1/audit/cases/{id}"),
        format!("/api/v1/audit/cases/{id}?as_of={now}"),
        "/api/v1/audit/queue".to_owned(),
        "/api/v1/audit/verify".to_owned(),
        "/api/v1/audit/head".to_owned(),
        "/api/v1/audit/export".to_owned(),
    ];
    for endpoint in &endpoints {
        for token in [&reviewer, &senior, &classifier] {
            let r = get(&server, endpoint, Some(token)).await;
            assert_problem(r, 403, "forbidden").await;
        }
        assert_problem(get(&server, endpoint, None).await, 401, "token_missing").await;
        let r = get(&server, endpoint, Some(&admin)).await;
        assert_eq!(r.status(), 200, "admins may audit: {endpoint}");
    }
}
