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
