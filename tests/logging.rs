//! The logs an operator reads, from the real binary: `--log-format json` writes one JSON object
//! per line; every access line carries its request id (the client's `X-Request-Id`, or one
//! made up), which the answer returns; a WebSocket session's lines carry the request id,
//! session id and user id; refused connections (429, 403) and closes for a limit (4403 kicked)
//! are logged with their reason; no token or password is ever written.

mod common;

use std::time::{Duration, Instant};

use common::ws::{admin_token, try_connect, try_connect_with_headers};
use common::*;
use serde_json::Value;
use tokio_tungstenite::tungstenite;

/// Every line the server logged, as read so far.
struct Log<'a> {
    server: &'a Server,
    lines: Vec<String>,
}

impl<'a> Log<'a> {
    fn new(server: &'a Server) -> Self {
        Log {
            server,
            lines: Vec::new(),
        }
    }

    /// The first JSON line (read so far or to come) that `matches`; fails the test after 10 s.
    fn find(&mut self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let parsed = |line: &str| -> Value {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("a JSON log line ({e}): {line}"))
        };
        if let Some(found) = self.lines.iter().map(|l| parsed(l)).find(|v| matches(v)) {
            return found;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line =
                self.server.log.recv_timeout(left).unwrap_or_else(|_| {
                    panic!("no log line {what} in:\n{}", self.lines.join("\n"))
                });
            self.lines.push(line.clone());
            let value = parsed(&line);
            if matches(&value) {
                return value;
            }
        }
    }
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("a {name} header"))
        .to_owned()
}

#[tokio::test]
async fn json_lines_with_request_ids_session_ids_and_refusals_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_demo(
        &dir.path().join("data"),
        &[
            "--log-format",
            "json",
            "--connect-attempts-per-ip",
            "3",
            "--allowed-origins",
            "http://allowed.example",
        ],
    );
    let mut log = Log::new(&server);
    let password = demo_password("reviewer");
    let reviewer = login_pair(&server, "reviewer", &password).await;
    let token = reviewer["access_token"].as_str().unwrap().to_owned();
    let me = me(&server, &token).await;

    // The client's request id comes back and is on the access line, with the route template.
    let answer = client()
        .get(server.url("/api/v1/me"))
        .bearer_auth(&token)
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(header(&answer, "x-request-id"), "trace-me-42");
    let line = log.find("for trace-me-42", |v| v["request_id"] == "trace-me-42");
    assert_eq!(line["target"], "access", "{line}");
    assert_eq!(line["status"], 200, "{line}");
    assert_eq!(line["route"], "/api/v1/me", "{line}");
    assert_eq!(line["level"], "INFO", "{line}");
    assert!(line["timestamp"].is_string(), "{line}");

    // Without one, the server makes one up, returns it and logs it; a forged one is replaced.
    for sent in [None, Some("bad id\", \"level\": \"ERROR")] {
        let mut request =
            client().get(server.url("/api/v1/cases/0190aaaa-0000-7000-8000-000000000000"));
        if let Some(id) = sent {
            request = request.header("x-request-id", id);
        }
        let answer = request.bearer_auth(&token).send().await.unwrap();
        assert_eq!(answer.status(), 404);
        let made = header(&answer, "x-request-id");
        assert!(uuid::Uuid::parse_str(&made).is_ok(), "{made}");
        let line = log.find("for a made-up request id", |v| {
            v["request_id"] == made.as_str()
        });
        assert_eq!(line["route"], "/api/v1/cases/{id}", "{line}");
    }

    // A WebSocket session's lines carry its request, session and user ids; a kick is logged
    // at warn with its reason.
    let mut ws = try_connect_with_headers(&server, Some(&token), &[("x-request-id", "ws-req-7")])
        .await
        .expect("the upgrade");
    let welcome = ws.recv_type("welcome").await;
    let session = welcome["session_id"].as_str().unwrap().to_owned();
    let admin = admin_token(&server).await;
    let kicked = client()
        .delete(server.url(&format!("/api/v1/admin/sessions/{session}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert!(kicked.status().is_success(), "{}", kicked.status());
    ws.expect_error_then_close(4403, "kicked").await;
    let line = log.find("for the kicked session", |v| v["reason"] == "kicked");
    assert_eq!(line["level"], "WARN", "{line}");
    assert_eq!(line["code"], 4403, "{line}");
    assert_eq!(line["span"]["name"], "ws_session", "{line}");
    assert_eq!(line["span"]["request_id"], "ws-req-7", "{line}");
    assert_eq!(line["span"]["session_id"], session.as_str(), "{line}");
    assert_eq!(line["span"]["user_id"], me["id"], "{line}");
    // The access line of the upgrade has the token redacted.
    let upgrade = log.find("for the upgrade", |v| {
        v["request_id"] == "ws-req-7" && v["target"] == "access"
    });
    assert!(
        upgrade["message"]
            .as_str()
            .unwrap()
            .contains("token=[redacted]"),
        "{upgrade}"
    );

    // A refused origin (403), a failed token check (4401) and too many attempts (429).
    let refused =
        try_connect_with_headers(&server, None, &[("origin", "http://evil.example")]).await;
    match refused {
        Err(tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a disallowed origin got a WebSocket"),
    }
    let line = log.find("for the origin", |v| {
        v["status"] == 403 && v["reason"] == "origin"
    });
    assert_eq!(line["origin"], "\"http://evil.example\"", "{line}");
    assert!(line["span"]["request_id"].is_string(), "{line}");
    let mut bad = try_connect(&server, Some("a.bad.token"))
        .await
        .expect("the upgrade");
    bad.expect_error_then_close(4401, "token_malformed").await;
    let line = log.find("for the bad token", |v| v["reason"] == "token_malformed");
    assert_eq!(line["code"], 4401, "{line}");
    let mut attempts = 2;
    loop {
        match try_connect(&server, None).await {
            Err(tungstenite::Error::Http(r)) if r.status() == 429 => break,
            Ok(_) => attempts += 1,
            Err(e) => panic!("{e}"),
        }
        assert!(attempts < 10, "no 429 after {attempts} attempts");
    }
    let line = log.find("for the 429", |v| v["status"] == 429);
    assert_eq!(line["level"], "WARN", "{line}");
    assert_eq!(line["reason"], "connect_attempts", "{line}");

    // Nothing secret anywhere: not the password, not a token.
    let refresh = reviewer["refresh_token"].as_str().unwrap();
    for line in &log.lines {
        for secret in [password.as_str(), &token, refresh, &admin, "a.bad.token"] {
            assert!(!line.contains(secret), "a secret in the log: {line}");
        }
    }
}

#[tokio::test]
async fn text_lines_on_request_and_the_format_is_a_setting_with_a_variable() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &["--log-format", "text"]);
    let answer = client()
        .get(server.url("/healthz"))
        .header("x-request-id", "plain-1")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&answer, "x-request-id"), "plain-1");
    let deadline = Instant::now() + Duration::from_secs(10);
    let line = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = server.log.recv_timeout(left).expect("the access line");
        if line.contains("plain-1") {
            break line;
        }
    };
    assert!(!line.starts_with('{'), "a text line: {line}");
    assert!(line.contains("GET /healthz 200"), "{line}");

    let out = std::process::Command::new(binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("other"))
        .env("ADJUDICATOR_LOG_FORMAT", "xml")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--log-format"), "{stderr}");
}
