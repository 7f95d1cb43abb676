//! The projector actor.
//!
//! It owns the read models; nothing else mutates them. Events arrive from a store subscription
//! opened at the models' checkpoint, so none is skipped and none is applied twice (the models
//! also ignore any event at or before their checkpoint). Queries are closures run against the
//! models inside the actor ([`WithModels`]): they never wait for I/O, and are small (no
//! WebSocket snapshot is built here: [`TakeView`] hands out a read view that costs a few
//! reference counts, and the snapshot is serialized elsewhere). If the store fails, the
//! projector reports itself unhealthy and resubscribes from its checkpoint with exponential
//! backoff. An event this build cannot decode is different: retrying cannot help and skipping it
//! would serve models that silently miss it, so the projector *stalls* there: it stops applying,
//! reports the event (position, stream, type) in its [`Status`], answers every wait beyond it with
//! `false`, and stays not ready until the server is restarted with a build that reads it.
//!
//! Snapshots are encoded inside the actor (the models must not change while they are read) and
//! written to disk on a blocking thread, at most one at a time. On a timer it forgets the
//! revocations of tokens that have expired (`prune_interval`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use events::hash::Hash;
use events::{EventEnvelope, EventStore, RecordedEvent, StoreError, UndecodableEvent};
use projections::{Projections, ReadView, Topic, Update};

use super::snapshot_file::{self, Snapshot, SnapshotFile};
use crate::metrics::{actor_handled, metrics, ActorKind, Ticket};

/// Updates caused by one event, shared by every recipient.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Published {
    pub position: u64,
    pub updates: Arc<Vec<Update>>,
    /// What the event means for open sessions, if anything.
    pub control: Option<Control>,
    /// When the event was recorded (just before its append): the start of the push latency.
    pub recorded_at: events::Timestamp,
    /// Counts this message in the registry's mailbox backlog until it is handled (each copy
    /// is one more).
    pub waiting: Ticket,
}

/// Events that end sessions: their tokens stop being valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    TokenRevoked(uuid::Uuid),
    FamilyRevoked(uuid::Uuid),
    UserDisabled(uuid::Uuid),
    /// A new password or new roles: every token of an older credential version is void.
    UserTokensVoided(uuid::Uuid),
}

fn control_of(env: &EventEnvelope) -> Option<Control> {
    use events::domain::revocation::RevocationEvent;
    use events::domain::user::UserEvent;
    use events::domain::DomainEvent;
    match &env.event {
        DomainEvent::Revocation(RevocationEvent::TokenRevoked(e)) => {
            Some(Control::TokenRevoked(e.jti))
        }
        DomainEvent::Revocation(RevocationEvent::FamilyRevoked(e)) => {
            Some(Control::FamilyRevoked(e.family_id))
        }
        DomainEvent::User(UserEvent::Disabled(_)) => {
            projections::streams::user_id_of(env).map(Control::UserDisabled)
        }
        DomainEvent::User(UserEvent::PasswordChanged(_) | UserEvent::RolesChanged(_)) => {
            projections::streams::user_id_of(env).map(Control::UserTokensVoided)
        }
        _ => None,
    }
}

/// Adds a recipient of every future [`Published`].
#[derive(Message)]
#[rtype(result = "()")]
pub struct Subscribe(pub Recipient<Published>);

/// Answers a read view of the models as they stand (for snapshots of these topics): a few
/// reference counts, never a copy of the models nor their JSON, so that snapshots are built
/// elsewhere and never hold up the events or the token checks this actor serves.
#[derive(Message)]
#[rtype(result = "ReadView")]
pub struct TakeView(pub Vec<Topic>);

/// Runs a query against the models and answers its result.
pub struct WithModels<R>(pub Box<dyn FnOnce(&Projections) -> R + Send>);

impl<R: Send + 'static> WithModels<R> {
    pub fn new(f: impl FnOnce(&Projections) -> R + Send + 'static) -> Self {
        WithModels(Box::new(f))
    }
}

impl<R: 'static> Message for WithModels<R> {
    type Result = R;
}

#[derive(Message)]
#[rtype(result = "ProjectorStatus")]
pub struct Status;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectorStatus {
    /// The last applied position.
    pub position: u64,
    /// False while the subscription is failing, and once stalled.
    pub healthy: bool,
    pub last_error: Option<String>,
    /// The event the projector stopped at for good, if it did: it cannot be decoded.
    pub stalled: Option<UndecodableEvent>,
}

/// Answers once the models have applied `position` (read-your-writes after an append).
/// Answers `false` at once if too many callers are waiting already.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct WaitForPosition(pub u64);

/// Callers of [`WaitForPosition`] waiting at most; more are refused rather than queued.
const MAX_WAITERS: usize = 10_000;

/// Saves a snapshot now (at shutdown); answers once it is on disk.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct SaveSnapshot;

#[derive(Clone, Debug)]
pub struct ProjectorConfig {
    /// Where snapshots go, and their key; `None` disables them.
    pub snapshot: Option<SnapshotFile>,
    /// Save after this many events…
    pub snapshot_every_events: u64,
    /// …or after this long, whichever comes first (if anything changed).
    pub snapshot_interval: Duration,
    /// How often revocations of tokens that have expired are forgotten.
    pub prune_interval: Duration,
    /// The clock skew allowed on a token's expiry (`--jwt-leeway`): a revocation is kept that
    /// much longer than its token's expiry.
    pub token_leeway: Duration,
}

impl Default for ProjectorConfig {
    fn default() -> Self {
        ProjectorConfig {
            snapshot: None,
            snapshot_every_events: 50_000,
            snapshot_interval: Duration::from_secs(30),
            prune_interval: Duration::from_secs(60),
            token_leeway: Duration::ZERO,
        }
    }
}

const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

pub struct Projector {
    store: Arc<dyn EventStore>,
    models: Projections,
    /// Hash of the event at the checkpoint: the anchor of the next snapshot.
    anchor: Hash,
    config: ProjectorConfig,
    recipients: Vec<Recipient<Published>>,
    subscription: Option<SpawnHandle>,
    healthy: bool,
    last_error: Option<String>,
    stalled: Option<UndecodableEvent>,
    backoff: Duration,
    snapshot_position: u64,
    snapshot_at: Instant,
    snapshot_in_flight: bool,
    /// A `SaveSnapshot` arrived while a snapshot was being written.
    save_requested: bool,
    save_waiters: Vec<tokio::sync::oneshot::Sender<Result<(), String>>>,
    waiters: std::collections::BTreeMap<u64, Vec<tokio::sync::oneshot::Sender<bool>>>,
    waiting: usize,
}

impl Projector {
    pub fn new(
        store: Arc<dyn EventStore>,
        models: Projections,
        anchor: Hash,
        config: ProjectorConfig,
    ) -> Self {
        let position = models.position();
        Projector {
            store,
            models,
            anchor,
            config,
            recipients: Vec::new(),
            subscription: None,
            healthy: true,
            last_error: None,
            stalled: None,
            backoff: MIN_BACKOFF,
            snapshot_position: position,
            snapshot_at: Instant::now(),
            snapshot_in_flight: false,
            save_requested: false,
            save_waiters: Vec::new(),
            waiters: std::collections::BTreeMap::new(),
            waiting: 0,
        }
    }

    fn subscribe(&mut self, ctx: &mut Context<Self>) {
        let stream = self.store.subscribe_all(self.models.position());
        self.subscription = Some(ctx.add_stream(stream));
    }

    fn fail(&mut self, ctx: &mut Context<Self>, error: String) {
        if self.stalled.is_some() {
            return;
        }
        tracing::error!(position = self.models.position(), "projector: {error}");
        metrics().actor_restart(ActorKind::Projector);
        self.healthy = false;
        self.last_error = Some(error);
        if let Some(handle) = self.subscription.take() {
            ctx.cancel_future(handle);
        }
        let delay = self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        ctx.run_later(delay, |act, ctx| act.subscribe(ctx));
    }

    fn apply(&mut self, record: RecordedEvent, ctx: &mut Context<Self>) {
        let hash = record.hash;
        let env = match EventEnvelope::decode(record) {
            Ok(env) => env,
            Err(e) => return self.stall(ctx, e),
        };
        // Nobody to push to (a replay at start, or before the registry subscribes): skip
        // building the JSON of the updates.
        let updates = if self.recipients.is_empty() {
            self.models.apply_quiet(&env);
            Vec::new()
        } else {
            self.models.apply(&env)
        };
        self.anchor = hash;
        metrics().set_projection_position(self.models.position());
        self.wake_waiters();
        if !self.healthy {
            tracing::info!(position = env.position(), "projector recovered");
            self.healthy = true;
            self.last_error = None;
        }
        self.backoff = MIN_BACKOFF;
        if !updates.is_empty() && !self.recipients.is_empty() {
            let published = Published {
                position: env.position(),
                updates: Arc::new(updates),
                control: control_of(&env),
                recorded_at: env.record.data.recorded_at,
                waiting: Ticket::new(ActorKind::Registry),
            };
            self.recipients.retain(|r| r.connected());
            for r in &self.recipients {
                r.do_send(published.clone());
            }
        }
        if self.models.position() - self.snapshot_position >= self.config.snapshot_every_events {
            self.start_snapshot(ctx);
        }
    }

    /// Stops at an event that cannot be decoded, for good (see the module's documentation).
    fn stall(&mut self, ctx: &mut Context<Self>, event: UndecodableEvent) {
        tracing::error!(
            position = event.position,
            "projector stopped: {event}; the read models stay at position {} and the server is \
             not ready until it runs a build that reads this event",
            self.models.position()
        );
        self.healthy = false;
        self.last_error = Some(event.to_string());
        self.stalled = Some(event);
        if let Some(handle) = self.subscription.take() {
            ctx.cancel_future(handle);
        }
        // Nobody waiting will see their position applied.
        for (_, senders) in std::mem::take(&mut self.waiters) {
            for tx in senders {
                let _ = tx.send(false);
            }
        }
        self.waiting = 0;
    }

    fn wake_waiters(&mut self) {
        let position = self.models.position();
        while let Some(entry) = self.waiters.first_entry() {
            if *entry.key() > position {
                break;
            }
            let senders = entry.remove();
            self.waiting -= senders.len();
            for tx in senders {
                let _ = tx.send(true);
            }
        }
    }

    /// Encodes the models now and writes them on a blocking thread, unless one is being
    /// written already or nothing changed since the last. Answers whether it started one.
    fn start_snapshot(&mut self, ctx: &mut Context<Self>) -> bool {
        let Some(file) = self.config.snapshot.clone() else {
            return false;
        };
        let position = self.models.position();
        if self.snapshot_in_flight || position == self.snapshot_position {
            return false;
        }
        let payload = match self.models.to_snapshot_bytes() {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("cannot encode a snapshot: {e}");
                return false;
            }
        };
        self.snapshot_in_flight = true;
        let snapshot = Snapshot {
            position,
            anchor: self.anchor,
            payload,
        };
        let task = tokio::task::spawn_blocking(move || {
            snapshot_file::write(&file, &snapshot).map_err(|e| e.to_string())
        });
        ctx.spawn(
            async move {
                task.await
                    .unwrap_or_else(|e| Err(format!("snapshot task failed: {e}")))
            }
            .into_actor(self)
            .map(move |result, act, ctx| {
                act.snapshot_in_flight = false;
                match &result {
                    Ok(()) => {
                        act.snapshot_position = position;
                        act.snapshot_at = Instant::now();
                        tracing::debug!(position, "snapshot saved");
                    }
                    Err(e) => tracing::error!("cannot save a snapshot: {e}"),
                }
                // A save asked for while this one was being written wants the models as they
                // are now: write again (if anything changed) before answering it.
                if std::mem::take(&mut act.save_requested) && act.start_snapshot(ctx) {
                    return;
                }
                for waiter in act.save_waiters.drain(..) {
                    let _ = waiter.send(result.clone());
                }
            }),
        );
        true
    }
}

impl Actor for Projector {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.subscribe(ctx);
        let every = self.config.snapshot_interval;
        ctx.run_interval(every, move |act, ctx| {
            if act.snapshot_at.elapsed() >= every {
                act.start_snapshot(ctx);
            }
        });
        // Revocations of tokens that have expired can be forgotten: an expired token is refused
        // for its expiry first. This trims the read model only; the events stay in the store.
        ctx.run_interval(self.config.prune_interval, |act, _| {
            let leeway = i64::try_from(act.config.token_leeway.as_micros()).unwrap_or(i64::MAX);
            let now = events::Timestamp::now().as_micros().saturating_sub(leeway);
            let pruned = act
                .models
                .prune_revocations(events::Timestamp::from_micros(now));
            if pruned > 0 {
                tracing::debug!(pruned, "expired revocations forgotten");
            }
        });
    }
}

crate::metered_actor!(Projector);

impl StreamHandler<Result<RecordedEvent, StoreError>> for Projector {
    fn handle(&mut self, item: Result<RecordedEvent, StoreError>, ctx: &mut Context<Self>) {
        actor_handled(ActorKind::Projector);
        if self.stalled.is_some() {
            return;
        }
        match item {
            Ok(record) => self.apply(record, ctx),
            Err(e) => self.fail(ctx, format!("subscription failed: {e}")),
        }
    }

    /// A subscription only ends after an error (handled above) or when the store closes; in
    /// either case try again from the checkpoint rather than stop the actor.
    fn finished(&mut self, ctx: &mut Context<Self>) {
        if self.subscription.take().is_some() {
            self.fail(ctx, "the store subscription ended".into());
        }
    }
}

impl Handler<Subscribe> for Projector {
    type Result = ();

    fn handle(&mut self, msg: Subscribe, _: &mut Context<Self>) {
        self.recipients.push(msg.0);
    }
}

impl<R: Send + 'static> Handler<WithModels<R>> for Projector {
    type Result = MessageResult<WithModels<R>>;

    fn handle(&mut self, msg: WithModels<R>, _: &mut Context<Self>) -> Self::Result {
        MessageResult((msg.0)(&self.models))
    }
}

impl Handler<TakeView> for Projector {
    type Result = MessageResult<TakeView>;

    fn handle(&mut self, msg: TakeView, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.models.view(&msg.0))
    }
}

impl Handler<Status> for Projector {
    type Result = MessageResult<Status>;

    fn handle(&mut self, _: Status, _: &mut Context<Self>) -> Self::Result {
        MessageResult(ProjectorStatus {
            position: self.models.position(),
            healthy: self.healthy,
            last_error: self.last_error.clone(),
            stalled: self.stalled.clone(),
        })
    }
}

impl Handler<SaveSnapshot> for Projector {
    type Result = ResponseFuture<Result<(), String>>;

    fn handle(&mut self, _: SaveSnapshot, ctx: &mut Context<Self>) -> Self::Result {
        if self.config.snapshot.is_none() {
            return Box::pin(async { Ok(()) });
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.snapshot_in_flight {
            self.save_requested = true;
        } else if !self.start_snapshot(ctx) {
            // Nothing changed since the last snapshot: it is the current one.
            return Box::pin(async { Ok(()) });
        }
        self.save_waiters.push(tx);
        Box::pin(async move {
            rx.await
                .unwrap_or_else(|_| Err("the projector stopped".into()))
        })
    }
}

impl Handler<WaitForPosition> for Projector {
    type Result = ResponseFuture<bool>;

    fn handle(&mut self, msg: WaitForPosition, _: &mut Context<Self>) -> Self::Result {
        if msg.0 <= self.models.position() {
            return Box::pin(async { true });
        }
        if self.stalled.is_some() || self.waiting >= MAX_WAITERS {
            return Box::pin(async { false });
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.waiters.entry(msg.0).or_default().push(tx);
        self.waiting += 1;
        Box::pin(async move { rx.await.unwrap_or(false) })
    }
}
