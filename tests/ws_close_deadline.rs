//! A close has a deadline: a client that stops reading, and so can never take the close frame
//! queued behind what it did not read, has its connection reset once the close has waited
//! `--heartbeat-interval` × `--heartbeat-missed`, instead of holding the connection and the frames
//! buffered for it forever.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Upgrades over a socket with a small receive buffer; returns it after the 101 answer.
async fn upgrade_small_buffer(server: &Server, token: &str) -> TcpStream {
    let host = server.base_url.trim_start_matches("http://").to_owned();
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut tcp = socket.connect(host.parse().unwrap()).await.unwrap();
    let request = format!(
        "GET /api/v1/ws?token={token} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut byte))
            .await
            .expect("the 101 answer in time")
            .unwrap();
        assert_eq!(n, 1, "the server closed before answering the upgrade");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
    tcp
}

#[tokio::test]
async fn a_close_the_client_does_not_take_resets_the_connection_at_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_demo(
        &dir.path().join("data"),
        &["--heartbeat-interval", "1s", "--heartbeat-missed", "2"],
    );
    let deadline = Duration::from_secs(2);
    let classifier = login(&server, "classifier", &demo_password("classifier")).await;
    let reviewer = login(&server, "reviewer", &demo_password("reviewer")).await;
    // Enough queue for a snapshot far larger than any socket buffer.
    let excerpt = "x".repeat(19_000);
    for n in 0..40 {
        let body = json!({"subject_ref": format!("BIG-{n}"), "excerpt": excerpt,
                          "assessment": {"culpability": "negligently", "confidence": 0.5}});
        let r = post(&server, "/api/v1/cases", Some(&classifier), &body).await;
        assert_eq!(r.status(), 201);
    }

    let mut tcp = upgrade_small_buffer(&server, &reviewer).await;
    // Each subscribe to `queue` answers a fresh snapshot of about 0.8 MB: a dozen of them are
    // more than the kernel's send buffer (4 MiB at most on Linux by default) takes in.
    let subscribe = r#"{"type":"subscribe","id":"q","topics":["queue"],"queue":{"limit":1000}}"#;
    for _ in 0..12 {
        tcp.write_all(&ws::masked_text_frame(subscribe))
            .await
            .unwrap();
    }
    // From now on the client reads nothing and sends nothing. The server closes the session
    // (its outbound queue overflows, or the heartbeat finds it silent for 2 s); its close frame
    // waits behind the snapshots, which never drain.
    let reset_after = ws::wait_for_reset(socket2::SockRef::from(&tcp), Duration::from_secs(30));
    // Not before the close's own deadline.
    assert!(
        reset_after >= deadline - Duration::from_millis(100),
        "reset after {reset_after:?}: the close was not given its time"
    );
    let text = ws::scrape(&server).await;
    assert_eq!(ws::metric(&text, "registry_sessions"), 0.0);
}
