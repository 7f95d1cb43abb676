//! `monitoring/` proven against Debian's real Prometheus and promtool:
//!
//! * `promtool check config` and `promtool check rules` accept the shipped files;
//! * `promtool test rules` (monitoring/prometheus/alerts.test.yml) shows every alert firing for a
//!   failing node and silent for a healthy one, and the unit tests cover every alert;
//! * every alert has `for:`, a severity, a summary and a runbook section in docs/operations.md;
//! * end to end: the real server and a private Prometheus (1 s scrapes, the shipped rules), real
//!   traffic (sessions, subscriptions, decisions, auth failures, a slow consumer, a rate-limit
//!   refusal), then every panel target of the Grafana dashboard, its variables substituted, run
//!   through Prometheus's HTTP API must return data, and every metric an alert rule reads must be
//!   among what Prometheus scraped.
//!
//! Without `prometheus`/`promtool` these tests fail when `CI` is set and skip loudly otherwise.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::prometheus::{metric_names, monitoring, promtool, tool, values, Prometheus};
use common::ws::{connect, connect_small_buffer, metric, open, scrape, try_connect};
use common::*;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite;

/// The alerts operators asked for, each with a runbook section in docs/operations.md.
const ALERTS: [&str; 9] = [
    "WebSocketHighFailureRate",
    "WebSocketHighLatency",
    "WebSocketNoConnections",
    "ProjectionLagging",
    "SlowConsumersRising",
    "AppendLatencyHigh",
    "NotReady",
    "FileDescriptorsNearLimit",
    "ActorMailboxBacklog",
];

/// The panels operators asked for by name, besides the rows of the other parts.
const PANELS: [&str; 7] = [
    "Active connections",
    "Connection success rate",
    "Auth failures by reason",
    "Auth latency p95 / p99",
    "Connection duration",
    "Messages sent and received",
    "WebSocket errors by type",
];

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn dashboard() -> Value {
    let path = monitoring("grafana/dashboards/adjudicator.json");
    serde_json::from_str(&read(&path)).expect("the dashboard is JSON")
}

/// Every panel of the dashboard, those inside rows included.
fn panels(dashboard: &Value) -> Vec<Value> {
    let mut all = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        all.push(panel.clone());
        if let Some(inner) = panel["panels"].as_array() {
            all.extend(inner.iter().cloned());
        }
    }
    all
}

/// The `- alert: Name` entries of alerts.yml, in order.
fn alert_names_in_rules_file() -> Vec<String> {
    read(&monitoring("prometheus/alerts.yml"))
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert:"))
        .map(|name| name.trim().to_owned())
        .collect()
}

/// GitHub's anchor of a heading: lower case, spaces to hyphens, other punctuation dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn operations_anchors() -> BTreeSet<String> {
    let doc = read(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/operations.md"));
    doc.lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect()
}

#[test]
fn the_rules_file_holds_the_alerts_operators_asked_for_each_with_a_runbook() {
    let names: BTreeSet<String> = alert_names_in_rules_file().into_iter().collect();
    let expected: BTreeSet<String> = ALERTS.iter().map(|a| a.to_string()).collect();
    assert_eq!(names, expected, "the alerts of alerts.yml");
    assert_eq!(
        alert_names_in_rules_file().len(),
        ALERTS.len(),
        "each alert once"
    );
    let rules = read(&monitoring("prometheus/alerts.yml"));
    let anchors = operations_anchors();
    for name in ALERTS {
        let link = format!("runbook: \"docs/operations.md#{}\"", name.to_lowercase());
        assert!(rules.contains(&link), "{name}: {link} in alerts.yml");
        assert!(
            anchors.contains(&name.to_lowercase()),
            "docs/operations.md has a section {name} (the runbook of the alert)"
        );
    }
    // for:, severity and summary of each rule: as many as there are rules.
    for key in ["for: ", "severity: ", "summary: "] {
        let count = rules
            .lines()
            .filter(|l| l.trim_start().starts_with(key))
            .count();
        assert_eq!(count, ALERTS.len(), "{key:?} lines in alerts.yml");
    }
}

#[test]
fn the_dashboard_has_the_panels_operators_asked_for_and_no_fixed_datasource() {
    let dashboard = dashboard();
    let panels = panels(&dashboard);
    let titles: Vec<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
    for title in PANELS {
        assert!(titles.contains(&title), "a panel {title:?} in {titles:?}");
    }
    for row in [
        "Actors",
        "Event store",
        "Projections",
        "Fan-out",
        "HTTP",
        "Process",
    ] {
        assert!(
            panels
                .iter()
                .any(|p| p["type"] == "row" && p["title"] == row),
            "a row {row:?}"
        );
    }
    let variables: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .expect("variables")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert_eq!(variables, ["datasource", "instance"]);
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        let title = &panel["title"];
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        assert!(
            panel["description"].as_str().is_some_and(|d| d.len() > 20),
            "{title} says what it shows"
        );
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}");
        for t in targets {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{title}");
            let expr = t["expr"].as_str().expect("an expression");
            assert!(
                expr.contains("$instance"),
                "{title}: {expr} follows $instance"
            );
        }
    }
    let success = panels
        .iter()
        .find(|p| p["title"] == "Connection success rate")
        .expect("the success rate panel");
    let steps: Vec<(Value, Value)> = success["fieldConfig"]["defaults"]["thresholds"]["steps"]
        .as_array()
        .expect("thresholds")
        .iter()
        .map(|s| (s["color"].clone(), s["value"].clone()))
        .collect();
    assert_eq!(
        steps,
        [
            (json!("red"), Value::Null),
            (json!("yellow"), json!(0.95)),
            (json!("green"), json!(0.99))
        ]
    );
}

#[test]
fn promtool_accepts_the_shipped_configuration_and_rules() {
    let Some(promtool_path) = tool("promtool") else {
        return;
    };
    let config = monitoring("prometheus/prometheus.yml");
    let out = promtool(
        &promtool_path,
        &["check", "config", config.to_str().unwrap()],
    );
    assert!(out.contains("SUCCESS"), "{out}");
    let rules = monitoring("prometheus/alerts.yml");
    let out = promtool(&promtool_path, &["check", "rules", rules.to_str().unwrap()]);
    assert!(
        out.contains(&format!("SUCCESS: {} rules found", ALERTS.len())),
        "{out}"
    );
}

#[test]
fn every_alert_fires_for_a_failing_node_and_stays_silent_for_a_healthy_one() {
    let Some(promtool_path) = tool("promtool") else {
        return;
    };
    let tests = monitoring("prometheus/alerts.test.yml");
    let out = promtool(&promtool_path, &["test", "rules", tests.to_str().unwrap()]);
    assert!(out.contains("SUCCESS"), "{out}");

    // Each alert is expected to fire at least once and to be silent at least once.
    let text = read(&tests);
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let (mut fires, mut silent) = (BTreeSet::new(), BTreeSet::new());
    for (i, line) in lines.iter().enumerate() {
        if let Some(name) = line.strip_prefix("alertname:") {
            let expected = lines.get(i + 1).copied().unwrap_or("");
            match expected {
                "exp_alerts: []" => silent.insert(name.trim()),
                "exp_alerts:" => fires.insert(name.trim()),
                other => panic!("{name}: exp_alerts after alertname, got {other:?}"),
            };
        }
    }
    for name in ALERTS {
        assert!(fires.contains(name), "a unit test where {name} fires");
        assert!(silent.contains(name), "a unit test where {name} is silent");
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

/// A case submission with an excerpt of `excerpt_len` characters.
fn submission(i: usize, excerpt_len: usize) -> Value {
    json!({
        "subject_ref": format!("monitoring-{i}"),
        "excerpt": "e".repeat(excerpt_len),
        "assessment": {"culpability": "recklessly", "confidence": 0.7,
                       "rationale": "Conscious disregard of a known risk."},
        "priority": "high",
    })
}

/// Submits `count` cases, eight at a time; returns them.
async fn submit(server: &Server, token: &str, from: usize, count: usize, len: usize) -> Vec<Value> {
    futures_util::stream::iter(from..from + count)
        .map(|i| async move {
            assert_json(
                post(server, "/api/v1/cases", Some(token), &submission(i, len)).await,
                201,
            )
            .await
        })
        .buffer_unordered(8)
        .collect()
        .await
}

/// Reads `ws` until an update of `topic` for `event` arrives.
async fn until_update(ws: &mut common::ws::Ws, topic: &str, event: &str) {
    loop {
        let message = ws.recv().await;
        if message["type"] == "update" && message["topic"] == topic && message["event"] == event {
            return;
        }
    }
}

/// The demo users' access tokens.
struct Tokens {
    classifier: String,
    reviewer: String,
    auditor: String,
}

/// A round of ordinary work: a failed login, two sessions with subscriptions, a case submitted,
/// claimed and decided that reaches both, failed token checks. Case numbers start at `from`.
async fn ordinary_round(server: &Server, tokens: &Tokens, from: usize) {
    let wrong = json!({"username": "reviewer", "password": "not the password"});
    assert_problem(
        post(server, "/api/v1/auth/login", None, &wrong).await,
        401,
        "invalid_credentials",
    )
    .await;
    let (classifier, reviewer) = (&tokens.classifier, &tokens.reviewer);
    let (mut queue, _) = open(server, reviewer).await;
    queue.subscribe("q", &["queue", "stats"], None).await;
    let (mut audit, _) = open(server, &tokens.auditor).await;
    audit.subscribe("a", &["audit"], None).await;
    let case = submit(server, classifier, from, 1, 200).await.remove(0);
    let id = case["id"].as_str().expect("a case id");
    assert_json(
        post(
            server,
            &format!("/api/v1/cases/{id}/claim"),
            Some(reviewer),
            &json!({}),
        )
        .await,
        200,
    )
    .await;
    let decision = json!({"decision": "confirm", "notes": "Agreed."});
    let path = format!("/api/v1/cases/{id}/decision");
    assert_json(post(server, &path, Some(reviewer), &decision).await, 200).await;
    until_update(&mut queue, "queue", "case_decided").await;
    until_update(&mut audit, "audit", "case_decided").await;
    queue.ping("p").await;
    queue.close_normally().await;
    audit.close_normally().await;

    // Failed token checks.
    connect(server, None)
        .await
        .expect_error_then_close(4401, "token_missing")
        .await;
    connect(server, Some("not-a-token"))
        .await
        .expect_error_then_close(4401, "token_malformed")
        .await;
}

/// A subscriber that stops reading while big cases arrive is closed as a slow consumer.
async fn slow_consumer(server: &Server, tokens: &Tokens, from: usize) {
    let mut slow = connect_small_buffer(server, &tokens.reviewer, 4096).await;
    slow.recv_type("welcome").await;
    slow.subscribe("s", &["queue"], None).await;
    let mut submitted = 0;
    while metric(
        &scrape(server).await,
        "websocket_slow_consumer_disconnects_total",
    ) < 1.0
    {
        assert!(submitted < 3000, "no slow consumer after {submitted} cases");
        submit(server, &tokens.classifier, from + submitted, 16, 16_000).await;
        submitted += 16;
    }
}

/// Connect attempts from this address until the limit refuses one (429).
async fn refused_for_connect_attempts(server: &Server) {
    for attempt in 0.. {
        assert!(attempt < 100, "no 429 after {attempt} connect attempts");
        match try_connect(server, None).await {
            Err(tungstenite::Error::Http(r)) if r.status().as_u16() == 429 => break,
            Ok(_) => {}
            Err(e) => panic!("a connect attempt: {e}"),
        }
    }
}

/// A dashboard expression with Grafana's variables as they would be for this node.
fn substitute(expr: &str, instance: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("$__interval", "5s")
        .replace("$__range", "5m")
        .replace("${instance}", instance)
        .replace("$instance", instance)
        .replace("${datasource}", "prometheus")
        .replace("$datasource", "prometheus")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_panel_and_every_alert_metric_has_data_in_a_real_prometheus() {
    let Some(binary) = tool("prometheus") else {
        return;
    };
    let dir = tempfile::tempdir().expect("a data directory");
    let server = start_demo(
        &dir.path().join("data"),
        &[
            "--connect-attempts-per-ip",
            "40",
            "--outbound-queue-messages",
            "8",
            "--outbound-queue-bytes",
            "32768",
        ],
    );
    let instance = server.base_url.trim_start_matches("http://").to_owned();
    let prometheus = Prometheus::start(&binary, &instance).await;
    let p = &prometheus;
    let up = format!("up{{job=\"adjudicator\",instance=\"{instance}\"}}");
    eventually(
        "Prometheus scraping the server",
        Duration::from_secs(60),
        || {
            let up = &up;
            async move { (p.value(up).await == Some(1.0)).then_some(()) }
        },
    )
    .await;

    let start = unix_now() - 5.0;
    let tokens = Tokens {
        classifier: login(&server, "classifier", &demo_password("classifier")).await,
        reviewer: login(&server, "reviewer", &demo_password("reviewer")).await,
        auditor: login(&server, "auditor", &demo_password("auditor")).await,
    };
    ordinary_round(&server, &tokens, 0).await;
    // A histogram appears with its first observation: it needs observations after Prometheus
    // has seen it to show a rate. Ordinary work goes on, as it would, once Prometheus has
    // scraped what came so far.
    let scraped_after = |t: f64| {
        let last_scrape = format!("timestamp({up})");
        move || {
            let last_scrape = last_scrape.clone();
            async move { (p.value(&last_scrape).await? > t).then_some(()) }
        }
    };
    eventually(
        "a scrape",
        Duration::from_secs(60),
        scraped_after(unix_now() + 1.0),
    )
    .await;
    ordinary_round(&server, &tokens, 1).await;
    slow_consumer(&server, &tokens, 2).await;
    refused_for_connect_attempts(&server).await;

    // Prometheus has scraped the end of the traffic, and twice more, so that every series
    // that appeared with it has the two samples a rate needs.
    let traffic_end = unix_now();
    let refused = r#"websocket_rate_limited_total{limit="connect_attempts"}"#;
    let last_scrape = format!("timestamp({up})");
    eventually(
        "the last traffic in Prometheus",
        Duration::from_secs(60),
        || {
            let last_scrape = &last_scrape;
            async move {
                let slow = p
                    .value(r#"session_actors_stopped_total{reason="slow_consumer"}"#)
                    .await?;
                let scraped = p.value(last_scrape).await?;
                (p.value(refused).await? >= 1.0 && slow >= 1.0 && scraped > traffic_end + 2.0)
                    .then_some(())
            }
        },
    )
    .await;
    let end = unix_now();

    // Every panel target answers data, with at least one number (not only NaN).
    let mut broken = Vec::new();
    let mut checked = 0;
    for panel in panels(&dashboard()) {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let raw = target["expr"].as_str().expect("an expression");
            let expr = substitute(raw, &instance);
            assert!(!expr.contains('$'), "a variable left in {expr}");
            let data = if target["instant"] == true {
                p.api(
                    "query",
                    &[("query", expr.clone()), ("time", end.to_string())],
                )
                .await
            } else {
                let range = [
                    ("query", expr.clone()),
                    ("start", start.to_string()),
                    ("end", end.to_string()),
                    ("step", "1".to_owned()),
                ];
                p.api("query_range", &range).await
            };
            let result = data["result"].as_array().cloned().unwrap_or_default();
            let title = panel["title"].as_str().unwrap_or("?");
            if result.is_empty() {
                broken.push(format!("{title}: no data for {expr}"));
            } else if !values(&result).iter().any(|v| v.is_finite()) {
                broken.push(format!("{title}: only NaN for {expr}"));
            }
            checked += 1;
        }
    }
    assert!(checked >= 30, "{checked} panel targets");
    if !broken.is_empty() {
        let range = |q: &str| {
            [
                ("query", q.to_owned()),
                ("start", start.to_string()),
                ("end", end.to_string()),
                ("step", "1".to_owned()),
            ]
        };
        let up = p.api("query_range", &range("up")).await;
        let took = p
            .api("query_range", &range("scrape_duration_seconds"))
            .await;
        let targets = p.api("targets", &[]).await;
        panic!(
            "broken panels:\n{}\nup: {up}\nscrape durations: {took}\ntargets: {targets}\n\
             Prometheus log:\n{}",
            broken.join("\n"),
            p.log()
        );
    }

    // The shipped rules: loaded, evaluated without error, each complete, each reading only
    // metrics that Prometheus scraped.
    let rules: Vec<Value> = eventually(
        "every rule evaluated",
        Duration::from_secs(60),
        || async move {
            let data = p.api("rules", &[]).await;
            let rules: Vec<Value> = data["groups"]
                .as_array()?
                .iter()
                .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
                .collect();
            rules.iter().all(|r| r["health"] == "ok").then_some(rules)
        },
    )
    .await;
    let names: BTreeSet<&str> = rules.iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(names, ALERTS.into_iter().collect::<BTreeSet<_>>());
    let scraped: BTreeSet<String> = p
        .api("label/__name__/values", &[])
        .await
        .as_array()
        .expect("metric names")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    for rule in &rules {
        let name = rule["name"].as_str().unwrap_or("?");
        assert_eq!(rule["type"], "alerting", "{name}");
        assert!(
            rule["duration"].as_f64().unwrap_or(0.0) > 0.0,
            "{name} has a for:"
        );
        let severity = rule["labels"]["severity"].as_str().unwrap_or("");
        assert!(
            ["page", "ticket", "info"].contains(&severity),
            "{name}: {severity}"
        );
        assert!(
            rule["annotations"]["summary"]
                .as_str()
                .is_some_and(|s| !s.is_empty()),
            "{name}"
        );
        let runbook = rule["annotations"]["runbook"].as_str().unwrap_or("");
        assert_eq!(
            runbook,
            format!("docs/operations.md#{}", name.to_lowercase())
        );
        let query = rule["query"].as_str().expect("a query");
        let reads = metric_names(query);
        assert!(!reads.is_empty(), "{name}: {query}");
        for metric in reads {
            assert!(
                scraped.contains(&metric),
                "{name} reads {metric}, which Prometheus never scraped: {query}"
            );
        }
    }

    // The rules see the real figures: nobody is connected any more, so WebSocketNoConnections
    // is pending (it fires after 10 minutes of that).
    eventually(
        "WebSocketNoConnections pending",
        Duration::from_secs(60),
        || async move {
            let data = p.api("alerts", &[]).await;
            data["alerts"]
                .as_array()?
                .iter()
                .any(|a| a["labels"]["alertname"] == "WebSocketNoConnections")
                .then_some(())
        },
    )
    .await;
}

#[test]
fn metric_names_are_found_in_promql() {
    let names = |q: &str| metric_names(q).into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(
            r#"sum by (instance) (rate(websocket_auth_failures_total{reason!="x"}[5m])) / sum by (instance) (rate(websocket_connections_total[5m])) > 0.05"#
        ),
        [
            "websocket_auth_failures_total",
            "websocket_connections_total"
        ]
    );
    assert_eq!(
        names(
            r#"histogram_quantile(0.99, sum by (instance, le) (rate(eventstore_append_duration_seconds_bucket[5m]))) > 0.5"#
        ),
        ["eventstore_append_duration_seconds_bucket"]
    );
    assert_eq!(
        names(
            r#"max by (instance) (adjudicator_ready) == 0 or max by (instance) (up{job="adjudicator"}) == 0"#
        ),
        ["adjudicator_ready", "up"]
    );
    assert_eq!(
        names("max by (instance) (process_open_fds / process_max_fds) > 0.8"),
        ["process_max_fds", "process_open_fds"]
    );
    assert_eq!(
        names(
            "sum without (le) (x_total offset 5m) * on (instance) group_left (version) build_info"
        ),
        ["build_info", "x_total"]
    );
}
