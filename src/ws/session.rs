//! The session actor: one per WebSocket, created once the token checked out.
//!
//! It parses client messages (answering bad ones with an `error`, closing 4400 after a run of
//! them), limits their rate (token bucket, 4429), answers pings, renews its token in band,
//! closes when the token expires (4401), and writes its answers through its bounded outbound
//! queue (1013 when the client does not keep up). The registry pushes updates straight into
//! that queue, not through the actor, and tells it when the queue overflowed ([`SlowConsumer`]). Subscriptions live in the registry.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_ws::{AggregatedMessage, ProtocolError};
use bytestring::ByteString;
use events::domain::Role;
use events::Timestamp;
use projections::Topic;
use serde_json::Value;
use uuid::Uuid;

use super::outbound::{Frame, Outbound};
use super::protocol::{self, ClientMessage};
use super::registry::{
    Deregister, NotRegistered, Reauthenticated, Register, Registry, Seen, SubscribeTopics,
    UnsubscribeTopics,
};
use crate::auth::Principal;
use crate::http::authn::authenticate;
use crate::metrics::{
    actor_handled, metrics, ActorKind, AuthFailure, ConnectionStatus, ErrorType, MessageType,
    MeteredAddr, RateLimit, StopReason,
};
use crate::state::AppState;

/// What a session needs to know of the settings.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    pub heartbeat_interval: Duration,
    /// Silent intervals before a session is closed (`--heartbeat-missed`).
    pub heartbeat_missed: u32,
    pub message_rate: u32,
    pub message_burst: u32,
    pub max_bad_messages: u32,
    pub outbound_messages: usize,
    pub outbound_bytes: usize,
}

pub struct WsSession {
    id: Uuid,
    principal: Principal,
    ip: IpAddr,
    started: Instant,
    registry: MeteredAddr<Registry>,
    state: AppState,
    config: SessionConfig,
    out: Outbound,
    last_seen: Instant,
    bucket: TokenBucket,
    /// Subscribes, a bucket of their own: each may cost snapshots.
    subscribes: TokenBucket,
    bad_in_a_row: u32,
    expiry: Option<SpawnHandle>,
    registered: bool,
    closing: bool,
    /// The close code and reason the session ends with, once it is known.
    stop: (u16, StopReason),
    /// Every log line of the session carries its request id, session id and user id.
    span: tracing::Span,
}

impl WsSession {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        principal: Principal,
        ip: IpAddr,
        registry: MeteredAddr<Registry>,
        state: AppState,
        config: SessionConfig,
        out: Outbound,
        request_id: &str,
    ) -> Self {
        let bucket = TokenBucket::new(config.message_rate, config.message_burst);
        let id = Uuid::now_v7();
        let span = tracing::info_span!(
            "ws_session",
            request_id = %request_id,
            session_id = %id,
            user_id = %principal.user_id,
        );
        WsSession {
            id,
            principal,
            ip,
            started: Instant::now(),
            registry,
            state,
            config,
            out,
            last_seen: Instant::now(),
            bucket,
            subscribes: TokenBucket::new(protocol::SUBSCRIBE_RATE, protocol::SUBSCRIBE_BURST),
            bad_in_a_row: 0,
            expiry: None,
            registered: false,
            closing: false,
            stop: (1006, StopReason::ConnectionLost),
            span,
        }
    }

    /// Notes why the session ends (the first reason given counts).
    fn stopping_for(&mut self, code: u16, reason: StopReason) {
        if !self.closing {
            self.stop = (code, reason);
        }
    }

    /// Drops what is queued and closes 1013 at once: the client does not read.
    fn close_slow_consumer(&mut self, ctx: &mut Context<Self>) {
        metrics().slow_consumer_disconnect();
        self.stopping_for(1013, StopReason::SlowConsumer);
        self.closing = true;
        self.out.close_now(1013, "slow_consumer");
        ctx.stop();
    }

    fn send(&mut self, ctx: &mut Context<Self>, text: String, kind: MessageType) {
        self.send_shared(ctx, ByteString::from(text), kind);
    }

    fn send_shared(&mut self, ctx: &mut Context<Self>, text: ByteString, kind: MessageType) {
        if self.closing {
            return;
        }
        if self.out.text(text).is_err() {
            return self.close_slow_consumer(ctx);
        }
        metrics().message_sent(kind);
    }

    /// Sends an `error` (for 4xxx codes) and closes after what is queued.
    fn close(&mut self, ctx: &mut Context<Self>, code: u16, reason: &'static str, error: bool) {
        if self.closing {
            return;
        }
        self.stopping_for(code, StopReason::of_close(reason));
        if error {
            self.send(
                ctx,
                protocol::error(None, reason, &describe(reason)),
                MessageType::Error,
            );
            if self.closing {
                return;
            }
        }
        self.closing = true;
        self.out.close(code, reason);
        ctx.stop();
    }

    fn schedule_expiry(&mut self, ctx: &mut Context<Self>) {
        if let Some(handle) = self.expiry.take() {
            ctx.cancel_future(handle);
        }
        let left = self.principal.expires_at.as_micros() - Timestamp::now().as_micros();
        let left = Duration::from_micros(left.max(0) as u64);
        self.expiry = Some(ctx.run_later(left, |act, ctx| {
            metrics().auth_failure(AuthFailure::TokenExpired);
            act.close(ctx, 4401, "token_expired", true);
        }));
    }

    fn bad_message(
        &mut self,
        ctx: &mut Context<Self>,
        id: Option<&Value>,
        code: &str,
        kind: Option<ErrorType>,
        message: &str,
    ) {
        if let Some(kind) = kind {
            metrics().error(kind);
        }
        self.bad_in_a_row += 1;
        self.send(ctx, protocol::error(id, code, message), MessageType::Error);
        if self.bad_in_a_row >= self.config.max_bad_messages {
            metrics().error(ErrorType::ProtocolError);
            self.close(ctx, 4400, "protocol_error", true);
        }
    }

    fn on_text(&mut self, ctx: &mut Context<Self>, text: &str) {
        let message = match protocol::parse(text) {
            Ok(m) => m,
            Err(bad) => {
                return self.bad_message(
                    ctx,
                    bad.id.as_ref(),
                    "bad_message",
                    Some(ErrorType::BadMessage),
                    &bad.message,
                )
            }
        };
        match message {
            ClientMessage::Ping { id } => {
                self.bad_in_a_row = 0;
                self.send(ctx, protocol::pong(&id), MessageType::Pong);
            }
            ClientMessage::Subscribe {
                id,
                topics,
                since,
                queue,
            } => {
                let Some((names, parsed)) = self.check_topics(ctx, &id, topics) else {
                    return;
                };
                self.bad_in_a_row = 0;
                if !self.subscribes.take(Instant::now()) {
                    metrics().rate_limited(RateLimit::SubscribeRate);
                    let refusal = protocol::error(
                        Some(&id),
                        "subscribe_rate",
                        &format!(
                            "more than {} subscribes a second; send it again later",
                            protocol::SUBSCRIBE_RATE
                        ),
                    );
                    return self.send(ctx, refusal, MessageType::Error);
                }
                self.registry.do_send(SubscribeTopics {
                    id: self.id,
                    request_id: id,
                    names,
                    topics: parsed,
                    since,
                    window: queue,
                });
            }
            ClientMessage::Unsubscribe { id, topics } => {
                let Some((names, parsed)) = self.check_topics(ctx, &id, topics) else {
                    return;
                };
                self.bad_in_a_row = 0;
                self.registry.do_send(UnsubscribeTopics {
                    id: self.id,
                    request_id: id,
                    names,
                    topics: parsed,
                });
            }
            ClientMessage::Auth { id, token } => self.reauthenticate(ctx, id, token),
        }
    }

    /// Parses and authorizes topic names, and drops repeats (a topic named twice counts once):
    /// answers the names kept and their topics, or the error itself when one is refused.
    fn check_topics(
        &mut self,
        ctx: &mut Context<Self>,
        id: &Value,
        names: Vec<String>,
    ) -> Option<(Vec<String>, Vec<Topic>)> {
        let mut topics = Vec::with_capacity(names.len());
        let mut kept = Vec::with_capacity(names.len());
        let mut seen = HashSet::with_capacity(names.len());
        for name in names {
            match Topic::parse(&name) {
                Err(_) => {
                    self.bad_message(
                        ctx,
                        Some(id),
                        "unknown_topic",
                        Some(ErrorType::UnknownTopic),
                        &format!("no topic {name:?}"),
                    );
                    return None;
                }
                Ok(Topic::Audit)
                    if !self
                        .principal
                        .roles
                        .iter()
                        .any(|r| matches!(r, Role::Auditor | Role::Admin)) =>
                {
                    self.bad_message(
                        ctx,
                        Some(id),
                        "forbidden_topic",
                        Some(ErrorType::ForbiddenTopic),
                        "the audit topic is for auditors and admins",
                    );
                    return None;
                }
                Ok(t) if !seen.insert(t) => {}
                Ok(t) => {
                    topics.push(t);
                    kept.push(name);
                }
            }
        }
        Some((kept, topics))
    }

    fn reauthenticate(&mut self, ctx: &mut Context<Self>, id: Value, token: String) {
        let state = self.state.clone();
        let fut = async move { authenticate(&state, &token).await };
        ctx.wait(
            fut.into_actor(self)
                .map(move |result, act, ctx| match result {
                    Ok(p) if p.user_id == act.principal.user_id => {
                        act.bad_in_a_row = 0;
                        act.principal = p.clone();
                        act.schedule_expiry(ctx);
                        act.registry.do_send(Reauthenticated {
                            id: act.id,
                            principal: p,
                        });
                        let answer = protocol::authenticated(&id, act.principal.expires_at);
                        act.send(ctx, answer, MessageType::Authenticated);
                    }
                    Ok(_) => act.bad_message(
                        ctx,
                        Some(&id),
                        "user_mismatch",
                        Some(ErrorType::BadMessage),
                        "the token belongs to another user",
                    ),
                    Err(e) => {
                        if let Some(reason) = auth_failure(e.code) {
                            metrics().auth_failure(reason);
                        }
                        act.bad_message(ctx, Some(&id), e.code, None, &e.detail);
                    }
                }),
        );
    }
}

/// The metrics label of a protocol reason code, if it is one.
pub fn auth_failure(code: &str) -> Option<AuthFailure> {
    AuthFailure::ALL
        .iter()
        .copied()
        .find(|r| r.as_str() == code)
}

/// The human text of a close reason.
fn describe(reason: &str) -> String {
    match reason {
        "token_expired" => "the access token expired; reconnect with a new one".into(),
        "token_revoked" => "the access token was revoked".into(),
        "user_disabled" => "the user was disabled".into(),
        "kicked" => "an operator closed this session".into(),
        "heartbeat_timeout" => "no sign of life within the heartbeat window".into(),
        "message_rate" => "too many messages".into(),
        "too_many_connections" => "too many open sessions for this user".into(),
        "protocol_error" => "too many malformed messages, or a binary frame".into(),
        "frame_too_big" => "a frame or message over the size limit".into(),
        other => other.replace('_', " "),
    }
}

impl Actor for WsSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        metrics().session_started();
        ctx.set_mailbox_capacity(self.config.outbound_messages.max(16));
        let register = self.registry.send(Register {
            id: self.id,
            addr: MeteredAddr::new(ctx.address(), ActorKind::Session),
            queue: self.out.queue(),
            principal: self.principal.clone(),
            ip: self.ip,
        });
        ctx.wait(
            register
                .into_actor(self)
                .map(|answer, act, ctx| match answer {
                    Ok(Ok(position)) => {
                        act.registered = true;
                        metrics().connection(ConnectionStatus::Accepted);
                        metrics().connection_opened();
                        let p = &act.principal;
                        let welcome = protocol::welcome(
                            act.id,
                            p.user_id,
                            &p.username,
                            &p.roles,
                            act.config.heartbeat_interval.as_millis(),
                            position,
                            p.expires_at,
                        );
                        act.send(ctx, welcome, MessageType::Welcome);
                        act.schedule_expiry(ctx);
                    }
                    Ok(Err(NotRegistered::TooManyConnections)) => {
                        metrics().connection(ConnectionStatus::TooManyConnections);
                        metrics().rate_limited(RateLimit::ConnectionsPerUser);
                        act.close(ctx, 4429, "too_many_connections", true);
                    }
                    Ok(Err(NotRegistered::Ended(code, reason))) => {
                        if let Some(failure) = auth_failure(reason) {
                            metrics().auth_failure(failure);
                        }
                        metrics().connection(ConnectionStatus::AuthFailed);
                        act.close(ctx, code, reason, true);
                    }
                    Err(_) => act.close(ctx, 1011, "internal_error", true),
                }),
        );
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.deregister();
        if !self.closing {
            self.out.close(1000, "normal");
        }
        let (code, reason) = self.stop;
        metrics().session_stopped(reason);
        let seconds = self.started.elapsed().as_secs_f64();
        let _span = self.span.enter();
        if reason.is_limit() {
            tracing::warn!(code, reason = %reason, seconds, "WebSocket session closed for a limit");
        } else {
            tracing::info!(code, reason = %reason, seconds, "WebSocket session closed");
        }
    }
}

impl StreamHandler<Result<AggregatedMessage, ProtocolError>> for WsSession {
    fn handle(&mut self, item: Result<AggregatedMessage, ProtocolError>, ctx: &mut Context<Self>) {
        actor_handled(ActorKind::Session);
        if self.closing {
            return;
        }
        self.last_seen = Instant::now();
        match item {
            Ok(AggregatedMessage::Text(text)) => {
                metrics().message_received();
                if !self.bucket.take(Instant::now()) {
                    metrics().rate_limited(RateLimit::MessageRate);
                    return self.close(ctx, 4429, "message_rate", true);
                }
                self.on_text(ctx, &text);
            }
            Ok(AggregatedMessage::Binary(_)) => {
                metrics().error(ErrorType::ProtocolError);
                self.close(ctx, 4400, "protocol_error", true);
            }
            Ok(AggregatedMessage::Ping(payload)) => {
                if self.out.frame(Frame::Pong(payload)).is_err() {
                    self.close_slow_consumer(ctx);
                }
            }
            Ok(AggregatedMessage::Pong(_)) => {}
            Ok(AggregatedMessage::Close(_)) => {
                self.stopping_for(1000, StopReason::ClientClosed);
                self.closing = true;
                self.out.close(1000, "normal");
                ctx.stop();
            }
            Err(ProtocolError::Overflow) => {
                metrics().error(ErrorType::FrameTooBig);
                self.close(ctx, 1009, "frame_too_big", false);
            }
            Err(_) => {
                metrics().error(ErrorType::ProtocolError);
                self.close(ctx, 4400, "protocol_error", false);
            }
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl WsSession {
    /// Leaves the registry, once.
    fn deregister(&mut self) {
        if std::mem::take(&mut self.registered) {
            self.registry.do_send(Deregister { id: self.id });
            metrics().connection_closed(self.started.elapsed().as_secs_f64());
        }
    }
}

impl Drop for WsSession {
    /// Also when a handler panicked and `stopped` never ran: the registry must not keep a
    /// session that is gone.
    fn drop(&mut self) {
        self.deregister();
    }
}

crate::metered_actor!(WsSession);

/// The registry found the session's outbound queue full while pushing into it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SlowConsumer;

impl Handler<SlowConsumer> for WsSession {
    type Result = ();

    fn handle(&mut self, _: SlowConsumer, ctx: &mut Context<Self>) {
        if !self.closing {
            self.close_slow_consumer(ctx);
        }
    }
}

/// Several messages in order, each with its kind for the metrics (the registry queues its own
/// straight into the outbound queue; this is for a resume's error).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Deliver(pub Vec<(ByteString, MessageType)>);

impl Handler<Deliver> for WsSession {
    type Result = ();

    fn handle(&mut self, msg: Deliver, ctx: &mut Context<Self>) {
        for (text, kind) in msg.0 {
            self.send_shared(ctx, text, kind);
        }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseSession {
    pub code: u16,
    pub reason: &'static str,
    pub send_error: bool,
}

impl Handler<CloseSession> for WsSession {
    type Result = ();

    fn handle(&mut self, msg: CloseSession, ctx: &mut Context<Self>) {
        self.close(ctx, msg.code, msg.reason, msg.send_error);
    }
}

/// Messages of a resume from the log (see [`super::catchup`]), queued only while the outbound
/// queue has room for them: answers those it did not take, to be sent again once the writer has
/// drained some, or `Err` once the session is closing.
#[derive(Message)]
#[rtype(result = "Result<super::catchup::Untaken, ()>")]
pub struct CatchUpBatch(pub std::collections::VecDeque<(ByteString, MessageType)>);

impl Handler<CatchUpBatch> for WsSession {
    type Result = Result<super::catchup::Untaken, ()>;

    fn handle(&mut self, mut msg: CatchUpBatch, ctx: &mut Context<Self>) -> Self::Result {
        while let Some((text, _)) = msg.0.front() {
            if self.closing {
                return Err(());
            }
            if !self.out.has_room(1, text.len()) {
                break;
            }
            if let Some((text, kind)) = msg.0.pop_front() {
                self.send_shared(ctx, text, kind);
            }
        }
        if self.closing {
            return Err(());
        }
        Ok(super::catchup::Untaken {
            rest: msg.0,
            drained: self.out.drained(),
        })
    }
}

/// The registry's tick: ping, or close a session silent for too long.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Heartbeat {
    pub silence: Duration,
}

impl Handler<Heartbeat> for WsSession {
    type Result = ();

    fn handle(&mut self, msg: Heartbeat, ctx: &mut Context<Self>) {
        if self.last_seen.elapsed() >= msg.silence {
            metrics().heartbeat_timeout();
            return self.close(ctx, 4408, "heartbeat_timeout", true);
        }
        let seen = Timestamp::now().as_micros() - self.last_seen.elapsed().as_micros() as i64;
        self.registry.do_send(Seen {
            id: self.id,
            at: Timestamp::from_micros(seen),
        });
        if self.out.frame(Frame::Ping).is_err() {
            self.close_slow_consumer(ctx);
        }
    }
}

/// Inbound message rate: `rate` per second, bursts up to `burst`.
struct TokenBucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    at: Instant,
}

impl TokenBucket {
    fn new(rate: u32, burst: u32) -> Self {
        TokenBucket {
            tokens: f64::from(burst),
            rate: f64::from(rate),
            burst: f64::from(burst),
            at: Instant::now(),
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let refill = now.duration_since(self.at).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_a_burst_then_the_rate() {
        let start = Instant::now();
        let mut b = TokenBucket::new(2, 3);
        b.at = start;
        assert!((0..3).all(|_| b.take(start)));
        assert!(!b.take(start), "the burst is spent");
        assert!(
            b.take(start + Duration::from_millis(500)),
            "one token after 0.5 s at 2/s"
        );
        assert!(!b.take(start + Duration::from_millis(500)));
    }
}
