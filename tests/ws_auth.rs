//! `GET /api/v1/ws` and tokens, over real sockets against the real binary: the `welcome` with
//! a token in `?token=` or in a `bearer.` subprotocol; every refused token (one `error` with the
//! reason, then the close 4401/4403 with the same reason); sessions closed by a logout, by
//! disabling their user, and by their token's expiry unless renewed in band.

mod common;

use std::time::{Duration, Instant};

use common::ws::*;
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use uuid::Uuid;

const LOGOUT: &str = "/api/v1/auth/logout";

fn sign_hs256(claims: &Value, key: &[u8]) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(key),
    )
    .expect("sign a token")
}

fn exp_of(token: &str) -> i64 {
    jwt_parts(token).1["exp"].as_i64().expect("exp")
}

/// Connects with `token` and asserts the refusal: one `error` with `reason`, then the close.
async fn refused(server: &Server, token: Option<&str>, code: u16, reason: &str) {
    let mut ws = connect(server, token).await;
    let before = ws.expect_error_then_close(code, reason).await;
    assert!(before.is_empty(), "no welcome for {reason}: {before:?}");
}

async fn logout(server: &Server, token: &str) {
    let response = client()
        .post(server.url(LOGOUT))
        .bearer_auth(token)
        .send()
        .await
        .expect("POST logout");
    assert_eq!(response.status().as_u16(), 204);
}

#[tokio::test]
async fn a_valid_token_is_welcomed_and_every_bad_one_refused_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start_demo(
        &data,
        &[
            "--connect-attempts-per-ip",
            "1000",
            "--heartbeat-interval",
            "7s",
        ],
    );
    let reviewer = login_pair(&server, "reviewer", &demo_password("reviewer")).await;
    let access = reviewer["access_token"].as_str().unwrap().to_owned();
    let refresh = reviewer["refresh_token"].as_str().unwrap().to_owned();
    let user = me(&server, &access).await;
    let position = assert_json(get(&server, "/api/v1/stats", Some(&access)).await, 200).await
        ["position"]
        .as_u64()
        .unwrap();

    // `?token=`: a welcome with every member; no subprotocol was offered, none is answered.
    let (mut by_query, welcome) = open(&server, &access).await;
    assert_welcome(&welcome, &user, 7000, exp_of(&access));
    assert_eq!(welcome["position"], position, "nothing was written since");
    assert_eq!(by_query.protocol, None);
    by_query.ping("q").await;

    // `Sec-WebSocket-Protocol: adjudicator.v1, bearer.<token>`: answered `adjudicator.v1`.
    let mut by_header =
        connect_with_protocols(&server, &format!("{SUBPROTOCOL}, bearer.{access}")).await;
    assert_eq!(by_header.protocol.as_deref(), Some(SUBPROTOCOL));
    let second = by_header.recv_type("welcome").await;
    assert_welcome(&second, &user, 7000, exp_of(&access));
    assert_ne!(second["session_id"], welcome["session_id"]);
    by_header.ping("h").await;

    // Missing: no `?token=`, an empty one, or only `adjudicator.v1` offered.
    refused(&server, None, 4401, "token_missing").await;
    refused(&server, Some(""), 4401, "token_missing").await;
    let mut bare = connect_with_protocols(&server, SUBPROTOCOL).await;
    assert_eq!(bare.protocol.as_deref(), Some(SUBPROTOCOL));
    bare.expect_error_then_close(4401, "token_missing").await;

    // Malformed: not a JWT; or well signed with claims that are not ours.
    refused(&server, Some("garbage"), 4401, "token_malformed").await;
    refused(&server, Some("a.b.c"), 4401, "token_malformed").await;
    let secret = jwt_secret(&data);
    let (_, claims) = jwt_parts(&access);
    let mut no_sub = claims.clone();
    no_sub.as_object_mut().unwrap().remove("sub");
    let no_sub = sign_hs256(&no_sub, &secret);
    refused(&server, Some(&no_sub), 4401, "token_malformed").await;
    // Malformed in the subprotocol too.
    let mut bad_header =
        connect_with_protocols(&server, &format!("{SUBPROTOCOL}, bearer.x.y.z")).await;
    bad_header
        .expect_error_then_close(4401, "token_malformed")
        .await;

    // The forging is right: the same claims signed with the server's own key open a session.
    let resigned = sign_hs256(&claims, &secret);
    let (resigned_ws, resigned_welcome) = open(&server, &resigned).await;
    assert_eq!(resigned_welcome["user"]["id"], user["id"]);
    resigned_ws.close_normally().await;

    // Signed with another key.
    let other_key = b"another-key-another-key-another-key-0123456789";
    let forged = sign_hs256(&claims, other_key);
    refused(&server, Some(&forged), 4401, "token_invalid_signature").await;

    // A refresh token where an access token is needed.
    refused(&server, Some(&refresh), 4401, "token_wrong_type").await;

    // Our key, a user that does not exist.
    let mut stranger = claims.clone();
    stranger["sub"] = json!(Uuid::now_v7());
    stranger["jti"] = json!(Uuid::now_v7());
    let stranger = sign_hs256(&stranger, &secret);
    refused(&server, Some(&stranger), 4401, "user_unknown").await;

    // Revoked: logged out before connecting.
    let gone = login(&server, "senior", &demo_password("senior")).await;
    logout(&server, &gone).await;
    refused(&server, Some(&gone), 4401, "token_revoked").await;

    // A disabled user's token: 4403.
    let admin = admin_token(&server).await;
    let created = post(
        &server,
        "/api/v1/users",
        Some(&admin),
        &json!({"username": "erin", "password": "a long enough password", "display_name": "Erin",
                "roles": ["reviewer"]}),
    )
    .await;
    let erin = assert_json(created, 201).await;
    let erin_token = login(&server, "erin", "a long enough password").await;
    let path = format!("/api/v1/users/{}", erin["id"].as_str().unwrap());
    assert_json(
        patch(&server, &path, &admin, &json!({"disabled": true})).await,
        200,
    )
    .await;
    refused(&server, Some(&erin_token), 4403, "user_disabled").await;

    // The two good sessions lived through all of it.
    by_query.ping("q2").await;
    by_header.ping("h2").await;

    // The metrics count each refusal under its reason.
    let text = scrape(&server).await;
    for (reason, n) in [
        ("token_missing", 3.0),
        ("token_malformed", 4.0),
        ("token_invalid_signature", 1.0),
        ("token_expired", 0.0),
        ("token_wrong_type", 1.0),
        ("token_revoked", 1.0),
        ("user_unknown", 1.0),
        ("user_disabled", 1.0),
    ] {
        let series = format!("websocket_auth_failures_total{{reason=\"{reason}\"}}");
        assert_eq!(metric(&text, &series), n, "{series}");
    }
    assert_eq!(
        metric(&text, "websocket_connections_total{status=\"auth_failed\"}"),
        12.0
    );
    assert_eq!(
        metric(&text, "websocket_connections_total{status=\"accepted\"}"),
        3.0
    );
    assert_eq!(
        metric(
            &text,
            "websocket_messages_sent_total{message_type=\"welcome\"}"
        ),
        3.0
    );
    assert!(metric(&text, "websocket_auth_latency_seconds_count") >= 15.0);
    assert_eq!(metric(&text, "websocket_active_connections"), 2.0);
    assert_eq!(metric(&text, "registry_sessions"), 2.0);
    assert_eq!(
        metric(&text, "websocket_connection_duration_seconds_count"),
        1.0
    );
}

#[tokio::test]
async fn a_logout_and_a_disabled_user_close_live_sessions_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--connect-attempts-per-ip", "1000"]);
    let admin = admin_token(&server).await;

    // A logout with the session's own token closes it with 4401 `token_revoked` within 1 s.
    let (mut ws, _) = open(&server, &admin).await;
    let other = login(&server, "admin", &admin_password(&data)).await;
    let (mut bystander, _) = open(&server, &other).await;
    ws.ping("before").await;
    logout(&server, &admin).await;
    let logged_out = Instant::now();
    ws.expect_error_then_close(4401, "token_revoked").await;
    let took = logged_out.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "closed {took:?} after the logout"
    );
    // Another login of the same user is not touched.
    bystander.ping("after").await;

    // Disabling a user closes all of that user's sessions with 4403 `user_disabled`.
    let created = post(
        &server,
        "/api/v1/users",
        Some(&other),
        &json!({"username": "dana", "password": "a long enough password", "display_name": "Dana",
                "roles": ["reviewer"]}),
    )
    .await;
    let dana = assert_json(created, 201).await;
    let first = login(&server, "dana", "a long enough password").await;
    let second = login(&server, "dana", "a long enough password").await;
    let (mut one, _) = open(&server, &first).await;
    let (mut two, _) = open(&server, &second).await;
    one.subscribe("s", &["queue"], None).await;
    one.recv_type("snapshot").await;
    two.ping("p").await;
    let path = format!("/api/v1/users/{}", dana["id"].as_str().unwrap());
    assert_json(
        patch(&server, &path, &other, &json!({"disabled": true})).await,
        200,
    )
    .await;
    let disabled = Instant::now();
    one.expect_error_then_close(4403, "user_disabled").await;
    two.expect_error_then_close(4403, "user_disabled").await;
    let took = disabled.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "closed {took:?} after the PATCH"
    );
    bystander.ping("still").await;

    let admin_view = sessions(&server, &other).await;
    assert_eq!(admin_view.len(), 1, "{admin_view:?}");
    assert_eq!(admin_view[0]["username"], "admin");
}

#[tokio::test]
async fn an_expiring_token_closes_its_session_unless_renewed_in_band() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start_demo(
        &data,
        &[
            "--access-token-ttl",
            "2s",
            "--connect-attempts-per-ip",
            "1000",
        ],
    );
    let reviewer = demo_password("reviewer");

    // Two sessions on one token: one renews it in band, the other does not.
    let first = login(&server, "reviewer", &reviewer).await;
    let first_exp = exp_of(&first);
    let (mut kept, _) = open(&server, &first).await;
    let (mut lapsing, _) = open(&server, &first).await;

    // A newer token of the same user (later `exp`), sent before the first one expires.
    let newer = eventually(
        "a token expiring after the first",
        Duration::from_secs(10),
        || {
            let server = &server;
            let reviewer = &reviewer;
            async move {
                let token = login(server, "reviewer", reviewer).await;
                (exp_of(&token) > first_exp).then_some(token)
            }
        },
    )
    .await;
    assert!(
        now_seconds() < first_exp,
        "the newer token came too late to test a renewal"
    );
    kept.send_json(&json!({"type": "auth", "id": "renew", "token": newer}))
        .await;
    let answer = kept.recv_type("authenticated").await;
    assert_eq!(answer["id"], "renew");
    assert_eq!(
        assert_time(&answer["token_expires_at"]),
        exp_of(&newer) * 1_000_000
    );

    // The other session closes when the first token expires: 4401 `token_expired`.
    lapsing.expect_error_then_close(4401, "token_expired").await;
    let closed_at = now_micros();
    assert!(
        closed_at >= first_exp * 1_000_000,
        "closed before the token's expiry"
    );
    assert!(closed_at < (first_exp + 2) * 1_000_000, "closed late");

    // The renewed session is open after the first token's expiry...
    assert!(now_seconds() >= first_exp);
    kept.ping("after-first-expiry").await;
    // ...and closes when the newer token expires.
    kept.expect_error_then_close(4401, "token_expired").await;
    assert!(now_micros() >= exp_of(&newer) * 1_000_000);

    // An expired token is refused at connect.
    assert!(now_seconds() >= first_exp);
    refused(&server, Some(&first), 4401, "token_expired").await;

    let text = scrape(&server).await;
    assert_eq!(
        metric(
            &text,
            "websocket_auth_failures_total{reason=\"token_expired\"}"
        ),
        3.0
    );
    assert_eq!(
        metric(
            &text,
            "websocket_messages_sent_total{message_type=\"authenticated\"}"
        ),
        1.0
    );
    assert_eq!(metric(&text, "websocket_active_connections"), 0.0);
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

fn now_seconds() -> i64 {
    now_micros() / 1_000_000
}
