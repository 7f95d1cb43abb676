//! The undecided cases in queue order, one map per status, holding the cases themselves.
//!
//! The maps are persistent ([`imbl::OrdMap`], B-trees whose nodes are shared): a clone costs a
//! few reference counts, and later changes copy only the nodes they touch while a clone is
//! alive (and none when it is not). So the projector can hand the queue, as of its position, to
//! a snapshot builder on another thread for next to nothing, and go on applying events.

use std::iter::Peekable;
use std::ops::Bound;
use std::sync::Arc;

use events::domain::case::CaseStatus;

use crate::case_view::CaseView;
use crate::queue::{Cursor, QueueKey};
use crate::window::{QueueWindow, Statuses, WindowPage};

/// The undecided cases of one status, by queue key.
pub type OpenCases = imbl::OrdMap<QueueKey, Arc<CaseView>>;

/// One entry of a merged listing: its key and, for an undecided case, the case (`None` for a
/// decided case, which the caller looks up).
pub(crate) type Listed<'a> = (&'a QueueKey, Option<&'a Arc<CaseView>>);

/// A listing in queue order, boxed so that ranges of different sets can be merged.
pub(crate) type Part<'a> = Peekable<Box<dyn Iterator<Item = Listed<'a>> + 'a>>;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct OpenQueue {
    pending: OpenCases,
    in_review: OpenCases,
    escalated: OpenCases,
}

impl OpenQueue {
    fn map(&self, status: CaseStatus) -> Option<&OpenCases> {
        match status {
            CaseStatus::Pending => Some(&self.pending),
            CaseStatus::InReview => Some(&self.in_review),
            CaseStatus::Escalated => Some(&self.escalated),
            CaseStatus::Decided => None,
        }
    }

    fn map_mut(&mut self, status: CaseStatus) -> Option<&mut OpenCases> {
        match status {
            CaseStatus::Pending => Some(&mut self.pending),
            CaseStatus::InReview => Some(&mut self.in_review),
            CaseStatus::Escalated => Some(&mut self.escalated),
            CaseStatus::Decided => None,
        }
    }

    /// Files an undecided case (a decided one is not kept here).
    pub fn insert(&mut self, key: QueueKey, status: CaseStatus, case: Arc<CaseView>) {
        if let Some(map) = self.map_mut(status) {
            map.insert(key, case);
        }
    }

    pub fn remove(&mut self, key: &QueueKey, status: CaseStatus) {
        if let Some(map) = self.map_mut(status) {
            map.remove(key);
        }
    }

    /// How many cases have one of `statuses` (decided ones are not counted here).
    pub fn count(&self, statuses: Statuses) -> usize {
        statuses
            .iter()
            .filter_map(|s| self.map(s))
            .map(OpenCases::len)
            .sum()
    }

    /// The keys of one status in queue order (for the snapshot file).
    pub fn keys(&self, status: CaseStatus) -> impl Iterator<Item = &QueueKey> {
        self.map(status).into_iter().flat_map(|m| m.keys())
    }

    /// The ranges after the cursor of each of `statuses`, ready to be merged.
    pub(crate) fn parts<'a>(&'a self, statuses: Statuses, after: Option<&Cursor>) -> Vec<Part<'a>> {
        let lower = after.map_or(Bound::Unbounded, |c| Bound::Excluded(c.key()));
        statuses
            .iter()
            .filter_map(|s| self.map(s))
            .map(|map| {
                let range: Box<dyn Iterator<Item = Listed<'a>> + 'a> = Box::new(
                    map.range((lower, Bound::Unbounded))
                        .map(|(key, case)| (key, Some(case))),
                );
                range.peekable()
            })
            .collect()
    }

    /// One page of the cases of any of `statuses` after the cursor, in queue order, at most
    /// `limit`; and the cursor of the next page if there is one.
    pub fn page(
        &self,
        statuses: Statuses,
        limit: usize,
        after: Option<&Cursor>,
    ) -> (Vec<&CaseView>, Option<Cursor>) {
        page_of(self.parts(statuses, after), limit, |_| None)
    }

    /// What a `queue` subscription with this window sees first.
    pub fn window(&self, window: &QueueWindow) -> WindowPage<'_> {
        let (cases, next) = self.page(window.statuses, window.limit, None);
        WindowPage {
            cases,
            total: self.count(window.statuses),
            next,
        }
    }
}

/// Merges listings that are each in queue order into one.
pub(crate) fn merged<'a>(mut parts: Vec<Part<'a>>) -> impl Iterator<Item = Listed<'a>> + 'a {
    std::iter::from_fn(move || {
        let smallest = parts
            .iter_mut()
            .enumerate()
            .filter_map(|(i, part)| part.peek().map(|(key, _)| (i, **key)))
            .min_by_key(|(_, key)| *key)?
            .0;
        parts[smallest].next()
    })
}

/// The first `limit` entries of the merged `parts` as cases (`lookup` finds those the parts do
/// not hold), and the cursor after the last if more follow.
pub(crate) fn page_of<'a>(
    parts: Vec<Part<'a>>,
    limit: usize,
    lookup: impl Fn(&QueueKey) -> Option<&'a CaseView>,
) -> (Vec<&'a CaseView>, Option<Cursor>) {
    if limit == 0 {
        return (Vec::new(), None);
    }
    let mut entries: Vec<Listed<'a>> = merged(parts).take(limit.saturating_add(1)).collect();
    let next = if entries.len() > limit {
        entries.truncate(limit);
        entries.last().map(|(key, _)| Cursor::at(**key))
    } else {
        None
    };
    let page = entries
        .into_iter()
        .filter_map(|(key, case)| case.map(|c| &**c).or_else(|| lookup(key)))
        .collect();
    (page, next)
}
