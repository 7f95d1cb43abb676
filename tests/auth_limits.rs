//! The limits on logging in and refreshing, and the client address they are keyed by, over real
//! HTTP against the real binary (issue 12, items 1, 2, 4 and 5):
//!
//! * a login is counted before its password is checked, so guesses sent at once cannot all pass;
//!   argon2 runs behind a bound that answers 503 `unavailable` with `Retry-After`; a username
//!   longer than any can be is refused before it reaches the limiter;
//! * the per-user limit is per user and address, with a slower limit across addresses that
//!   spares the addresses the user logged in from: strangers cannot lock the user out;
//! * refreshes are limited per address and per login;
//! * behind `--trusted-proxies` the client is the right-most untrusted `X-Forwarded-For` hop, for
//!   limits, logs and the sessions list; without it the header is never believed.

mod common;

use std::time::Duration;

use common::ws::{admin_token, connect_with_headers, sessions};
use common::*;
use futures_util::future::join_all;
use serde_json::{json, Value};

const LOGIN: &str = "/api/v1/auth/login";
const REFRESH: &str = "/api/v1/auth/refresh";

/// `POST /auth/login` as if from `forwarded_for` (an `X-Forwarded-For` header) when given.
async fn login_from(
    server: &Server,
    forwarded_for: Option<&str>,
    username: &str,
    password: &str,
) -> reqwest::Response {
    let mut request = client()
        .post(server.url(LOGIN))
        .json(&json!({"username": username, "password": password}));
    if let Some(ip) = forwarded_for {
        request = request.header("x-forwarded-for", ip);
    }
    request.send().await.expect("POST login")
}

async fn refresh(server: &Server, token: &str) -> reqwest::Response {
    post(server, REFRESH, None, &json!({ "refresh_token": token })).await
}

/// The `Retry-After` of a 429 or 503, in seconds.
fn retry_after(response: &reqwest::Response) -> u64 {
    response
        .headers()
        .get("retry-after")
        .unwrap_or_else(|| panic!("{} carries Retry-After", response.status()))
        .to_str()
        .expect("ASCII")
        .parse()
        .expect("whole seconds")
}

/// Asserts a 429 `rate_limited` with a `Retry-After` within `max` seconds.
async fn assert_limited(response: reqwest::Response, max: u64) {
    let wait = retry_after(&response);
    assert!((1..=max).contains(&wait), "Retry-After {wait}");
    assert_problem(response, 429, "rate_limited").await;
}

#[tokio::test]
async fn an_over_long_username_never_reaches_the_limiter() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_demo(&dir.path().join("data"), &["--login-failures-per-ip", "3"]);
    let long = "a".repeat(65);
    for _ in 0..10 {
        let r = login_from(&server, None, &long, "whatever-password").await;
        assert_eq!(assert_invalid(r).await, ["username"]);
    }
    let huge = "a".repeat(60_000);
    let r = login_from(&server, None, &huge, "whatever-password").await;
    assert_eq!(assert_invalid(r).await, ["username"]);
    // Not one of them was counted against this address: a wrong password is a plain 401, and
    // the right one logs in.
    let r = login_from(&server, None, "reviewer", "not-the-password").await;
    assert_problem(r, 401, "invalid_credentials").await;
    login(&server, "reviewer", &demo_password("reviewer")).await;
    // 64 characters is a username like any other.
    let r = login_from(&server, None, &"a".repeat(64), "whatever-password").await;
    assert_problem(r, 401, "invalid_credentials").await;
}

#[tokio::test]
async fn guesses_sent_at_once_are_counted_before_any_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_demo(
        &dir.path().join("data"),
        &[
            "--login-failures-per-user",
            "3",
            "--login-failures-per-ip",
            "1000",
        ],
    );
    let guesses = (0..24).map(|n| {
        let server = &server;
        async move { login_from(server, None, "senior", &format!("guess number {n}")).await }
    });
    let mut answers = Vec::new();
    for r in join_all(guesses).await {
        let status = r.status().as_u16();
        let code = r.json::<Value>().await.expect("a problem")["code"].clone();
        answers.push((status, code));
    }
    let checked = answers.iter().filter(|(s, _)| *s == 401).count();
    assert!(
        (1..=3).contains(&checked),
        "at most the limit reach the password check: {answers:?}"
    );
    for (status, code) in &answers {
        match status {
            401 => assert_eq!(code, "invalid_credentials"),
            429 => assert_eq!(code, "rate_limited"),
            503 => assert_eq!(code, "unavailable"),
            other => panic!("unexpected {other}: {answers:?}"),
        }
    }
    let r = login_from(&server, None, "senior", &demo_password("senior")).await;
    assert_limited(r, 15 * 60).await;
}

#[tokio::test]
async fn argon2_runs_behind_a_bound_that_answers_503_when_full() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_demo(
        &dir.path().join("data"),
        &[
            "--login-failures-per-user",
            "1000",
            "--login-failures-per-ip",
            "1000",
            "--login-failures-per-user-global",
            "1000",
        ],
    );
    // Far more logins at once than this machine has slots (two per core).
    let attempts = (0..64).map(|n| {
        let server = &server;
        async move { login_from(server, None, "reviewer", &format!("wrong password {n}")).await }
    });
    let mut busy = 0;
    for r in join_all(attempts).await {
        match r.status().as_u16() {
            401 => assert_problem(r, 401, "invalid_credentials").await,
            503 => {
                busy += 1;
                assert!(retry_after(&r) >= 1);
                assert_problem(r, 503, "unavailable").await
            }
            other => panic!("unexpected {other}: {}", r.text().await.unwrap_or_default()),
        };
    }
    assert!(busy > 0, "64 argon2 runs at once were all let through");
    // Once the burst is over, logins go through again.
    login(&server, "reviewer", &demo_password("reviewer")).await;
    println!("{busy} of 64 simultaneous logins answered 503");
}

#[tokio::test]
async fn strangers_cannot_lock_a_user_out() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_demo(
        &dir.path().join("data"),
        &[
            "--trusted-proxies",
            "127.0.0.1/32",
            "--login-failures-per-user",
            "3",
            "--login-failures-per-user-global",
            "6",
        ],
    );
    let password = demo_password("senior");
    // The rightful user logs in from home.
    let home = Some("198.51.100.10");
    assert_json(login_from(&server, home, "senior", &password).await, 200).await;
    // A stranger fails three times and is locked out of `senior` from there, even with the
    // right password.
    let stranger = Some("203.0.113.66");
    for _ in 0..3 {
        let r = login_from(&server, stranger, "senior", "guess-guess-guess").await;
        assert_problem(r, 401, "invalid_credentials").await;
    }
    assert_limited(
        login_from(&server, stranger, "senior", &password).await,
        15 * 60,
    )
    .await;
    // The user is not: from a new address either.
    let cafe = Some("198.51.100.77");
    assert_json(login_from(&server, cafe, "senior", &password).await, 200).await;
    // Many strangers together reach the slower limit across addresses: a new address must
    // wait now, but the addresses the user logged in from are spared.
    for n in 1..=3 {
        let ip = format!("203.0.113.{n}");
        let r = login_from(&server, Some(&ip), "senior", "guess-guess-guess").await;
        assert_problem(r, 401, "invalid_credentials").await;
    }
    let elsewhere = Some("192.0.2.200");
    assert_limited(
        login_from(&server, elsewhere, "senior", &password).await,
        15 * 60,
    )
    .await;
    assert_json(login_from(&server, home, "senior", &password).await, 200).await;
    assert_json(login_from(&server, cafe, "senior", &password).await, 200).await;
    // Other users are not concerned.
    assert_json(
        login_from(&server, elsewhere, "reviewer", &demo_password("reviewer")).await,
        200,
    )
    .await;
}

#[tokio::test]
async fn refreshes_are_limited_per_login_and_per_address() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_demo(
        &dir.path().join("data"),
        &[
            "--refresh-rate-per-family",
            "3",
            "--refresh-rate-per-ip",
            "6",
        ],
    );
    let pair = login_pair(&server, "reviewer", &demo_password("reviewer")).await;
    let mut token = pair["refresh_token"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        let answer = assert_json(refresh(&server, &token).await, 200).await;
        token = answer["refresh_token"].as_str().unwrap().to_owned();
    }
    assert_limited(refresh(&server, &token).await, 60).await;
    // Another login of the same user has its own budget; this address has two attempts left
    // (the refused one counted too).
    let other = login_pair(&server, "reviewer", &demo_password("reviewer")).await;
    let other = other["refresh_token"].as_str().unwrap().to_owned();
    assert_json(refresh(&server, &other).await, 200).await;
    assert_problem(refresh(&server, "garbage").await, 401, "token_malformed").await;
    // Every attempt counts, good or bad.
    assert_limited(refresh(&server, "garbage").await, 60).await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_client_is_the_right_most_untrusted_hop() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_demo(
        &dir.path().join("data"),
        &[
            "--trusted-proxies",
            "127.0.0.1/32, 10.0.0.0/8",
            "--login-failures-per-ip",
            "2",
        ],
    );
    // Limits: two clients behind the proxy are two addresses. The left-most entry is the
    // client's own claim and counts for nothing.
    for n in 0..2 {
        let forwarded = format!("192.0.2.{n}, 203.0.113.5, 10.1.2.3");
        let r = login_from(&server, Some(&forwarded), "nobody", "a wrong password").await;
        assert_problem(r, 401, "invalid_credentials").await;
    }
    let r = login_from(&server, Some("203.0.113.5"), "nobody", "a wrong password").await;
    assert_limited(r, 15 * 60).await;
    let r = login_from(&server, Some("203.0.113.6"), "nobody", "a wrong password").await;
    assert_problem(r, 401, "invalid_credentials").await;

    // The sessions list.
    let token = login(&server, "reviewer", &demo_password("reviewer")).await;
    let ws = connect_with_headers(
        &server,
        &token,
        &[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "198.51.100.7, 10.0.0.9"),
        ],
    )
    .await;
    let admin = admin_token(&server).await;
    let listed = reviewer_session(&server, &admin).await;
    assert_eq!(listed["ip"], "198.51.100.7", "{listed}");
    drop(ws);

    // The access log.
    let line = healthz_logged_as(&mut server, "198.51.100.99").await;
    assert!(line.contains("200"), "{line}");
}

#[tokio::test]
async fn without_trusted_proxies_forwarded_for_is_never_believed() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_demo(&dir.path().join("data"), &["--login-failures-per-ip", "2"]);
    let token = login(&server, "reviewer", &demo_password("reviewer")).await;
    let admin = admin_token(&server).await;
    // Changing the header does not change the address: the limit holds.
    for n in 0..2 {
        let forwarded = format!("203.0.113.{n}");
        let r = login_from(&server, Some(&forwarded), "nobody", "a wrong password").await;
        assert_problem(r, 401, "invalid_credentials").await;
    }
    let r = login_from(&server, Some("203.0.113.200"), "nobody", "a wrong password").await;
    assert_limited(r, 15 * 60).await;

    let ws = connect_with_headers(&server, &token, &[("x-forwarded-for", "198.51.100.7")]).await;
    let listed = reviewer_session(&server, &admin).await;
    assert_eq!(listed["ip"], "127.0.0.1", "{listed}");
    drop(ws);
    healthz_logged_as(&mut server, "127.0.0.1").await;
}

/// The reviewer's session in the admin's list, once it is there.
async fn reviewer_session(server: &Server, admin: &str) -> Value {
    eventually(
        "the session in the list",
        Duration::from_secs(10),
        || async {
            sessions(server, admin)
                .await
                .into_iter()
                .find(|s| s["username"] == "reviewer")
        },
    )
    .await
}

/// `GET /healthz` with `X-Forwarded-For: 198.51.100.99`; its access log line, which must name
/// the client as `logged_ip`.
async fn healthz_logged_as(server: &mut Server, logged_ip: &str) -> String {
    let r = client()
        .get(server.url("/healthz"))
        .header("x-forwarded-for", "198.51.100.99")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    wait_for_log(server, &format!("{logged_ip} GET /healthz")).await
}

/// The first log line containing `needle`; fails after a deadline.
async fn wait_for_log(server: &mut Server, needle: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match server
            .log
            .recv_timeout(left.min(Duration::from_millis(100)))
        {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(_) => assert!(
                std::time::Instant::now() < deadline,
                "no log line with {needle:?}"
            ),
        }
    }
}
