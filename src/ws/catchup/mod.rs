//! Resume from the log: a `subscribe` whose `since` is older than the registry's recent pushes
//! (or any `since` after a restart) is served from the event store, by one task per resuming
//! session, so that neither the registry nor the projector ever waits for it.
//!
//! The steps, each in order:
//! 1. `since` above the log's head answers `error` `bad_since` (nothing is subscribed); a `since`
//!    the projector has not applied yet is waited for.
//! 2. The registry subscribes the session to the topics and, from then on, *holds* every push
//!    for that session instead of sending it ([`held`]).
//! 3. The projector answers its position `upto` (at or after the registry's, so nothing between
//!    the two is lost) and fresh snapshots of `queue` and `stats`, the topics whose state is
//!    every case and cannot be rebuilt from a few streams (the protocol allows that for them).
//! 4. `audit` and `case:<id>` updates after `since` up to `upto` are read from the store in
//!    bounded batches, each event turned into the update a live push of it was
//!    ([`projections::ResumeFold`]), and queued into the session's outbound queue only while it
//!    has room: a slow client slows its own catch-up and nobody else's, and millions of events
//!    are never in memory at once.
//! 5. Hand-over: the task takes what the registry held, minus the pushes of the resumed topics
//!    at or before `upto`, and sends it like the log's updates, until nothing is held; the
//!    registry then sends the session's pushes directly again, after `upto` only. No gap (the
//!    log covers `since..=upto`, the held pushes everything after the subscription), no
//!    duplicate (the held pushes at or before `upto` are dropped).
//!
//! A session whose held pushes overflow ([`held::MAX_HELD_MESSAGES`]) is closed 1013
//! `slow_consumer` and resumes again; a store failure closes it 1011 `internal_error`.

pub mod held;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytestring::ByteString;
use events::{EventEnvelope, EventStore, StoreError, UndecodableEvent};
use projections::{QueueWindow, ResumeFold, Topic};
use serde_json::Value;
use tokio::sync::Notify;
use uuid::Uuid;

use super::protocol;
use super::registry::{HeldStep, Registry, ResumeAttach, ResumeEnded, ResumeHeld};
use super::session::{CatchUpBatch, CloseSession, Deliver, WsSession};
use super::snapshots::{Builder, SnapshotKey};
use crate::metrics::{MessageType, MeteredAddr};
use crate::projector::{Projector, TakeView, WaitForPosition};

/// A message for a session and its kind (for the metrics).
pub type Out = (ByteString, MessageType);

/// Events read from the store at a time.
const READ_BATCH: usize = 256;

/// How long a catch-up waits for its session's writer before it looks again (the writer
/// signals each frame it sends; this only bounds a missed signal).
const ROOM_WAIT: Duration = Duration::from_secs(1);

/// What a session did not take of a batch: its queue is half full. Send the rest once the
/// writer has sent something (`drained`).
pub struct Untaken {
    pub rest: VecDeque<Out>,
    pub drained: Arc<Notify>,
}

/// One session's resume from the log.
pub struct CatchUp {
    pub session: Uuid,
    pub addr: MeteredAddr<WsSession>,
    pub registry: MeteredAddr<Registry>,
    pub projector: MeteredAddr<Projector>,
    pub store: Arc<dyn EventStore>,
    pub request_id: Value,
    pub names: Vec<String>,
    pub topics: Vec<Topic>,
    pub window: QueueWindow,
    pub since: u64,
    /// The registry's snapshot builder: resumes share its bound on concurrent builds.
    pub builder: Builder,
}

enum Stop {
    /// The session or the registry is gone: nothing to do.
    Gone,
    BadSince {
        head: u64,
    },
    Failed(String),
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Self {
        Stop::Failed(e.to_string())
    }
}

impl From<UndecodableEvent> for Stop {
    fn from(e: UndecodableEvent) -> Self {
        Stop::Failed(e.to_string())
    }
}

impl CatchUp {
    /// Runs the resume to its end (see the module's documentation).
    pub async fn run(self) {
        match self.resume().await {
            Ok(()) | Err(Stop::Gone) => {}
            Err(Stop::BadSince { head }) => {
                let message = format!(
                    "since {} is above the head of the log, {head}: subscribe with a position \
                     this server has sent, or without since",
                    self.since
                );
                let error = protocol::error(Some(&self.request_id), "bad_since", &message);
                self.addr
                    .do_send(Deliver(vec![(ByteString::from(error), MessageType::Error)]));
                self.registry.do_send(ResumeEnded { id: self.session });
            }
            Err(Stop::Failed(why)) => {
                tracing::error!(session_id = %self.session, since = self.since, "resume from the log failed: {why}");
                self.addr.do_send(CloseSession {
                    code: 1011,
                    reason: "internal_error",
                    send_error: true,
                });
                self.registry.do_send(ResumeEnded { id: self.session });
            }
        }
    }

    async fn resume(&self) -> Result<(), Stop> {
        let head = self.store.head_position().await?;
        if self.since > head {
            return Err(Stop::BadSince { head });
        }
        // Appended but not applied yet: the snapshots and the hand-over must be past it.
        let applied = self.projector.send(WaitForPosition(self.since)).await;
        if !applied.unwrap_or(false) {
            return Err(Stop::Failed(format!(
                "the read models did not reach position {}",
                self.since
            )));
        }
        let attach = ResumeAttach {
            id: self.session,
            topics: self.topics.clone(),
            window: self.window,
        };
        if !self.registry.send(attach).await.unwrap_or(false) {
            return Err(Stop::Gone);
        }
        let (upto, snapshots) = self.snapshots().await?;
        let mut first = VecDeque::with_capacity(snapshots.len() + 1);
        let subscribed = protocol::subscribed(&self.request_id, &self.names, upto);
        first.push_back((ByteString::from(subscribed), MessageType::Subscribed));
        first.extend(
            snapshots
                .into_iter()
                .map(|s| (ByteString::from(s), MessageType::Snapshot)),
        );
        self.deliver(first).await?;
        self.send_log(upto).await?;
        self.hand_over(upto).await
    }

    /// The projector's position and the snapshots of the topics not served from the log, built
    /// off the projector from a read view, like every snapshot.
    async fn snapshots(&self) -> Result<(u64, Vec<String>), Stop> {
        let topics: Vec<Topic> = self
            .topics
            .iter()
            .filter(|t| !ResumeFold::serves(t))
            .copied()
            .collect();
        let view = self
            .projector
            .send(TakeView(topics.clone()))
            .await
            .map_err(|_| Stop::Failed("the projector is gone".into()))?;
        let position = view.position();
        let keys = topics
            .iter()
            .map(|t| SnapshotKey::new(*t, position, &self.window))
            .collect();
        let (_, built) = self.builder.build(view, keys).await;
        let texts = built.map_err(Stop::Failed)?;
        Ok((position, texts.into_iter().map(String::from).collect()))
    }

    /// Sends the updates of `audit` and `case:<id>` after `since` up to `upto`.
    async fn send_log(&self, upto: u64) -> Result<(), Stop> {
        if !self.topics.iter().any(ResumeFold::serves) {
            return Ok(());
        }
        let mut fold = ResumeFold::new(&self.topics);
        let later = self.seed_cases(&mut fold, upto).await?;
        if !fold.wants_every_event() {
            for chunk in later.chunks(READ_BATCH) {
                let out = chunk.iter().flat_map(|env| fold.apply(env)).map(encode);
                self.deliver(out.collect()).await?;
            }
            return Ok(());
        }
        let mut after = self.since;
        while after < upto {
            let limit = READ_BATCH.min((upto - after) as usize);
            let page = self.store.read_all(after, limit).await?;
            if page.is_empty() {
                return Err(Stop::Failed(format!(
                    "the log ends at {after}, before {upto}"
                )));
            }
            let mut out = VecDeque::new();
            for record in page {
                after = record.position;
                let env = EventEnvelope::decode(record)?;
                out.extend(fold.apply(&env).into_iter().map(encode));
            }
            self.deliver(out).await?;
        }
        Ok(())
    }

    /// Folds each wanted case's events up to `since` into `fold`; answers its events after
    /// `since` up to `upto`, in position order, unless the whole log is read anyway (`audit`).
    async fn seed_cases(
        &self,
        fold: &mut ResumeFold,
        upto: u64,
    ) -> Result<Vec<EventEnvelope>, Stop> {
        let mut later = Vec::new();
        let ids: Vec<Uuid> = fold.case_ids().collect();
        for id in ids {
            let stream = events::domain::case::stream_name(id);
            let mut from = 1;
            loop {
                let page = self.store.read_stream(&stream, from, READ_BATCH).await?;
                let full = page.len() == READ_BATCH;
                for record in page {
                    from = record.version + 1;
                    if record.position > upto {
                        continue;
                    }
                    let env = EventEnvelope::decode(record)?;
                    if env.position() <= self.since {
                        fold.seed(&env);
                    } else if !fold.wants_every_event() {
                        later.push(env);
                    }
                }
                if !full {
                    break;
                }
            }
        }
        later.sort_by_key(EventEnvelope::position);
        Ok(later)
    }

    /// Takes what the registry held for the session and sends it, until the registry sends the
    /// session's pushes itself again.
    async fn hand_over(&self, upto: u64) -> Result<(), Stop> {
        loop {
            let step = ResumeHeld {
                id: self.session,
                upto,
            };
            match self.registry.send(step).await {
                Ok(HeldStep::Held(batch)) => self.deliver(batch).await?,
                Ok(HeldStep::Live) => return Ok(()),
                Ok(HeldStep::Gone) | Err(_) => return Err(Stop::Gone),
            }
        }
    }

    /// Queues `batch` into the session's outbound queue, waiting for room when it is half full.
    async fn deliver(&self, mut batch: VecDeque<Out>) -> Result<(), Stop> {
        while !batch.is_empty() {
            let untaken = match self.addr.send(CatchUpBatch(batch)).await {
                Ok(Ok(untaken)) => untaken,
                Ok(Err(())) | Err(_) => return Err(Stop::Gone),
            };
            batch = untaken.rest;
            if !batch.is_empty() {
                let _ = tokio::time::timeout(ROOM_WAIT, untaken.drained.notified()).await;
            }
        }
        Ok(())
    }
}

fn encode(update: projections::Update) -> Out {
    (ByteString::from(update.to_json()), MessageType::Update)
}
