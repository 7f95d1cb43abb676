//! The WebSocket limits over real sockets against the real binary: connections per user and
//! connect attempts per IP, the operators' view of the sessions (and their kick), inbound
//! message rate, frame size, binary frames, malformed messages and topics, and the heartbeat
//! that closes a client that never answers.

mod common;

use std::time::{Duration, Instant};

use common::ws::*;
use common::*;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite;

#[tokio::test]
async fn connections_per_user_and_connect_attempts_per_ip_and_the_operators_view() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start_demo(
        &data,
        &[
            "--connect-attempts-per-ip",
            "20",
            "--max-connections-per-user",
            "5",
        ],
    );
    let admin = admin_token(&server).await;
    let token = login(&server, "reviewer", &demo_password("reviewer")).await;
    let reviewer = me(&server, &token).await;
    // Every WebSocket connect attempt of this test from 127.0.0.1, counted against the 20.
    let mut attempts = 0;

    // Five sessions of one user: all welcome. The first subscribes to two topics.
    let mut open_sessions: Vec<(Ws, Value)> = Vec::new();
    for _ in 0..5 {
        attempts += 1;
        open_sessions.push(open(&server, &token).await);
    }
    let first = &mut open_sessions[0].0;
    first.subscribe("s1", &["queue", "stats"], None).await;
    for topic in ["queue", "stats"] {
        let snapshot = first.recv_type("snapshot").await;
        assert_eq!(snapshot["topic"], topic, "{snapshot}");
    }

    // The operators' view lists them with their user and topics.
    let listed = sessions(&server, &admin).await;
    assert_eq!(listed.len(), 5, "{listed:?}");
    for (_, welcome) in &open_sessions {
        let session = listed
            .iter()
            .find(|s| s["id"] == welcome["session_id"])
            .unwrap_or_else(|| panic!("{} in {listed:?}", welcome["session_id"]));
        let mut keys: Vec<&str> = session
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "connected_at",
                "id",
                "ip",
                "last_seen_at",
                "topics",
                "user_id",
                "username"
            ]
        );
        assert_eq!(session["user_id"], reviewer["id"]);
        assert_eq!(session["username"], "reviewer");
        assert_eq!(session["ip"], "127.0.0.1");
        assert_time(&session["connected_at"]);
        assert_time(&session["last_seen_at"]);
    }
    let subscribed = listed
        .iter()
        .find(|s| s["id"] == open_sessions[0].1["session_id"])
        .unwrap();
    assert_eq!(subscribed["topics"], json!(["queue", "stats"]));
    assert!(listed
        .iter()
        .filter(|s| s["id"] != open_sessions[0].1["session_id"])
        .all(|s| s["topics"] == json!([])));

    let limits = assert_json(
        get(&server, "/api/v1/admin/limits", Some(&admin)).await,
        200,
    )
    .await;
    assert_eq!(
        limits,
        json!({
            "connected_sessions": 5,
            "connected_users": 1,
            "tracked_ips": 1,
            "max_connections": 100000,
            "max_connections_per_user": 5,
            "connect_attempts_per_ip": 20,
            "connect_window_seconds": 60,
            "draining": false,
        })
    );

    // Operators only.
    let kick_path = format!(
        "/api/v1/admin/sessions/{}",
        open_sessions[0].1["session_id"].as_str().unwrap()
    );
    for path in ["/api/v1/admin/sessions", "/api/v1/admin/limits"] {
        assert_problem(get(&server, path, Some(&token)).await, 403, "forbidden").await;
    }
    let r = client()
        .delete(server.url(&kick_path))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_problem(r, 403, "forbidden").await;
    assert_problem(
        get(&server, "/api/v1/admin/sessions", None).await,
        401,
        "token_missing",
    )
    .await;

    // The sixth connection of the user: 4429 `too_many_connections`, no welcome.
    attempts += 1;
    let mut sixth = connect(&server, Some(&token)).await;
    let before = sixth
        .expect_error_then_close(4429, "too_many_connections")
        .await;
    assert!(before.is_empty(), "{before:?}");

    // A kick closes the session with 4403 `kicked`; it is gone from the list; kicking it again
    // finds nothing.
    let r = client()
        .delete(server.url(&kick_path))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let (mut kicked, _) = open_sessions.remove(0);
    kicked.expect_error_then_close(4403, "kicked").await;
    let s = &server;
    let a = admin.as_str();
    eventually(
        "the kicked session to leave the list",
        Duration::from_secs(5),
        || async move { (sessions(s, a).await.len() == 4).then_some(()) },
    )
    .await;
    let r = client()
        .delete(server.url(&kick_path))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_problem(r, 404, "not_found").await;

    // With one session fewer the user may connect again.
    attempts += 1;
    let (mut again, _) = open(&server, &token).await;
    again.ping("again").await;

    // The remaining attempts of the window (refused after the upgrade, but attempts all the
    // same), then the 21st: HTTP 429 with Retry-After, before any upgrade.
    while attempts < 20 {
        attempts += 1;
        connect(&server, None)
            .await
            .expect_error_then_close(4401, "token_missing")
            .await;
    }
    match try_connect(&server, Some(&token)).await {
        Ok(_) => panic!("attempt 21 was upgraded"),
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 429);
            let retry_after: u64 = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .expect("a Retry-After in seconds");
            assert!((1..=60).contains(&retry_after), "{retry_after}");
            let body: Value =
                serde_json::from_slice(response.body().as_deref().unwrap_or_default())
                    .expect("a problem body");
            assert_eq!(body["code"], "rate_limited", "{body}");
        }
        Err(e) => panic!("attempt 21: {e}"),
    }
    // The open sessions are not affected.
    for (ws, _) in &mut open_sessions {
        ws.ping("still").await;
    }

    let text = scrape(&server).await;
    for (series, value) in [
        ("websocket_connections_total{status=\"accepted\"}", 6.0),
        (
            "websocket_connections_total{status=\"too_many_connections\"}",
            1.0,
        ),
        (
            "websocket_connections_total{status=\"rejected_rate_limited\"}",
            1.0,
        ),
        ("websocket_connections_total{status=\"auth_failed\"}", 13.0),
        (
            "websocket_rate_limited_total{limit=\"connect_attempts\"}",
            1.0,
        ),
        (
            "websocket_rate_limited_total{limit=\"connections_per_user\"}",
            1.0,
        ),
        ("websocket_rate_limited_total{limit=\"message_rate\"}", 0.0),
        (
            "websocket_auth_failures_total{reason=\"token_missing\"}",
            13.0,
        ),
        ("websocket_active_connections", 5.0),
        ("registry_sessions", 5.0),
        ("registry_subscriptions{topic=\"queue\"}", 0.0),
        (
            "websocket_messages_sent_total{message_type=\"snapshot\"}",
            2.0,
        ),
        (
            "websocket_messages_sent_total{message_type=\"subscribed\"}",
            1.0,
        ),
    ] {
        assert_eq!(metric(&text, series), value, "{series}");
    }
    let limits = assert_json(
        get(&server, "/api/v1/admin/limits", Some(&admin)).await,
        200,
    )
    .await;
    assert_eq!(limits["connected_sessions"], 5);
}

#[tokio::test]
async fn floods_big_frames_binary_frames_and_malformed_messages() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start_demo(
        &data,
        &[
            "--message-rate",
            "5",
            "--message-burst",
            "5",
            "--max-frame-bytes",
            "1024",
            "--max-bad-messages",
            "3",
            "--connect-attempts-per-ip",
            "1000",
        ],
    );
    let reviewer = login(&server, "reviewer", &demo_password("reviewer")).await;
    let auditor = login(&server, "auditor", &demo_password("auditor")).await;

    // A flood: the burst of 5 is answered, then 4429 `message_rate`.
    let (mut flood, _) = open(&server, &reviewer).await;
    for i in 0..20 {
        flood
            .send_json(&json!({"type": "ping", "id": format!("f{i}")}))
            .await;
    }
    let answered = flood.expect_error_then_close(4429, "message_rate").await;
    assert!(
        (5..20).contains(&answered.len()),
        "{} answered",
        answered.len()
    );
    for (i, pong) in answered.iter().enumerate() {
        assert_eq!(pong["type"], "pong", "{pong}");
        assert_eq!(pong["id"], format!("f{i}"), "{pong}");
    }

    // A frame at the size limit is fine; one over it closes 1009 `frame_too_big`.
    let (mut big, _) = open(&server, &reviewer).await;
    let envelope = json!({"type": "ping", "id": ""}).to_string().len();
    let id = "x".repeat(1024 - envelope);
    let at_limit = json!({"type": "ping", "id": id}).to_string();
    assert_eq!(at_limit.len(), 1024);
    big.ping(&id).await;
    big.send_text(&format!(r#"{{"type":"ping","id":"{}"}}"#, "y".repeat(2000)))
        .await;
    let before = big.expect_close(1009, "frame_too_big").await;
    assert!(before.is_empty(), "{before:?}");

    // A binary frame: 4400 `protocol_error`.
    let (mut binary, _) = open(&server, &reviewer).await;
    binary.send_binary(b"{\"type\":\"ping\"}".to_vec()).await;
    let before = binary.expect_error_then_close(4400, "protocol_error").await;
    assert!(before.is_empty(), "{before:?}");

    // A malformed message is answered with `bad_message` and the session stays open; three
    // in a row close it with 4400 `protocol_error`.
    let (mut bad, _) = open(&server, &reviewer).await;
    bad.send_text("not json").await;
    let error = bad.recv_error("bad_message").await;
    assert!(error.get("id").is_none(), "{error}");
    bad.ping("alive").await;
    bad.send_text(r#"{"type":"dance","id":7}"#).await;
    bad.send_text("{}").await;
    bad.send_text(r#"{"type":"subscribe","id":"no-topics"}"#)
        .await;
    let before = bad.expect_error_then_close(4400, "protocol_error").await;
    assert_eq!(before.len(), 3, "{before:?}");
    for message in &before {
        assert_error(message, "bad_message");
    }
    assert_eq!(before[0]["id"], 7);
    assert_eq!(before[2]["id"], "no-topics");

    // Topics: an unknown one, and `audit` for a reviewer, are refused; the session stays open.
    let (mut topics, _) = open(&server, &reviewer).await;
    topics
        .send_json(&json!({"type": "subscribe", "id": "u", "topics": ["nope"]}))
        .await;
    assert_eq!(topics.recv_error("unknown_topic").await["id"], "u");
    topics.ping("t1").await;
    topics
        .send_json(&json!({"type": "subscribe", "id": "a", "topics": ["audit"]}))
        .await;
    assert_eq!(topics.recv_error("forbidden_topic").await["id"], "a");
    topics.ping("t2").await;
    let listed = sessions(&server, &admin_token(&server).await).await;
    assert!(
        listed.iter().all(|s| s["topics"] == json!([])),
        "{listed:?}"
    );

    // ...and `audit` is the auditor's.
    let (mut audit, _) = open(&server, &auditor).await;
    let subscribed = audit.subscribe("a", &["audit"], None).await;
    let snapshot = audit.recv_type("snapshot").await;
    assert_eq!(snapshot["topic"], "audit");
    assert_eq!(snapshot["position"], subscribed["position"]);
    assert_eq!(snapshot["data"], Value::Null);
    audit.ping("p").await;

    let text = scrape(&server).await;
    for (series, value) in [
        ("websocket_rate_limited_total{limit=\"message_rate\"}", 1.0),
        ("websocket_errors_total{error_type=\"frame_too_big\"}", 1.0),
        ("websocket_errors_total{error_type=\"protocol_error\"}", 2.0),
        ("websocket_errors_total{error_type=\"bad_message\"}", 4.0),
        ("websocket_errors_total{error_type=\"unknown_topic\"}", 1.0),
        (
            "websocket_errors_total{error_type=\"forbidden_topic\"}",
            1.0,
        ),
        ("registry_subscriptions{topic=\"audit\"}", 1.0),
        ("websocket_active_connections", 2.0),
    ] {
        assert_eq!(metric(&text, series), value, "{series}");
    }
    let pongs = metric(
        &text,
        "websocket_messages_sent_total{message_type=\"pong\"}",
    );
    assert_eq!(pongs, answered.len() as f64 + 5.0);
    assert!(metric(&text, "websocket_messages_received_total") >= pongs + 8.0);
}

#[tokio::test]
async fn a_client_that_never_answers_is_closed_by_the_heartbeat() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(
        &data,
        &["--heartbeat-interval", "1s", "--heartbeat-missed", "2"],
    );
    let admin = admin_token(&server).await;
    let silence = Duration::from_secs(2); // interval × missed

    // A client that reads (and so answers the server's pings) but sends nothing itself.
    let (mut alive, welcome) = open(&server, &admin).await;
    assert_eq!(welcome["heartbeat_interval_ms"], 1000);

    // A client that completes the handshake and then never reads or writes.
    let (mut dead, first_bytes) = raw_upgrade(&server, &admin).await;
    let upgraded = Instant::now();
    let s = &server;
    let a = admin.as_str();
    let listed = eventually(
        "both sessions to be listed",
        Duration::from_secs(5),
        || async move {
            let listed = sessions(s, a).await;
            (listed.len() == 2).then_some(listed)
        },
    )
    .await;
    let dead_id = listed
        .iter()
        .map(|s| s["id"].clone())
        .find(|id| *id != welcome["session_id"])
        .unwrap();

    // The server closes the dead one once it has been silent for `silence`. Silence is
    // checked at each heartbeat tick (when the pings go out), so the close comes at the first
    // tick after `silence`: within one more interval. The live one stays.
    let ((chunks, ended), ()) = tokio::join!(
        read_to_end(&mut dead, upgraded, Duration::from_secs(10)),
        alive.stay_quiet(silence + Duration::from_secs(2)),
    );
    let mut all = first_bytes;
    let mut closed_at = None;
    for (at, chunk) in &chunks {
        all.extend_from_slice(chunk);
        if closed_at.is_none() && server_frames(&all).iter().any(|(op, _)| *op == 0x8) {
            closed_at = Some(*at);
        }
    }
    let closed_at = closed_at.expect("a close frame");
    assert!(
        closed_at >= silence - Duration::from_millis(50),
        "closed after {closed_at:?}"
    );
    assert!(
        closed_at <= silence + Duration::from_secs(1) + Duration::from_secs(1),
        "closed after {closed_at:?}"
    );
    // The connection itself ends soon after the close frame, though the client never
    // answers it.
    assert!(
        ended <= closed_at + Duration::from_secs(3),
        "the connection ended {ended:?} after the handshake, the close frame came at {closed_at:?}"
    );
    let frames = server_frames(&all);
    let texts: Vec<Value> = frames
        .iter()
        .filter(|(op, _)| *op == 0x1)
        .map(|(_, p)| serde_json::from_slice(p).expect("JSON"))
        .collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert_eq!(texts[0]["type"], "welcome");
    assert_eq!(texts[0]["session_id"], dead_id);
    assert_error(&texts[1], "heartbeat_timeout");
    assert!(
        frames.iter().any(|(op, _)| *op == 0x9),
        "the server pinged: {frames:?}"
    );
    let (op, close) = frames.last().expect("frames");
    assert_eq!(*op, 0x8, "the last frame is a close: {frames:?}");
    assert_eq!(u16::from_be_bytes([close[0], close[1]]), 4408);
    assert_eq!(&close[2..], b"heartbeat_timeout");

    alive.ping("alive").await;
    let listed = sessions(&server, &admin).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], welcome["session_id"]);
    let text = scrape(&server).await;
    assert_eq!(metric(&text, "websocket_heartbeat_timeouts_total"), 1.0);
    assert_eq!(metric(&text, "websocket_active_connections"), 1.0);
}
