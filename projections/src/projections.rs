//! All read models together, behind one checkpoint: the projector folds each event once, in
//! position order, and gets back the pushes it causes.

use events::commitment::LogHead;
use events::domain::DomainEvent;
use events::{EventEnvelope, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::activity::ReviewerActivity;
use crate::audit::AuditEvent;
use crate::case_view::CaseView;
use crate::cases::Cases;
use crate::json::to_value;
use crate::queue::{CaseStatusFilter, Cursor, Queue, StoredQueue};
use crate::revocations::Revocations;
use crate::snapshot::{self, SnapshotError};
use crate::stats::Stats;
use crate::streams::case_id_of;
use crate::updates::{Topic, Update};
use crate::users::Users;
use crate::view::ReadView;
use crate::window::{QueueWindow, Statuses, WindowPage};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Stored")]
pub struct Projections {
    /// The checkpoint: the global position of the last event applied (0 before any).
    position: u64,
    /// The head commitment over every event applied, up to the checkpoint.
    log: LogHead,
    cases: Cases,
    queue: Queue,
    stats: Stats,
    users: Users,
    revocations: Revocations,
    activity: ReviewerActivity,
}

/// [`Projections`] as a snapshot stores them (the serialized fields, in order): the queue's
/// maps of undecided cases are filed again from their keys and the cases.
#[derive(Deserialize)]
struct Stored {
    position: u64,
    log: LogHead,
    cases: Cases,
    queue: StoredQueue,
    stats: Stats,
    users: Users,
    revocations: Revocations,
    activity: ReviewerActivity,
}

impl TryFrom<Stored> for Projections {
    type Error = String;

    fn try_from(s: Stored) -> Result<Self, String> {
        let queue = Queue::restore(s.queue, &s.cases)?;
        Ok(Projections {
            position: s.position,
            log: s.log,
            cases: s.cases,
            queue,
            stats: s.stats,
            users: s.users,
            revocations: s.revocations,
            activity: s.activity,
        })
    }
}

impl Projections {
    pub fn new() -> Self {
        Self::default()
    }

    /// Folds events from scratch (or from where `self` stands, for [`Projections::apply`]).
    pub fn fold<'a>(events: impl IntoIterator<Item = &'a EventEnvelope>) -> Self {
        let mut p = Self::new();
        for env in events {
            p.apply_quiet(env);
        }
        p
    }

    /// The global position of the last event applied: resume the subscription after it.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The commitment to the log up to the checkpoint (see [`events::commitment`]).
    pub fn log_head(&self) -> LogHead {
        self.log
    }

    pub fn cases(&self) -> &Cases {
        &self.cases
    }

    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn users(&self) -> &Users {
        &self.users
    }

    pub fn revocations(&self) -> &Revocations {
        &self.revocations
    }

    pub fn activity(&self) -> &ReviewerActivity {
        &self.activity
    }

    pub fn case(&self, id: Uuid) -> Option<&CaseView> {
        self.cases.get(id)
    }

    /// One page of cases (see [`Queue::list`]): `GET /api/v1/cases`.
    pub fn list_cases(
        &self,
        status: Option<CaseStatusFilter>,
        limit: usize,
        after: Option<&Cursor>,
    ) -> (Vec<&CaseView>, Option<Cursor>) {
        self.queue.list(&self.cases, status, limit, after)
    }

    /// One page of the cases of any of `statuses` (see [`Queue::page`]).
    pub fn list_cases_of(
        &self,
        statuses: Statuses,
        limit: usize,
        after: Option<&Cursor>,
    ) -> (Vec<&CaseView>, Option<Cursor>) {
        self.queue.page(&self.cases, statuses, limit, after)
    }

    /// Every case not yet decided, in queue order.
    pub fn queue_cases(&self) -> Vec<&CaseView> {
        self.queue.all()
    }

    /// Forgets revocations of tokens that expired before `now` (see [`Revocations::prune`]);
    /// answers how many.
    pub fn prune_revocations(&mut self, now: Timestamp) -> usize {
        self.revocations.prune(now)
    }

    /// Folds one event and returns the updates it causes, in this order: `queue`, `case:<id>`
    /// and `stats` for a case event, then `audit` for every event. An event at or before the
    /// checkpoint was applied already: it changes nothing and causes nothing.
    pub fn apply(&mut self, env: &EventEnvelope) -> Vec<Update> {
        self.apply_inner(env, true)
    }

    /// Folds one event like [`Projections::apply`] without building its updates: for replays
    /// and catch-up with nobody to push to, where the JSON would be thrown away.
    pub fn apply_quiet(&mut self, env: &EventEnvelope) {
        self.apply_inner(env, false);
    }

    fn apply_inner(&mut self, env: &EventEnvelope, emit: bool) -> Vec<Update> {
        let position = env.position();
        if position <= self.position {
            return Vec::new();
        }
        self.position = position;
        self.log = self.log.next(position, &env.record.hash);
        let event = env.event.type_name();
        let mut updates = Vec::with_capacity(4);
        match &env.event {
            DomainEvent::Case(_) => {
                let id = case_id_of(env);
                let before = id.and_then(|id| self.cases.get(id)).map(CaseView::tally);
                if let Some(id) = id {
                    self.queue.release(id);
                }
                if let Some(after) = self.cases.apply(env) {
                    self.queue.apply_case(after);
                    self.stats.apply_case(before, after);
                    if !emit {
                        self.activity.apply(env);
                        return Vec::new();
                    }
                    let case_update = case_update(position, event, after);
                    let moved = before.map_or(Statuses::NONE, |b| Statuses::of(b.status));
                    let moved = moved.with(after.adjudication_status);
                    updates.push(Update {
                        topic: Topic::Queue,
                        statuses: moved,
                        ..case_update.clone()
                    });
                    updates.push(case_update);
                    updates.push(Update {
                        topic: Topic::Stats,
                        position,
                        event,
                        data: to_value(&self.stats),
                        statuses: Statuses::ALL,
                    });
                }
                self.activity.apply(env);
            }
            DomainEvent::User(_) => self.users.apply(env),
            DomainEvent::Revocation(_) => self.revocations.apply(env),
            // Facts about the store: no read model holds them.
            DomainEvent::System(_) => {}
        }
        if !emit {
            return Vec::new();
        }
        updates.push(audit_update(env));
        updates
    }

    /// The first cases of a queue window, how many match, and where to page on.
    pub fn queue_window(&self, window: &QueueWindow) -> WindowPage<'_> {
        self.queue.window(window)
    }

    /// What snapshots show now, for a reader elsewhere: the queue and the stats, and the cases
    /// of `case:<id>` topics among `topics`. Costs a few reference counts, whatever the size of
    /// the models; changes after it do not show in it.
    pub fn view<'t>(&self, topics: impl IntoIterator<Item = &'t Topic>) -> ReadView {
        let cases = topics
            .into_iter()
            .filter_map(|t| match t {
                Topic::Case(id) => Some((*id, self.cases.shared(*id).cloned())),
                _ => None,
            })
            .collect();
        ReadView::new(self.position, self.queue.open().clone(), self.stats, cases)
    }

    /// The `snapshot` message of `topic` as of the checkpoint (see [`ReadView::snapshot_json`]).
    pub fn snapshot_json(&self, topic: &Topic, window: &QueueWindow) -> String {
        self.view([topic]).snapshot_json(topic, window)
    }

    /// The `data` of [`Projections::snapshot_json`].
    pub fn snapshot_data(&self, topic: &Topic, window: &QueueWindow) -> Value {
        let message: Value =
            serde_json::from_str(&self.snapshot_json(topic, window)).unwrap_or(Value::Null);
        message["data"].clone()
    }

    /// Every model and the checkpoint as bytes (see [`crate::snapshot`]).
    pub fn to_snapshot_bytes(&self) -> Result<Vec<u8>, SnapshotError> {
        snapshot::encode(self)
    }

    pub fn from_snapshot_bytes(bytes: &[u8]) -> Result<Self, SnapshotError> {
        snapshot::decode(bytes)
    }
}

/// The `case:<id>` update the event at `position` causes: the case after it. The `queue` update
/// is the same with the statuses the case moved between.
pub fn case_update(position: u64, event: &'static str, after: &CaseView) -> Update {
    Update {
        topic: Topic::Case(after.id),
        position,
        event,
        data: to_value(after),
        statuses: Statuses::ALL,
    }
}

/// The `audit` update of an event: the event itself, as auditors see it. It depends on nothing
/// but the event, so a resume rebuilds it from the log alone.
pub fn audit_update(env: &EventEnvelope) -> Update {
    Update {
        topic: Topic::Audit,
        position: env.position(),
        event: env.event.type_name(),
        data: to_value(&AuditEvent::from_envelope(env)),
        statuses: Statuses::ALL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{SNAPSHOT_FORMAT_VERSION, SNAPSHOT_MAGIC};
    use crate::testing::{case_env, env, submitted};
    use events::domain::case::{CaseClaimed, CaseEvent, CaseStatus};
    use events::domain::revocation::{RevocationEvent, TokenRevoked, STREAM};
    use events::domain::Priority;

    fn events() -> Vec<EventEnvelope> {
        let id = Uuid::from_u128(1);
        vec![
            case_env(id, 1, 1, submitted(id, Priority::Normal)),
            case_env(
                id,
                2,
                2,
                CaseEvent::Claimed(CaseClaimed {
                    reviewer_id: Uuid::from_u128(2),
                    lease_expires_at: Timestamp::from_micros(99),
                }),
            ),
            env(
                STREAM,
                1,
                3,
                RevocationEvent::TokenRevoked(TokenRevoked {
                    jti: Uuid::from_u128(3),
                    user_id: Uuid::from_u128(2),
                    expires_at: Timestamp::from_micros(99),
                })
                .into(),
            ),
        ]
    }

    #[test]
    fn each_event_is_applied_once_and_pushes_to_its_topics() {
        let events = events();
        let mut p = Projections::new();
        let updates = p.apply(&events[0]);
        let topics: Vec<String> = updates.iter().map(|u| u.topic.as_string()).collect();
        let id = Uuid::from_u128(1);
        assert_eq!(
            topics,
            [
                "queue".to_owned(),
                format!("case:{id}"),
                "stats".into(),
                "audit".into()
            ]
        );
        assert!(updates.iter().all(|u| u.position == 1));
        assert!(updates.iter().all(|u| u.event == "case_submitted"));
        assert_eq!(updates[0].statuses, Statuses::of(CaseStatus::Pending));
        assert!(updates[1..].iter().all(|u| u.statuses == Statuses::ALL));
        assert_eq!(updates[0].data["adjudication_status"], "pending");
        assert_eq!(updates[2].data["pending"], 1);
        assert_eq!(updates[3].data["type"], "case_submitted");

        let before = p.clone();
        assert!(p.apply(&events[0]).is_empty());
        assert_eq!(p, before);

        let claimed = p.apply(&events[1]);
        assert_eq!(
            claimed[0].statuses,
            Statuses::of(CaseStatus::Pending).with(CaseStatus::InReview),
            "a queue update names the status the case left and the one it entered"
        );
        let updates = p.apply(&events[2]);
        assert_eq!(updates.len(), 1);
        assert_eq!(updates[0].topic, Topic::Audit);
        assert_eq!(updates[0].event, "token_revoked");
        assert!(p.revocations().is_token_revoked(Uuid::from_u128(3)));
        assert_eq!(p.position(), 3);
        assert_eq!(p.stats().in_review, 1);
        assert_eq!(p.stats().position, 2);
        assert_eq!(
            p.case(id).map(|c| c.adjudication_status),
            Some(CaseStatus::InReview)
        );
        assert_eq!(p, Projections::fold(&events));
        let log = events.iter().fold(LogHead::EMPTY, |head, e| {
            head.next(e.position(), &e.record.hash)
        });
        assert_eq!(
            p.log_head(),
            log,
            "the head commitment folds every event once"
        );
    }

    #[test]
    fn snapshots_show_each_topic() {
        let p = Projections::fold(&events());
        let w = QueueWindow::default();
        let queue: Value = serde_json::from_str(&p.snapshot_json(&Topic::Queue, &w)).unwrap();
        assert_eq!(queue["type"], "snapshot");
        assert_eq!(queue["position"], 3);
        assert_eq!(queue["data"]["cases"].as_array().map(Vec::len), Some(1));
        assert_eq!(queue["data"]["total"], 1);
        assert_eq!(queue["data"]["next"], Value::Null);
        let pending_only = QueueWindow {
            limit: 5,
            statuses: Statuses::of(CaseStatus::Pending),
        };
        let none = p.snapshot_data(&Topic::Queue, &pending_only);
        assert_eq!(
            none,
            serde_json::json!({"cases": [], "total": 0, "next": null})
        );
        assert_eq!(p.snapshot_data(&Topic::Stats, &w)["in_review"], 1);
        assert_eq!(
            p.snapshot_data(&Topic::Case(Uuid::from_u128(1)), &w)["version"],
            2
        );
        assert_eq!(
            p.snapshot_data(&Topic::Case(Uuid::from_u128(7)), &w),
            Value::Null
        );
        assert_eq!(p.snapshot_data(&Topic::Audit, &w), Value::Null);
    }

    #[test]
    fn snapshot_bytes_round_trip_and_refuse_anything_else() {
        let p = Projections::fold(&events());
        let bytes = p.to_snapshot_bytes().unwrap();
        assert_eq!(&bytes[..8], &SNAPSHOT_MAGIC);
        assert_eq!(Projections::from_snapshot_bytes(&bytes), Ok(p));

        assert_eq!(
            Projections::from_snapshot_bytes(b"hello"),
            Err(SnapshotError::WrongMagic)
        );
        assert_eq!(
            Projections::from_snapshot_bytes(&[]),
            Err(SnapshotError::WrongMagic)
        );
        assert!(matches!(
            Projections::from_snapshot_bytes(&bytes[..9]),
            Err(SnapshotError::Corrupt(_))
        ));
        let mut other = bytes.clone();
        other[8..10].copy_from_slice(&(SNAPSHOT_FORMAT_VERSION + 1).to_le_bytes());
        assert_eq!(
            Projections::from_snapshot_bytes(&other),
            Err(SnapshotError::UnsupportedVersion {
                found: SNAPSHOT_FORMAT_VERSION + 1,
                supported: SNAPSHOT_FORMAT_VERSION
            })
        );
        let mut garbage = bytes[..10].to_vec();
        garbage.extend_from_slice(&[0xff; 64]);
        assert!(matches!(
            Projections::from_snapshot_bytes(&garbage),
            Err(SnapshotError::Corrupt(_))
        ));
        let truncated = &bytes[..bytes.len() - 3];
        assert!(matches!(
            Projections::from_snapshot_bytes(truncated),
            Err(SnapshotError::Corrupt(_))
        ));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            Projections::from_snapshot_bytes(&trailing),
            Err(SnapshotError::Corrupt(_))
        ));
    }
}
