//! Races around tokens, over real HTTP and WebSockets against the real binary:
//!
//! * a refresh token replayed over and over revokes its family once, not once per replay
//!   (issue 12 item 4);
//! * two refreshes of one token at once: exactly one succeeds and the family is revoked
//!   (issue 10), while a retry whose answer was lost gets the same pair again within the grace
//!   window (issue 13 item 4);
//! * a refresh loop racing a password change ends with the change: no token outlives it
//!   (issue 12 item 6);
//! * a role removed takes effect at once, on live sessions and in the deciders (item 7).

mod common;

use std::time::{Duration, Instant};

use common::ws::{admin_token, connect, open};
use common::*;
use futures_util::future::join_all;
use serde_json::{json, Value};

const REFRESH: &str = "/api/v1/auth/refresh";

fn text(value: &Value, key: &str) -> String {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {value}"))
        .to_owned()
}

async fn refresh(server: &Server, token: &str) -> reqwest::Response {
    post(server, REFRESH, None, &json!({ "refresh_token": token })).await
}

/// The status and the `code` of an answer (`None` for a success).
async fn outcome(response: reqwest::Response) -> (u16, Option<String>, Value) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("a JSON answer");
    let code = body["code"].as_str().map(str::to_owned);
    (status, code, body)
}

/// How many events of `event_type` the store holds, through the audit API.
async fn count_events(server: &Server, admin: &str, event_type: &str) -> usize {
    let path = format!("/api/v1/audit/events?type={event_type}&limit=1000");
    let page = assert_json(get(server, &path, Some(admin)).await, 200).await;
    page["events"].as_array().expect("events").len()
}

#[tokio::test]
async fn replaying_a_used_refresh_token_revokes_its_family_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_demo(
        &dir.path().join("data"),
        &["--refresh-rate-per-family", "100"],
    );
    let admin = admin_token(&server).await;
    let pair = login_pair(&server, "reviewer", &demo_password("reviewer")).await;
    let used = text(&pair, "refresh_token");
    let new = assert_json(refresh(&server, &used).await, 200).await;
    // The first replay is the reuse; the rest find the family revoked already.
    let (status, code, _) = outcome(refresh(&server, &used).await).await;
    assert_eq!((status, code.as_deref()), (401, Some("token_reused")));
    let replays = (0..16).map(|_| refresh(&server, &used));
    for answer in join_all(replays).await {
        let (status, code, body) = outcome(answer).await;
        assert_eq!(status, 401, "{body}");
        assert!(
            matches!(code.as_deref(), Some("token_reused" | "token_revoked")),
            "{body}"
        );
    }
    assert_eq!(
        count_events(&server, &admin, "token_family_revoked").await,
        1,
        "one revocation, however many replays"
    );
    let r = get(&server, "/api/v1/me", Some(&text(&new, "access_token"))).await;
    assert_problem(r, 401, "token_revoked").await;
}

#[tokio::test]
async fn two_refreshes_of_one_token_at_once_are_a_reuse() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_demo(&dir.path().join("data"), &[]);
    for round in 0..5 {
        let pair = login_pair(&server, "reviewer", &demo_password("reviewer")).await;
        let token = text(&pair, "refresh_token");
        let (a, b) = tokio::join!(refresh(&server, &token), refresh(&server, &token));
        let answers = [outcome(a).await, outcome(b).await];
        let won: Vec<&Value> = answers
            .iter()
            .filter(|(s, _, _)| *s == 200)
            .map(|(_, _, body)| body)
            .collect();
        let lost: Vec<&Option<String>> = answers
            .iter()
            .filter(|(s, _, _)| *s == 401)
            .map(|(_, code, _)| code)
            .collect();
        assert_eq!(
            (won.len(), lost),
            (1, vec![&Some("token_reused".to_owned())]),
            "round {round}: {answers:?}"
        );
        // The family is revoked: the winner's pair is void too.
        let winner = won[0];
        let r = get(&server, "/api/v1/me", Some(&text(winner, "access_token"))).await;
        assert_problem(r, 401, "token_revoked").await;
        let r = refresh(&server, &text(winner, "refresh_token")).await;
        assert_problem(r, 401, "token_revoked").await;
    }
}

#[tokio::test]
async fn a_retry_whose_answer_was_lost_gets_the_same_pair_again() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_demo(&dir.path().join("data"), &[]);
    let pair = login_pair(&server, "reviewer", &demo_password("reviewer")).await;
    let token = text(&pair, "refresh_token");
    // The first answer is "lost": the client never reads it.
    let lost = assert_json(refresh(&server, &token).await, 200).await;
    let sent = Instant::now();
    // A client retries after the `Retry-After` of a 503 (a second) or a timeout; the grace
    // window counts from the first use, and a retry sooner than a second is two holders racing.
    tokio::time::sleep(Duration::from_millis(1_200).saturating_sub(sent.elapsed())).await;
    let again = assert_json(refresh(&server, &token).await, 200).await;
    assert_eq!(
        (text(&again, "access_token"), text(&again, "refresh_token")),
        (text(&lost, "access_token"), text(&lost, "refresh_token")),
        "the very same pair"
    );
    // The login goes on: its access token works and its refresh token refreshes.
    me(&server, &text(&again, "access_token")).await;
    let next = assert_json(refresh(&server, &text(&again, "refresh_token")).await, 200).await;
    me(&server, &text(&next, "access_token")).await;
    // Once that pair was refreshed, the first token is a reuse even within the window.
    let r = refresh(&server, &token).await;
    assert_problem(r, 401, "token_reused").await;
    let r = get(&server, "/api/v1/me", Some(&text(&next, "access_token"))).await;
    assert_problem(r, 401, "token_revoked").await;
}

#[tokio::test]
async fn a_refresh_loop_racing_a_password_change_ends_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_demo(
        &dir.path().join("data"),
        &[
            "--refresh-rate-per-family",
            "100000",
            "--refresh-rate-per-ip",
            "100000",
        ],
    );
    let admin = admin_token(&server).await;
    let reviewer_id = text(
        &me(
            &server,
            &login(&server, "reviewer", &demo_password("reviewer")).await,
        )
        .await,
        "id",
    );
    // Several logins, each refreshing as fast as it can, while the password changes.
    let refreshed = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let mut loops = Vec::new();
    for _ in 0..4 {
        let pair = login_pair(&server, "reviewer", &demo_password("reviewer")).await;
        let base = server.base_url.clone();
        let refreshed = refreshed.clone();
        loops.push(tokio::spawn(async move {
            let http = client();
            let mut latest = pair;
            // A loop that outlives the change stops here, and fails the test below.
            for _ in 0..20_000 {
                let answer = http
                    .post(format!("{base}{REFRESH}"))
                    .json(&json!({"refresh_token": text(&latest, "refresh_token")}))
                    .send()
                    .await
                    .expect("POST refresh");
                let status = answer.status().as_u16();
                let body: Value = answer.json().await.expect("JSON");
                if status != 200 {
                    return (latest, status, body);
                }
                latest = body;
                refreshed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            (latest.clone(), 200, latest)
        }));
    }
    eventually("the loops refreshing", Duration::from_secs(30), || {
        let n = refreshed.load(std::sync::atomic::Ordering::Relaxed);
        async move { (n >= 8).then_some(()) }
    })
    .await;
    let path = format!("/api/v1/users/{reviewer_id}");
    let changed = patch(
        &server,
        &path,
        &admin,
        &json!({"password": "a brand new password"}),
    )
    .await;
    assert_json(changed, 200).await;
    let started = Instant::now();
    for handle in loops {
        let (latest, status, body) = tokio::time::timeout(Duration::from_secs(60), handle)
            .await
            .expect("every refresh loop ended after the change")
            .expect("the loop did not panic");
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["code"], "token_revoked", "{body}");
        // The last pair it got, whenever it got it, is void.
        let r = get(&server, "/api/v1/me", Some(&text(&latest, "access_token"))).await;
        assert_problem(r, 401, "token_revoked").await;
        let r = refresh(&server, &text(&latest, "refresh_token")).await;
        assert_problem(r, 401, "token_revoked").await;
    }
    println!(
        "refresh loops ended {:?} after the change",
        started.elapsed()
    );
    let old = post(
        &server,
        "/api/v1/auth/login",
        None,
        &json!({"username": "reviewer", "password": demo_password("reviewer")}),
    )
    .await;
    assert_problem(old, 401, "invalid_credentials").await;
    login(&server, "reviewer", "a brand new password").await;
}

#[tokio::test]
async fn a_reviewer_whose_role_was_removed_cannot_renew_or_decide() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_demo(&dir.path().join("data"), &[]);
    let admin = admin_token(&server).await;
    let pair = login_pair(&server, "reviewer", &demo_password("reviewer")).await;
    let token = text(&pair, "access_token");
    let reviewer_id = text(&me(&server, &token).await, "id");
    let page = assert_json(
        get(
            &server,
            "/api/v1/cases?status=pending&limit=1",
            Some(&token),
        )
        .await,
        200,
    )
    .await;
    let case_id = text(&page["cases"][0], "id");
    let claim_path = format!("/api/v1/cases/{case_id}/claim");
    assert_json(
        post(&server, &claim_path, Some(&token), &json!({})).await,
        200,
    )
    .await;

    let path = format!("/api/v1/users/{reviewer_id}");
    assert_json(
        patch(&server, &path, &admin, &json!({"roles": ["auditor"]})).await,
        200,
    )
    .await;
    // The access token of the old roles is void; the login's refresh carries the new ones.
    let r = get(&server, "/api/v1/me", Some(&token)).await;
    assert_problem(r, 401, "token_revoked").await;
    let refreshed = assert_json(refresh(&server, &text(&pair, "refresh_token")).await, 200).await;
    let token = text(&refreshed, "access_token");
    assert_eq!(me(&server, &token).await["roles"], json!(["auditor"]));
    // Still the claim holder, no longer a reviewer: no renewal, no decision.
    let r = post(&server, &claim_path, Some(&token), &json!({})).await;
    assert_problem(r, 403, "forbidden").await;
    let decision = format!("/api/v1/cases/{case_id}/decision");
    let r = post(
        &server,
        &decision,
        Some(&token),
        &json!({"decision": "confirm"}),
    )
    .await;
    assert_problem(r, 403, "forbidden").await;
    // Walking away is allowed.
    let release = format!("/api/v1/cases/{case_id}/release");
    let released = assert_json(post(&server, &release, Some(&token), &json!({})).await, 200).await;
    assert_eq!(released["adjudication_status"], "pending");
}

#[tokio::test]
async fn removing_the_auditor_role_closes_a_live_audit_session_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_demo(
        &dir.path().join("data"),
        &["--connect-attempts-per-ip", "1000"],
    );
    let admin = admin_token(&server).await;
    let pair = login_pair(&server, "auditor", &demo_password("auditor")).await;
    let (mut ws, welcome) = open(&server, &text(&pair, "access_token")).await;
    ws.subscribe("a", &["audit"], None).await;
    ws.recv_type("snapshot").await;
    let auditor_id = text(&welcome["user"], "id");

    let path = format!("/api/v1/users/{auditor_id}");
    assert_json(
        patch(&server, &path, &admin, &json!({"roles": ["reviewer"]})).await,
        200,
    )
    .await;
    let changed = Instant::now();
    // The session that held `audit` is closed: the roles it was opened with are gone.
    ws.expect_error_then_close(4401, "token_revoked").await;
    let took = changed.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "closed {took:?} after the PATCH"
    );

    // The client refreshes and comes back with its new roles: `audit` is refused.
    let refreshed = assert_json(refresh(&server, &text(&pair, "refresh_token")).await, 200).await;
    let mut ws = connect(&server, Some(&text(&refreshed, "access_token"))).await;
    let welcome = ws.recv_type("welcome").await;
    assert_eq!(welcome["user"]["roles"], json!(["reviewer"]));
    ws.send_json(&json!({"type": "subscribe", "id": "b", "topics": ["audit"]}))
        .await;
    ws.recv_error("forbidden_topic").await;
    ws.subscribe("c", &["queue"], None).await;
}
