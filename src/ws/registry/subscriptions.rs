//! The registry's subscriptions: subscribe and unsubscribe, answered one at a time per session
//! and in order; the 256-topic bound; resumes from the recent updates; and snapshots.
//!
//! A subscribe with a `since` older than the recent updates, or ahead of them, resumes from the
//! log (`resume.rs`). A subscribe without `since` takes a read view of the models from
//! the projector, at position P, and gets its snapshots from the [`SnapshotCache`]: ready, being
//! built for another session, or built now on the bounded pool (see `ws::snapshots`). Once all
//! are there, the session gets `subscribed` (P), the snapshots, then the updates after P that
//! were fanned out meanwhile, and is registered for the ones after those: exactly the updates
//! after P, each once, because the registry does all of it in one turn.

use actix::prelude::*;
use bytestring::ByteString;
use projections::{QueueWindow, ReadView, Statuses, Topic};
use serde_json::Value;
use std::collections::HashMap;
use uuid::Uuid;

use super::{Out, Registry};
use crate::metrics::{metrics, ErrorType, MessageType};
use crate::projector::TakeView;
use crate::ws::protocol;
use crate::ws::session::CloseSession;
use crate::ws::snapshots::{Built, Lookup, SnapshotKey};

/// A subscribe or unsubscribe, answered in the order the session sent them.
pub(super) enum TopicRequest {
    Subscribe(SubscribeTopics),
    Unsubscribe(UnsubscribeTopics),
}

/// Requests of one session that may wait behind a subscribe; more are refused.
const MAX_WAITING_REQUESTS: usize = 16;

/// One session's subscription to one topic.
#[derive(Clone, Copy, Debug)]
pub(super) struct Sub {
    /// The position after which it wants updates.
    pub(super) after: u64,
    /// The statuses it wants to hear of (`queue`); every status on other topics.
    pub(super) statuses: Statuses,
}

/// A subscribe waiting for its snapshots.
pub(super) struct Pending {
    msg: SubscribeTopics,
    /// The position of the view the snapshots show.
    position: u64,
    /// One per topic of `msg`, in its order, with the snapshot once it is there.
    slots: Vec<(SnapshotKey, Option<ByteString>)>,
}

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

impl Registry {
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
        entry.deliver(vec![(ByteString::from(refusal), MessageType::Error)]);
    }

    fn handle_request(&mut self, request: TopicRequest, ctx: &mut Context<Self>) {
        match request {
            TopicRequest::Subscribe(m) => self.subscribe(m, ctx),
            TopicRequest::Unsubscribe(m) => self.unsubscribe(m),
        }
    }

    /// A session's subscribe is answered: take its next waiting requests, up to the next one
    /// that waits for snapshots.
    pub(super) fn done(&mut self, id: Uuid, ctx: &mut Context<Self>) {
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
        let Some(entry) = self.sessions.get(&msg.id) else {
            return;
        };
        let addr = entry.addr.clone();
        let held = entry.topics.len();
        let added = msg
            .topics
            .iter()
            .filter(|t| !entry.topics.contains(t))
            .count();
        if held + added > protocol::MAX_TOPICS_PER_SESSION {
            metrics().error(ErrorType::TooManyTopics);
            let refusal = protocol::error(
                Some(&msg.request_id),
                "too_many_topics",
                &too_many_topics(held, added),
            );
            self.deliver(
                msg.id,
                vec![(ByteString::from(refusal), MessageType::Error)],
            );
            return;
        }
        if let Some(since) = msg.since {
            let recent = if since <= self.position {
                self.attach(msg.id, &msg.topics, &msg.window, since)
            } else {
                Err(())
            };
            if let Ok(backlog) = recent {
                let subscribed = protocol::subscribed(&msg.request_id, &msg.names, self.position);
                let mut out = vec![(ByteString::from(subscribed), MessageType::Subscribed)];
                out.extend(backlog);
                self.deliver(msg.id, out);
                return;
            }
            // Too far back for the recent updates, or ahead of them: from the log.
            return self.resume_from_log(msg, addr, ctx);
        }
        if let Some(entry) = self.sessions.get_mut(&msg.id) {
            entry.busy = true;
        }
        let view = self.projector.send(TakeView(msg.topics.clone()));
        ctx.spawn(view.into_actor(self).map(move |view, act, ctx| match view {
            Ok(view) => act.find_snapshots(msg, view, ctx),
            Err(_) => act.fail(msg.id, ctx),
        }));
    }

    /// Gets each snapshot of a subscribe from the cache, and builds those nobody builds yet.
    fn find_snapshots(&mut self, msg: SubscribeTopics, view: ReadView, ctx: &mut Context<Self>) {
        let id = msg.id;
        if !self.sessions.contains_key(&id) {
            return;
        }
        let position = view.position();
        let mut to_build = Vec::new();
        let slots = msg
            .topics
            .iter()
            .map(|topic| {
                let key = SnapshotKey::new(*topic, position, &msg.window);
                let bytes = match self.snapshots.lookup(key, id) {
                    Lookup::Ready(bytes) => Some(bytes),
                    Lookup::Building => None,
                    Lookup::Build => {
                        to_build.push(key);
                        None
                    }
                };
                (key, bytes)
            })
            .collect();
        self.pending.insert(
            id,
            Pending {
                msg,
                position,
                slots,
            },
        );
        if !to_build.is_empty() {
            let builder = self.builder.clone();
            let build = async move { builder.build(view, to_build).await };
            ctx.spawn(
                build
                    .into_actor(self)
                    .map(|built, act, ctx| act.snapshots_built(built, ctx)),
            );
        }
        self.finish_if_complete(id, ctx);
    }

    /// Hands the snapshots of a build to every subscribe waiting for them.
    fn snapshots_built(&mut self, (keys, result): Built, ctx: &mut Context<Self>) {
        match result {
            Ok(snapshots) => {
                for (key, bytes) in keys.iter().zip(snapshots) {
                    for waiter in self.snapshots.built(key, Some(&bytes)) {
                        let Some(pending) = self.pending.get_mut(&waiter) else {
                            continue;
                        };
                        for (k, slot) in &mut pending.slots {
                            if k == key {
                                *slot = Some(bytes.clone());
                            }
                        }
                        self.finish_if_complete(waiter, ctx);
                    }
                }
            }
            Err(why) => {
                tracing::error!("{why}");
                for key in &keys {
                    for waiter in self.snapshots.built(key, None) {
                        self.fail(waiter, ctx);
                    }
                }
            }
        }
    }

    /// Once every snapshot of a session's subscribe is there: sends `subscribed`, the
    /// snapshots and the updates after them, and subscribes.
    fn finish_if_complete(&mut self, id: Uuid, ctx: &mut Context<Self>) {
        let complete = self
            .pending
            .get(&id)
            .is_some_and(|p| p.slots.iter().all(|(_, bytes)| bytes.is_some()));
        let Some(Pending {
            msg,
            position,
            slots,
        }) = complete.then(|| self.pending.remove(&id)).flatten()
        else {
            return;
        };
        if !self.sessions.contains_key(&id) {
            return;
        }
        let subscribed = protocol::subscribed(&msg.request_id, &msg.names, position);
        let mut out = vec![(ByteString::from(subscribed), MessageType::Subscribed)];
        out.extend(
            slots
                .into_iter()
                .filter_map(|(_, bytes)| bytes.map(|b| (b, MessageType::Snapshot))),
        );
        match self.attach(id, &msg.topics, &msg.window, position) {
            Ok(backlog) => {
                out.extend(backlog);
                self.deliver(id, out);
                self.done(id, ctx);
            }
            Err(()) => self.fail(id, ctx),
        }
    }

    /// A subscribe cannot be answered (the projector or a build failed, or the updates since
    /// its snapshots are gone): the session is closed with 1011 and resumes elsewhere or later.
    fn fail(&mut self, id: Uuid, ctx: &mut Context<Self>) {
        self.pending.remove(&id);
        if let Some(entry) = self.sessions.get(&id) {
            entry.addr.do_send(CloseSession {
                code: 1011,
                reason: "internal_error",
                send_error: true,
            });
        }
        self.done(id, ctx);
    }

    /// Subscribes `id` to `topics` for the updates after `after` (on `queue`, those of the
    /// window's statuses), answering first the recent updates after it that the registry has
    /// already fanned out; `Err` if some of those are gone.
    pub(super) fn attach(
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

    fn unsubscribe(&mut self, msg: UnsubscribeTopics) {
        for topic in &msg.topics {
            self.unsubscribe_one(msg.id, topic);
        }
        if let Some(entry) = self.sessions.get_mut(&msg.id) {
            for topic in &msg.topics {
                entry.topics.remove(topic);
            }
            entry.deliver(vec![(
                ByteString::from(protocol::unsubscribed(&msg.request_id, &msg.names)),
                MessageType::Unsubscribed,
            )]);
        }
        self.report();
    }
}

/// What a subscription to `topic` hears of: on `queue`, the window's statuses.
pub(super) fn statuses_of(topic: &Topic, window: &QueueWindow) -> Statuses {
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
