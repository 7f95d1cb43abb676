//! Building the OpenTelemetry meter provider, its Prometheus exporter and every instrument.
//!
//! The exporter is configured so that the Prometheus names are exactly the instrument names:
//! no unit suffixes (`without_units`), no `otel_scope_*` labels (`scope_info_enabled(false)`),
//! no `target_info` metric (`without_target_info`). Counters are named without `_total`; the
//! exporter appends it once.

use opentelemetry::metrics::{
    Counter, Gauge, Histogram, Meter, MeterProvider, ObservableCounter, ObservableGauge,
    UpDownCounter,
};
use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::SdkMeterProvider;

use super::actors::COUNTS;
use super::labels::ActorKind;
use super::process;

/// Why the exporter could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot set up the Prometheus exporter: {0}")]
    Exporter(#[from] opentelemetry_sdk::error::OTelSdkError),
}

/// Bucket boundaries, in seconds.
mod buckets {
    /// A WebSocket session's life: seconds to a working day.
    pub const CONNECTION_DURATION: &[f64] = &[
        1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0,
    ];
    /// A token check: sub-millisecond to a second.
    pub const AUTH_LATENCY: &[f64] = &[
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    ];
    /// A durable append (an fsync or a network round trip): a tenth of a millisecond to 5 s.
    pub const APPEND: &[f64] = &[
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        5.0,
    ];
    /// From an append to the last subscriber's enqueue.
    pub const FANOUT: &[f64] = &[
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        5.0, 10.0,
    ];
    /// An HTTP request: a millisecond to a minute (an audit export streams for long).
    pub const HTTP: &[f64] = &[
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        60.0,
    ];
    /// Appends sharing one commit: one to the writer's bound of 512.
    pub const BATCH: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];
}

/// Every instrument the facade records into.
pub(super) struct Instruments {
    pub connections: Counter<u64>,
    pub active_connections: UpDownCounter<i64>,
    pub connection_duration: Histogram<f64>,
    pub auth_failures: Counter<u64>,
    pub auth_latency: Histogram<f64>,
    pub messages_sent: Counter<u64>,
    pub messages_received: Counter<u64>,
    pub errors: Counter<u64>,
    pub heartbeat_timeouts: Counter<u64>,
    pub slow_consumer_disconnects: Counter<u64>,
    pub rate_limited: Counter<u64>,
    pub registry_sessions: Gauge<u64>,
    pub registry_subscriptions: Gauge<u64>,
    pub appends: Counter<u64>,
    pub append_duration: Histogram<f64>,
    pub projection_position: Gauge<u64>,
    pub head_position: Gauge<u64>,
    pub projection_lag: Gauge<u64>,
    pub push_fanout: Histogram<f64>,
    pub http_requests: Counter<u64>,
    pub http_duration: Histogram<f64>,
    pub batch_size: Histogram<f64>,
    pub fsync_duration: Histogram<f64>,
    pub projection_lag_seconds: Gauge<f64>,
    pub sessions_started: Counter<u64>,
    pub sessions_stopped: Counter<u64>,
    pub actor_restarts: Counter<u64>,
    pub build_info: Gauge<u64>,
    pub ready: Gauge<u64>,
    /// Read when Prometheus scrapes; kept so that they live as long as the provider.
    pub _observed: Observed,
}

/// Instruments whose values are read at each scrape.
pub(super) struct Observed {
    _backlog: ObservableGauge<i64>,
    _handled: ObservableCounter<u64>,
    _cpu: ObservableCounter<f64>,
    _resident: ObservableGauge<u64>,
    _open_fds: ObservableGauge<u64>,
    _max_fds: ObservableGauge<u64>,
    _start_time: ObservableGauge<f64>,
}

/// The provider (kept alive for the life of the process), the registry the exporter fills, and
/// the instruments.
pub(super) struct Pipeline {
    pub _provider: SdkMeterProvider,
    pub registry: Option<prometheus::Registry>,
    pub instruments: Instruments,
}

/// Builds the exporter, the provider and the instruments.
pub(super) fn pipeline() -> Result<Pipeline, SetupError> {
    let registry = prometheus::Registry::new();
    let exporter = opentelemetry_prometheus::exporter()
        .with_registry(registry.clone())
        .without_units()
        .without_target_info()
        .scope_info_enabled(false)
        .build()?;
    let provider = SdkMeterProvider::builder().with_reader(exporter).build();
    let instruments = instruments(&provider.meter("adjudicator"));
    Ok(Pipeline {
        _provider: provider,
        registry: Some(registry),
        instruments,
    })
}

/// A pipeline that exports nothing, should the exporter fail to start: recording still works
/// and costs little, `/metrics` is empty.
pub(super) fn disabled() -> Pipeline {
    let provider = SdkMeterProvider::builder().build();
    let instruments = instruments(&provider.meter("adjudicator"));
    Pipeline {
        _provider: provider,
        registry: None,
        instruments,
    }
}

fn counter(meter: &Meter, name: &'static str, help: &'static str) -> Counter<u64> {
    meter.u64_counter(name).with_description(help).build()
}

fn gauge(meter: &Meter, name: &'static str, help: &'static str) -> Gauge<u64> {
    meter.u64_gauge(name).with_description(help).build()
}

fn seconds(meter: &Meter, name: &'static str, help: &'static str, b: &[f64]) -> Histogram<f64> {
    meter
        .f64_histogram(name)
        .with_description(help)
        .with_unit("s")
        .with_boundaries(b.to_vec())
        .build()
}

fn instruments(m: &Meter) -> Instruments {
    Instruments {
        connections: counter(
            m,
            "websocket_connections",
            "WebSocket connection attempts, by outcome.",
        ),
        active_connections: m
            .i64_up_down_counter("websocket_active_connections")
            .with_description("WebSocket connections open now.")
            .build(),
        connection_duration: seconds(
            m,
            "websocket_connection_duration_seconds",
            "How long WebSocket connections stayed open.",
            buckets::CONNECTION_DURATION,
        ),
        auth_failures: counter(
            m,
            "websocket_auth_failures",
            "WebSocket token checks that failed, by protocol reason.",
        ),
        auth_latency: seconds(
            m,
            "websocket_auth_latency_seconds",
            "Time to check a WebSocket token.",
            buckets::AUTH_LATENCY,
        ),
        messages_sent: counter(
            m,
            "websocket_messages_sent",
            "Messages sent to WebSocket clients, by type.",
        ),
        messages_received: counter(
            m,
            "websocket_messages_received",
            "Messages received from WebSocket clients.",
        ),
        errors: counter(
            m,
            "websocket_errors",
            "Errors reported to WebSocket clients or closing their sessions, by type.",
        ),
        heartbeat_timeouts: counter(
            m,
            "websocket_heartbeat_timeouts",
            "Sessions closed for missing heartbeats (4408).",
        ),
        slow_consumer_disconnects: counter(
            m,
            "websocket_slow_consumer_disconnects",
            "Sessions closed because their outbound queue overflowed (1013).",
        ),
        rate_limited: counter(
            m,
            "websocket_rate_limited",
            "Connections or messages refused by a limit, by limit.",
        ),
        registry_sessions: gauge(m, "registry_sessions", "Sessions the registry knows."),
        registry_subscriptions: gauge(
            m,
            "registry_subscriptions",
            "Topic subscriptions held by sessions, by topic kind.",
        ),
        appends: counter(
            m,
            "eventstore_appends",
            "Events appended to the event store.",
        ),
        append_duration: seconds(
            m,
            "eventstore_append_duration_seconds",
            "Time an append took, until durable (failed appends included).",
            buckets::APPEND,
        ),
        projection_position: gauge(
            m,
            "projection_position",
            "Global position the read models have applied.",
        ),
        head_position: gauge(
            m,
            "eventstore_head_position",
            "Global position of the last event in the store.",
        ),
        projection_lag: gauge(
            m,
            "projection_lag_events",
            "Events in the store the read models have not applied yet.",
        ),
        push_fanout: seconds(
            m,
            "push_fanout_duration_seconds",
            "Time from an append to the last subscriber's enqueue of its update.",
            buckets::FANOUT,
        ),
        http_requests: counter(
            m,
            "http_requests",
            "HTTP requests answered, by route template, method and status class (2xx, 4xx, ...).",
        ),
        http_duration: seconds(
            m,
            "http_request_duration_seconds",
            "Time to answer an HTTP request (until its answer's head), by route template and method.",
            buckets::HTTP,
        ),
        batch_size: m
            .f64_histogram("eventstore_group_commit_batch_size")
            .with_description(
                "Appends written together by one commit of the event store (one fsync for all).",
            )
            .with_boundaries(buckets::BATCH.to_vec())
            .build(),
        fsync_duration: seconds(
            m,
            "eventstore_fsync_duration_seconds",
            "Time one commit of the event store took to reach the disk (the log write and its fsync).",
            buckets::APPEND,
        ),
        projection_lag_seconds: m
            .f64_gauge("projection_lag_seconds")
            .with_description(
                "How long the oldest event the read models have not applied has been in the store; 0 when caught up.",
            )
            .build(),
        sessions_started: counter(
            m,
            "session_actors_started",
            "WebSocket session actors started (one per authenticated connection).",
        ),
        sessions_stopped: counter(
            m,
            "session_actors_stopped",
            "WebSocket session actors stopped, by close reason.",
        ),
        actor_restarts: counter(
            m,
            "actor_restarts",
            "Times an actor started over after a failure (the projector resubscribing to the store), by actor.",
        ),
        build_info: gauge(
            m,
            "adjudicator_build_info",
            "Always 1; the version label tells which build runs.",
        ),
        ready: gauge(
            m,
            "adjudicator_ready",
            "1 while the node is ready (GET /readyz answers 200: store reachable, read models caught up), else 0.",
        ),
        _observed: observed(m),
    }
}

fn observed(m: &Meter) -> Observed {
    let actor = |a: ActorKind| [KeyValue::new("actor", a.as_str())];
    Observed {
        _backlog: m
            .i64_observable_gauge("actor_mailbox_backlog")
            .with_description(
                "Messages waiting in actors' mailboxes, by actor (all sessions summed).",
            )
            .with_callback(move |o| {
                for a in ActorKind::ALL {
                    o.observe(COUNTS.backlog(*a), &actor(*a));
                }
            })
            .build(),
        _handled: m
            .u64_observable_counter("actor_messages_handled")
            .with_description(
                "Messages actors handled, by actor (all sessions summed; the projector's store events included).",
            )
            .with_callback(move |o| {
                for a in ActorKind::ALL {
                    o.observe(COUNTS.handled(*a), &actor(*a));
                }
            })
            .build(),
        _cpu: m
            .f64_observable_counter("process_cpu_seconds")
            .with_description("CPU time the process used, user and system, in seconds.")
            .with_callback(|o| {
                if let Some(p) = process::read() {
                    o.observe(p.cpu_seconds, &[]);
                }
            })
            .build(),
        _resident: process_gauge(
            m,
            "process_resident_memory_bytes",
            "Memory the process holds in RAM (resident set size), in bytes.",
            |p| p.resident_bytes,
        ),
        _open_fds: process_gauge(
            m,
            "process_open_fds",
            "File descriptors the process has open (sockets and files).",
            |p| p.open_fds,
        ),
        _max_fds: process_gauge(
            m,
            "process_max_fds",
            "The most file descriptors the process may open (ulimit -n); past it, connections are refused.",
            |p| p.max_fds,
        ),
        _start_time: m
            .f64_observable_gauge("process_start_time_seconds")
            .with_description("When the process started, in seconds since the Unix epoch.")
            .with_callback(|o| {
                if let Some(p) = process::read() {
                    o.observe(p.start_time_seconds, &[]);
                }
            })
            .build(),
    }
}

/// A gauge of one process figure, read from `/proc` at each scrape.
fn process_gauge(
    m: &Meter,
    name: &'static str,
    help: &'static str,
    pick: fn(&process::ProcessStats) -> u64,
) -> ObservableGauge<u64> {
    m.u64_observable_gauge(name)
        .with_description(help)
        .with_callback(move |o| {
            if let Some(p) = process::read() {
                o.observe(pick(&p), &[]);
            }
        })
        .build()
}
