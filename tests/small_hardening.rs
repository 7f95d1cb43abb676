//! The small hardenings of issue 12, item 11, over real sockets: secret query parameters
//! redacted however their names are encoded, positions above `i64::MAX` refused, `/readyz` that
//! says little, token answers that no cache keeps or browser sniffs, logout's body limit, weak
//! RSA keys refused, and WebSocket origins limited to the server's own by default.

mod common;

use std::time::Duration;

use common::ws::{ws_url, SUBPROTOCOL};
use common::{
    assert_invalid, assert_json, assert_problem, client, demo_password, get, login, login_pair,
    post, run_to_end, start_demo, Server,
};
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

#[tokio::test]
async fn secret_parameters_are_redacted_even_when_their_names_are_encoded() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let secret = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.c2lnbmF0dXJl";
    for query in [
        format!("t%6Fken={secret}&probe=one"),
        format!("%74oken={secret}&probe=two"),
        format!("access%5Ftoken={secret}&probe=three"),
    ] {
        let probe = query.rsplit('=').next().unwrap().to_owned();
        get(&server, &format!("/healthz?{query}"), None).await;
        let line = server.log_line_with(&format!("probe={probe}"));
        assert!(!line.contains(secret), "logged in clear: {line}");
        assert!(line.contains("[redacted]"), "{line}");
    }
}

#[tokio::test]
async fn positions_above_the_largest_are_refused_not_wrapped() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_demo(&dir.path().join("data"), &[]);
    let auditor = login(&server, "auditor", &demo_password("auditor")).await;
    for after in ["9223372036854775808", "18446744073709551615"] {
        for path in ["/api/v1/audit/events", "/api/v1/audit/export"] {
            let answer = get(&server, &format!("{path}?after={after}"), Some(&auditor)).await;
            assert_eq!(
                assert_invalid(answer).await,
                ["after"],
                "{path}?after={after}"
            );
        }
    }
    // The largest position is a valid cursor, after which there is nothing.
    let page = assert_json(
        get(
            &server,
            "/api/v1/audit/events?after=9223372036854775807",
            Some(&auditor),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(page["events"], json!([]), "{page}");
}

#[tokio::test]
async fn token_answers_are_not_cached_or_sniffed_and_every_answer_is_not_sniffed() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_demo(&dir.path().join("data"), &[]);
    let body = json!({"username": "reviewer", "password": demo_password("reviewer")});
    let login = post(&server, "/api/v1/auth/login", None, &body).await;
    let headers = login.headers().clone();
    let pair = assert_json(login, 200).await;
    assert_eq!(headers["cache-control"], "no-store", "login");
    assert_eq!(headers["x-content-type-options"], "nosniff", "login");
    let refresh = post(
        &server,
        "/api/v1/auth/refresh",
        None,
        &json!({"refresh_token": pair["refresh_token"]}),
    )
    .await;
    assert_eq!(refresh.headers()["cache-control"], "no-store", "refresh");
    assert_eq!(refresh.headers()["x-content-type-options"], "nosniff");
    assert_json(refresh, 200).await;

    let health = get(&server, "/healthz", None).await;
    assert_eq!(health.headers()["x-content-type-options"], "nosniff");
    assert!(
        health.headers().get("strict-transport-security").is_none(),
        "no HSTS over plain HTTP"
    );
}

#[tokio::test]
async fn logout_bodies_obey_max_body_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_demo(&dir.path().join("data"), &["--max-body-bytes", "1024"]);
    let pair = login_pair(&server, "reviewer", &demo_password("reviewer")).await;
    let access = pair["access_token"].as_str().unwrap();
    let big = json!({"refresh_token": "x".repeat(4096)});
    let answer = client()
        .post(server.url("/api/v1/auth/logout"))
        .bearer_auth(access)
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_problem(answer, 413, "payload_too_large").await;
    // Within the limit, and without a body, logout works as before.
    let answer = client()
        .post(server.url("/api/v1/auth/logout"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 204);
}

#[tokio::test]
async fn readyz_names_no_file_and_no_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    let text = get(&server, "/readyz", None).await.text().await.unwrap();
    assert!(!text.contains(&data.display().to_string()), "{text}");
    assert!(!text.contains("detail"), "{text}");
}

#[test]
fn an_rsa_key_under_2048_bits_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let weak = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/jwt/rs1024-public.pem"
    );
    let (status, stderr) = run_to_end(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.path().join("data").to_str().unwrap(),
        "--jwt-algorithm",
        "RS256",
        "--jwt-public-key-file",
        weak,
    ]);
    assert!(!status.success());
    assert!(stderr.contains("rs1024-public.pem"), "{stderr}");
    assert!(stderr.contains("1024 bits; at least 2048"), "{stderr}");
}

/// The status of a WebSocket handshake to `server` sent with `Origin: origin`.
async fn handshake_status(server: &Server, token: &str, origin: &str) -> u16 {
    let mut request = ws_url(server, Some(&format!("token={token}")))
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("origin", HeaderValue::from_str(origin).unwrap());
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    let outcome = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(request),
    )
    .await
    .expect("the handshake answered in time");
    match outcome {
        Ok((_, response)) => response.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("the handshake failed: {e}"),
    }
}

#[tokio::test]
async fn browsers_open_websockets_from_the_servers_own_origin_only_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_demo(&dir.path().join("data"), &[]);
    let token = login(&server, "reviewer", &demo_password("reviewer")).await;
    let own = server.base_url.clone();
    assert_eq!(handshake_status(&server, &token, &own).await, 101, "{own}");
    for other in [
        "http://evil.example",
        "null",
        "http://127.0.0.1:1",
        "https://127.0.0.1",
    ] {
        assert_eq!(
            handshake_status(&server, &token, other).await,
            403,
            "{other}"
        );
    }
    drop(server);

    let server = start_demo(&dir.path().join("data"), &["--allowed-origins", "*"]);
    let token = login(&server, "reviewer", &demo_password("reviewer")).await;
    assert_eq!(
        handshake_status(&server, &token, "http://evil.example").await,
        101
    );
}
