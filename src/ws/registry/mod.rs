//! The registry actor: knows every WebSocket session and enforces the limits.
//!
//! * Admission before the upgrade: connect attempts per IP (sliding window), the node's
//!   connection limit, and draining at shutdown.
//! * Registration after authentication: connections per user, and no revocation since the
//!   token's check (`controls.rs`).
//! * Topic → sessions, with the position after which each session wants updates, so that a
//!   snapshot at position P is followed by exactly the updates after P; and, for `queue`, the
//!   statuses the session's window shows, so that it hears only of the cases that had or have
//!   one of them. A session's subscribes and unsubscribes are answered one at a time, in order.
//! * Fan-out: each update from the projector is serialized and framed once, and the same frame
//!   is queued straight into every subscriber's outbound queue (not through the session actor),
//!   in position order, then written a chunk of sockets at a time (`FlushPushes`); a full
//!   queue closes the session as a slow consumer (1013). Everything else the registry sends a
//!   session (answers, snapshots) takes the same road, so that it keeps its order with the
//!   pushes. Recent updates are kept for resumes with `since`.
//! * Heartbeats: a tick every interval tells each session to ping and to check its silence.
//! * Once many sessions have ended, the memory they freed is given back to the system
//!   (`crate::memory`).
//! * Revocations, disabled users, kicks and shutdown close the sessions concerned at once
//!   (the operators' messages are in `operators.rs`).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web::web::Bytes;
use bytestring::ByteString;
use events::Timestamp;
use projections::Topic;
use uuid::Uuid;

mod controls;
mod operators;
mod resume;
mod subscriptions;

pub use controls::{closes, RecentControls, MAX_RECENT_CONTROLS};
pub use operators::{Drain, GetLimits, Kick, LimitsInfo, ListSessions, SessionInfo};
pub use resume::{HeldStep, ResumeAttach, ResumeEnded, ResumeHeld};
pub use subscriptions::{SubscribeTopics, UnsubscribeTopics};

use super::outbound::{OutboundQueue, Overflow};
use super::recent::Recent;
use super::session::{CloseSession, Heartbeat, SlowConsumer, WsSession};
use super::snapshots::{Builder, SnapshotCache};
use crate::auth::{Principal, RetryAfter, SlidingWindow};
use crate::memory::ReleasePolicy;
use crate::metrics::{actor_handled, metrics, ActorKind, MessageType, MeteredAddr, TopicKind};
use crate::projector::{Projector, Published, Subscribe as ProjectorSubscribe};
use subscriptions::{Pending, Sub, TopicRequest};

/// Freed memory is given back once at least this many sessions, and seven eighths of the most
/// open since the last time, have ended.
const RELEASE_AFTER_SESSIONS: usize = 256;

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
    /// The session's outbound queue: pushes go straight into it.
    queue: OutboundQueue,
    /// Its queue overflowed: the session is being closed, nothing more is queued.
    slow: bool,
    principal: Principal,
    ip: IpAddr,
    connected_at: Timestamp,
    last_seen_at: Timestamp,
    topics: BTreeSet<Topic>,
    /// A subscribe is waiting for its snapshots: the session's next requests wait behind it.
    busy: bool,
    waiting: VecDeque<TopicRequest>,
}

pub struct Registry {
    limits: Limits,
    projector: MeteredAddr<Projector>,
    sessions: HashMap<Uuid, Entry>,
    per_user: HashMap<Uuid, usize>,
    /// Per topic: the sessions and what each wants.
    topics: HashMap<Topic, HashMap<Uuid, Sub>>,
    connects: SlidingWindow,
    recent: Recent,
    /// Snapshots being built and the finished ones of the newest position.
    snapshots: SnapshotCache,
    builder: Builder,
    /// Per session, its subscribe waiting for snapshots (one at most).
    pending: HashMap<Uuid, Pending>,
    position: u64,
    draining: bool,
    /// Controls handled lately: registrations checked before one of them are refused.
    controls: RecentControls,
    /// Answered when the last session is gone after a drain.
    drained: Vec<tokio::sync::oneshot::Sender<()>>,
    /// Where resumes older than `recent` are read from (`resume.rs`).
    store: Option<std::sync::Arc<dyn events::EventStore>>,
    /// Sessions catching up from the log, and the pushes held for each meanwhile.
    catching_up: HashMap<Uuid, super::catchup::held::Held>,
    /// When to give freed memory back, as sessions end.
    release: ReleasePolicy,
    /// Queues holding pushes not yet written, oldest first, and whether a [`FlushPushes`] is on
    /// its way.
    unflushed: VecDeque<OutboundQueue>,
    flush_sent: bool,
}

impl Entry {
    /// Queues with `push`, unless the session overflowed already; on an overflow, has the
    /// session closed as a slow consumer (1013). False if nothing was queued.
    fn queue_with(&mut self, push: impl FnOnce(&OutboundQueue) -> Result<(), Overflow>) -> bool {
        if self.slow {
            return false;
        }
        if push(&self.queue).is_err() {
            self.slow = true;
            self.addr.do_send(SlowConsumer);
            return false;
        }
        true
    }

    /// Queues a fan-out's frame without writing it, as [`Entry::queue_with`] does otherwise; a
    /// queue that now owes a flush is added to `unflushed`.
    fn defer(&mut self, frame: &Bytes, unflushed: &mut VecDeque<OutboundQueue>) -> bool {
        let mut first = false;
        let queued = self.queue_with(|q| {
            first = q.encoded_deferred(frame.clone())?;
            Ok(())
        });
        if first {
            unflushed.push_back(self.queue.clone());
        }
        queued
    }

    /// Queues messages in order, each counted by its kind.
    fn deliver(&mut self, out: Vec<Out>) {
        for (text, kind) in out {
            if !self.queue_with(|q| q.text(text)) {
                return;
            }
            metrics().message_sent(kind);
        }
    }
}

impl Registry {
    /// Queues messages for a session (see [`Entry::deliver`]).
    fn deliver(&mut self, id: Uuid, out: Vec<Out>) {
        if let Some(entry) = self.sessions.get_mut(&id) {
            entry.deliver(out);
        }
    }

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
            snapshots: SnapshotCache::default(),
            builder: Builder::per_core(),
            pending: HashMap::new(),
            position: head,
            draining: false,
            controls: RecentControls::new(head, MAX_RECENT_CONTROLS),
            drained: Vec::new(),
            store: None,
            catching_up: HashMap::new(),
            release: ReleasePolicy::new(RELEASE_AFTER_SESSIONS),
            unflushed: VecDeque::new(),
            flush_sent: false,
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
        self.pending.remove(&id);
        self.catching_up.remove(&id);
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
#[rtype(result = "Result<u64, NotRegistered>")]
pub struct Register {
    pub id: Uuid,
    pub addr: MeteredAddr<WsSession>,
    pub queue: OutboundQueue,
    pub principal: Principal,
    pub ip: IpAddr,
}

/// Why a session was not registered.
#[derive(Debug, PartialEq, Eq)]
pub enum NotRegistered {
    TooManyConnections,
    /// A revocation (or a disabling, a credentials change) after the token's check: close
    /// with this code and reason.
    Ended(u16, &'static str),
}

impl Handler<Register> for Registry {
    type Result = Result<u64, NotRegistered>;

    fn handle(&mut self, msg: Register, _: &mut Context<Self>) -> Self::Result {
        if let Some((code, reason)) = self.controls.refusal(&msg.principal) {
            return Err(NotRegistered::Ended(code, reason));
        }
        let user = msg.principal.user_id;
        let count = self.per_user.get(&user).copied().unwrap_or(0);
        if count >= self.limits.max_connections_per_user {
            return Err(NotRegistered::TooManyConnections);
        }
        if self.draining || self.sessions.len() >= self.limits.max_connections {
            return Err(NotRegistered::TooManyConnections);
        }
        *self.per_user.entry(user).or_default() += 1;
        let now = Timestamp::now();
        self.sessions.insert(
            msg.id,
            Entry {
                addr: msg.addr,
                queue: msg.queue,
                slow: false,
                principal: msg.principal,
                ip: msg.ip,
                connected_at: now,
                last_seen_at: now,
                topics: BTreeSet::new(),
                busy: false,
                waiting: VecDeque::new(),
            },
        );
        // Only the high-water mark moves while sessions arrive.
        let _ = self.release.changed(self.sessions.len());
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
        if self.release.changed(self.sessions.len()) {
            tokio::task::spawn_blocking(crate::memory::release_freed);
        }
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
        // The renewed token was checked at some position too: a revocation since ends it.
        if let Some((code, reason)) = self.controls.refusal(&msg.principal) {
            return self.close(msg.id, code, reason);
        }
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

// ---- fan-out ------------------------------------------------------------------------------

crate::metered_actor!(Registry);

impl Handler<Published> for Registry {
    type Result = ();

    fn handle(&mut self, msg: Published, ctx: &mut Context<Self>) {
        actor_handled(ActorKind::Registry);
        let started = Instant::now();
        self.position = self.position.max(msg.position);
        let mut overflowed = Vec::new();
        let mut pushed = 0;
        for update in msg.updates.iter() {
            // Serialized and framed once; every subscriber gets the same bytes.
            let text = ByteString::from(update.to_json());
            let frame = super::frame::text(&text);
            if let Some(subs) = self.topics.get(&update.topic) {
                for (id, sub) in subs {
                    if update.position > sub.after && update.statuses.meets(sub.statuses) {
                        if let Some(held) = self.catching_up.get_mut(id) {
                            // Catching up from the log: sent at the hand-over (`resume.rs`).
                            if held
                                .hold(update.position, update.topic, text.clone())
                                .is_err()
                            {
                                overflowed.push(*id);
                            }
                        } else if let Some(entry) = self.sessions.get_mut(id) {
                            if entry.defer(&frame, &mut self.unflushed) {
                                pushed += 1;
                            }
                        }
                    }
                }
            }
            self.recent
                .push(update.position, update.topic, update.statuses, text);
        }
        metrics().messages_sent(MessageType::Update, pushed);
        // Written once the mailbox holds nothing older than the flush: updates that arrive
        // faster than they are written reach each socket several to a write.
        if !self.unflushed.is_empty() && !self.flush_sent {
            self.flush_sent = true;
            ctx.address().do_send(FlushPushes);
        }
        for id in overflowed {
            self.held_overflow(id);
        }
        if let Some(control) = msg.control {
            self.controls.push(msg.position, control);
            let doomed: Vec<(Uuid, u16, &'static str)> = self
                .sessions
                .iter()
                .filter_map(|(id, e)| {
                    closes(control, &e.principal).map(|(code, reason)| (*id, code, reason))
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

/// Writes the pushes queued since the last flush (see [`Entry::defer`]), [`FLUSH_CHUNK`] queues
/// at a time: between two chunks the next updates are queued, so when they come faster than
/// they are written, the sockets not yet written take them in the same write.
#[derive(Message)]
#[rtype(result = "()")]
struct FlushPushes;

const FLUSH_CHUNK: usize = 256;

impl Handler<FlushPushes> for Registry {
    type Result = ();

    fn handle(&mut self, _: FlushPushes, ctx: &mut Context<Self>) {
        let chunk = self.unflushed.len().min(FLUSH_CHUNK);
        for queue in self.unflushed.drain(..chunk) {
            queue.flush();
        }
        if self.unflushed.is_empty() {
            self.flush_sent = false;
        } else {
            ctx.address().do_send(FlushPushes);
        }
    }
}
