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
//! * Fan-out: each update from the projector is serialized once and the same bytes are handed to
//!   every subscriber, in position order; recent updates are kept for resumes with `since`.
//! * Heartbeats: a tick every interval tells each session to ping and to check its silence.
//! * Revocations, disabled users, kicks and shutdown close the sessions concerned at once
//!   (the operators' messages are in `operators.rs`).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use actix::prelude::*;
use bytestring::ByteString;
use events::Timestamp;
use projections::{Projections, QueueWindow, Statuses, Topic};
use serde_json::Value;
use uuid::Uuid;

mod controls;
mod operators;
mod resume;

pub use controls::{closes, RecentControls, MAX_RECENT_CONTROLS};
pub use operators::{Drain, GetLimits, Kick, LimitsInfo, ListSessions, SessionInfo};
pub use resume::{HeldStep, ResumeAttach, ResumeEnded, ResumeHeld};

use super::protocol;
use super::recent::Recent;
use super::session::{CloseSession, Deliver, Heartbeat, WsSession};
use crate::auth::{Principal, RetryAfter, SlidingWindow};
use crate::metrics::{
    actor_handled, metrics, ActorKind, ErrorType, MessageType, MeteredAddr, TopicKind,
};
use crate::projector::{Projector, Published, Subscribe as ProjectorSubscribe, WithModels};

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
    topics: BTreeSet<Topic>,
    /// A subscribe is waiting for its snapshots: the session's next requests wait behind it.
    busy: bool,
    waiting: VecDeque<TopicRequest>,
}

/// A subscribe or unsubscribe, answered in the order the session sent them.
enum TopicRequest {
    Subscribe(SubscribeTopics),
    Unsubscribe(UnsubscribeTopics),
}

/// Requests of one session that may wait behind a subscribe; more are refused.
const MAX_WAITING_REQUESTS: usize = 16;

/// One session's subscription to one topic.
#[derive(Clone, Copy, Debug)]
struct Sub {
    /// The position after which it wants updates.
    after: u64,
    /// The statuses it wants to hear of (`queue`); every status on other topics.
    statuses: Statuses,
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
            controls: RecentControls::new(head, MAX_RECENT_CONTROLS),
            drained: Vec::new(),
            store: None,
            catching_up: HashMap::new(),
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

    /// Subscribes `id` to `topics` for the updates after `after` (on `queue`, those of the
    /// window's statuses), sending first the recent updates after it that the registry has
    /// already fanned out.
    fn attach(
        &mut self,
        id: Uuid,
        topics: &[Topic],
        window: &QueueWindow,
        after: u64,
    ) -> Result<Vec<Out>, ()> {
        let wanted: HashMap<Topic, Statuses> = topics
            .iter()
            .map(|t| (*t, statuses_of(t, window)))
            .collect();
        let backlog: Vec<Out> = match self.recent.since(after, |t, statuses| {
            wanted.get(t).is_some_and(|w| w.meets(statuses))
        }) {
            Some(entries) => entries
                .map(|(_, _, _, text)| (text.clone(), MessageType::Update))
                .collect(),
            None => return Err(()),
        };
        let Some(entry) = self.sessions.get_mut(&id) else {
            return Ok(Vec::new());
        };
        for (topic, statuses) in wanted {
            entry.topics.insert(topic);
            let sub = Sub { after, statuses };
            self.topics.entry(topic).or_default().insert(id, sub);
        }
        self.report();
        Ok(backlog)
    }

    /// Takes a session's request now, or queues it behind the subscribe it is waiting for.
    fn request(&mut self, request: TopicRequest, ctx: &mut Context<Self>) {
        let id = match &request {
            TopicRequest::Subscribe(m) => m.id,
            TopicRequest::Unsubscribe(m) => m.id,
        };
        let Some(entry) = self.sessions.get_mut(&id) else {
            return;
        };
        if !entry.busy {
            return self.handle_request(request, ctx);
        }
        if entry.waiting.len() < MAX_WAITING_REQUESTS {
            entry.waiting.push_back(request);
            return;
        }
        let request_id = match &request {
            TopicRequest::Subscribe(m) => &m.request_id,
            TopicRequest::Unsubscribe(m) => &m.request_id,
        };
        let refusal = protocol::error(
            Some(request_id),
            "subscribe_rate",
            "too many subscribes and unsubscribes waiting; send fewer at a time",
        );
        entry.addr.do_send(Deliver(vec![(
            ByteString::from(refusal),
            MessageType::Error,
        )]));
    }

    fn handle_request(&mut self, request: TopicRequest, ctx: &mut Context<Self>) {
        match request {
            TopicRequest::Subscribe(m) => self.subscribe(m, ctx),
            TopicRequest::Unsubscribe(m) => self.unsubscribe(m),
        }
    }

    /// A session's subscribe is answered: take its next waiting request, if any.
    fn done(&mut self, id: Uuid, ctx: &mut Context<Self>) {
        let Some(entry) = self.sessions.get_mut(&id) else {
            return;
        };
        entry.busy = false;
        while let Some(entry) = self.sessions.get_mut(&id) {
            if entry.busy {
                break;
            }
            let Some(next) = entry.waiting.pop_front() else {
                break;
            };
            self.handle_request(next, ctx);
        }
    }

    fn subscribe(&mut self, msg: SubscribeTopics, ctx: &mut Context<Self>) {
        let Some(entry) = self.sessions.get_mut(&msg.id) else {
            return;
        };
        let addr = entry.addr.clone();
        let added = msg
            .topics
            .iter()
            .filter(|t| !entry.topics.contains(t))
            .count();
        if entry.topics.len() + added > protocol::MAX_TOPICS_PER_SESSION {
            metrics().error(ErrorType::TooManyTopics);
            let refusal = protocol::error(
                Some(&msg.request_id),
                "too_many_topics",
                &too_many_topics(entry.topics.len(), added),
            );
            addr.do_send(Deliver(vec![(
                ByteString::from(refusal),
                MessageType::Error,
            )]));
            return;
        }
        if let Some(since) = msg.since {
            let recent = if since <= self.position {
                self.attach(msg.id, &msg.topics, &msg.window, since)
            } else {
                Err(())
            };
            if let Ok(backlog) = recent {
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
            // Too far back for the recent updates, or ahead of them: from the log.
            return self.resume_from_log(msg, addr, ctx);
        }
        if let Some(entry) = self.sessions.get_mut(&msg.id) {
            entry.busy = true;
        }
        let topics = msg.topics.clone();
        let window = msg.window;
        let snapshot = self.projector.send(WithModels::new(move |m: &Projections| {
            let texts: Vec<String> = topics.iter().map(|t| m.snapshot_json(t, &window)).collect();
            (m.position(), texts)
        }));
        ctx.spawn(snapshot.into_actor(self).map(move |answer, act, ctx| {
            let id = msg.id;
            act.snapshots_ready(msg, answer.ok(), &addr);
            act.done(id, ctx);
        }));
    }

    /// Sends `subscribed`, the snapshots and the updates after them, and subscribes.
    fn snapshots_ready(
        &mut self,
        msg: SubscribeTopics,
        answer: Option<(u64, Vec<String>)>,
        addr: &MeteredAddr<WsSession>,
    ) {
        let internal_error = CloseSession {
            code: 1011,
            reason: "internal_error",
            send_error: true,
        };
        let Some((position, snapshots)) = answer else {
            return addr.do_send(internal_error);
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
        match self.attach(msg.id, &msg.topics, &msg.window, position) {
            Ok(backlog) => {
                out.extend(backlog);
                addr.do_send(Deliver(out));
            }
            Err(()) => addr.do_send(internal_error),
        }
    }

    fn unsubscribe(&mut self, msg: UnsubscribeTopics) {
        for topic in &msg.topics {
            self.unsubscribe_one(msg.id, topic);
        }
        if let Some(entry) = self.sessions.get_mut(&msg.id) {
            for topic in &msg.topics {
                entry.topics.remove(topic);
            }
            entry.addr.do_send(Deliver(vec![(
                ByteString::from(protocol::unsubscribed(&msg.request_id, &msg.names)),
                MessageType::Unsubscribed,
            )]));
        }
        self.report();
    }
}

/// What a subscription to `topic` hears of: on `queue`, the window's statuses.
fn statuses_of(topic: &Topic, window: &QueueWindow) -> Statuses {
    match topic {
        Topic::Queue => window.statuses,
        _ => Statuses::ALL,
    }
}

fn too_many_topics(held: usize, added: usize) -> String {
    format!(
        "a session holds at most {} topics: it holds {held}, and this subscribe adds {added}; \
         nothing was subscribed",
        protocol::MAX_TOPICS_PER_SESSION
    )
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
                principal: msg.principal,
                ip: msg.ip,
                connected_at: now,
                last_seen_at: now,
                topics: BTreeSet::new(),
                busy: false,
                waiting: VecDeque::new(),
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

// ---- subscriptions and fan-out -------------------------------------------------------------

#[derive(Message)]
#[rtype(result = "()")]
pub struct SubscribeTopics {
    pub id: Uuid,
    pub request_id: Value,
    /// The names as the client gave them, each topic once.
    pub names: Vec<String>,
    /// The topics of `names`, in the same order.
    pub topics: Vec<Topic>,
    pub since: Option<u64>,
    /// What the `queue` topic shows.
    pub window: QueueWindow,
}

impl Handler<SubscribeTopics> for Registry {
    type Result = ();

    fn handle(&mut self, msg: SubscribeTopics, ctx: &mut Context<Self>) {
        self.request(TopicRequest::Subscribe(msg), ctx);
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

    fn handle(&mut self, msg: UnsubscribeTopics, ctx: &mut Context<Self>) {
        self.request(TopicRequest::Unsubscribe(msg), ctx);
    }
}

crate::metered_actor!(Registry);

impl Handler<Published> for Registry {
    type Result = ();

    fn handle(&mut self, msg: Published, _: &mut Context<Self>) {
        actor_handled(ActorKind::Registry);
        let started = Instant::now();
        self.position = self.position.max(msg.position);
        let mut overflowed = Vec::new();
        for update in msg.updates.iter() {
            // Serialized once; every subscriber gets the same bytes.
            let text = ByteString::from(update.to_json());
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
                        } else if let Some(entry) = self.sessions.get(id) {
                            entry.addr.do_send(super::session::Push(text.clone()));
                        }
                    }
                }
            }
            self.recent
                .push(update.position, update.topic, update.statuses, text);
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
