//! The app's modules in a real headless Chromium against the real binary: `/app/client.js` used
//! on its own (no app around it) connects with its token as a subprotocol, streams snapshots and
//! updates, notices a server that stopped answering by its missed pongs and resumes with `since`
//! without a snapshot or a duplicate, and stops after one refresh when its login is revoked; the
//! pure modules (backoff, the queue window, `/metrics` reading) keep their rules.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::browser::{available, Browser};
use common::*;
use serde_json::{json, Value};

/// Starts a client of `/app/client.js` in the page as `username`, recording its events in
/// `window.__t.log`, subscribed to `topics`. `options` go to the client's constructor.
const START_CLIENT: &str = r#"
const [username, topics, options, done] = arguments;
(async () => {
  const { AdjudicatorClient, TokenKeeper } = await import('/app/client.js');
  const answer = await fetch('/api/v1/auth/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password: `${username}-demo` }),
  });
  const pair = await answer.json();
  const tokens = new TokenKeeper({ tokens: pair, channel: `test-${Math.random()}` });
  const client = new AdjudicatorClient({ tokens, ...options });
  const log = [];
  for (const type of ['state', 'welcome', 'subscribed', 'snapshot', 'update', 'error', 'closed', 'stopped']) {
    client.addEventListener(type, (e) => {
      const d = e.detail || {};
      log.push({
        type, state: d.state, code: d.code, reason: d.reason, topic: d.topic, position: d.position,
        event: d.event, id: d.data && d.data.id, signedOut: d.signedOut, session: d.session_id,
      });
    });
  }
  window.__t = { client, tokens, pair, log };
  client.subscribe(topics);
  client.connect();
  done(true);
})().catch((e) => done(String(e)));
"#;

async fn start_client(browser: &Browser, username: &str, topics: &[&str], options: Value) {
    // The app's own page: same origin, so the module and the API are reachable.
    browser.open("/").await;
    browser.wait_for("#signin-page").await;
    let started = browser
        .client
        .execute_async(START_CLIENT, vec![json!(username), json!(topics), options])
        .await
        .expect("the start script ran");
    assert_eq!(started, json!(true), "the client started: {started}");
}

/// The events the page's client recorded.
async fn log(browser: &Browser) -> Vec<Value> {
    match browser.js("return window.__t.log;", vec![]).await {
        Value::Array(events) => events,
        other => panic!("no log: {other}"),
    }
}

/// Waits until the client's log has an event matching `predicate`; returns its index.
async fn wait_log(browser: &Browser, what: &str, predicate: impl Fn(&Value) -> bool) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let events = log(browser).await;
        if let Some(at) = events.iter().position(&predicate) {
            return at;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not in the client's log: {events:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn is(event: &Value, kind: &str) -> bool {
    event["type"] == kind
}

async fn submit(server: &Server, token: &str, subject_ref: &str) -> Value {
    let body = json!({
        "subject_ref": subject_ref,
        "excerpt": "He knew the brakes had failed and drove on.",
        "assessment": {"culpability": "recklessly", "confidence": 0.7, "rationale": "Aware of the risk."},
        "priority": "urgent",
    });
    let answer = client()
        .post(server.url("/api/v1/cases"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_json(answer, 201).await
}

async fn token_of(server: &Server, username: &str) -> String {
    let answer = client()
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"username": username, "password": demo_password(username)}))
        .send()
        .await
        .unwrap();
    assert_json(answer, 200).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The server's log lines so far.
fn drain_log(server: &Server) -> Vec<String> {
    server.log.try_iter().collect()
}

fn signal(server: &Server, name: &str) {
    let status = Command::new("kill")
        .args([name, &server.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {name}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_module_on_its_own_connects_with_a_subprotocol_token_and_streams() {
    if !available("the_client_module_on_its_own_connects_with_a_subprotocol_token_and_streams") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = start_demo(&dir.path().join("data"), &[]);
    let browser = Browser::launch(&server).await;
    start_client(&browser, "reviewer", &["queue", "stats"], json!({})).await;

    wait_log(&browser, "welcome", |e| is(e, "welcome")).await;
    for topic in ["queue", "stats"] {
        wait_log(&browser, topic, |e| {
            is(e, "snapshot") && e["topic"] == topic
        })
        .await;
    }
    let classifier = token_of(&server, "classifier").await;
    let case = submit(&server, &classifier, "CLIENT-1").await;
    let id = case["id"].clone();
    wait_log(&browser, "the new case's update", |e| {
        is(e, "update") && e["topic"] == "queue" && e["id"] == id
    })
    .await;
    let events = log(&browser).await;
    let updates = events
        .iter()
        .filter(|e| is(e, "update") && e["topic"] == "queue" && e["id"] == id)
        .count();
    assert_eq!(updates, 1, "one update for one event: {events:#?}");
    let connected = events.iter().filter(|e| is(e, "welcome")).count();
    assert_eq!(connected, 1, "one connection: {events:#?}");

    // The token travelled as a subprotocol: the access line of the upgrade has no token.
    let upgrades: Vec<String> = drain_log(&server)
        .into_iter()
        .filter(|l| l.contains("/api/v1/ws"))
        .collect();
    assert!(!upgrades.is_empty(), "the upgrade was logged");
    let access = browser
        .js("return window.__t.pair.access_token;", vec![])
        .await;
    let access = access.as_str().unwrap();
    for line in &upgrades {
        assert!(!line.contains("token"), "no token in the URL: {line}");
        assert!(!line.contains(&access[access.len() - 20..]), "{line}");
    }
}

/// Subscribes to `queue` with a window of one case, and once its snapshot is there changes the
/// window 19 times at once (limits 2 to 20): more than the server's burst of subscribes. Each
/// `queue` snapshot's number of cases is recorded in `window.__t.windows`.
const BURST_OF_WINDOWS: &str = r#"
const [done] = arguments;
const t = window.__t;
t.windows = [];
const handle = t.client.subscribe(['queue'], {
  queue: { limit: 1 },
  onSnapshot: (d) => {
    t.windows.push({ cases: d.data.cases.length, total: d.data.total });
    if (t.windows.length === 1) for (let limit = 2; limit <= 20; limit += 1) handle.update({ queue: { limit } });
  },
});
done(true);
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_changes_beyond_the_subscribe_rate_end_on_the_last_window() {
    if !available("window_changes_beyond_the_subscribe_rate_end_on_the_last_window") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = start_demo(&dir.path().join("data"), &[]);
    let browser = Browser::launch(&server).await;
    start_client(&browser, "reviewer", &["stats"], json!({})).await;
    wait_log(&browser, "welcome", |e| is(e, "welcome")).await;
    let started = browser
        .client
        .execute_async(BURST_OF_WINDOWS, vec![])
        .await
        .expect("the burst script ran");
    assert_eq!(started, json!(true));

    // The refused subscribes are sent again: the page ends on the window it asked for last.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let windows = browser.js("return window.__t.windows;", vec![]).await;
        let last = windows.as_array().and_then(|w| w.last()).cloned();
        if let Some(last) = last {
            let total = last["total"].as_u64().unwrap();
            assert!(
                total > 20,
                "the demo queue has more cases than the windows: {windows}"
            );
            if last["cases"] == 20 {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the last window (20 cases) never came: {windows}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refused = common::ws::metric(
        &common::ws::scrape(&server).await,
        "websocket_rate_limited_total{limit=\"subscribe_rate\"}",
    );
    assert!(refused >= 1.0, "the burst went past the subscribe rate");
    let events = log(&browser).await;
    assert!(
        !events.iter().any(|e| is(e, "error") || is(e, "closed")),
        "the client handled the refusals itself, on one connection: {events:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_answering_is_left_after_missed_pongs_and_resumed_with_since() {
    if !available("a_server_that_stops_answering_is_left_after_missed_pongs_and_resumed_with_since")
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = start_demo(&dir.path().join("data"), &["--heartbeat-interval", "1s"]);
    let browser = Browser::launch(&server).await;
    start_client(
        &browser,
        "reviewer",
        &["queue", "stats"],
        json!({"pongTimeoutMs": 500, "backoffCapMs": 1000}),
    )
    .await;
    wait_log(&browser, "the stats snapshot", |e| {
        is(e, "snapshot") && e["topic"] == "stats"
    })
    .await;
    let classifier = token_of(&server, "classifier").await;
    let first = submit(&server, &classifier, "BEFORE-FREEZE").await;
    let first_id = first["id"].clone();
    wait_log(&browser, "the first update", |e| {
        is(e, "update") && e["id"] == first_id
    })
    .await;

    // Frozen, the server cannot answer pings: 3 misses later the client leaves the socket.
    signal(&server, "-STOP");
    let left = wait_log(&browser, "a close for missed pongs", |e| {
        is(e, "closed") && e["reason"] == "pong_timeout"
    })
    .await;
    signal(&server, "-CONT");
    let events = log(&browser).await;
    assert!(
        events[left..]
            .iter()
            .any(|e| is(e, "state") && e["state"] == "reconnecting"),
        "the client says it is reconnecting: {events:#?}"
    );

    // Back: a new session, the subscriptions resumed from the position seen.
    let deadline = Instant::now() + Duration::from_secs(30);
    let resumed = loop {
        let events = log(&browser).await;
        let welcomes: Vec<usize> = events
            .iter()
            .enumerate()
            .filter(|(_, e)| is(e, "welcome"))
            .map(|(i, _)| i)
            .collect();
        if welcomes.len() >= 2 {
            let after = welcomes[welcomes.len() - 1];
            if events[after..].iter().any(|e| is(e, "subscribed")) {
                break after;
            }
        }
        assert!(Instant::now() < deadline, "no resumed session: {events:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let second = submit(&server, &classifier, "AFTER-THAW").await;
    let second_id = second["id"].clone();
    wait_log(&browser, "the update after the thaw", |e| {
        is(e, "update") && e["id"] == second_id
    })
    .await;
    let events = log(&browser).await;
    assert!(
        !events[resumed..].iter().any(|e| is(e, "snapshot")),
        "resumed with `since`: no snapshot again: {events:#?}"
    );
    for id in [&first_id, &second_id] {
        let n = events
            .iter()
            .filter(|e| is(e, "update") && e["topic"] == "queue" && &e["id"] == id)
            .count();
        assert_eq!(n, 1, "each update once ({id}): {events:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_login_stops_the_client_after_one_refresh() {
    if !available("a_revoked_login_stops_the_client_after_one_refresh") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = start_demo(&dir.path().join("data"), &[]);
    let browser = Browser::launch(&server).await;
    start_client(&browser, "reviewer", &["stats"], json!({})).await;
    wait_log(&browser, "welcome", |e| is(e, "welcome")).await;
    let pair = browser.js("return window.__t.pair;", vec![]).await;
    drain_log(&server);

    // Logging the pair out elsewhere revokes its whole login: the session closes 4401.
    let answer = client()
        .post(server.url("/api/v1/auth/logout"))
        .bearer_auth(pair["access_token"].as_str().unwrap())
        .json(&json!({"refresh_token": pair["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 204);
    let closed = wait_log(&browser, "the 4401 close", |e| {
        is(e, "closed") && e["code"] == 4401
    })
    .await;
    let stopped = wait_log(&browser, "the stop", |e| is(e, "stopped")).await;
    assert!(stopped > closed);
    let events = log(&browser).await;
    assert_eq!(events[stopped]["signedOut"], true, "{events:#?}");
    assert_eq!(events[stopped]["reason"], "token_revoked", "{events:#?}");
    let state = browser.js("return window.__t.client.state;", vec![]).await;
    assert_eq!(state, "offline");

    // Exactly one refresh was tried, and no reconnection after it.
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut lines = Vec::new();
    while Instant::now() < deadline {
        lines.extend(drain_log(&server));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refreshes = lines.iter().filter(|l| l.contains("/auth/refresh")).count();
    assert_eq!(refreshes, 1, "one refresh: {lines:#?}");
    let upgrades = lines
        .iter()
        .filter(|l| l.contains("GET /api/v1/ws"))
        .count();
    assert_eq!(upgrades, 0, "no reconnection: {lines:#?}");
}

/// Runs `script` (an async function body that returns a list of failures) in the app's page.
async fn failures_of(browser: &Browser, script: &str) -> Vec<String> {
    let wrapped = format!(
        "const done = arguments[arguments.length - 1];\n(async () => {{ {script} }})().then(done, (e) => done([String(e && e.stack || e)]));"
    );
    let value = browser
        .client
        .execute_async(&wrapped, vec![])
        .await
        .expect("the script ran");
    serde_json::from_value(value).expect("a list of failures")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pure_modules_keep_their_rules() {
    if !available("the_pure_modules_keep_their_rules") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let browser = Browser::launch(&server).await;
    browser.open("/").await;
    browser.wait_for("#signin-page").await;
    let failures = failures_of(
        &browser,
        r#"
const bad = [];
const check = (ok, what) => { if (!ok) bad.push(what); };
const { backoffDelay, jwtClaims, refreshRetryDelay, DEFAULTS } = await import('/app/client.js');
const { QueueWindow, compareCases } = await import('/app/queue-model.js');
const { quantile, liveNumbers, figures } = await import('/app/metrics.js');

// Full jitter: [0, min(cap, base * 2^attempt)).
check(backoffDelay(0, DEFAULTS, () => 0) === 0, 'backoff floor is 0');
check(backoffDelay(0, DEFAULTS, () => 0.999) === 499, 'first ceiling is 0.5 s');
check(backoffDelay(3, DEFAULTS, () => 0.999) === 3996, 'doubles per attempt');
check(backoffDelay(20, DEFAULTS, () => 0.999) === 29970, 'capped at 30 s');
check(jwtClaims('x.eyJleHAiOjEwLCJpYXQiOjV9.y').exp === 10, 'reads a JWT payload');
check(jwtClaims('garbage') === null, 'not a JWT');
// A failed refresh is retried 1 to 9 s later: a lost answer is then answered again, not a reuse.
check(refreshRetryDelay(null, 0) === 1000, 'a refresh retry waits at least 1 s');
check(refreshRetryDelay(null, 60000) === 9000, 'and at most 9 s');
check(refreshRetryDelay({ retryAfterMs: 3000 }, 100) === 3000, 'Retry-After first');

// The server's queue order: priority, then submission time to the microsecond, then id.
const c = (id, priority, at, status = 'pending', version = 1) =>
  ({ id, priority, submitted_at: at, adjudication_status: status, version });
const t = '2026-01-01T00:00:00.000001Z', t2 = '2026-01-01T00:00:00.000002Z';
check(compareCases(c('b', 'urgent', t2), c('a', 'low', t)) < 0, 'urgent before low');
check(compareCases(c('b', 'high', t), c('a', 'high', t2)) < 0, 'older first (microseconds)');
check(compareCases(c('a', 'high', t), c('b', 'high', t)) < 0, 'then by id');

// A window of 2 out of 3 matching cases.
const w = new QueueWindow({ limit: 2, statuses: ['pending', 'in_review', 'escalated'] });
w.applySnapshot({ cases: [c('a', 'high', t), c('b', 'normal', t)], total: 3, next: 'cursor' });
check(!w.complete && w.total === 3, 'a cut window is not complete');
check(w.applyUpdate('case_submitted', c('z', 'low', t)).change === 'none', 'beyond the window: not shown');
check(w.applyUpdate('case_submitted', c('u', 'urgent', t)).change === 'added', 'inserted in order');
check(w.visible().map((x) => x.id).join() === 'u,a', 'trimmed to the limit: ' + w.visible().map((x) => x.id).join());
check(w.applyUpdate('case_claimed', c('u', 'urgent', t, 'in_review', 1)).change === 'none', 'an old version is ignored');
check(w.applyUpdate('case_claimed', c('u', 'urgent', t, 'in_review', 2)).change === 'changed', 'a new version replaces');
check(w.applyUpdate('case_decided', c('a', 'high', t, 'decided', 2)).change === 'removed', 'a decided case leaves');
w.applyStats({ pending: 3, in_review: 1, escalated: 0, decided: 1 });
check(w.total === 4 && w.needsRefill(), 'the total from stats; a short window asks for a refill');

// The legacy whole-queue snapshot: everything held, the first `limit` shown.
const legacy = new QueueWindow({ limit: 1, statuses: ['pending'] });
legacy.applySnapshot([c('a', 'low', t), c('b', 'urgent', t), c('d', 'urgent', t, 'in_review')]);
check(legacy.total === 2 && legacy.visible()[0].id === 'b', 'the array filtered, ordered, windowed');
legacy.applyUpdate('case_claimed', c('b', 'urgent', t, 'in_review', 2));
check(legacy.visible()[0].id === 'a' && legacy.total === 1, 'the next case moves up');

// histogram_quantile: linear inside the bucket.
check(Math.abs(quantile(0.5, [[1, 0], [2, 10], [Infinity, 10]]) - 1.5) < 1e-9, 'the median of one bucket');
check(quantile(0.99, [[1, 0], [Infinity, 0]]) === null, 'no observation, no quantile');
const text = (sent, le1) => `websocket_active_connections 3\nwebsocket_messages_sent_total{message_type="update"} ${sent}\nwebsocket_messages_received_total 0\nprojection_lag_events 2\neventstore_append_duration_seconds_bucket{le="0.001"} ${le1}\neventstore_append_duration_seconds_bucket{le="+Inf"} 100\n`;
const live = liveNumbers(figures(text(10, 50), 0), figures(text(30, 50), 2000));
check(live.sessions === 3 && live.projectionLag === 2, 'gauges read');
check(live.messagesPerSecond === 10, 'messages per second between scrapes: ' + live.messagesPerSecond);
check(live.p99Scope === 'since start', 'no appends between scrapes: p99 since start');
return bad;
"#,
    )
    .await;
    assert!(failures.is_empty(), "{failures:#?}");
}
