//! HTTPS and `wss://` from the binary (issue 12, item 12), with certificates made here by rcgen
//! and a client that trusts exactly that certificate: the API and a WebSocket session over TLS,
//! HSTS, a plain-HTTP request to the TLS port refused, and the pair reloaded on SIGHUP (a new
//! certificate served; a broken one refused, the old one kept).
//!
//! The client side is blocking rustls over std sockets (with read deadlines), so it needs no
//! TLS feature of the HTTP or WebSocket client crates.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{admin_password, Server};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{self, Message};

const DEADLINE: Duration = Duration::from_secs(30);

/// A self-signed certificate for `localhost` and 127.0.0.1, written as PEM (key mode 0600).
struct Pair {
    der: CertificateDer<'static>,
    cert_pem: String,
    key_pem: String,
}

fn make_pair() -> Pair {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("a certificate");
    Pair {
        der: made.cert.der().clone(),
        cert_pem: made.cert.pem(),
        key_pem: made.signing_key.serialize_pem(),
    }
}

fn write_pair(pair: &Pair, cert: &Path, key: &Path) {
    std::fs::write(cert, &pair.cert_pem).unwrap();
    std::fs::write(key, &pair.key_pem).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

/// A client that trusts only `trusted`.
fn client_config(trusted: &[&CertificateDer<'static>]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in trusted {
        roots.add((*cert).clone()).expect("a root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

type Tls = StreamOwned<ClientConnection, TcpStream>;

fn address(server: &Server) -> String {
    server
        .base_url
        .strip_prefix("https://")
        .unwrap_or_else(|| panic!("an https address: {}", server.base_url))
        .to_owned()
}

fn tcp(server: &Server) -> TcpStream {
    let stream = TcpStream::connect(address(server)).expect("connect");
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream.set_write_timeout(Some(DEADLINE)).unwrap();
    stream
}

/// A TLS connection to the server, handshake done; the certificate the server presented.
fn tls(server: &Server, config: &Arc<ClientConfig>) -> Result<(Tls, Vec<u8>), rustls::Error> {
    tls_over(tcp(server), config)
}

/// TLS over a connected socket, handshake done; the certificate the server presented.
fn tls_over(tcp: TcpStream, config: &Arc<ClientConfig>) -> Result<(Tls, Vec<u8>), rustls::Error> {
    let name = ServerName::try_from("localhost").unwrap();
    let conn = ClientConnection::new(config.clone(), name).unwrap();
    let mut stream = StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .map_err(|e| match e.into_inner() {
                Some(inner) => match inner.downcast::<rustls::Error>() {
                    Ok(tls) => *tls,
                    Err(other) => rustls::Error::General(other.to_string()),
                },
                None => rustls::Error::General("I/O error".into()),
            })?;
    }
    let presented = stream.conn.peer_certificates().expect("a certificate")[0].to_vec();
    Ok((stream, presented))
}

/// One HTTP/1.1 request over TLS; the status, the headers (lower-case names) and the body.
fn https(
    server: &Server,
    config: &Arc<ClientConfig>,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Vec<(String, String)>, String) {
    let (mut stream, _) = tls(server, config).expect("a TLS connection");
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        address(server),
        body.len()
    );
    if !body.is_empty() {
        request.push_str("Content-Type: application/json\r\n");
    }
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Ok(_) => {}
        // Some servers close without a TLS close_notify after `Connection: close`.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
        Err(e) => panic!("reading the answer: {e}"),
    }
    let text = String::from_utf8(answer).expect("a UTF-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn sighup(server: &Server) {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// The next text message of a WebSocket, as JSON, skipping pings and pongs.
fn next_text(socket: &mut tungstenite::WebSocket<Tls>) -> Value {
    loop {
        match socket.read().expect("a message") {
            Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

struct TlsServer {
    server: Server,
    cert: PathBuf,
    key: PathBuf,
    _dir: tempfile::TempDir,
}

fn start_tls(pair: &Pair) -> TlsServer {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("server.crt");
    let key = dir.path().join("server.key");
    write_pair(pair, &cert, &key);
    let server = Server::start(
        &dir.path().join("data"),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    TlsServer {
        server,
        cert,
        key,
        _dir: dir,
    }
}

#[test]
fn the_api_and_websockets_over_tls_with_hsts() {
    let pair = make_pair();
    let running = start_tls(&pair);
    let server = &running.server;
    assert!(
        server.base_url.starts_with("https://"),
        "{}",
        server.base_url
    );
    let config = client_config(&[&pair.der]);

    let (status, headers, body) = https(server, &config, "GET", "/healthz", None, None);
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    assert_eq!(
        header(&headers, "strict-transport-security"),
        Some("max-age=31536000")
    );

    let password = admin_password(&server.data_dir);
    let credentials = json!({"username": "admin", "password": password});
    let (status, headers, body) = https(
        server,
        &config,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&credentials),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(header(&headers, "cache-control"), Some("no-store"));
    let answer: Value = serde_json::from_str(&body).unwrap();
    let token = answer["access_token"].as_str().unwrap().to_owned();
    let (status, _, body) = https(server, &config, "GET", "/api/v1/me", Some(&token), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["username"],
        "admin"
    );

    // wss://: the handshake, the welcome, a ping answered.
    let (stream, _) = tls(server, &config).expect("a TLS connection");
    let url = format!("wss://{}/api/v1/ws?token={token}", address(server));
    let (mut socket, response) = tungstenite::client::client(url, stream).expect("upgraded");
    assert_eq!(response.status(), 101);
    let welcome = next_text(&mut socket);
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert_eq!(welcome["user"]["username"], "admin");
    socket
        .send(Message::text(
            json!({"type": "ping", "id": "p1"}).to_string(),
        ))
        .unwrap();
    let pong = next_text(&mut socket);
    assert_eq!(
        (pong["type"].as_str(), pong["id"].as_str()),
        (Some("pong"), Some("p1"))
    );
    socket.close(None).unwrap();
}

#[test]
fn plain_http_to_the_tls_port_is_refused() {
    let pair = make_pair();
    let running = start_tls(&pair);
    let mut plain = tcp(&running.server);
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    // The server ends the connection (perhaps after a TLS alert); it never answers in HTTP.
    if let Err(e) = plain.read_to_end(&mut answer) {
        assert!(
            !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "the connection was left open: {e}"
        );
    }
    assert!(
        !answer.starts_with(b"HTTP/"),
        "a plain answer: {:?}",
        String::from_utf8_lossy(&answer)
    );
    assert!(
        !String::from_utf8_lossy(&answer).contains("status"),
        "{answer:?}"
    );
}

#[test]
fn sighup_reloads_the_pair_and_a_broken_pair_keeps_the_old_one() {
    let first = make_pair();
    let running = start_tls(&first);
    let server = &running.server;
    let second = make_pair();
    let both = client_config(&[&first.der, &second.der]);
    let (_, presented) = tls(server, &both).expect("handshake");
    assert_eq!(presented, first.der.to_vec());

    // Renewed in place, then SIGHUP: new connections get the new certificate.
    write_pair(&second, &running.cert, &running.key);
    sighup(server);
    server.log_line_with("reloaded the TLS certificate");
    let (_, presented) = tls(server, &both).expect("handshake");
    assert_eq!(
        presented,
        second.der.to_vec(),
        "the new certificate is served"
    );
    let only_first = client_config(&[&first.der]);
    assert!(tls(server, &only_first).is_err(), "the old one is gone");

    // A broken renewal (a key that is not the certificate's): logged, and the server goes on
    // with the pair it has.
    let third = make_pair();
    std::fs::write(&running.cert, &third.cert_pem).unwrap();
    sighup(server);
    let line = server.log_line_with("kept the previous TLS certificate");
    assert!(line.contains("does not belong"), "{line}");
    let (_, presented) = tls(server, &both).expect("handshake");
    assert_eq!(presented, second.der.to_vec(), "the previous pair stays");
}

#[test]
fn sighup_without_tls_reloads_nothing_and_stops_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    sighup(&server);
    server.log_line_with("SIGHUP: no --tls-cert, nothing to reload");
    let address = server.base_url.strip_prefix("http://").unwrap();
    let mut plain = TcpStream::connect(address).unwrap();
    plain.set_read_timeout(Some(DEADLINE)).unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    plain.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// Under TLS too, a close the client does not take (it stopped reading, so the frames queued
/// before the close never drain) resets the connection once the close has waited
/// `--heartbeat-interval` × `--heartbeat-missed`: the server keeps a handle on the TCP connection
/// under the TLS stream.
#[test]
fn over_tls_a_close_the_client_does_not_take_resets_the_connection() {
    let pair = make_pair();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("server.crt");
    let key = dir.path().join("server.key");
    write_pair(&pair, &cert, &key);
    let server = Server::start(
        &dir.path().join("data"),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--heartbeat-interval",
            "1s",
            "--heartbeat-missed",
            "2",
        ],
    );
    let config = client_config(&[&pair.der]);
    let credentials = json!({"username": "admin", "password": admin_password(&server.data_dir)});
    let (_, _, body) = https(
        &server,
        &config,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&credentials),
    );
    let token = serde_json::from_str::<Value>(&body).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let excerpt = "x".repeat(19_000);
    for n in 0..40 {
        let case = json!({"subject_ref": format!("BIG-{n}"), "excerpt": excerpt,
                          "assessment": {"culpability": "negligently", "confidence": 0.5}});
        let (status, _, body) = https(
            &server,
            &config,
            "POST",
            "/api/v1/cases",
            Some(&token),
            Some(&case),
        );
        assert_eq!(status, 201, "{body}");
    }

    // A client with a small receive buffer that upgrades, asks for a dozen queue snapshots of
    // about 0.8 MB each (more than the kernel's buffers take in), then reads nothing.
    let address: std::net::SocketAddr = address(&server).parse().unwrap();
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&address.into()).unwrap();
    let tcp: TcpStream = socket.into();
    tcp.set_read_timeout(Some(DEADLINE)).unwrap();
    let (mut stream, _) = tls_over(tcp, &config).expect("a TLS connection");
    let request = format!(
        "GET /api/v1/ws?token={token} HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).expect("the 101 answer");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
    let subscribe = r#"{"type":"subscribe","id":"q","topics":["queue"],"queue":{"limit":1000}}"#;
    for _ in 0..12 {
        stream
            .write_all(&common::ws::masked_text_frame(subscribe))
            .unwrap();
    }
    stream.flush().unwrap();
    let reset_after = common::ws::wait_for_reset(
        socket2::SockRef::from(&stream.sock),
        Duration::from_secs(30),
    );
    assert!(
        reset_after >= Duration::from_millis(1900),
        "reset after {reset_after:?}: the close was not given its time"
    );
}
