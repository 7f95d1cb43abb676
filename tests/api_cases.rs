//! The cases API over real HTTP against the real binary: a case through every role, releases,
//! lease expiry, `If-Match`, concurrent decisions, validation of every field, malformed and
//! oversized bodies, and the paged, filtered listing.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use uuid::Uuid;

fn text(value: &Value, key: &str) -> String {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {value}"))
        .to_owned()
}

fn submission(subject_ref: &str) -> Value {
    json!({
        "subject_ref": subject_ref,
        "excerpt": "He said he would do it, and then he did it.",
        "assessment": {"culpability": "knowingly", "confidence": 0.87,
                       "rationale": "Aware of the near-certain result."},
        "priority": "normal",
    })
}

async fn submit(server: &Server, token: &str, body: &Value) -> reqwest::Response {
    post(server, "/api/v1/cases", Some(token), body).await
}

async fn submitted(server: &Server, token: &str, subject_ref: &str) -> Value {
    assert_json(submit(server, token, &submission(subject_ref)).await, 201).await
}

async fn command(
    server: &Server,
    token: &str,
    id: &str,
    what: &str,
    if_match: Option<&str>,
    body: Option<&Value>,
) -> reqwest::Response {
    let mut request = client()
        .post(server.url(&format!("/api/v1/cases/{id}/{what}")))
        .bearer_auth(token);
    if let Some(version) = if_match {
        request = request.header("if-match", version);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.expect("POST a command")
}

async fn claim(server: &Server, token: &str, id: &str) -> reqwest::Response {
    command(server, token, id, "claim", None, None).await
}

async fn release(server: &Server, token: &str, id: &str) -> reqwest::Response {
    command(server, token, id, "release", None, None).await
}

async fn decide(server: &Server, token: &str, id: &str, body: &Value) -> reqwest::Response {
    command(server, token, id, "decision", None, Some(body)).await
}

async fn case(server: &Server, token: &str, id: &str) -> Value {
    let case = assert_json(
        get(server, &format!("/api/v1/cases/{id}"), Some(token)).await,
        200,
    )
    .await;
    assert_case_shape(&case);
    case
}

async fn stats(server: &Server, token: &str) -> Value {
    let stats = assert_json(get(server, "/api/v1/stats", Some(token)).await, 200).await;
    for key in ["pending", "in_review", "escalated", "decided", "position"] {
        assert!(stats[key].is_u64(), "{key} in {stats}");
    }
    for key in ["confirm", "amend", "reject"] {
        assert!(stats["by_decision"][key].is_u64(), "{key} in {stats}");
    }
    stats
}

fn count(stats: &Value, path: &[&str]) -> u64 {
    path.iter()
        .fold(stats, |v, k| &v[*k])
        .as_u64()
        .unwrap_or_else(|| panic!("{path:?} in {stats}"))
}

#[tokio::test]
async fn a_case_goes_through_every_role() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start_demo(&data, &[]);
    let classifier = login(&server, "classifier", &demo_password("classifier")).await;
    let reviewer = login(&server, "reviewer", &demo_password("reviewer")).await;
    let senior = login(&server, "senior", &demo_password("senior")).await;
    let classifier_id = me(&server, &classifier).await["id"].clone();
    let reviewer_id = me(&server, &reviewer).await["id"].clone();
    let senior_id = me(&server, &senior).await["id"].clone();
    let before = stats(&server, &reviewer).await;

    // Submitting is for classifiers (and admins).
    let r = submit(&server, &reviewer, &submission("CR-1/p.1")).await;
    assert_problem(r, 403, "forbidden").await;
    let response = submit(&server, &classifier, &submission("CR-1/p.1")).await;
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let new = assert_json(response, 201).await;
    assert_case_shape(&new);
    let id = text(&new, "id");
    assert_eq!(location, Some(format!("/api/v1/cases/{id}")));
    assert_eq!(new["subject_ref"], "CR-1/p.1");
    assert_eq!(
        new["excerpt"],
        "He said he would do it, and then he did it."
    );
    assert_eq!(
        new["assessment"],
        json!({"culpability": "knowingly", "confidence": 0.87,
               "rationale": "Aware of the near-certain result."})
    );
    assert_eq!(new["priority"], "normal");
    assert_eq!(new["adjudication_status"], "pending");
    assert_eq!(new["version"], 1);
    for key in [
        "decision",
        "final_culpability",
        "reviewer_id",
        "reviewer_notes",
        "claimed_by",
        "claim_expires_at",
        "decided_at",
    ] {
        assert!(new[key].is_null(), "{key} in {new}");
    }
    assert!(new["position"].as_u64().unwrap() > count(&before, &["position"]));
    assert_eq!(
        case(&server, &reviewer, &id).await,
        new,
        "GET shows the same case"
    );

    // Claiming is for reviewers.
    assert_problem(claim(&server, &classifier, &id).await, 403, "forbidden").await;
    let claimed = assert_json(claim(&server, &reviewer, &id).await, 200).await;
    assert_case_shape(&claimed);
    assert_eq!(claimed["adjudication_status"], "in_review");
    assert_eq!(claimed["claimed_by"], reviewer_id);
    assert_eq!(claimed["version"], 2);
    let expires = assert_time(&claimed["claim_expires_at"]);
    let now = events::Timestamp::now().as_micros();
    let lease = Duration::from_micros((expires - now).max(0) as u64);
    assert!(
        lease > Duration::from_secs(14 * 60) && lease <= Duration::from_secs(15 * 60),
        "the default lease is 15 minutes: {lease:?}"
    );
    // Someone else's claim stands: another reviewer cannot take it, nor release it.
    assert_problem(
        claim(&server, &senior, &id).await,
        409,
        "invalid_transition",
    )
    .await;
    assert_problem(release(&server, &senior, &id).await, 403, "forbidden").await;
    // Only the holder decides.
    let confirm = json!({"decision": "confirm", "notes": "fine"});
    assert_problem(
        decide(&server, &classifier, &id, &confirm).await,
        403,
        "forbidden",
    )
    .await;
    assert_problem(
        decide(&server, &senior, &id, &confirm).await,
        403,
        "forbidden",
    )
    .await;

    // A stale If-Match: 409 with the case as it stands.
    let stale = command(
        &server,
        &reviewer,
        &id,
        "decision",
        Some("\"1\""),
        Some(&confirm),
    )
    .await;
    let conflict = assert_problem(stale, 409, "version_conflict").await;
    assert_eq!(conflict["current"], claimed, "the current case: {conflict}");
    let bad = command(
        &server,
        &reviewer,
        &id,
        "decision",
        Some("soon"),
        Some(&confirm),
    )
    .await;
    assert_problem(bad, 400, "bad_if_match").await;

    // The decision's fields are checked, each named.
    let escalate_silently = json!({"decision": "escalate"});
    let r = decide(&server, &reviewer, &id, &escalate_silently).await;
    assert_eq!(assert_invalid(r).await, ["notes"]);
    let long_notes = json!({"decision": "escalate", "notes": "n".repeat(4001)});
    let r = decide(&server, &reviewer, &id, &long_notes).await;
    assert_eq!(assert_invalid(r).await, ["notes"]);
    let r = decide(
        &server,
        &reviewer,
        &id,
        &json!({"decision": "amend", "notes": "x"}),
    )
    .await;
    assert_eq!(assert_invalid(r).await, ["final_culpability"]);
    let r = decide(
        &server,
        &reviewer,
        &id,
        &json!({"decision": "amend", "final_culpability": "knowingly", "notes": "x"}),
    )
    .await;
    assert_eq!(assert_invalid(r).await, ["final_culpability"]);
    let r = decide(
        &server,
        &reviewer,
        &id,
        &json!({"decision": "maybe", "notes": "x"}),
    )
    .await;
    assert_eq!(assert_invalid(r).await, ["decision"]);
    let r = decide(
        &server,
        &reviewer,
        &id,
        &json!({"decision": "amend", "final_culpability": "sort of", "notes": "x"}),
    )
    .await;
    assert_eq!(assert_invalid(r).await, ["final_culpability"]);
    let r = decide(&server, &reviewer, &id, &json!({"notes": "x"})).await;
    assert_eq!(assert_invalid(r).await, ["decision"]);
    let r = decide(
        &server,
        &reviewer,
        &id,
        &json!({"decision": "confirm", "why": "x"}),
    )
    .await;
    assert_eq!(assert_invalid(r).await, ["why"]);
    // None of that changed the case.
    assert_eq!(case(&server, &reviewer, &id).await, claimed);

    // Escalation, with the current version in If-Match.
    let notes = "n".repeat(4000);
    let escalated = assert_json(
        command(
            &server,
            &reviewer,
            &id,
            "decision",
            Some("\"2\""),
            Some(&json!({"decision": "escalate", "notes": notes})),
        )
        .await,
        200,
    )
    .await;
    assert_case_shape(&escalated);
    assert_eq!(escalated["adjudication_status"], "escalated");
    assert_eq!(escalated["decision"], "escalate");
    assert_eq!(escalated["reviewer_id"], reviewer_id);
    assert_eq!(escalated["reviewer_notes"], json!(notes));
    assert!(escalated["claimed_by"].is_null() && escalated["claim_expires_at"].is_null());
    assert!(escalated["decided_at"].is_null() && escalated["final_culpability"].is_null());
    assert_eq!(escalated["version"], 3);

    // Escalated cases are for senior reviewers.
    assert_problem(claim(&server, &reviewer, &id).await, 403, "forbidden").await;
    let mid = stats(&server, &reviewer).await;
    assert_eq!(
        count(&mid, &["escalated"]),
        count(&before, &["escalated"]) + 1
    );
    let senior_claim = assert_json(claim(&server, &senior, &id).await, 200).await;
    assert_eq!(senior_claim["adjudication_status"], "in_review");
    assert_eq!(senior_claim["claimed_by"], senior_id);
    assert_eq!(senior_claim["version"], 4);
    // A senior who walks away leaves it escalated, not pending.
    let walked = assert_json(release(&server, &senior, &id).await, 200).await;
    assert_eq!(walked["adjudication_status"], "escalated");
    assert_eq!(walked["version"], 5);
    assert_json(claim(&server, &senior, &id).await, 200).await;
    let amend = json!({"decision": "amend", "final_culpability": "recklessly",
                       "notes": "Aware of a risk, not of a practical certainty."});
    let decided = assert_json(decide(&server, &senior, &id, &amend).await, 200).await;
    assert_case_shape(&decided);
    assert_eq!(decided["adjudication_status"], "decided");
    assert_eq!(decided["decision"], "amend");
    assert_eq!(decided["final_culpability"], "recklessly");
    assert_eq!(decided["reviewer_id"], senior_id);
    assert_eq!(
        decided["reviewer_notes"],
        "Aware of a risk, not of a practical certainty."
    );
    assert!(decided["claimed_by"].is_null() && decided["claim_expires_at"].is_null());
    assert!(assert_time(&decided["decided_at"]) >= assert_time(&decided["submitted_at"]));
    assert_eq!(
        decided["assessment"], new["assessment"],
        "the assessment stays"
    );
    assert_eq!(decided["version"], 7);
    // Decided is final here.
    assert_problem(
        claim(&server, &reviewer, &id).await,
        409,
        "invalid_transition",
    )
    .await;
    assert_problem(
        decide(&server, &senior, &id, &amend).await,
        409,
        "invalid_transition",
    )
    .await;

    // The stats count it.
    let after = stats(&server, &reviewer).await;
    for key in ["pending", "in_review", "escalated"] {
        assert_eq!(count(&after, &[key]), count(&before, &[key]), "{key}");
    }
    assert_eq!(
        count(&after, &["decided"]),
        count(&before, &["decided"]) + 1
    );
    assert_eq!(
        count(&after, &["by_decision", "amend"]),
        count(&before, &["by_decision", "amend"]) + 1
    );
    for key in ["confirm", "reject"] {
        assert_eq!(
            count(&after, &["by_decision", key]),
            count(&before, &["by_decision", key])
        );
    }
    assert_eq!(after["position"], decided["position"]);

    // The history: every event, oldest first, in the audit shape.
    let history = assert_json(
        get(
            &server,
            &format!("/api/v1/cases/{id}/history"),
            Some(&classifier),
        )
        .await,
        200,
    )
    .await;
    let history = history.as_array().expect("an array");
    let types: Vec<&str> = history
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "case_submitted",
            "case_claimed",
            "case_escalated",
            "case_claimed",
            "case_released",
            "case_claimed",
            "case_decided"
        ]
    );
    let actors = [
        &classifier_id,
        &reviewer_id,
        &reviewer_id,
        &senior_id,
        &senior_id,
        &senior_id,
        &senior_id,
    ];
    let mut last_position = 0;
    for (n, event) in history.iter().enumerate() {
        assert_audit_event_shape(event);
        assert_eq!(event["stream"], format!("case-{id}"));
        assert_eq!(event["version"], n as u64 + 1);
        assert_eq!(&event["user_id"], actors[n], "{event}");
        let position = event["position"].as_u64().unwrap();
        assert!(position > last_position, "oldest first");
        last_position = position;
        if n > 0 {
            assert_eq!(event["prev_hash"], history[n - 1]["hash"], "one chain");
        }
    }
    assert_eq!(history[0]["position"], new["position"]);
    assert_eq!(history[6]["position"], decided["position"]);
    assert_eq!(history[0]["data"]["subject_ref"], "CR-1/p.1");
    assert_eq!(history[4]["data"]["reason"], "released");
    assert_eq!(history[6]["data"]["decision"], "amend");
    assert_eq!(history[6]["data"]["final_culpability"], "recklessly");

    // Release returns a case to the queue; only a claimed case can be released.
    let other = text(&submitted(&server, &classifier, "CR-2/p.2").await, "id");
    assert_problem(
        release(&server, &reviewer, &other).await,
        409,
        "invalid_transition",
    )
    .await;
    assert_json(claim(&server, &reviewer, &other).await, 200).await;
    // The holder may claim again to renew.
    let renewed = assert_json(claim(&server, &reviewer, &other).await, 200).await;
    assert_eq!(renewed["version"], 3);
    let released = assert_json(release(&server, &reviewer, &other).await, 200).await;
    assert_case_shape(&released);
    assert_eq!(released["adjudication_status"], "pending");
    assert!(released["claimed_by"].is_null() && released["claim_expires_at"].is_null());
    assert_eq!(released["version"], 4);
    assert_problem(
        release(&server, &reviewer, &other).await,
        409,
        "invalid_transition",
    )
    .await;
    // Deciding needs a claim.
    assert_problem(
        decide(&server, &reviewer, &other, &confirm).await,
        409,
        "invalid_transition",
    )
    .await;

    // Unknown cases, and ids that are not ids.
    let nobody = Uuid::now_v7().to_string();
    for missing in [nobody.as_str(), "not-a-uuid"] {
        let r = get(
            &server,
            &format!("/api/v1/cases/{missing}"),
            Some(&reviewer),
        )
        .await;
        assert_problem(r, 404, "not_found").await;
        let r = get(
            &server,
            &format!("/api/v1/cases/{missing}/history"),
            Some(&reviewer),
        )
        .await;
        assert_problem(r, 404, "not_found").await;
        assert_problem(claim(&server, &reviewer, missing).await, 404, "not_found").await;
        assert_problem(release(&server, &reviewer, missing).await, 404, "not_found").await;
        assert_problem(
            decide(&server, &reviewer, missing, &confirm).await,
            404,
            "not_found",
        )
        .await;
    }
    let r = get(&server, "/api/v1/no-such-thing", Some(&reviewer)).await;
    assert_problem(r, 404, "not_found").await;
}

#[tokio::test]
async fn concurrent_decisions_on_one_case_let_exactly_one_through() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start_demo(&data, &[]);
    let classifier = login(&server, "classifier", &demo_password("classifier")).await;
    let reviewer = login(&server, "reviewer", &demo_password("reviewer")).await;
    let confirm = json!({"decision": "confirm", "notes": "Supported."});
    let reject = json!({"decision": "reject", "notes": "Hearsay."});

    // Without If-Match, the loser is retried against the new state and finds the case decided:
    // `invalid_transition`. With the same If-Match on both, the loser is told of the conflict,
    // with the case as the winner left it.
    for (round, pinned) in [(0, None), (1, None), (2, Some("\"2\"")), (3, Some("\"2\""))] {
        let id = text(
            &submitted(&server, &classifier, &format!("RACE-{round}")).await,
            "id",
        );
        assert_json(claim(&server, &reviewer, &id).await, 200).await;
        let (a, b) = tokio::join!(
            command(&server, &reviewer, &id, "decision", pinned, Some(&confirm)),
            command(&server, &reviewer, &id, "decision", pinned, Some(&reject)),
        );
        let (winner, loser, decision) = match (a.status().as_u16(), b.status().as_u16()) {
            (200, _) => (a, b, "confirm"),
            (_, 200) => (b, a, "reject"),
            (x, y) => panic!("round {round}: no decision went through: {x} and {y}"),
        };
        let decided = assert_json(winner, 200).await;
        assert_eq!(decided["decision"], decision);
        assert_eq!(decided["version"], 3, "one decision recorded");
        let code = if pinned.is_some() {
            "version_conflict"
        } else {
            "invalid_transition"
        };
        let refused = assert_problem(loser, 409, code).await;
        if pinned.is_some() {
            assert_eq!(refused["current"], decided, "round {round}");
        }
        assert_eq!(
            case(&server, &reviewer, &id).await,
            decided,
            "round {round}"
        );
        let history = assert_json(
            get(
                &server,
                &format!("/api/v1/cases/{id}/history"),
                Some(&reviewer),
            )
            .await,
            200,
        )
        .await;
        let decisions = history
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "case_decided")
            .count();
        assert_eq!(decisions, 1, "round {round}: {history}");
    }
}

#[tokio::test]
async fn an_abandoned_claim_returns_to_the_queue_when_its_lease_runs_out() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start_demo(&data, &["--claim-lease", "1s"]);
    let classifier = login(&server, "classifier", &demo_password("classifier")).await;
    let reviewer = login(&server, "reviewer", &demo_password("reviewer")).await;
    let id = text(&submitted(&server, &classifier, "LEASE-1").await, "id");
    let claimed = assert_json(claim(&server, &reviewer, &id).await, 200).await;
    assert_eq!(claimed["adjudication_status"], "in_review");
    let lease = assert_time(&claimed["claim_expires_at"])
        - assert_time(&history_last(&server, &reviewer, &id).await["recorded_at"]);
    assert!(
        (900_000..=1_100_000).contains(&lease),
        "a 1 s lease: {lease} µs"
    );

    let (s, token, case_id) = (&server, reviewer.as_str(), id.as_str());
    let back = eventually(
        "the lease keeper to release the case",
        Duration::from_secs(15),
        || async move {
            let now = case(s, token, case_id).await;
            (now["adjudication_status"] == "pending").then_some(now)
        },
    )
    .await;
    assert!(back["claimed_by"].is_null() && back["claim_expires_at"].is_null());
    assert_eq!(back["version"], 3);
    let last = history_last(&server, &reviewer, &id).await;
    assert_eq!(last["type"], "case_released");
    assert_eq!(last["data"]["reason"], "lease_expired");
    assert!(last["user_id"].is_null(), "released by the server itself");

    // The former holder can no longer decide; a new claim works.
    let confirm = json!({"decision": "confirm"});
    assert_problem(
        decide(&server, &reviewer, &id, &confirm).await,
        409,
        "invalid_transition",
    )
    .await;
    let again = assert_json(claim(&server, &reviewer, &id).await, 200).await;
    assert_eq!(again["adjudication_status"], "in_review");
}

async fn history_last(server: &Server, token: &str, id: &str) -> Value {
    let history = assert_json(
        get(server, &format!("/api/v1/cases/{id}/history"), Some(token)).await,
        200,
    )
    .await;
    history
        .as_array()
        .and_then(|h| h.last())
        .cloned()
        .expect("a history")
}

#[tokio::test]
async fn every_field_of_a_submission_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    // Admins may submit too, which saves this test the demo users.
    let admin = login(&server, "admin", &admin_password(&data)).await;

    let with = |path: &[&str], value: Value| {
        let mut body = submission("CR-9/p.9");
        let (last, parents) = path.split_last().unwrap();
        let target = parents.iter().fold(&mut body, |v, k| &mut v[*k]);
        target[*last] = value;
        body
    };
    let without = |path: &[&str]| {
        let mut body = submission("CR-9/p.9");
        let (last, parents) = path.split_last().unwrap();
        let target = parents.iter().fold(&mut body, |v, k| &mut v[*k]);
        target.as_object_mut().unwrap().remove(*last);
        body
    };

    // At the limits: accepted.
    for body in [
        with(&["subject_ref"], json!("s".repeat(256))),
        with(&["subject_ref"], json!("é".repeat(256))),
        with(&["excerpt"], json!("e".repeat(20_000))),
        with(&["assessment", "rationale"], json!("r".repeat(4_000))),
        with(&["assessment", "rationale"], json!("")),
        with(&["assessment", "confidence"], json!(0.0)),
        with(&["assessment", "confidence"], json!(1.0)),
        with(&["priority"], json!("urgent")),
        with(&["assessment", "culpability"], json!("none")),
    ] {
        let created = assert_json(submit(&server, &admin, &body).await, 201).await;
        assert_case_shape(&created);
        assert_eq!(created["subject_ref"], body["subject_ref"]);
        assert_eq!(created["excerpt"], body["excerpt"]);
        assert_eq!(created["assessment"], body["assessment"]);
        assert_eq!(created["priority"], body["priority"]);
    }

    // Past them, or missing, or of the wrong kind: 422 naming the field.
    let cases: Vec<(Value, &str)> = vec![
        (with(&["subject_ref"], json!("")), "subject_ref"),
        (with(&["subject_ref"], json!("   ")), "subject_ref"),
        (
            with(&["subject_ref"], json!("s".repeat(257))),
            "subject_ref",
        ),
        (with(&["excerpt"], json!("")), "excerpt"),
        (with(&["excerpt"], json!("e".repeat(20_001))), "excerpt"),
        (
            with(&["assessment", "rationale"], json!("r".repeat(4_001))),
            "assessment.rationale",
        ),
        (
            with(&["assessment", "confidence"], json!(-0.1)),
            "assessment.confidence",
        ),
        (
            with(&["assessment", "confidence"], json!(1.1)),
            "assessment.confidence",
        ),
        (
            with(&["assessment", "confidence"], json!("high")),
            "assessment.confidence",
        ),
        (
            with(&["assessment", "culpability"], json!("maybe")),
            "assessment.culpability",
        ),
        (
            with(&["assessment", "culpability"], json!("Knowingly")),
            "assessment.culpability",
        ),
        (with(&["priority"], json!("asap")), "priority"),
        (with(&["priority"], json!(3)), "priority"),
        (with(&["extra"], json!(1)), "extra"),
        (with(&["assessment", "score"], json!(1)), "assessment.score"),
        (without(&["subject_ref"]), "subject_ref"),
        (without(&["excerpt"]), "excerpt"),
        (without(&["assessment"]), "assessment"),
        (
            without(&["assessment", "culpability"]),
            "assessment.culpability",
        ),
        (
            without(&["assessment", "confidence"]),
            "assessment.confidence",
        ),
        (with(&["excerpt"], json!(null)), "excerpt"),
    ];
    for (body, field) in &cases {
        let fields = assert_invalid(submit(&server, &admin, body).await).await;
        assert_eq!(fields, [*field], "{body}");
    }

    // Every bad field at once is named at once.
    let mut all = with(&["subject_ref"], json!("s".repeat(257)));
    all["excerpt"] = json!("");
    all["assessment"]["rationale"] = json!("r".repeat(4_001));
    all["assessment"]["confidence"] = json!(1.5);
    let fields = assert_invalid(submit(&server, &admin, &all).await).await;
    assert_eq!(
        fields,
        [
            "subject_ref",
            "excerpt",
            "assessment.rationale",
            "assessment.confidence"
        ]
    );

    // Not JSON, not a JSON object, not JSON at all, or too big.
    let trailing = format!("{} {{}}", submission("x"));
    for broken in ["{\"subject_ref\": ", "", "nope", "{'a': 1}", &trailing] {
        let r = client()
            .post(server.url("/api/v1/cases"))
            .bearer_auth(&admin)
            .header("content-type", "application/json")
            .body(broken.to_owned())
            .send()
            .await
            .unwrap();
        assert_problem(r, 400, "bad_json").await;
    }
    let r = client()
        .post(server.url("/api/v1/cases"))
        .bearer_auth(&admin)
        .header("content-type", "text/plain")
        .body(submission("x").to_string())
        .send()
        .await
        .unwrap();
    assert_problem(r, 415, "unsupported_media_type").await;
    let huge = with(&["excerpt"], json!("e".repeat(64 * 1024 + 1)));
    assert!(huge.to_string().len() > 64 * 1024);
    let r = submit(&server, &admin, &huge).await;
    assert_problem(r, 413, "payload_too_large").await;

    // None of the refused bodies made a case.
    let page = assert_json(
        get(&server, "/api/v1/cases?limit=500", Some(&admin)).await,
        200,
    )
    .await;
    assert_eq!(page["cases"].as_array().unwrap().len(), 9);
    assert!(page["next"].is_null());
}

#[tokio::test]
async fn the_queue_lists_in_pages_filtered_by_status() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start_demo(&data, &[]);
    let reviewer = login(&server, "reviewer", &demo_password("reviewer")).await;
    let stats = stats(&server, &reviewer).await;

    let priority_rank = |p: &str| match p {
        "urgent" => 0,
        "high" => 1,
        "normal" => 2,
        "low" => 3,
        other => panic!("priority {other}"),
    };
    for status in [
        None,
        Some("pending"),
        Some("in_review"),
        Some("escalated"),
        Some("decided"),
        // Several, as a queue window's `next` pages on.
        Some("pending,escalated"),
    ] {
        let expected: u64 = match status {
            None => ["pending", "in_review", "escalated"]
                .iter()
                .map(|s| count(&stats, &[s]))
                .sum(),
            Some(s) => s.split(',').map(|s| count(&stats, &[s])).sum(),
        };
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut path = "/api/v1/cases?limit=5".to_owned();
            if let Some(s) = status {
                path.push_str(&format!("&status={s}"));
            }
            if let Some(cursor) = &after {
                path.push_str(&format!("&after={cursor}"));
            }
            let page = assert_json(get(&server, &path, Some(&reviewer)).await, 200).await;
            let keys: Vec<&String> = page.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["cases", "next"], "{page}");
            let cases = page["cases"].as_array().unwrap();
            assert!(cases.len() <= 5);
            pages += 1;
            for c in cases {
                assert_case_shape(c);
                match status {
                    Some(s) => assert!(
                        s.split(',').any(|s| c["adjudication_status"] == s),
                        "{s}: {c}"
                    ),
                    None => assert_ne!(c["adjudication_status"], "decided"),
                }
                seen.push(c.clone());
            }
            match page["next"].as_str() {
                Some(cursor) => {
                    assert_eq!(cases.len(), 5, "a page with a next is full");
                    after = Some(cursor.to_owned());
                }
                None => {
                    assert!(page["next"].is_null());
                    break;
                }
            }
            assert!(pages < 100, "paging ends");
        }
        assert_eq!(seen.len() as u64, expected, "{status:?}: {stats}");
        let ids: HashSet<&str> = seen.iter().map(|c| c["id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), seen.len(), "no case twice");
        // Queue order: urgent first, then oldest first.
        let order: Vec<(u8, i64)> = seen
            .iter()
            .map(|c| {
                (
                    priority_rank(c["priority"].as_str().unwrap()),
                    assert_time(&c["submitted_at"]),
                )
            })
            .collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted, "{status:?} in queue order");
        // One page as big as the whole listing gives the same cases.
        let mut path = "/api/v1/cases?limit=500".to_owned();
        if let Some(s) = status {
            path.push_str(&format!("&status={s}"));
        }
        let whole = assert_json(get(&server, &path, Some(&reviewer)).await, 200).await;
        assert_eq!(whole["cases"], json!(seen));
        assert!(whole["next"].is_null());
    }
    // The demo data has cases in every state.
    for key in ["pending", "in_review", "escalated", "decided"] {
        assert!(count(&stats, &[key]) > 0, "{key}: {stats}");
    }
    // Without a limit, at most 50.
    let page = assert_json(get(&server, "/api/v1/cases", Some(&reviewer)).await, 200).await;
    assert!(page["cases"].as_array().unwrap().len() <= 50);

    // Bad parameters name themselves.
    for (query, field) in [
        ("status=open", "status"),
        ("status=pending,open", "status"),
        ("status=pending,", "status"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("after=somewhere", "after"),
        ("sort=priority", "sort"),
    ] {
        let r = get(&server, &format!("/api/v1/cases?{query}"), Some(&reviewer)).await;
        assert_eq!(assert_invalid(r).await, [field], "{query}");
    }
    // Reading needs a token.
    assert_problem(
        get(&server, "/api/v1/cases", None).await,
        401,
        "token_missing",
    )
    .await;
    assert_problem(
        get(&server, "/api/v1/stats", None).await,
        401,
        "token_missing",
    )
    .await;
}

#[tokio::test]
async fn an_auditor_reopens_a_decided_case_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_demo(&dir.path().join("data"), &[]);
    let classifier = login(&server, "classifier", &demo_password("classifier")).await;
    let reviewer = login(&server, "reviewer", &demo_password("reviewer")).await;
    let auditor = login(&server, "auditor", &demo_password("auditor")).await;
    let id = text(&submitted(&server, &classifier, "REOPEN-1").await, "id");
    let reopen = |token: String, body: Value| {
        let (server, id) = (&server, id.clone());
        async move { command(server, &token, &id, "reopen", None, Some(&body)).await }
    };

    // Only a decided case can be reopened.
    let early = reopen(auditor.clone(), json!({"reason": "too early"})).await;
    assert_problem(early, 409, "invalid_transition").await;

    assert_json(claim(&server, &reviewer, &id).await, 200).await;
    let confirm = json!({"decision": "confirm", "notes": "fits"});
    assert_json(decide(&server, &reviewer, &id, &confirm).await, 200).await;

    let by_reviewer = reopen(reviewer.clone(), json!({"reason": "second thoughts"})).await;
    assert_problem(by_reviewer, 403, "forbidden").await;
    let no_reason = reopen(auditor.clone(), json!({"reason": "  "})).await;
    assert_eq!(assert_invalid(no_reason).await, ["reason"]);

    let reopened = reopen(auditor.clone(), json!({"reason": "excerpt was truncated"})).await;
    let case = assert_json(reopened, 200).await;
    assert_case_shape(&case);
    assert_eq!(case["adjudication_status"], "pending");
    assert_eq!(case["decision"], Value::Null);
    assert_eq!(case["decided_at"], Value::Null);
    let last = history_last(&server, &auditor, &id).await;
    assert_eq!(last["type"], "case_reopened");
    assert_eq!(last["data"]["reason"], "excerpt was truncated");
}
