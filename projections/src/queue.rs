//! The review queue: cases not yet decided, urgent first, then oldest first. It also keeps every
//! decided case in the same order, so that `GET /api/v1/cases?status=decided` pages as cheaply.
//!
//! The undecided cases are kept by status in persistent maps of sort key → case ([`OpenQueue`]),
//! sharing each case with [`Cases`] (an `Arc`, so a 20,000-character excerpt is held once), so
//! that a snapshot builder can take the queue as it stands for next to nothing. Decided cases
//! are indexed by key only. Changing a case costs O(log n).

use std::cell::Cell;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::ops::Bound;
use std::str::FromStr;
use std::sync::Arc;

use events::domain::case::CaseStatus;
use events::domain::Priority;
use events::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::case_view::CaseView;
use crate::cases::Cases;
use crate::open_queue::{merged, page_of, Listed, OpenQueue};
use crate::window::{QueueWindow, Statuses, WindowPage};

/// Where a case stands in the queue: priority (urgent first), submission time, id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct QueueKey {
    pub priority: Priority,
    pub submitted_at: Timestamp,
    pub id: Uuid,
}

impl QueueKey {
    pub fn of(case: &CaseView) -> Self {
        QueueKey {
            priority: case.priority,
            submitted_at: case.submitted_at,
            id: case.id,
        }
    }
}

impl Ord for QueueKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other
            .priority
            .cmp(&self.priority)
            .then(self.submitted_at.cmp(&other.submitted_at))
            .then(self.id.cmp(&other.id))
    }
}

impl PartialOrd for QueueKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Where a page of a listing ended; the next page starts after it. Opaque to clients: shown and
/// parsed as a string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cursor(QueueKey);

/// A string that is not a cursor this server gave out.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a valid cursor: {0:?}")]
pub struct CursorError(pub String);

impl Cursor {
    /// The cursor after the case with this key.
    pub(crate) fn at(key: QueueKey) -> Self {
        Cursor(key)
    }

    pub fn key(&self) -> QueueKey {
        self.0
    }

    pub fn parse(s: &str) -> Result<Self, CursorError> {
        let bad = || CursorError(s.to_owned());
        let mut parts = s.split('.');
        let (Some(priority), Some(micros), Some(id), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        Ok(Cursor(QueueKey {
            priority: priority.parse().map_err(|_| bad())?,
            submitted_at: Timestamp::from_micros(micros.parse().map_err(|_| bad())?),
            id: Uuid::try_parse(id).map_err(|_| bad())?,
        }))
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = &self.0;
        write!(
            f,
            "{}.{}.{}",
            k.priority,
            k.submitted_at.as_micros(),
            k.id.simple()
        )
    }
}

impl FromStr for Cursor {
    type Err = CursorError;
    fn from_str(s: &str) -> Result<Self, CursorError> {
        Cursor::parse(s)
    }
}

impl Serialize for Cursor {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cursor {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Cursor::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The `status` of a listing: one status, as the API names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatusFilter {
    Pending,
    InReview,
    Escalated,
    Decided,
}

/// A `status` that is not one of the four.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("must be one of pending, in_review, escalated, decided")]
pub struct StatusFilterError;

impl CaseStatusFilter {
    pub fn status(self) -> CaseStatus {
        match self {
            CaseStatusFilter::Pending => CaseStatus::Pending,
            CaseStatusFilter::InReview => CaseStatus::InReview,
            CaseStatusFilter::Escalated => CaseStatus::Escalated,
            CaseStatusFilter::Decided => CaseStatus::Decided,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.status().as_str()
    }
}

impl FromStr for CaseStatusFilter {
    type Err = StatusFilterError;
    fn from_str(s: &str) -> Result<Self, StatusFilterError> {
        match s {
            "pending" => Ok(CaseStatusFilter::Pending),
            "in_review" => Ok(CaseStatusFilter::InReview),
            "escalated" => Ok(CaseStatusFilter::Escalated),
            "decided" => Ok(CaseStatusFilter::Decided),
            _ => Err(StatusFilterError),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Queue {
    /// Every case's key and status, to find what to move when it changes.
    entries: HashMap<Uuid, (QueueKey, CaseStatus)>,
    /// Cases not yet decided: the queue proper, with the cases themselves (shared with
    /// [`Cases`]), in maps that snapshot builders can hold (see [`OpenQueue`]).
    open: OpenQueue,
    /// Decided cases, by key only: they are listed from the projector's own models.
    decided: BTreeSet<QueueKey>,
}

impl Queue {
    /// Lets go of the queue's share of a case before an event changes it, so that a case nobody
    /// else holds is changed in place rather than copied. [`Queue::apply_case`] files it again.
    pub fn release(&mut self, id: Uuid) {
        if let Some((key, status)) = self.entries.get(&id) {
            self.open.remove(key, *status);
        }
    }

    /// Files a case where its current state puts it. Call with the case after each of its
    /// events.
    pub fn apply_case(&mut self, case: &Arc<CaseView>) {
        let key = QueueKey::of(case);
        let status = case.adjudication_status;
        match self.entries.insert(case.id, (key, status)) {
            // Decided before and after, same key: nothing to move.
            Some((old_key, CaseStatus::Decided))
                if old_key == key && status == CaseStatus::Decided => {}
            Some((old_key, CaseStatus::Decided)) => {
                self.decided.remove(&old_key);
            }
            Some((old_key, old_status)) => self.open.remove(&old_key, old_status),
            None => {}
        }
        if status == CaseStatus::Decided {
            self.decided.insert(key);
        } else {
            self.open.insert(key, status, case.clone());
        }
    }

    /// How many cases are not yet decided.
    pub fn len(&self) -> usize {
        self.open.count(Statuses::UNDECIDED)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cases not yet decided, shared: what a snapshot builder reads.
    pub fn open(&self) -> &OpenQueue {
        &self.open
    }

    /// The whole queue, in order.
    pub fn all(&self) -> Vec<&CaseView> {
        self.open.page(Statuses::UNDECIDED, usize::MAX, None).0
    }

    /// One page: the cases of `status` (without one: every case not yet decided) after the
    /// cursor, in queue order, at most `limit`; and the cursor of the next page if there is one.
    pub fn list<'a>(
        &'a self,
        cases: &'a Cases,
        status: Option<CaseStatusFilter>,
        limit: usize,
        after: Option<&Cursor>,
    ) -> (Vec<&'a CaseView>, Option<Cursor>) {
        let statuses = status.map_or(Statuses::UNDECIDED, |f| Statuses::of(f.status()));
        self.page(cases, statuses, limit, after)
    }

    /// One page of the cases of any of `statuses` after the cursor, in queue order, at most
    /// `limit`; and the cursor of the next page if there is one.
    pub fn page<'a>(
        &'a self,
        cases: &'a Cases,
        statuses: Statuses,
        limit: usize,
        after: Option<&Cursor>,
    ) -> (Vec<&'a CaseView>, Option<Cursor>) {
        let mut parts = self.open.parts(statuses, after);
        if statuses.contains(CaseStatus::Decided) {
            let lower = after.map_or(Bound::Unbounded, |c| Bound::Excluded(c.0));
            let decided: Box<dyn Iterator<Item = Listed<'a>> + 'a> = Box::new(
                self.decided
                    .range((lower, Bound::Unbounded))
                    .map(|key| (key, None)),
            );
            parts.push(decided.peekable());
        }
        page_of(parts, limit, |key| cases.get(key.id))
    }

    /// How many cases have one of `statuses`.
    pub fn count(&self, statuses: Statuses) -> usize {
        let decided = if statuses.contains(CaseStatus::Decided) {
            self.decided.len()
        } else {
            0
        };
        self.open.count(statuses) + decided
    }

    /// What a `queue` subscription with this window sees first.
    pub fn window(&self, window: &QueueWindow) -> WindowPage<'_> {
        self.open.window(window)
    }

    /// The queue as a snapshot holds it, with its cases found in `cases`; an error names what
    /// does not fit.
    pub(crate) fn restore(stored: StoredQueue, cases: &Cases) -> Result<Self, String> {
        let mut open = OpenQueue::default();
        for (status, keys) in [
            (CaseStatus::Pending, stored.pending),
            (CaseStatus::InReview, stored.in_review),
            (CaseStatus::Escalated, stored.escalated),
        ] {
            for key in keys {
                let case = cases
                    .shared(key.id)
                    .ok_or_else(|| format!("the queue names a case it lacks: {}", key.id))?;
                open.insert(key, status, case.clone());
            }
        }
        let queue = Queue {
            entries: stored.entries,
            open,
            decided: stored.decided.into_iter().collect(),
        };
        if queue.entries.len() != queue.len() + queue.decided.len() {
            return Err("the queue's index and its sets disagree".into());
        }
        Ok(queue)
    }
}

/// The queue as snapshots store it, field by field as this build has always written it: every
/// case's key and status, then the sorted keys of the undecided cases, of each status, and of
/// the decided ones.
#[derive(Deserialize)]
pub(crate) struct StoredQueue {
    #[serde(deserialize_with = "crate::presized::hash_map")]
    entries: HashMap<Uuid, (QueueKey, CaseStatus)>,
    /// Every undecided case again: the union of the three below.
    _open: Vec<QueueKey>,
    pending: Vec<QueueKey>,
    in_review: Vec<QueueKey>,
    escalated: Vec<QueueKey>,
    decided: Vec<QueueKey>,
}

impl Serialize for Queue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let open = &self.open;
        let mut q = s.serialize_struct("Queue", 6)?;
        q.serialize_field("entries", &self.entries)?;
        let all = Statuses::UNDECIDED;
        let merged = merged(open.parts(all, None)).map(|(key, _)| key);
        q.serialize_field("open", &Keys::new(open.count(all), merged))?;
        for (name, status) in [
            ("pending", CaseStatus::Pending),
            ("in_review", CaseStatus::InReview),
            ("escalated", CaseStatus::Escalated),
        ] {
            let n = open.count(Statuses::of(status));
            q.serialize_field(name, &Keys::new(n, open.keys(status)))?;
        }
        q.serialize_field("decided", &self.decided)?;
        q.end()
    }
}

/// `n` keys in order, written once as a sequence.
struct Keys<I>(usize, Cell<Option<I>>);

impl<I> Keys<I> {
    fn new(n: usize, keys: I) -> Self {
        Keys(n, Cell::new(Some(keys)))
    }
}

impl<'a, I: Iterator<Item = &'a QueueKey>> Serialize for Keys<I> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.0))?;
        for key in self.1.take().into_iter().flatten() {
            seq.serialize_element(key)?;
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{case_env, submitted};
    use events::domain::case::{CaseClaimed, CaseDecided, CaseEvent};
    use events::domain::Decision;

    fn setup() -> (Cases, Queue, Vec<Uuid>) {
        let mut cases = Cases::default();
        let mut queue = Queue::default();
        let priorities = [
            Priority::Low,
            Priority::Urgent,
            Priority::Normal,
            Priority::Urgent,
            Priority::High,
        ];
        let ids: Vec<Uuid> = (1..=5).map(|n| Uuid::from_u128(100 - n)).collect();
        for (n, (id, p)) in ids.iter().zip(priorities).enumerate() {
            let env = case_env(*id, 1, n as u64 + 1, submitted(*id, p));
            if let Some(case) = cases.apply(&env) {
                queue.apply_case(case);
            }
        }
        (cases, queue, ids)
    }

    fn ids(page: &[&CaseView]) -> Vec<Uuid> {
        page.iter().map(|c| c.id).collect()
    }

    #[test]
    fn urgent_first_then_oldest_first() {
        let (cases, queue, id) = setup();
        let (page, next) = queue.list(&cases, None, 10, None);
        assert_eq!(ids(&page), [id[1], id[3], id[4], id[2], id[0]]);
        assert_eq!(next, None);
        assert_eq!(queue.len(), 5);
    }

    #[test]
    fn pages_follow_the_cursor_through_its_string_form() {
        let (cases, queue, _) = setup();
        let (all, _) = queue.list(&cases, None, 10, None);
        let mut seen = Vec::new();
        let mut after: Option<Cursor> = None;
        loop {
            let (page, next) = queue.list(&cases, None, 2, after.as_ref());
            seen.extend(ids(&page));
            match next {
                Some(c) => after = Some(c.to_string().parse().unwrap()),
                None => break,
            }
        }
        assert_eq!(seen, ids(&all));
        assert!(Cursor::parse("nonsense").is_err());
        assert!(Cursor::parse("urgent.12.not-a-uuid").is_err());
        assert!(Cursor::parse("urgent.12.00000000000000000000000000000001.x").is_err());
        assert_eq!(queue.list(&cases, None, 0, None), (vec![], None));
    }

    #[test]
    fn decided_cases_leave_the_queue_and_statuses_filter() {
        let (mut cases, mut queue, id) = setup();
        let reviewer = Uuid::from_u128(0xaa);
        let events = [
            CaseEvent::Claimed(CaseClaimed {
                reviewer_id: reviewer,
                lease_expires_at: Timestamp::from_micros(i64::MAX),
            }),
            CaseEvent::Decided(CaseDecided {
                reviewer_id: reviewer,
                decision: Decision::Confirm,
                final_culpability: None,
                notes: None,
            }),
        ];
        for (n, e) in events.into_iter().enumerate() {
            let env = case_env(id[1], n as u64 + 2, n as u64 + 10, e);
            if let Some(case) = cases.apply(&env) {
                queue.apply_case(case);
            }
        }
        let (page, _) = queue.list(&cases, None, 10, None);
        assert_eq!(ids(&page), [id[3], id[4], id[2], id[0]]);
        let decided = queue.list(&cases, Some(CaseStatusFilter::Decided), 10, None);
        assert_eq!(ids(&decided.0), [id[1]]);
        let pending = queue.list(&cases, Some("pending".parse().unwrap()), 10, None);
        assert_eq!(pending.0.len(), 4);
        assert!("in_review".parse::<CaseStatusFilter>().unwrap().as_str() == "in_review");
        assert!("closed".parse::<CaseStatusFilter>().is_err());
        assert_eq!(queue.all().len(), 4);
    }

    #[test]
    fn pages_and_windows_of_several_statuses_merge_in_queue_order() {
        let (mut cases, mut queue, id) = setup();
        // Two cases in review: id[3] (urgent) and id[0] (low).
        for (n, which) in [3, 0].into_iter().enumerate() {
            let claim = CaseEvent::Claimed(CaseClaimed {
                reviewer_id: Uuid::from_u128(0xbb),
                lease_expires_at: Timestamp::from_micros(i64::MAX),
            });
            let env = case_env(id[which], 2, n as u64 + 20, claim);
            if let Some(case) = cases.apply(&env) {
                queue.apply_case(case);
            }
        }
        let pending = Statuses::of(CaseStatus::Pending);
        let both = pending.with(CaseStatus::InReview);
        let (all, _) = queue.page(&cases, both, 10, None);
        assert_eq!(ids(&all), [id[1], id[3], id[4], id[2], id[0]]);
        assert_eq!(
            ids(&queue.page(&cases, pending, 10, None).0),
            [id[1], id[4], id[2]]
        );
        let with_decided = both.with(CaseStatus::Decided).with(CaseStatus::Escalated);
        assert_eq!(
            ids(&queue.page(&cases, with_decided, 10, None).0),
            ids(&all)
        );

        // Paging a merge by its cursors gives the merge, two at a time.
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let (page, next) = queue.page(&cases, both, 2, after.as_ref());
            seen.extend(ids(&page));
            match next {
                Some(c) => after = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, ids(&all));

        assert_eq!(queue.count(Statuses::UNDECIDED), 5);
        assert_eq!(queue.count(pending), 3);
        assert_eq!(queue.count(Statuses::of(CaseStatus::InReview)), 2);
        assert_eq!(queue.count(Statuses::NONE), 0);
        assert_eq!(queue.page(&cases, Statuses::NONE, 10, None), (vec![], None));

        let window = queue.window(&QueueWindow {
            limit: 2,
            statuses: pending,
        });
        assert_eq!(ids(&window.cases), [id[1], id[4]]);
        assert_eq!(window.total, 3);
        assert_eq!(
            window.next,
            Some(Cursor(QueueKey::of(&cases.get(id[4]).unwrap().clone())))
        );
        let whole = queue.window(&QueueWindow {
            limit: 3,
            statuses: pending,
        });
        assert_eq!((whole.cases.len(), whole.total, whole.next), (3, 3, None));
    }
}
