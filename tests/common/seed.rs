//! Users and cases made over the HTTP API, for tests that need them to exist (or to change)
//! while they watch something else, such as a page in a browser: create a user, submit, claim
//! and read cases, the queue as the server orders it, and the queue as of an earlier instant.

use serde_json::{json, Value};

use super::{assert_json, demo_password, get, login, post, Server};

/// A valid submission for `subject_ref` with `priority` (`low|normal|high|urgent`).
pub fn submission(subject_ref: &str, priority: &str) -> Value {
    json!({
        "subject_ref": subject_ref,
        "excerpt": "He was told twice that the brakes had failed and drove the school bus anyway.",
        "assessment": {"culpability": "recklessly", "confidence": 0.74,
                       "rationale": "Conscious disregard of a known risk to the passengers."},
        "priority": priority,
    })
}

/// The access token of the `--demo` user `classifier`, who submits cases.
pub async fn classifier_token(server: &Server) -> String {
    login(server, "classifier", &demo_password("classifier")).await
}

/// Submits a case as `token` and returns it, as the 201 answer gives it.
pub async fn submit(server: &Server, token: &str, subject_ref: &str, priority: &str) -> Value {
    let body = submission(subject_ref, priority);
    assert_json(post(server, "/api/v1/cases", Some(token), &body).await, 201).await
}

/// The id of a case, as a string.
pub fn id_of(case: &Value) -> String {
    case["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a case with an id: {case}"))
        .to_owned()
}

/// `GET /api/v1/cases/{id}` as `token`.
pub async fn case(server: &Server, token: &str, id: &str) -> Value {
    assert_json(
        get(server, &format!("/api/v1/cases/{id}"), Some(token)).await,
        200,
    )
    .await
}

/// The ids of the cases not yet decided, in the server's queue order (the first 500).
pub async fn queue_ids(server: &Server, token: &str) -> Vec<String> {
    let page = assert_json(
        get(server, "/api/v1/cases?limit=500", Some(token)).await,
        200,
    )
    .await;
    page["cases"]
        .as_array()
        .unwrap_or_else(|| panic!("cases: {page}"))
        .iter()
        .map(id_of)
        .collect()
}

/// `GET /api/v1/audit/queue?as_of=<as_of>` as `token` (an auditor or admin): the queue then,
/// as `(id, adjudication_status)` in queue order.
pub async fn queue_as_of(server: &Server, token: &str, as_of: &str) -> Vec<(String, String)> {
    let path = format!("/api/v1/audit/queue?as_of={as_of}");
    let answer = assert_json(get(server, &path, Some(token)).await, 200).await;
    answer["cases"]
        .as_array()
        .unwrap_or_else(|| panic!("cases: {answer}"))
        .iter()
        .map(|c| {
            let status = c["adjudication_status"].as_str().unwrap_or_default();
            (id_of(c), status.to_owned())
        })
        .collect()
}

/// Claims a case as `token` and returns it after the claim.
pub async fn claim(server: &Server, token: &str, id: &str) -> Value {
    let path = format!("/api/v1/cases/{id}/claim");
    assert_json(post(server, &path, Some(token), &json!({})).await, 200).await
}

/// Creates a user as `admin_token` and returns it.
pub async fn create_user(
    server: &Server,
    admin_token: &str,
    username: &str,
    password: &str,
    roles: &[&str],
) -> Value {
    let body = json!({"username": username, "password": password,
                      "display_name": username, "roles": roles});
    assert_json(
        post(server, "/api/v1/users", Some(admin_token), &body).await,
        201,
    )
    .await
}
