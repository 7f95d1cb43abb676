//! The exposition names every metric exactly as `docs/operations.md` lists it, with its type
//! and labels, and nothing of OpenTelemetry's own (`otel_scope_*`, `target_info`).

use super::*;

/// (name, Prometheus type) of every metric.
const METRICS: &[(&str, &str)] = &[
    ("websocket_connections_total", "counter"),
    ("websocket_active_connections", "gauge"),
    ("websocket_connection_duration_seconds", "histogram"),
    ("websocket_auth_failures_total", "counter"),
    ("websocket_auth_latency_seconds", "histogram"),
    ("websocket_messages_sent_total", "counter"),
    ("websocket_messages_received_total", "counter"),
    ("websocket_errors_total", "counter"),
    ("websocket_heartbeat_timeouts_total", "counter"),
    ("websocket_slow_consumer_disconnects_total", "counter"),
    ("websocket_rate_limited_total", "counter"),
    ("registry_sessions", "gauge"),
    ("registry_subscriptions", "gauge"),
    ("eventstore_appends_total", "counter"),
    ("eventstore_append_duration_seconds", "histogram"),
    ("projection_position", "gauge"),
    ("eventstore_head_position", "gauge"),
    ("projection_lag_events", "gauge"),
    ("push_fanout_duration_seconds", "histogram"),
    ("actor_mailbox_backlog", "gauge"),
    ("actor_messages_handled_total", "counter"),
    ("actor_restarts_total", "counter"),
    ("session_actors_started_total", "counter"),
    ("session_actors_stopped_total", "counter"),
    ("http_requests_total", "counter"),
    ("http_request_duration_seconds", "histogram"),
    ("eventstore_group_commit_batch_size", "histogram"),
    ("eventstore_fsync_duration_seconds", "histogram"),
    ("projection_lag_seconds", "gauge"),
    ("process_resident_memory_bytes", "gauge"),
    ("process_cpu_seconds_total", "counter"),
    ("process_open_fds", "gauge"),
    ("process_max_fds", "gauge"),
    ("process_start_time_seconds", "gauge"),
    ("adjudicator_build_info", "gauge"),
    ("adjudicator_ready", "gauge"),
];

fn record_one_of_each() {
    let m = metrics();
    m.connection(ConnectionStatus::RejectedOrigin);
    m.connection_opened();
    m.connection_closed(12.5);
    m.auth_failure(AuthFailure::TokenExpired);
    m.auth_latency(0.0004);
    m.message_sent(MessageType::Snapshot);
    m.messages_sent(MessageType::Update, 3);
    m.message_received();
    m.error(ErrorType::ForbiddenTopic);
    m.heartbeat_timeout();
    m.slow_consumer_disconnect();
    m.rate_limited(RateLimit::MessageRate);
    m.set_registry_sessions(2);
    m.set_subscriptions(TopicKind::Case, 4);
    m.append(2, 0.003);
    m.push_fanout(0.002);
    m.session_started();
    m.session_stopped(StopReason::Kicked);
    m.actor_restart(ActorKind::Projector);
    m.http_request("/api/v1/cases/{id}/decision", HttpMethod::Post, 409, 0.004);
    m.group_commit(3, 0.002);
    m.set_projection_lag_seconds(1.5);
    m.set_ready(true);
}

/// The value of the sample line that starts with `series ` (name and labels), if any.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn every_metric_has_its_exact_name_type_and_labels() {
    record_one_of_each();
    let text = render();
    for (name, _) in METRICS {
        let help = text
            .lines()
            .find_map(|l| l.strip_prefix(&format!("# HELP {name} ")))
            .unwrap_or_else(|| panic!("# HELP {name} in:\n{text}"));
        assert!(
            help.len() > 20,
            "a HELP that says something: {name}: {help}"
        );
    }
    for (name, kind) in METRICS {
        assert!(
            text.contains(&format!("\n# TYPE {name} {kind}\n"))
                || text.starts_with(&format!("# TYPE {name} {kind}\n")),
            "# TYPE {name} {kind} in:\n{text}"
        );
    }
    for series in [
        r#"websocket_connections_total{status="rejected_origin"}"#,
        r#"websocket_auth_failures_total{reason="token_expired"}"#,
        r#"websocket_messages_sent_total{message_type="snapshot"}"#,
        r#"websocket_messages_sent_total{message_type="update"}"#,
        r#"websocket_errors_total{error_type="forbidden_topic"}"#,
        r#"websocket_rate_limited_total{limit="message_rate"}"#,
        r#"registry_subscriptions{topic="case"}"#,
        "websocket_heartbeat_timeouts_total",
        "websocket_slow_consumer_disconnects_total",
        "websocket_messages_received_total",
        "eventstore_appends_total",
        "websocket_connection_duration_seconds_count",
        "websocket_auth_latency_seconds_count",
        "eventstore_append_duration_seconds_count",
        "push_fanout_duration_seconds_count",
        r#"session_actors_stopped_total{reason="kicked"}"#,
        r#"actor_restarts_total{actor="projector"}"#,
        "session_actors_started_total",
        r#"http_requests_total{method="POST",route="/api/v1/cases/{id}/decision",status_class="4xx"}"#,
        r#"http_request_duration_seconds_count{method="POST",route="/api/v1/cases/{id}/decision"}"#,
        "eventstore_group_commit_batch_size_count",
        "eventstore_fsync_duration_seconds_count",
        "projection_lag_seconds",
        "adjudicator_ready",
        "process_resident_memory_bytes",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        let value = sample(&text, series).unwrap_or_else(|| panic!("{series} in:\n{text}"));
        assert!(value >= 1.0, "{series} = {value}");
    }
    // Every label value is there from the start, at zero or more.
    for series in [
        r#"websocket_connections_total{status="too_many_connections"}"#,
        r#"registry_subscriptions{topic="audit"}"#,
        r#"websocket_rate_limited_total{limit="max_connections"}"#,
        r#"session_actors_stopped_total{reason="slow_consumer"}"#,
        r#"actor_restarts_total{actor="registry"}"#,
        r#"actor_mailbox_backlog{actor="session"}"#,
        r#"actor_messages_handled_total{actor="projector"}"#,
        "process_open_fds",
        "process_cpu_seconds_total",
    ] {
        assert!(sample(&text, series).is_some(), "{series} in:\n{text}");
    }
    let build = format!(
        "adjudicator_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(sample(&text, &build), Some(1.0), "{build} in:\n{text}");
    assert!(text.contains(r#"websocket_auth_latency_seconds_bucket{le="0.0001"}"#));
    assert!(!text.contains("otel_scope"), "{text}");
    assert!(!text.contains("target_info"), "{text}");
    assert!(!text.contains("_total_total"), "{text}");
}

#[test]
fn lag_is_head_minus_projection_and_head_never_falls_behind() {
    // A private instance: the process-wide one may be moved by other tests at the same time.
    let m = &Metrics::new(setup::pipeline().expect("an exporter"));
    let text = |m: &Metrics| m.render();
    m.set_positions(7, 10);
    let t = text(m);
    assert_eq!(sample(&t, "projection_lag_events"), Some(3.0), "{t}");
    m.set_projection_position(12);
    let t = text(m);
    assert_eq!(sample(&t, "eventstore_head_position"), Some(12.0), "{t}");
    assert_eq!(sample(&t, "projection_lag_events"), Some(0.0), "{t}");
    m.set_head_position(11);
    let t = text(m);
    assert_eq!(sample(&t, "eventstore_head_position"), Some(12.0), "{t}");
}
