//! The registry actor: knows every WebSocket session and enforces the limits.
//!
//! * Admission before the upgrade: connect attempts per IP (sliding window), the node's
//!   connection limit, and draining at shutdown.
//! * Registration after authentication: connections per user.
//! * Topic → sessions, with the position after which each session wants updates, so that a
//!   snapshot at position P is followed by exactly the updates after P.
//! * Fan-out: each update from the projector is serialized once and the same bytes are handed to
//!   every subscriber, in position order; recent updates are kept for resumes with `since`.
//! * Heartbeats: a tick every interval tells each session to ping and to check its silence.
//! * Revocations, disabled users, kicks and shutdown close the sessions concerned at once
//!   (the operators' messages are in `operators.rs`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use actix::prelude::*;
use bytestring::ByteString;
use events::Timestamp;
use projections::{Projections, Topic};
use serde_json::Value;
use uuid::Uuid;

mod operators;

pub use operators::{Drain, GetLimits, Kick, LimitsInfo, ListSessions, SessionInfo};

use super::protocol;
use super::recent::Recent;
use super::session::{CloseSession, Deliver, Heartbeat, WsSession};
use crate::auth::{Principal, RetryAfter, SlidingWindow};
use crate::metrics::{actor_handled, metrics, ActorKind, MessageType, MeteredAddr, TopicKind};
use crate::projector::{
    Control, Projector, Published, Subscribe as ProjectorSubscribe, WithModels,
};

/// A message for a session and its kind (for the metrics).
type Out = (ByteString, MessageType);

/// The limits the registry enforces (from the settings).
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_connections: usize,
    pub max_connections_per_user: usize,
    pub connect_attempts_per_ip: u32,
    pub connect_window: Duration,
    pub heartbeat_interval: Duration,
    pub heartbeat_missed: u32,
}

struct Entry {
    addr: MeteredAddr<WsSession>,
    principal: Principal,
    ip: IpAddr,
    connected_at: Timestamp,
    last_seen_at: Timestamp,
    topics: Vec<Topic>,
}

pub struct Registry {
    limits: Limits,
    projector: MeteredAddr<Projector>,
    sessions: HashMap<Uuid, Entry>,
    per_user: HashMap<Uuid, usize>,
    /// Per topic: the sessions and the position after which each wants updates.
    topics: HashMap<Topic, HashMap<Uuid, u64>>,
    connects: SlidingWindow,
    recent: Recent,
    position: u64,
    draining: bool,
    /// Answered when the last session is gone after a drain.
    drained: Vec<tokio::sync::oneshot::Sender<()>>,
}

impl Registry {
    pub fn new(limits: Limits, projector: MeteredAddr<Projector>, head: u64) -> Self {
        let connects = SlidingWindow::new(limits.connect_attempts_per_ip, limits.connect_window);
        Registry {
            limits,
            projector,
            sessions: HashMap::new(),
            per_user: HashMap::new(),
            topics: HashMap::new(),
            connects,
            recent: Recent::new(200_000, 64 * 1024 * 1024, head),
            position: head,
            draining: false,
            drained: Vec::new(),
        }
    }

    fn close(&mut self, id: Uuid, code: u16, reason: &'static str) {
        if let Some(entry) = self.sessions.get(&id) {
            entry.addr.do_send(CloseSession {
                code,
                reason,
                send_error: code >= 4000,
            });
        }
    }

    fn remove(&mut self, id: Uuid) {
        let Some(entry) = self.sessions.remove(&id) else {
            return;
        };
        if let Some(n) = self.per_user.get_mut(&entry.principal.user_id) {
            *n -= 1;
            if *n == 0 {
                self.per_user.remove(&entry.principal.user_id);
            }
        }
        for topic in &entry.topics {
            self.unsubscribe_one(id, topic);
        }
        if self.sessions.is_empty() {
            for tx in self.drained.drain(..) {
                let _ = tx.send(());
            }
        }
        self.report();
    }

    fn unsubscribe_one(&mut self, id: Uuid, topic: &Topic) {
        if let Some(subs) = self.topics.get_mut(topic) {
            subs.remove(&id);
            if subs.is_empty() {
                self.topics.remove(topic);
            }
        }
    }

    fn report(&self) {
        let m = metrics();
        m.set_registry_sessions(self.sessions.len() as u64);
        let mut by_kind: HashMap<TopicKind, u64> = TopicKind::ALL.iter().map(|k| (*k, 0)).collect();
        for (topic, subs) in &self.topics {
            *by_kind.entry(kind(topic)).or_default() += subs.len() as u64;
        }
        for (k, n) in by_kind {
            m.set_subscriptions(k, n);
        }
    }

    /// Subscribes `id` to `topics` for the updates after `after`, sending first the recent
    /// updates after it that the registry has already fanned out.
    fn attach(&mut self, id: Uuid, topics: &[Topic], after: u64) -> Result<Vec<Out>, ()> {
        let backlog: Vec<Out> = match self.recent.since(after, |t| topics.contains(t)) {
            Some(entries) => entries
                .map(|(_, _, text)| (text.clone(), MessageType::Update))
                .collect(),
            None => return Err(()),
        };
        let Some(entry) = self.sessions.get_mut(&id) else {
            return Ok(Vec::new());
        };
        for topic in topics {
            if !entry.topics.contains(topic) {
                entry.topics.push(*topic);
            }
            self.topics.entry(*topic).or_default().insert(id, after);
        }
        self.report();
        Ok(backlog)
    }
}

fn kind(topic: &Topic) -> TopicKind {
    match topic {
        Topic::Queue => TopicKind::Queue,
        Topic::Stats => TopicKind::Stats,
        Topic::Case(_) => TopicKind::Case,
        Topic::Audit => TopicKind::Audit,
    }
}

impl Actor for Registry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.projector
            .do_send(ProjectorSubscribe(ctx.address().recipient()));
        let interval = self.limits.heartbeat_interval;
        let silence = interval * self.limits.heartbeat_missed;
        ctx.run_interval(interval, move |act, _| {
            // A session whose actor is gone without saying so (it cannot, if it panicked
            // before its `Drop` could reach us) is dropped here.
            let gone: Vec<Uuid> = act
                .sessions
                .iter()
                .filter(|(_, e)| !e.addr.connected())
                .map(|(id, _)| *id)
                .collect();
            for id in gone {
                act.remove(id);
            }
            for entry in act.sessions.values() {
                entry.addr.do_send(Heartbeat { silence });
            }
            act.connects.prune(Instant::now());
        });
        self.report();
    }
}

// ---- admission --------------------------------------------------------------------------

/// Asked before the upgrade: may this IP open a connection now?
#[derive(Message)]
#[rtype(result = "Result<(), Refusal>")]
pub struct Admit {
    pub ip: IpAddr,
}

#[derive(Debug)]
pub enum Refusal {
    RateLimited(RetryAfter),
    AtCapacity,
    Draining,
}

impl Handler<Admit> for Registry {
    type Result = Result<(), Refusal>;

    fn handle(&mut self, msg: Admit, _: &mut Context<Self>) -> Self::Result {
        if self.draining {
            return Err(Refusal::Draining);
        }
        self.connects
            .hit(&msg.ip.to_string(), Instant::now())
            .map_err(Refusal::RateLimited)?;
        if self.sessions.len() >= self.limits.max_connections {
            return Err(Refusal::AtCapacity);
        }
        Ok(())
    }
}

/// A session that authenticated. Answers the position its welcome shows.
#[derive(Message)]
#[rtype(result = "Result<u64, TooManyConnections>")]
pub struct Register {
    pub id: Uuid,
    pub addr: MeteredAddr<WsSession>,
    pub principal: Principal,
    pub ip: IpAddr,
}

#[derive(Debug)]
pub struct TooManyConnections;

impl Handler<Register> for Registry {
    type Result = Result<u64, TooManyConnections>;

    fn handle(&mut self, msg: Register, _: &mut Context<Self>) -> Self::Result {
        let user = msg.principal.user_id;
        let count = self.per_user.get(&user).copied().unwrap_or(0);
        if count >= self.limits.max_connections_per_user {
            return Err(TooManyConnections);
        }
        if self.draining || self.sessions.len() >= self.limits.max_connections {
            return Err(TooManyConnections);
        }
        *self.per_user.entry(user).or_default() += 1;
        let now = Timestamp::now();
        self.sessions.insert(
            msg.id,
            Entry {
                addr: msg.addr,
                principal: msg.principal,
                ip: msg.ip,
                connected_at: now,
                last_seen_at: now,
                topics: Vec::new(),
            },
        );
        self.report();
        Ok(self.position)
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Deregister {
    pub id: Uuid,
}

impl Handler<Deregister> for Registry {
    type Result = ();

    fn handle(&mut self, msg: Deregister, _: &mut Context<Self>) {
        self.remove(msg.id);
    }
}

/// A session renewed its token in band.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Reauthenticated {
    pub id: Uuid,
    pub principal: Principal,
}

impl Handler<Reauthenticated> for Registry {
    type Result = ();

    fn handle(&mut self, msg: Reauthenticated, _: &mut Context<Self>) {
        if let Some(entry) = self.sessions.get_mut(&msg.id) {
            entry.principal = msg.principal;
        }
    }
}

/// A session's last sign of life, reported at each heartbeat.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Seen {
    pub id: Uuid,
    pub at: Timestamp,
}

impl Handler<Seen> for Registry {
    type Result = ();

    fn handle(&mut self, msg: Seen, _: &mut Context<Self>) {
        if let Some(entry) = self.sessions.get_mut(&msg.id) {
            entry.last_seen_at = msg.at;
        }
    }
}

// ---- subscriptions and fan-out -------------------------------------------------------------

#[derive(Message)]
#[rtype(result = "()")]
pub struct SubscribeTopics {
    pub id: Uuid,
    pub request_id: Value,
    pub names: Vec<String>,
    pub topics: Vec<Topic>,
    pub since: Option<u64>,
}

impl Handler<SubscribeTopics> for Registry {
    type Result = ();

    fn handle(&mut self, msg: SubscribeTopics, ctx: &mut Context<Self>) {
        let Some(entry) = self.sessions.get(&msg.id) else {
            return;
        };
        let addr = entry.addr.clone();
        if let Some(since) = msg.since {
            if let Ok(backlog) = self.attach(msg.id, &msg.topics, since) {
                let mut out = vec![(
                    ByteString::from(protocol::subscribed(
                        &msg.request_id,
                        &msg.names,
                        self.position,
                    )),
                    MessageType::Subscribed,
                )];
                out.extend(backlog);
                addr.do_send(Deliver(out));
                return;
            }
            // Too far back for the recent updates: fall through to fresh snapshots.
        }
        let topics = msg.topics.clone();
        let snapshot = self.projector.send(WithModels::new(move |m: &Projections| {
            let texts: Vec<String> = topics.iter().map(|t| m.snapshot_json(t)).collect();
            (m.position(), texts)
        }));
        ctx.spawn(snapshot.into_actor(self).map(move |answer, act, _| {
            let Ok((position, snapshots)) = answer else {
                addr.do_send(CloseSession {
                    code: 1011,
                    reason: "internal_error",
                    send_error: true,
                });
                return;
            };
            let mut out = vec![(
                ByteString::from(protocol::subscribed(&msg.request_id, &msg.names, position)),
                MessageType::Subscribed,
            )];
            out.extend(
                snapshots
                    .into_iter()
                    .map(|s| (ByteString::from(s), MessageType::Snapshot)),
            );
            match act.attach(msg.id, &msg.topics, position) {
                Ok(backlog) => {
                    out.extend(backlog);
                    addr.do_send(Deliver(out));
                }
                Err(()) => addr.do_send(CloseSession {
                    code: 1011,
                    reason: "internal_error",
                    send_error: true,
                }),
            }
        }));
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct UnsubscribeTopics {
    pub id: Uuid,
    pub request_id: Value,
    pub names: Vec<String>,
    pub topics: Vec<Topic>,
}

impl Handler<UnsubscribeTopics> for Registry {
    type Result = ();

    fn handle(&mut self, msg: UnsubscribeTopics, _: &mut Context<Self>) {
        for topic in &msg.topics {
            self.unsubscribe_one(msg.id, topic);
        }
        if let Some(entry) = self.sessions.get_mut(&msg.id) {
            entry.topics.retain(|t| !msg.topics.contains(t));
            entry.addr.do_send(Deliver(vec![(
                ByteString::from(protocol::unsubscribed(&msg.request_id, &msg.names)),
                MessageType::Unsubscribed,
            )]));
        }
        self.report();
    }
}

crate::metered_actor!(Registry);

impl Handler<Published> for Registry {
    type Result = ();

    fn handle(&mut self, msg: Published, _: &mut Context<Self>) {
        actor_handled(ActorKind::Registry);
        let started = Instant::now();
        self.position = self.position.max(msg.position);
        for update in msg.updates.iter() {
            // Serialized once; every subscriber gets the same bytes.
            let text = ByteString::from(update.to_json());
            if let Some(subs) = self.topics.get(&update.topic) {
                for (id, after) in subs {
                    if update.position > *after {
                        if let Some(entry) = self.sessions.get(id) {
                            entry.addr.do_send(super::session::Push(text.clone()));
                        }
                    }
                }
            }
            self.recent.push(update.position, update.topic, text);
        }
        if let Some(control) = msg.control {
            let doomed: Vec<(Uuid, u16, &'static str)> = self
                .sessions
                .iter()
                .filter_map(|(id, e)| {
                    let p = &e.principal;
                    match control {
                        Control::TokenRevoked(jti) if p.jti == jti => {
                            Some((*id, 4401, "token_revoked"))
                        }
                        Control::FamilyRevoked(f) if p.family == f => {
                            Some((*id, 4401, "token_revoked"))
                        }
                        Control::UserDisabled(u) if p.user_id == u => {
                            Some((*id, 4403, "user_disabled"))
                        }
                        Control::UserTokensVoided(u) if p.user_id == u => {
                            Some((*id, 4401, "token_revoked"))
                        }
                        _ => None,
                    }
                })
                .collect();
            for (id, code, reason) in doomed {
                self.close(id, code, reason);
            }
        }
        // From the event's recording (just before its append) to the last subscriber's enqueue.
        let since_append = Timestamp::now().as_micros() - msg.recorded_at.as_micros();
        let since_append = (since_append.max(0) as f64 / 1e6).max(started.elapsed().as_secs_f64());
        metrics().push_fanout(since_append);
    }
}
