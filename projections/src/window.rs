//! The queue window: what one `queue` subscription sees. A queue can hold tens of thousands of
//! cases, so a subscription asks for the first `limit` cases of the statuses it wants; its
//! snapshot is those cases, how many match in all, and the cursor to page on over HTTP. Its
//! updates are every change to a case that had, or has, one of those statuses.
//!
//! [`Statuses`] is a set of case statuses; an [`crate::Update`] carries the statuses a case had
//! before and after its event, so a subscriber gets the update when the two sets meet.

use std::fmt;

use events::domain::case::CaseStatus;
use serde::Serialize;

use crate::case_view::CaseView;
use crate::queue::Cursor;

/// A set of case statuses (a bit each).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Statuses(u8);

const ORDER: [CaseStatus; 4] = [
    CaseStatus::Pending,
    CaseStatus::InReview,
    CaseStatus::Escalated,
    CaseStatus::Decided,
];

const fn bit(status: CaseStatus) -> u8 {
    match status {
        CaseStatus::Pending => 1,
        CaseStatus::InReview => 2,
        CaseStatus::Escalated => 4,
        CaseStatus::Decided => 8,
    }
}

impl Statuses {
    pub const NONE: Statuses = Statuses(0);
    /// The statuses of the queue proper: every one but `decided`.
    pub const UNDECIDED: Statuses = Statuses(1 | 2 | 4);
    pub const ALL: Statuses = Statuses(1 | 2 | 4 | 8);

    pub const fn of(status: CaseStatus) -> Self {
        Statuses(bit(status))
    }

    #[must_use]
    pub const fn with(self, status: CaseStatus) -> Self {
        Statuses(self.0 | bit(status))
    }

    pub const fn contains(self, status: CaseStatus) -> bool {
        self.0 & bit(status) != 0
    }

    /// Whether the two sets share a status.
    pub const fn meets(self, other: Statuses) -> bool {
        self.0 & other.0 != 0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The statuses in the set, in the order pending, in_review, escalated, decided.
    pub fn iter(self) -> impl Iterator<Item = CaseStatus> {
        ORDER.into_iter().filter(move |s| self.contains(*s))
    }
}

impl FromIterator<CaseStatus> for Statuses {
    fn from_iter<I: IntoIterator<Item = CaseStatus>>(iter: I) -> Self {
        iter.into_iter().fold(Statuses::NONE, Statuses::with)
    }
}

impl fmt::Debug for Statuses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.iter().map(CaseStatus::as_str))
            .finish()
    }
}

/// Cases a window shows when the client does not say.
pub const DEFAULT_LIMIT: usize = 100;
/// Cases a window shows at most.
pub const MAX_LIMIT: usize = 1000;

/// What one `queue` subscription asks to see.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct QueueWindow {
    /// The first this many cases, in queue order (1 to [`MAX_LIMIT`]).
    pub limit: usize,
    /// Of these statuses (some of the undecided ones).
    pub statuses: Statuses,
}

impl Default for QueueWindow {
    fn default() -> Self {
        QueueWindow {
            limit: DEFAULT_LIMIT,
            statuses: Statuses::UNDECIDED,
        }
    }
}

/// The `data` of a `queue` snapshot: `{"cases", "total", "next"}`.
#[derive(Debug, Serialize)]
pub struct WindowPage<'c> {
    /// The first cases of the window, in queue order.
    pub cases: Vec<&'c CaseView>,
    /// How many cases match the window's statuses.
    pub total: usize,
    /// Where `GET /api/v1/cases?after=` goes on, when more cases match than were shown.
    pub next: Option<Cursor>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_hold_what_was_put_in_them() {
        let s: Statuses = [CaseStatus::Escalated, CaseStatus::Pending]
            .into_iter()
            .collect();
        assert!(s.contains(CaseStatus::Pending) && s.contains(CaseStatus::Escalated));
        assert!(!s.contains(CaseStatus::InReview) && !s.contains(CaseStatus::Decided));
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            [CaseStatus::Pending, CaseStatus::Escalated]
        );
        assert_eq!(format!("{s:?}"), r#"{"pending", "escalated"}"#);
        assert!(Statuses::NONE.is_empty());
        assert_eq!(Statuses::ALL, Statuses::UNDECIDED.with(CaseStatus::Decided));
    }

    #[test]
    fn sets_meet_when_they_share_a_status() {
        let before_after = Statuses::of(CaseStatus::InReview).with(CaseStatus::Decided);
        assert!(before_after.meets(Statuses::UNDECIDED));
        assert!(before_after.meets(Statuses::of(CaseStatus::InReview)));
        assert!(!before_after.meets(Statuses::of(CaseStatus::Pending)));
        assert!(!Statuses::NONE.meets(Statuses::ALL));
    }

    #[test]
    fn the_default_window_is_the_first_hundred_undecided_cases() {
        let w = QueueWindow::default();
        assert_eq!(w.limit, 100);
        assert_eq!(w.statuses, Statuses::UNDECIDED);
    }
}
