//! Process-wide metrics: OpenTelemetry instruments exported in the Prometheus text format.
//!
//! [`metrics()`] returns the one [`Metrics`] of the process (built on first use, safe to call
//! from any thread, any actor, any test); [`render()`] gives the exposition `GET /metrics`
//! serves. Label values come from the closed enums of [`labels`], so no label can grow without
//! bound. Gauges take absolute values; histograms take seconds as `f64`.
//!
//! The Prometheus names, their meaning and labels are listed in `docs/operations.md`.

pub mod actors;
pub mod labels;
pub mod process;
mod setup;
#[cfg(test)]
mod tests;

use std::sync::{Mutex, OnceLock};

use opentelemetry::KeyValue;
use prometheus::{Encoder, TextEncoder};

pub use actors::{actor_handled, Forward, MeteredAddr, Ticket, Ticketed};
pub use labels::{
    ActorKind, AuthFailure, ConnectionStatus, ErrorType, HttpMethod, MessageType, RateLimit,
    StatusClass, StopReason, TopicKind,
};
pub use setup::SetupError;

/// The content type of [`render()`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The process's instruments. Every method is cheap and never blocks on I/O.
pub struct Metrics {
    pipeline: setup::Pipeline,
    /// The last projection and head positions, to derive the lag from both.
    positions: Mutex<Positions>,
}

#[derive(Default)]
struct Positions {
    projection: u64,
    head: u64,
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// The metrics of this process, built on the first call.
pub fn metrics() -> &'static Metrics {
    METRICS.get_or_init(|| {
        let pipeline = setup::pipeline().unwrap_or_else(|e| {
            tracing::error!("{e}; /metrics will be empty");
            setup::disabled()
        });
        Metrics::new(pipeline)
    })
}

/// Every metric in the Prometheus text exposition format (version 0.0.4).
pub fn render() -> String {
    metrics().render()
}

impl Metrics {
    fn new(pipeline: setup::Pipeline) -> Metrics {
        let m = Metrics {
            pipeline,
            positions: Mutex::new(Positions::default()),
        };
        m.zero();
        m
    }

    /// Shows every series from the start, at zero, so dashboards and `rate()` see them before
    /// the first event.
    fn zero(&self) {
        let i = &self.pipeline.instruments;
        for s in ConnectionStatus::ALL {
            i.connections.add(0, &[label("status", s.as_str())]);
        }
        for r in AuthFailure::ALL {
            i.auth_failures.add(0, &[label("reason", r.as_str())]);
        }
        for t in MessageType::ALL {
            i.messages_sent.add(0, &[label("message_type", t.as_str())]);
        }
        for e in ErrorType::ALL {
            i.errors.add(0, &[label("error_type", e.as_str())]);
        }
        for l in RateLimit::ALL {
            i.rate_limited.add(0, &[label("limit", l.as_str())]);
        }
        for k in TopicKind::ALL {
            i.registry_subscriptions
                .record(0, &[label("topic", k.as_str())]);
        }
        i.active_connections.add(0, &[]);
        i.messages_received.add(0, &[]);
        i.heartbeat_timeouts.add(0, &[]);
        i.slow_consumer_disconnects.add(0, &[]);
        i.appends.add(0, &[]);
        i.registry_sessions.record(0, &[]);
        self.set_positions(0, 0);
        for a in ActorKind::ALL {
            i.actor_restarts.add(0, &[label("actor", a.as_str())]);
        }
        for r in StopReason::ALL {
            i.sessions_stopped.add(0, &[label("reason", r.as_str())]);
        }
        i.sessions_started.add(0, &[]);
        i.projection_lag_seconds.record(0.0, &[]);
        i.ready.record(0, &[]);
        i.build_info
            .record(1, &[label("version", env!("CARGO_PKG_VERSION"))]);
    }

    fn render(&self) -> String {
        let Some(registry) = &self.pipeline.registry else {
            return String::new();
        };
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&registry.gather(), &mut out) {
            tracing::error!("cannot encode the metrics: {e}");
            return String::new();
        }
        String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into())
    }

    // ---- WebSocket connections -----------------------------------------------------------

    /// One connection attempt ended as `status`.
    pub fn connection(&self, status: ConnectionStatus) {
        let i = &self.pipeline.instruments;
        i.connections.add(1, &[label("status", status.as_str())]);
    }

    /// A session opened: one more active connection.
    pub fn connection_opened(&self) {
        self.pipeline.instruments.active_connections.add(1, &[]);
    }

    /// A session that [`Metrics::connection_opened`] counted closed after `seconds`.
    pub fn connection_closed(&self, seconds: f64) {
        let i = &self.pipeline.instruments;
        i.active_connections.add(-1, &[]);
        i.connection_duration.record(seconds, &[]);
    }

    /// A token check failed for `reason`.
    pub fn auth_failure(&self, reason: AuthFailure) {
        let i = &self.pipeline.instruments;
        i.auth_failures.add(1, &[label("reason", reason.as_str())]);
    }

    /// A token check (successful or not) took `seconds`.
    pub fn auth_latency(&self, seconds: f64) {
        self.pipeline.instruments.auth_latency.record(seconds, &[]);
    }

    // ---- WebSocket messages --------------------------------------------------------------

    /// One message of `kind` was sent (queued for the socket).
    pub fn message_sent(&self, kind: MessageType) {
        let i = &self.pipeline.instruments;
        i.messages_sent
            .add(1, &[label("message_type", kind.as_str())]);
    }

    /// `n` messages of `kind` were sent, e.g. the updates of one catch-up.
    pub fn messages_sent(&self, kind: MessageType, n: u64) {
        let i = &self.pipeline.instruments;
        i.messages_sent
            .add(n, &[label("message_type", kind.as_str())]);
    }

    /// One message arrived from a client.
    pub fn message_received(&self) {
        self.pipeline.instruments.messages_received.add(1, &[]);
    }

    /// A session error of `kind` (answered with an error message or a close).
    pub fn error(&self, kind: ErrorType) {
        let i = &self.pipeline.instruments;
        i.errors.add(1, &[label("error_type", kind.as_str())]);
    }

    /// A session was closed for missing heartbeats.
    pub fn heartbeat_timeout(&self) {
        self.pipeline.instruments.heartbeat_timeouts.add(1, &[]);
    }

    /// A session was closed because its outbound queue overflowed.
    pub fn slow_consumer_disconnect(&self) {
        let i = &self.pipeline.instruments;
        i.slow_consumer_disconnects.add(1, &[]);
    }

    /// `limit` refused a connection or a message.
    pub fn rate_limited(&self, limit: RateLimit) {
        let i = &self.pipeline.instruments;
        i.rate_limited.add(1, &[label("limit", limit.as_str())]);
    }

    // ---- Registry ------------------------------------------------------------------------

    /// The registry knows `n` sessions now.
    pub fn set_registry_sessions(&self, n: u64) {
        self.pipeline.instruments.registry_sessions.record(n, &[]);
    }

    /// Sessions hold `n` subscriptions of topics of `kind` now.
    pub fn set_subscriptions(&self, kind: TopicKind, n: u64) {
        let i = &self.pipeline.instruments;
        i.registry_subscriptions
            .record(n, &[label("topic", kind.as_str())]);
    }

    /// One push went from its append to the last subscriber's queue in `seconds`.
    pub fn push_fanout(&self, seconds: f64) {
        self.pipeline.instruments.push_fanout.record(seconds, &[]);
    }

    // ---- Event store and projections -----------------------------------------------------

    /// An append of `events` events took `seconds` (`events` is 0 for a failed append).
    pub fn append(&self, events: u64, seconds: f64) {
        let i = &self.pipeline.instruments;
        i.appends.add(events, &[]);
        i.append_duration.record(seconds, &[]);
    }

    /// The store holds events up to `head`. Positions only grow: an older answer that
    /// arrives late (concurrent appends) does not lower the gauge.
    pub fn set_head_position(&self, head: u64) {
        self.update_positions(|p| p.head = p.head.max(head));
    }

    /// The read models have applied every event up to `position`; the store has it too.
    pub fn set_projection_position(&self, position: u64) {
        self.update_positions(|p| {
            p.projection = position;
            p.head = p.head.max(position);
        });
    }

    /// Sets both positions, and the lag between them, at once.
    pub fn set_positions(&self, projection: u64, head: u64) {
        self.update_positions(|p| {
            p.projection = projection;
            p.head = head.max(projection);
        });
    }

    /// The position the read models have applied, as last reported.
    pub fn projection_position(&self) -> u64 {
        self.positions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .projection
    }

    /// The oldest event the read models have not applied was recorded `seconds` ago (0 when
    /// they are caught up).
    pub fn set_projection_lag_seconds(&self, seconds: f64) {
        let i = &self.pipeline.instruments;
        i.projection_lag_seconds.record(seconds.max(0.0), &[]);
    }

    /// One group commit of the store: `appends` appends made durable together in `seconds`.
    pub fn group_commit(&self, appends: usize, seconds: f64) {
        let i = &self.pipeline.instruments;
        i.batch_size.record(appends as f64, &[]);
        i.fsync_duration.record(seconds, &[]);
    }

    // ---- Actors, HTTP, readiness ---------------------------------------------------------

    /// A session actor started.
    pub fn session_started(&self) {
        self.pipeline.instruments.sessions_started.add(1, &[]);
    }

    /// A session actor stopped for `reason`.
    pub fn session_stopped(&self, reason: StopReason) {
        let i = &self.pipeline.instruments;
        i.sessions_stopped
            .add(1, &[label("reason", reason.as_str())]);
    }

    /// An actor of kind `actor` started over after a failure.
    pub fn actor_restart(&self, actor: ActorKind) {
        let i = &self.pipeline.instruments;
        i.actor_restarts.add(1, &[label("actor", actor.as_str())]);
    }

    /// An HTTP request to `route` (its template, or [`labels::UNMATCHED_ROUTE`]) was answered
    /// with `status` after `seconds`.
    pub fn http_request(&self, route: &str, method: HttpMethod, status: u16, seconds: f64) {
        let i = &self.pipeline.instruments;
        let route = KeyValue::new("route", route.to_owned());
        let method = label("method", method.as_str());
        let class = label("status_class", StatusClass::of(status).as_str());
        i.http_duration
            .record(seconds, &[route.clone(), method.clone()]);
        i.http_requests.add(1, &[route, method, class]);
    }

    /// Whether the node is ready, as `GET /readyz` judges it.
    pub fn set_ready(&self, ready: bool) {
        self.pipeline
            .instruments
            .ready
            .record(u64::from(ready), &[]);
    }

    fn update_positions(&self, change: impl FnOnce(&mut Positions)) {
        let mut p = self
            .positions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        change(&mut p);
        let i = &self.pipeline.instruments;
        i.projection_position.record(p.projection, &[]);
        i.head_position.record(p.head, &[]);
        i.projection_lag
            .record(p.head.saturating_sub(p.projection), &[]);
    }
}

fn label(key: &'static str, value: &'static str) -> KeyValue {
    KeyValue::new(key, value)
}
