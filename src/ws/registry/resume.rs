//! The registry's side of a resume from the log (see [`crate::ws::catchup`]): it starts the
//! catch-up task, holds the session's pushes while it runs, and hands them over.

use std::collections::VecDeque;
use std::sync::Arc;

use actix::prelude::*;
use events::EventStore;
use projections::{QueueWindow, Topic};
use uuid::Uuid;

use super::subscriptions::{statuses_of, Sub, SubscribeTopics};
use super::Registry;
use crate::metrics::{metrics, ActorKind, MeteredAddr};
use crate::ws::catchup::held::Held;
use crate::ws::catchup::{CatchUp, Out};
use crate::ws::recent::Recent;
use crate::ws::session::{CloseSession, WsSession};

/// The bytes of recent pushes kept for resumes with `since`, at most.
const RECENT_BYTES: usize = 64 * 1024 * 1024;

impl Registry {
    /// Serves resumes too old for the recent pushes from `store`; keeps `recent_updates` recent
    /// pushes (`--resume-buffer-updates`).
    pub fn with_log(mut self, store: Arc<dyn EventStore>, recent_updates: usize) -> Self {
        self.store = Some(store);
        self.recent = Recent::new(recent_updates, RECENT_BYTES, self.position);
        self
    }

    /// Starts a resume from the log: the session's next requests wait until it has joined the
    /// live stream.
    pub(super) fn resume_from_log(
        &mut self,
        msg: SubscribeTopics,
        addr: MeteredAddr<WsSession>,
        ctx: &mut Context<Self>,
    ) {
        let (Some(store), Some(entry)) = (self.store.clone(), self.sessions.get_mut(&msg.id))
        else {
            return addr.do_send(CloseSession {
                code: 1011,
                reason: "internal_error",
                send_error: true,
            });
        };
        entry.busy = true;
        let Some(since) = msg.since else {
            return;
        };
        let task = CatchUp {
            session: msg.id,
            addr,
            registry: MeteredAddr::new(ctx.address(), ActorKind::Registry),
            projector: self.projector.clone(),
            store,
            request_id: msg.request_id,
            names: msg.names,
            topics: msg.topics,
            window: msg.window,
            since,
            builder: self.builder.clone(),
        };
        actix_web::rt::spawn(task.run());
    }

    /// A catching-up session whose held pushes overflowed: it cannot join the live stream, and
    /// is closed to resume again from where it got to.
    pub(super) fn held_overflow(&mut self, id: Uuid) {
        if self.catching_up.remove(&id).is_some() {
            metrics().slow_consumer_disconnect();
            self.close(id, 1013, "slow_consumer");
        }
    }
}

/// Subscribes a resuming session and starts holding its pushes; false if it is gone.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct ResumeAttach {
    pub id: Uuid,
    pub topics: Vec<Topic>,
    pub window: QueueWindow,
}

impl Handler<ResumeAttach> for Registry {
    type Result = bool;

    fn handle(&mut self, msg: ResumeAttach, _: &mut Context<Self>) -> bool {
        let Some(entry) = self.sessions.get_mut(&msg.id) else {
            return false;
        };
        for topic in &msg.topics {
            entry.topics.insert(*topic);
            let sub = Sub {
                after: self.position,
                statuses: statuses_of(topic, &msg.window),
            };
            self.topics.entry(*topic).or_default().insert(msg.id, sub);
        }
        self.catching_up
            .insert(msg.id, Held::new(msg.topics.iter().copied()));
        self.report();
        true
    }
}

/// The catch-up has sent the log up to `upto`: answers the pushes held since, or that the session
/// is live again.
#[derive(Message)]
#[rtype(result = "HeldStep")]
pub struct ResumeHeld {
    pub id: Uuid,
    pub upto: u64,
}

pub enum HeldStep {
    /// Send these, then ask again.
    Held(VecDeque<Out>),
    /// Nothing was held: the registry sends the session's pushes after `upto` itself from now on.
    Live,
    /// The session is gone or was closed.
    Gone,
}

impl Handler<ResumeHeld> for Registry {
    type Result = MessageResult<ResumeHeld>;

    fn handle(&mut self, msg: ResumeHeld, ctx: &mut Context<Self>) -> Self::Result {
        let Some(held) = self.catching_up.get_mut(&msg.id) else {
            return MessageResult(HeldStep::Gone);
        };
        let batch = held.take(msg.upto);
        if !batch.is_empty() {
            return MessageResult(HeldStep::Held(batch));
        }
        let resumed: Vec<Topic> = held.resumed().copied().collect();
        self.catching_up.remove(&msg.id);
        for topic in resumed {
            if let Some(sub) = self.topics.get_mut(&topic).and_then(|s| s.get_mut(&msg.id)) {
                sub.after = sub.after.max(msg.upto);
            }
        }
        self.done(msg.id, ctx);
        MessageResult(HeldStep::Live)
    }
}

/// A resume ended without joining the live stream (`bad_since`, or a failure that closes the
/// session): the session's next requests go ahead.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ResumeEnded {
    pub id: Uuid,
}

impl Handler<ResumeEnded> for Registry {
    type Result = ();

    fn handle(&mut self, msg: ResumeEnded, ctx: &mut Context<Self>) {
        self.catching_up.remove(&msg.id);
        self.done(msg.id, ctx);
    }
}
