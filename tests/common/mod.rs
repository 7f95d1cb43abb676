//! Helpers shared by the integration tests: run the real `adjudicator` binary on a free port
//! of 127.0.0.1 and talk to it over real sockets.

#![allow(dead_code)]

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

/// How long a server may take to start listening.
const START_DEADLINE: Duration = Duration::from_secs(30);

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_adjudicator")
}

/// A running `adjudicator serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub base_url: String,
    pub data_dir: PathBuf,
    /// Log lines the server printed after it started listening.
    pub log: mpsc::Receiver<String>,
    /// Log lines the server printed before it listened, the "listening on" line included.
    pub startup_log: Vec<String>,
}

impl Server {
    /// Starts the server with `args` after `serve --listen 127.0.0.1:0 --data-dir <dir>`, and
    /// waits for the "listening on" line.
    pub fn start(data_dir: &Path, args: &[&str]) -> Server {
        Server::start_at(data_dir, "127.0.0.1:0", args)
    }

    /// Starts the server listening on `listen` (e.g. the address a stopped server had), with
    /// `args` after `serve --listen <listen> --data-dir <dir>`.
    pub fn start_at(data_dir: &Path, listen: &str, args: &[&str]) -> Server {
        let mut child = Command::new(binary())
            .args(["serve", "--listen", listen, "--data-dir"])
            .arg(data_dir)
            .args(args)
            .env("ADJUDICATOR_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start adjudicator");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut startup_log = Vec::new();
        let base_url = loop {
            let line = rx.recv_timeout(START_DEADLINE).unwrap_or_else(|e| {
                panic!(
                    "the server did not print its address ({e}); it printed:\n{}",
                    startup_log.join("\n")
                )
            });
            let address = listening_on(&line);
            startup_log.push(line);
            if let Some(address) = address {
                break address;
            }
        };
        Server {
            child,
            base_url,
            data_dir: data_dir.to_path_buf(),
            log: rx,
            startup_log,
        }
    }

    /// Waits for the next log line that contains `needle` (skipping the others); fails the test
    /// if none comes within 30 seconds.
    pub fn log_line_with(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .log
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no log line with {needle:?}"));
            if line.contains(needle) {
                return line;
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        self.child.wait().expect("wait for the server")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address of a `listening on http://…` log line, in either log format (a text line, or a
/// JSON object whose `message` says it: the default when stderr is not a terminal).
pub fn listening_on(line: &str) -> Option<String> {
    let message = match serde_json::from_str::<Value>(line) {
        Ok(json) => json["message"].as_str()?.to_owned(),
        Err(_) => line.to_owned(),
    };
    let address = message.split("listening on ").nth(1)?;
    Some(address.trim().to_owned())
}

/// Runs `adjudicator <args>` to completion; returns its status and what it printed on stderr.
pub fn run_to_end(args: &[&str]) -> (ExitStatus, String) {
    let out = Command::new(binary())
        .args(args)
        .output()
        .expect("run adjudicator");
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `adjudicator <args>` to the end with `stdin` (if any) as its standard input.
pub fn run_with_input(args: &[&str], stdin: Option<&str>) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(binary())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run adjudicator");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("write stdin");
    }
    drop(input);
    child.wait_with_output().expect("wait")
}

/// Standard output then standard error of a finished run, for assertions and their messages.
pub fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

// ---- HTTP helpers for the API tests ---------------------------------------------------------

/// The password of a `--demo` user.
pub fn demo_password(username: &str) -> String {
    format!("{username}-demo")
}

/// Starts a server with `--demo` (users `reviewer`, `senior`, `auditor`, `classifier` and the
/// sample cases) and `extra` flags.
pub fn start_demo(data_dir: &Path, extra: &[&str]) -> Server {
    let mut args = vec!["--demo"];
    args.extend_from_slice(extra);
    Server::start(data_dir, &args)
}

/// The first admin's password, which the server wrote at first start.
pub fn admin_password(data_dir: &Path) -> String {
    std::fs::read_to_string(data_dir.join("admin-password"))
        .expect("the server wrote <data-dir>/admin-password")
        .trim_end()
        .to_owned()
}

/// The HS256 key: the whole content of `<data-dir>/jwt-secret`, without a trailing newline.
pub fn jwt_secret(data_dir: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(data_dir.join("jwt-secret")).expect("read jwt-secret");
    while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        bytes.pop();
    }
    bytes
}

/// One client for a test; every request has a deadline so that a hung server fails the test.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("an HTTP client")
}

/// The media type of a response, without parameters.
pub fn content_type(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_owned()
}

/// Asserts a JSON answer with `status` and returns its body.
pub async fn assert_json(response: reqwest::Response, status: u16) -> Value {
    let got = response.status().as_u16();
    let media = content_type(&response);
    let url = response.url().path().to_owned();
    let text = response.text().await.expect("read the body");
    assert_eq!(got, status, "status of {url}; body: {text}");
    assert_eq!(
        media, "application/json",
        "content type of {url}; body: {text}"
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: not JSON ({e}): {text}"))
}

/// Asserts an `application/problem+json` answer (RFC 9457) with `status` and the protocol's
/// `code`, with every member the protocol names; returns the body.
pub async fn assert_problem(response: reqwest::Response, status: u16, code: &str) -> Value {
    let got = response.status().as_u16();
    let media = content_type(&response);
    let url = response.url().path().to_owned();
    let text = response.text().await.expect("read the body");
    assert_eq!(got, status, "status of {url}; body: {text}");
    assert_eq!(
        media, "application/problem+json",
        "content type of {url}; body: {text}"
    );
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: not JSON ({e}): {text}"));
    assert_eq!(body["code"], code, "code of {url}; body: {text}");
    assert_eq!(
        body["status"], status,
        "status member of {url}; body: {text}"
    );
    for key in ["type", "title", "detail"] {
        assert!(body[key].is_string(), "{key} of {url}; body: {text}");
    }
    body
}

/// Asserts a 422 `validation_failed` answer and returns the fields it names, in order.
pub async fn assert_invalid(response: reqwest::Response) -> Vec<String> {
    let body = assert_problem(response, 422, "validation_failed").await;
    let errors = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("errors is an array: {body}"));
    assert!(!errors.is_empty(), "{body}");
    errors
        .iter()
        .map(|e| {
            assert!(e["message"].is_string(), "{body}");
            e["field"].as_str().expect("field is a string").to_owned()
        })
        .collect()
}

/// `GET path`, with a bearer token if one is given.
pub async fn get(server: &Server, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = client().get(server.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("GET")
}

/// `POST path` with a JSON body, with a bearer token if one is given.
pub async fn post(
    server: &Server,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> reqwest::Response {
    let mut request = client().post(server.url(path)).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("POST")
}

/// `PATCH path` with a JSON body and a bearer token.
pub async fn patch(server: &Server, path: &str, token: &str, body: &Value) -> reqwest::Response {
    client()
        .patch(server.url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("PATCH")
}

/// Logs in; asserts the protocol's answer and returns it whole.
pub async fn login_pair(server: &Server, username: &str, password: &str) -> Value {
    let body = serde_json::json!({"username": username, "password": password});
    let answer = assert_json(post(server, "/api/v1/auth/login", None, &body).await, 200).await;
    assert_eq!(answer["token_type"], "Bearer", "{answer}");
    for key in ["access_token", "refresh_token"] {
        assert!(
            answer[key].as_str().is_some_and(|t| !t.is_empty()),
            "{answer}"
        );
    }
    assert!(answer["expires_in"].is_u64(), "{answer}");
    answer
}

/// Logs in and returns the access token.
pub async fn login(server: &Server, username: &str, password: &str) -> String {
    login_pair(server, username, password).await["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

/// `GET /api/v1/me` with `token`: the caller's user.
pub async fn me(server: &Server, token: &str) -> Value {
    assert_json(get(server, "/api/v1/me", Some(token)).await, 200).await
}

/// A JWT's header and claims, decoded without any check.
pub fn jwt_parts(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut decode = |what: &str| -> Value {
        let part = parts.next().unwrap_or_else(|| panic!("a JWT has a {what}"));
        let bytes = URL_SAFE_NO_PAD.decode(part).expect("base64url");
        serde_json::from_slice(&bytes).expect("JSON")
    };
    let header = decode("header");
    let claims = decode("payload");
    (header, claims)
}

/// `value` as unpadded base64url JSON, as in a JWT.
pub fn b64_json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// Calls `check` until it gives a value, every few milliseconds, and fails the test if `within`
/// passes first.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The members of a case, as the protocol lists them.
pub const CASE_FIELDS: [&str; 16] = [
    "id",
    "subject_ref",
    "excerpt",
    "assessment",
    "priority",
    "adjudication_status",
    "decision",
    "final_culpability",
    "reviewer_id",
    "reviewer_notes",
    "claimed_by",
    "claim_expires_at",
    "submitted_at",
    "decided_at",
    "version",
    "position",
];

/// Asserts that `case` has exactly the protocol's members, with their types.
pub fn assert_case_shape(case: &Value) {
    let object = case.as_object().unwrap_or_else(|| panic!("a case: {case}"));
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut expected = CASE_FIELDS.to_vec();
    expected.sort_unstable();
    assert_eq!(keys, expected, "the members of a case: {case}");
    let assessment = case["assessment"].as_object().expect("assessment");
    let mut keys: Vec<&str> = assessment.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["confidence", "culpability", "rationale"], "{case}");
    uuid::Uuid::parse_str(case["id"].as_str().expect("id")).expect("id is a UUID");
    assert!(
        case["version"].is_u64() && case["position"].is_u64(),
        "{case}"
    );
    assert_time(&case["submitted_at"]);
    for key in ["claim_expires_at", "decided_at"] {
        if !case[key].is_null() {
            assert_time(&case[key]);
        }
    }
}

/// Asserts an RFC 3339 time in UTC and returns it in microseconds since the epoch.
pub fn assert_time(value: &Value) -> i64 {
    let text = value.as_str().unwrap_or_else(|| panic!("a time: {value}"));
    assert!(text.ends_with('Z'), "a UTC time: {text}");
    events::Timestamp::parse_rfc3339(text)
        .unwrap_or_else(|e| panic!("an RFC 3339 time: {text}: {e}"))
        .as_micros()
}

/// The members of an audit event, as the protocol lists them.
pub fn assert_audit_event_shape(event: &Value) {
    let object = event
        .as_object()
        .unwrap_or_else(|| panic!("an event: {event}"));
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "data",
            "hash",
            "id",
            "position",
            "prev_hash",
            "recorded_at",
            "stream",
            "type",
            "user_id",
            "version"
        ],
        "the members of an audit event: {event}"
    );
    assert!(
        event["position"].is_u64() && event["version"].is_u64(),
        "{event}"
    );
    assert_time(&event["recorded_at"]);
    for key in ["hash", "prev_hash"] {
        let hex = event[key].as_str().expect("a hex hash");
        assert_eq!(hex.len(), 64, "{event}");
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()), "{event}");
    }
}

/// The head commitment (`{"position", "commitment"}`) of audit events given in position order,
/// computed as docs/security.md documents it, independently of the server's code:
/// `C_0` = 32 zero bytes, `C_n = SHA-256(C_{n-1} ‖ position_n as u64 big-endian ‖ hash_n)`.
pub fn head_of(events: &[Value]) -> Value {
    use sha2::{Digest, Sha256};
    let mut commitment = [0u8; 32];
    let mut position = 0;
    for event in events {
        position = event["position"].as_u64().expect("a position");
        let hex = event["hash"].as_str().expect("a hash");
        let hash: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect();
        let mut h = Sha256::new();
        h.update(commitment);
        h.update(position.to_be_bytes());
        h.update(&hash);
        commitment = h.finalize().into();
    }
    let hex: String = commitment.iter().map(|b| format!("{b:02x}")).collect();
    serde_json::json!({"position": position, "commitment": hex})
}

/// Every event of the audit log, paged through `GET /api/v1/audit/events`.
pub async fn every_audit_event(server: &Server, token: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let path = format!("/api/v1/audit/events?after={after}&limit=1000");
        let page = assert_json(get(server, &path, Some(token)).await, 200).await;
        events.extend(page["events"].as_array().expect("events").iter().cloned());
        match page["next"].as_u64() {
            Some(next) => after = next,
            None => return events,
        }
    }
}

/// A valid submission of case `case_id` for tests that build histories without a server.
pub fn sample_submission(case_id: uuid::Uuid, n: u64) -> events::domain::case::Submission {
    use events::domain::case::{Assessment, Submission};
    use events::domain::{Culpability, Priority};
    Submission {
        case_id,
        subject_ref: format!("DOC-{n}"),
        excerpt: "He said he would do it, and then he did it.".into(),
        assessment: Assessment {
            culpability: Culpability::Purposely,
            confidence: 0.9,
            rationale: "Stated intent.".into(),
        },
        priority: Priority::Normal,
    }
}

pub mod browser;
pub mod prometheus;
pub mod seed;
pub mod ws;
