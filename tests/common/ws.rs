//! WebSocket helpers for the integration tests: clients of `GET /api/v1/ws` over real sockets
//! (tokio-tungstenite), a hand-made handshake for a client that never answers, and the metrics
//! and admin views the WebSocket tests check.
//!
//! Every wait has a deadline: a message, a close frame or the end of a connection that does
//! not come in time fails the test instead of hanging it.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, Response};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{admin_password, assert_json, assert_time, get, login, Server};

/// How long any one expected message, close or answer may take.
pub const WAIT: Duration = Duration::from_secs(10);

/// The path of the WebSocket endpoint.
pub const WS_PATH: &str = "/api/v1/ws";

/// The subprotocol the server speaks.
pub const SUBPROTOCOL: &str = "adjudicator.v1";

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What a client saw next.
#[derive(Debug)]
pub enum Event {
    /// A text message, parsed as JSON.
    Text(Value),
    /// A close frame: its code and reason (`None` for a close frame without a payload).
    Close(Option<(u16, String)>),
    /// The connection ended without a close frame, or failed: why.
    Ended(String),
}

/// One WebSocket client.
pub struct Ws {
    socket: Socket,
    /// The `Sec-WebSocket-Protocol` the server answered, if any.
    pub protocol: Option<String>,
}

/// `ws://<server>/api/v1/ws` with `query` (e.g. `token=…`) if any.
pub fn ws_url(server: &Server, query: Option<&str>) -> String {
    let base = server.base_url.replacen("http://", "ws://", 1);
    match query {
        Some(q) => format!("{base}{WS_PATH}?{q}"),
        None => format!("{base}{WS_PATH}"),
    }
}

fn token_query(token: Option<&str>) -> Option<String> {
    token.map(|t| format!("token={t}"))
}

fn answered_protocol<B>(response: &Response<B>) -> Option<String> {
    response
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Opens a WebSocket with `?token=` (or without a token); the error is whatever refused the
/// upgrade (e.g. `tungstenite::Error::Http` with the HTTP answer).
pub async fn try_connect(server: &Server, token: Option<&str>) -> Result<Ws, tungstenite::Error> {
    let url = ws_url(server, token_query(token).as_deref());
    let (socket, response) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
        .await
        .expect("the upgrade answered in time")?;
    Ok(Ws {
        protocol: answered_protocol(&response),
        socket,
    })
}

/// Opens a WebSocket with `?token=` (or without a token) and asserts the upgrade happened.
pub async fn connect(server: &Server, token: Option<&str>) -> Ws {
    match try_connect(server, token).await {
        Ok(ws) => ws,
        Err(e) => panic!("the upgrade was refused: {}", describe_error(e)),
    }
}

/// Opens a WebSocket offering `Sec-WebSocket-Protocol: <protocols>` and no `?token=`.
pub async fn connect_with_protocols(server: &Server, protocols: &str) -> Ws {
    let mut request = ws_url(server, None)
        .into_client_request()
        .expect("a client request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_str(protocols).expect("a header value"),
    );
    upgrade(request).await
}

/// Sends `request` and asserts the upgrade happened.
async fn upgrade(request: tungstenite::handshake::client::Request) -> Ws {
    let (socket, response) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
        .await
        .expect("the upgrade answered in time")
        .unwrap_or_else(|e| panic!("the upgrade was refused: {}", describe_error(e)));
    Ws {
        protocol: answered_protocol(&response),
        socket,
    }
}

/// Opens a WebSocket with `?token=` and extra request headers (e.g. `X-Forwarded-For`).
pub async fn connect_with_headers(server: &Server, token: &str, headers: &[(&str, &str)]) -> Ws {
    let mut request = ws_url(server, token_query(Some(token)).as_deref())
        .into_client_request()
        .expect("a client request");
    for (name, value) in headers {
        request.headers_mut().append(
            tungstenite::http::HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
            HeaderValue::from_str(value).expect("a header value"),
        );
    }
    upgrade(request).await
}

/// Opens a WebSocket with `?token=` (if any) and extra request `headers`; the error is
/// whatever refused the upgrade.
pub async fn try_connect_with_headers(
    server: &Server,
    token: Option<&str>,
    headers: &[(&'static str, &str)],
) -> Result<Ws, tungstenite::Error> {
    let mut request = ws_url(server, token_query(token).as_deref())
        .into_client_request()
        .expect("a client request");
    for (name, value) in headers {
        request
            .headers_mut()
            .insert(*name, HeaderValue::from_str(value).expect("a header value"));
    }
    let (socket, response) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
        .await
        .expect("the upgrade answered in time")?;
    Ok(Ws {
        protocol: answered_protocol(&response),
        socket,
    })
}

/// Opens a WebSocket with `?token=` over a socket whose receive buffer is `recv_buffer` bytes:
/// a client that stops reading then fills the server's buffers quickly.
pub async fn connect_small_buffer(server: &Server, token: &str, recv_buffer: u32) -> Ws {
    let addr: std::net::SocketAddr = server
        .base_url
        .trim_start_matches("http://")
        .parse()
        .expect("the server's address");
    let socket = TcpSocket::new_v4().expect("a TCP socket");
    socket
        .set_recv_buffer_size(recv_buffer)
        .expect("set SO_RCVBUF");
    let tcp = tokio::time::timeout(WAIT, socket.connect(addr))
        .await
        .expect("connected in time")
        .expect("connect");
    upgrade_over(server, token, tcp).await
}

/// Opens a WebSocket with `?token=` on a connection that first served another request
/// (`GET /readyz`, read to its end): the server then writes the WebSocket through its response
/// body rather than straight into the socket (`docs/adr/0018-direct-websocket-writes.md`).
pub async fn connect_after_a_request(server: &Server, token: &str) -> Ws {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = server.base_url.trim_start_matches("http://").to_owned();
    let mut tcp = tokio::time::timeout(WAIT, tokio::net::TcpStream::connect(&host))
        .await
        .expect("connected in time")
        .expect("connect");
    let request = format!("GET /readyz HTTP/1.1\r\nHost: {host}\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    loop {
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(WAIT, tcp.read(&mut buf))
            .await
            .expect("the answer came in time")
            .expect("read");
        assert!(n > 0, "the server closed the connection after one request");
        answer.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&answer).to_ascii_lowercase();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().expect("a content length"))
                .expect("the answer has a content length");
            if answer.len() >= end + 4 + length {
                assert!(text.starts_with("http/1.1 200"), "{text}");
                break;
            }
        }
    }
    upgrade_over(server, token, tcp).await
}

/// Opens a WebSocket with `?token=` over a TCP connection already made, and asserts the upgrade
/// happened.
async fn upgrade_over(server: &Server, token: &str, tcp: tokio::net::TcpStream) -> Ws {
    let url = ws_url(server, Some(&format!("token={token}")));
    let (socket, response) = tokio::time::timeout(
        WAIT,
        tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(tcp)),
    )
    .await
    .expect("the upgrade answered in time")
    .unwrap_or_else(|e| panic!("the upgrade was refused: {}", describe_error(e)));
    Ws {
        protocol: answered_protocol(&response),
        socket,
    }
}

fn describe_error(e: tungstenite::Error) -> String {
    match e {
        tungstenite::Error::Http(response) => format!(
            "HTTP {} {:?}",
            response.status(),
            response
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default()
        ),
        other => other.to_string(),
    }
}

/// Opens a session with `token` in `?token=` and returns it with its `welcome`.
pub async fn open(server: &Server, token: &str) -> (Ws, Value) {
    let mut ws = connect(server, Some(token)).await;
    let welcome = ws.recv_type("welcome").await;
    (ws, welcome)
}

impl Ws {
    /// The next text message or close, skipping protocol pings and pongs (tungstenite answers
    /// the server's pings by itself while it reads); fails the test after `within`.
    pub async fn next_event_within(&mut self, within: Duration) -> Event {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let next = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("nothing arrived within {within:?}"));
            match next {
                None => return Event::Ended("the stream ended".into()),
                Some(Err(e)) => return Event::Ended(e.to_string()),
                Some(Ok(Message::Text(text))) => {
                    let value = serde_json::from_str(text.as_str())
                        .unwrap_or_else(|e| panic!("a JSON message ({e}): {text}"));
                    return Event::Text(value);
                }
                Some(Ok(Message::Close(frame))) => {
                    return Event::Close(
                        frame.map(|f| (u16::from(f.code), f.reason.as_str().to_owned())),
                    )
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Binary(b))) => panic!("a binary message: {b:?}"),
            }
        }
    }

    /// [`Ws::next_event_within`] with the default deadline.
    pub async fn next_event(&mut self) -> Event {
        self.next_event_within(WAIT).await
    }

    /// Reads for `period`, answering the server's pings, and asserts that nothing else came.
    pub async fn stay_quiet(&mut self, period: Duration) {
        let deadline = tokio::time::Instant::now() + period;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Err(_) => return,
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
                Ok(other) => panic!("expected silence, got {other:?}"),
            }
        }
    }

    /// The next text message; fails the test on a close or the end of the connection.
    pub async fn recv(&mut self) -> Value {
        match self.next_event().await {
            Event::Text(value) => value,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    /// The next text message, which must have `type`.
    pub async fn recv_type(&mut self, kind: &str) -> Value {
        let message = self.recv().await;
        assert_eq!(message["type"], kind, "{message}");
        message
    }

    /// The next message, which must be an `error` with `code` (and a text `message`).
    pub async fn recv_error(&mut self, code: &str) -> Value {
        let message = self.recv_type("error").await;
        assert_error(&message, code);
        message
    }

    /// Reads up to the close frame, asserts its code and reason, and returns the messages that
    /// came before it.
    pub async fn expect_close(&mut self, code: u16, reason: &str) -> Vec<Value> {
        let mut before = Vec::new();
        loop {
            match self.next_event().await {
                Event::Text(value) => before.push(value),
                Event::Close(frame) => {
                    assert_eq!(
                        frame,
                        Some((code, reason.to_owned())),
                        "the close frame; {}",
                        summary(&before)
                    );
                    return before;
                }
                Event::Ended(why) => panic!(
                    "the connection ended without a close frame ({why}); expected {code} \
                     {reason}; {}",
                    summary(&before)
                ),
            }
        }
    }

    /// Asserts the protocol's way of refusing or ending a session with a 4xxx code: an `error`
    /// message with `code` = `reason`, then at once the close with `code` and `reason`.
    /// Returns the messages that came before the error.
    pub async fn expect_error_then_close(&mut self, code: u16, reason: &str) -> Vec<Value> {
        let mut before = self.expect_close(code, reason).await;
        let error = before
            .pop()
            .unwrap_or_else(|| panic!("an error message before the close {code} {reason}"));
        assert_error(&error, reason);
        before
    }

    /// Sends a JSON message.
    pub async fn send_json(&mut self, value: &Value) {
        self.send_text(&value.to_string()).await;
    }

    /// Sends a text frame.
    pub async fn send_text(&mut self, text: &str) {
        tokio::time::timeout(WAIT, self.socket.send(Message::text(text)))
            .await
            .expect("sent in time")
            .expect("send a text frame");
    }

    /// Sends a binary frame.
    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        tokio::time::timeout(WAIT, self.socket.send(Message::binary(bytes)))
            .await
            .expect("sent in time")
            .expect("send a binary frame");
    }

    /// Sends an application `ping` and waits for its `pong`, skipping the `update`s and
    /// `snapshot`s of subscriptions on the way; any other message fails the test. Proves the
    /// session is open and answering.
    pub async fn ping(&mut self, id: &str) {
        self.send_json(&json!({"type": "ping", "id": id})).await;
        loop {
            let message = self.recv().await;
            match message["type"].as_str() {
                Some("update" | "snapshot") => continue,
                Some("pong") => {
                    assert_eq!(message["id"], id, "{message}");
                    assert_time(&message["server_time"]);
                    return;
                }
                _ => panic!("expected the pong of {id}, got {message}"),
            }
        }
    }

    /// Sends `subscribe` and returns the `subscribed` answer (the snapshots or the backlog that
    /// follow it are left to the caller).
    pub async fn subscribe(&mut self, id: &str, topics: &[&str], since: Option<u64>) -> Value {
        let mut message = json!({"type": "subscribe", "id": id, "topics": topics});
        if let Some(since) = since {
            message["since"] = json!(since);
        }
        self.send_json(&message).await;
        let answer = self.recv_type("subscribed").await;
        assert_eq!(answer["id"], id, "{answer}");
        assert_eq!(answer["topics"], json!(topics), "{answer}");
        assert!(answer["position"].is_u64(), "{answer}");
        answer
    }

    /// Closes from the client's side (1000) and waits for the server's close.
    pub async fn close_normally(mut self) -> Option<(u16, String)> {
        tokio::time::timeout(WAIT, self.socket.close(None))
            .await
            .expect("closed in time")
            .expect("send a close frame");
        loop {
            match self.next_event().await {
                Event::Text(_) => continue,
                Event::Close(frame) => return frame,
                Event::Ended(_) => return None,
            }
        }
    }
}

/// A short account of the messages before a close, for failure messages.
fn summary(messages: &[Value]) -> String {
    let last: String = messages
        .last()
        .map(|m| m.to_string().chars().take(300).collect())
        .unwrap_or_default();
    format!("{} messages before it, the last: {last}", messages.len())
}

/// Asserts an `error` message with `code` and a human `message`.
pub fn assert_error(message: &Value, code: &str) {
    assert_eq!(message["type"], "error", "{message}");
    assert_eq!(message["code"], code, "{message}");
    assert!(
        message["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{message}"
    );
}

/// Asserts every member of a `welcome` for `user` (as `GET /api/v1/me` shows it), with
/// `heartbeat_ms` and a token expiry of `token_exp` (the token's `exp` claim, in seconds).
pub fn assert_welcome(welcome: &Value, user: &Value, heartbeat_ms: u64, token_exp: i64) {
    let object = welcome.as_object().expect("a welcome object");
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "heartbeat_interval_ms",
            "position",
            "session_id",
            "token_expires_at",
            "type",
            "user"
        ],
        "{welcome}"
    );
    assert_eq!(welcome["type"], "welcome");
    uuid::Uuid::parse_str(welcome["session_id"].as_str().expect("session_id")).expect("a UUID");
    assert_eq!(
        welcome["user"],
        json!({"id": user["id"], "username": user["username"], "roles": user["roles"]}),
        "{welcome}"
    );
    assert_eq!(welcome["heartbeat_interval_ms"], heartbeat_ms, "{welcome}");
    assert!(welcome["position"].is_u64(), "{welcome}");
    assert_eq!(
        assert_time(&welcome["token_expires_at"]),
        token_exp * 1_000_000,
        "{welcome}"
    );
}

// ---- a client that never answers ----------------------------------------------------------

/// A WebSocket handshake written by hand over a bare TCP connection: nothing answers the
/// server's pings afterwards unless the test writes it. Returns the connection and the bytes
/// that came after the 101 answer's head (the start of the first frames).
pub async fn raw_upgrade(server: &Server, token: &str) -> (TcpStream, Vec<u8>) {
    let host = server.base_url.trim_start_matches("http://").to_owned();
    let mut tcp = tokio::time::timeout(WAIT, TcpStream::connect(&host))
        .await
        .expect("connected in time")
        .expect("connect");
    let request = format!(
        "GET {WS_PATH}?token={token} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.expect("write");
    let mut received = Vec::new();
    let head_end = loop {
        if let Some(i) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout(WAIT, tcp.read(&mut buf))
            .await
            .expect("the 101 answer in time")
            .expect("read");
        assert!(n > 0, "the server closed before answering the upgrade");
        received.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&received[..head_end]).into_owned();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let accept = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-accept")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_default();
    // RFC 6455's own example key and its accept value.
    assert_eq!(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "{head}");
    (tcp, received[head_end..].to_vec())
}

/// A client's masked text frame (payload under 126 bytes), for clients written by hand.
pub fn masked_text_frame(payload: &str) -> Vec<u8> {
    let bytes = payload.as_bytes();
    assert!(bytes.len() < 126);
    let mask = [0x5a, 0x17, 0xc3, 0x88];
    let mut frame = vec![0x81, 0x80 | bytes.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(bytes.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// Polls `socket`'s pending error until it is a reset, without reading from it; answers how long
/// that took. Fails the test if `within` passes first.
pub fn wait_for_reset(socket: socket2::SockRef<'_>, within: Duration) -> Duration {
    let since = Instant::now();
    loop {
        match socket.take_error() {
            // A reset shows as ECONNRESET, or as EPIPE when it lands after the server's FIN
            // (over TLS the close_notify's shutdown sends one before the reset).
            Ok(Some(e)) => {
                assert!(
                    matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                    ),
                    "{e}"
                );
                return since.elapsed();
            }
            Ok(None) => {}
            Err(e) => panic!("{e}"),
        }
        assert!(
            since.elapsed() < within,
            "the server still holds a connection whose client does not read"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads until the server closes the connection (or resets it) and returns what arrived,
/// chunk by chunk, each with when it came, and when the connection ended, both measured from
/// `origin`; fails the test if the connection is still open after `within`.
pub async fn read_to_end(
    tcp: &mut TcpStream,
    origin: Instant,
    within: Duration,
) -> (Vec<(Duration, Vec<u8>)>, Duration) {
    let deadline = tokio::time::Instant::now() + within;
    let mut chunks = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Err(_) => panic!("the connection was still open after {within:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return (chunks, origin.elapsed()),
            Ok(Ok(n)) => chunks.push((origin.elapsed(), buf[..n].to_vec())),
        }
    }
}

/// The frames a server wrote (unmasked), as (opcode, payload); a cut-off last frame is left
/// out.
pub fn server_frames(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    while bytes.len() >= 2 {
        let opcode = bytes[0] & 0x0f;
        assert_eq!(bytes[1] & 0x80, 0, "a server frame is never masked");
        let (len, start) = match bytes[1] & 0x7f {
            126 if bytes.len() >= 4 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
            127 if bytes.len() >= 10 => {
                let mut n = [0u8; 8];
                n.copy_from_slice(&bytes[2..10]);
                (u64::from_be_bytes(n) as usize, 10)
            }
            126 | 127 => break,
            n => (n as usize, 2),
        };
        if bytes.len() < start + len {
            break;
        }
        frames.push((opcode, bytes[start..start + len].to_vec()));
        bytes = &bytes[start + len..];
    }
    frames
}

// ---- metrics and the operators' view ---------------------------------------------------------

/// `GET /metrics`, as text.
pub async fn scrape(server: &Server) -> String {
    let response = get(server, "/metrics", None).await;
    assert_eq!(response.status().as_u16(), 200);
    response.text().await.expect("the metrics text")
}

/// The value of one series, written exactly as the exposition shows it (`name` or
/// `name{label="value"}`); fails the test if it is missing.
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
}

/// The WebSocket, registry and push metrics that `docs/operations.md` lists, with their types.
pub fn documented_ws_metrics() -> Vec<(String, String)> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operations.md"))
        .expect("read docs/operations.md");
    let metrics: Vec<(String, String)> = doc
        .lines()
        .filter_map(|l| {
            let mut cells = l.split('|').map(str::trim).skip(1);
            let name = cells.next()?.strip_prefix('`')?.strip_suffix('`')?;
            let kind = cells.next()?;
            ["websocket_", "registry_", "push_"]
                .iter()
                .any(|p| name.starts_with(p))
                .then(|| (name.to_owned(), kind.to_owned()))
        })
        .collect();
    assert!(
        metrics.len() >= 14,
        "the WebSocket metrics in the doc: {metrics:?}"
    );
    metrics
}

/// Asserts that every documented WebSocket metric is in `text` (a histogram with at least
/// one observation).
pub fn assert_every_ws_metric(text: &str) {
    for (name, kind) in documented_ws_metrics() {
        if kind == "histogram" {
            let count = metric(text, &format!("{name}_count"));
            assert!(count >= 1.0, "{name}_count = {count}");
            assert!(
                text.lines()
                    .any(|l| l.starts_with(&format!("{name}_bucket{{"))),
                "{name} buckets in:\n{text}"
            );
        } else {
            assert!(
                text.lines().any(|l| l
                    .strip_prefix(name.as_str())
                    .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))),
                "{name} ({kind}) in:\n{text}"
            );
        }
    }
}

/// The first admin's access token.
pub async fn admin_token(server: &Server) -> String {
    login(server, "admin", &admin_password(&server.data_dir)).await
}

/// `GET /api/v1/admin/sessions` as `token`: the live sessions.
pub async fn sessions(server: &Server, token: &str) -> Vec<Value> {
    let answer = assert_json(
        get(server, "/api/v1/admin/sessions", Some(token)).await,
        200,
    )
    .await;
    answer["sessions"]
        .as_array()
        .unwrap_or_else(|| panic!("sessions: {answer}"))
        .clone()
}
