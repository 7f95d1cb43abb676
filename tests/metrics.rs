//! `GET /metrics` of the real binary: the Prometheus text format, and the store and projection
//! figures after a case is submitted over HTTP.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

/// The value of the unlabelled sample `name`, if the exposition has it.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

async fn scrape(server: &Server) -> String {
    let response = get(server, "/metrics", None).await;
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    response.text().await.expect("the metrics text")
}

#[tokio::test]
async fn metrics_follow_the_store_and_the_projections() {
    let dir = tempfile::tempdir().expect("a data directory");
    let server = Server::start(&dir.path().join("data"), &[]);
    let token = login(&server, "admin", &admin_password(&server.data_dir)).await;

    let before = scrape(&server).await;
    let appended_before = sample(&before, "eventstore_appends_total").expect("appends");

    let case = json!({
        "subject_ref": "x",
        "excerpt": "y",
        "assessment": {"culpability": "knowingly", "confidence": 0.5, "rationale": ""},
        "priority": "normal",
    });
    let submitted = assert_json(
        post(&server, "/api/v1/cases", Some(&token), &case).await,
        201,
    )
    .await;
    let position = submitted["position"].as_u64().expect("the case's position");

    // The store's head and the read models agree once the projector has applied the event.
    let text = eventually(
        "the projection to reach the head",
        Duration::from_secs(10),
        || {
            let server = &server;
            async move {
                let text = scrape(server).await;
                let head = sample(&text, "eventstore_head_position")?;
                let projected = sample(&text, "projection_position")?;
                (head == projected && head >= position as f64).then_some(text)
            }
        },
    )
    .await;
    let head = sample(&text, "eventstore_head_position").expect("the head");
    assert!(head > 0.0, "{text}");
    assert_eq!(sample(&text, "projection_lag_events"), Some(0.0), "{text}");

    // A fresh store: every event in it was appended by this process.
    let appended = sample(&text, "eventstore_appends_total").expect("appends");
    assert!(
        appended >= head,
        "appends {appended} < head {head}:\n{text}"
    );
    assert!(appended > appended_before, "{text}");
    let count = sample(&text, "eventstore_append_duration_seconds_count").expect("append count");
    assert!(count >= 1.0, "{text}");

    for line in [
        "# TYPE eventstore_appends_total counter",
        "# TYPE eventstore_head_position gauge",
        "# TYPE websocket_connections_total counter",
        "# TYPE eventstore_append_duration_seconds histogram",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
    }
    assert!(!text.contains("otel_scope"), "{text}");
    assert!(!text.contains("target_info"), "{text}");
}

#[tokio::test]
async fn actors_sessions_and_http_requests_are_counted_by_the_real_binary() {
    use common::ws::{metric, open};

    let dir = tempfile::tempdir().expect("a data directory");
    let server = start_demo(&dir.path().join("data"), &[]);
    let reviewer = login(&server, "reviewer", &demo_password("reviewer")).await;
    let (mut ws, _) = open(&server, &reviewer).await;
    ws.subscribe("s", &["stats"], None).await;
    ws.recv_type("snapshot").await;
    ws.close_normally().await;
    let missing = "/api/v1/cases/0190aaaa-0000-7000-8000-000000000000";
    assert_eq!(get(&server, missing, Some(&reviewer)).await.status(), 404);

    // Once the session is gone: one started, one stopped because the client closed, nothing
    // left waiting in any mailbox (once the last messages are handled), and every actor has
    // handled messages.
    let text = eventually(
        "the session counted as stopped",
        Duration::from_secs(10),
        || {
            let server = &server;
            async move {
                let text = scrape(server).await;
                let stopped = r#"session_actors_stopped_total{reason="client_closed"}"#;
                let idle = ["registry", "projector", "session"].iter().all(|actor| {
                    let backlog = format!("actor_mailbox_backlog{{actor=\"{actor}\"}}");
                    sample(&text, &backlog) == Some(0.0)
                });
                (sample(&text, stopped) == Some(1.0) && idle).then_some(text)
            }
        },
    )
    .await;
    assert_eq!(metric(&text, "session_actors_started_total"), 1.0);
    for actor in ["registry", "projector", "session"] {
        let handled = metric(
            &text,
            &format!("actor_messages_handled_total{{actor=\"{actor}\"}}"),
        );
        assert!(handled >= 1.0, "{actor} handled {handled}:\n{text}");
    }
    assert_eq!(
        metric(&text, r#"actor_restarts_total{actor="projector"}"#),
        0.0
    );

    // HTTP requests by route template, never by path.
    let login =
        r#"http_requests_total{method="POST",route="/api/v1/auth/login",status_class="2xx"}"#;
    assert!(metric(&text, login) >= 1.0, "{text}");
    let case = r#"http_requests_total{method="GET",route="/api/v1/cases/{id}",status_class="4xx"}"#;
    assert_eq!(metric(&text, case), 1.0, "{text}");
    assert!(!text.contains("0190aaaa"), "a path in a label:\n{text}");
    let upgrade = r#"http_request_duration_seconds_count{method="GET",route="/api/v1/ws"}"#;
    assert_eq!(metric(&text, upgrade), 1.0, "{text}");

    // The store's group commits, readiness, the process and the build.
    assert!(metric(&text, "eventstore_group_commit_batch_size_count") >= 1.0);
    assert!(metric(&text, "eventstore_fsync_duration_seconds_count") >= 1.0);
    assert_eq!(metric(&text, "projection_lag_seconds"), 0.0);
    assert_eq!(metric(&text, "adjudicator_ready"), 1.0);
    assert!(metric(&text, "process_resident_memory_bytes") > 1e6);
    assert!(metric(&text, "process_open_fds") < metric(&text, "process_max_fds"));
    let version = format!(
        "adjudicator_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(metric(&text, &version), 1.0);
}
