//! The counters of `GET /api/v1/stats` and of the `stats` topic.

use events::domain::case::CaseStatus;
use events::domain::Decision;
use serde::{Deserialize, Serialize};

use crate::case_view::{CaseTally, CaseView};

/// Decided cases by their decision. A reopened case leaves its count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByDecision {
    pub confirm: u64,
    pub amend: u64,
    pub reject: u64,
}

/// How many cases stand in each status now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub pending: u64,
    pub in_review: u64,
    pub escalated: u64,
    pub decided: u64,
    pub by_decision: ByDecision,
    /// The global position of the last case event counted. Events of users and tokens do not
    /// move it: the figures are the same as of any later position until the next case event.
    pub position: u64,
}

impl Stats {
    /// Counts one case event: the case moves from `before` (`None` for a new case) to `after`.
    pub fn apply_case(&mut self, before: Option<CaseTally>, after: &CaseView) {
        if let Some(before) = before {
            self.count(before, false);
        }
        self.count(after.tally(), true);
        self.position = self.position.max(after.position);
    }

    fn count(&mut self, tally: CaseTally, add: bool) {
        let status = match tally.status {
            CaseStatus::Pending => &mut self.pending,
            CaseStatus::InReview => &mut self.in_review,
            CaseStatus::Escalated => &mut self.escalated,
            CaseStatus::Decided => &mut self.decided,
        };
        bump(status, add);
        if tally.status == CaseStatus::Decided {
            let by = &mut self.by_decision;
            match tally.decision {
                Some(Decision::Confirm) => bump(&mut by.confirm, add),
                Some(Decision::Amend) => bump(&mut by.amend, add),
                Some(Decision::Reject) => bump(&mut by.reject, add),
                // An escalation is not a final decision; a decided case always has one.
                Some(Decision::Escalate) | None => {}
            }
        }
    }
}

fn bump(n: &mut u64, add: bool) {
    *n = if add {
        n.saturating_add(1)
    } else {
        n.saturating_sub(1)
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cases::Cases;
    use crate::testing::{case_env, submitted};
    use events::domain::case::{CaseClaimed, CaseDecided, CaseEvent, CaseReopened};
    use events::domain::Priority;
    use events::Timestamp;
    use uuid::Uuid;

    #[test]
    fn counts_follow_each_case_and_a_reopening_leaves_the_decision_count() {
        let id = Uuid::from_u128(1);
        let other = Uuid::from_u128(2);
        let reviewer = Uuid::from_u128(0xaa);
        let events = [
            case_env(id, 1, 1, submitted(id, Priority::Normal)),
            case_env(other, 1, 2, submitted(other, Priority::Low)),
            case_env(
                id,
                2,
                3,
                CaseEvent::Claimed(CaseClaimed {
                    reviewer_id: reviewer,
                    lease_expires_at: Timestamp::from_micros(i64::MAX),
                }),
            ),
            case_env(
                id,
                3,
                4,
                CaseEvent::Decided(CaseDecided {
                    reviewer_id: reviewer,
                    decision: Decision::Reject,
                    final_culpability: None,
                    notes: Some("no".into()),
                }),
            ),
        ];
        let mut cases = Cases::default();
        let mut stats = Stats::default();
        for env in &events {
            fold(&mut cases, &mut stats, env);
        }
        assert_eq!((stats.pending, stats.decided, stats.position), (1, 1, 4));
        assert_eq!(
            stats.by_decision,
            ByDecision {
                confirm: 0,
                amend: 0,
                reject: 1
            }
        );
        let reopen = case_env(
            id,
            4,
            5,
            CaseEvent::Reopened(CaseReopened {
                reopened_by: reviewer,
                reason: "again".into(),
            }),
        );
        fold(&mut cases, &mut stats, &reopen);
        assert_eq!(
            stats,
            Stats {
                pending: 2,
                in_review: 0,
                escalated: 0,
                decided: 0,
                by_decision: ByDecision::default(),
                position: 5,
            }
        );
        assert_eq!(
            serde_json::to_string(&stats).unwrap(),
            r#"{"pending":2,"in_review":0,"escalated":0,"decided":0,"by_decision":{"confirm":0,"amend":0,"reject":0},"position":5}"#
        );
    }

    fn fold(cases: &mut Cases, stats: &mut Stats, env: &events::EventEnvelope) {
        let id = crate::streams::case_id_of(env).unwrap();
        let before = cases.get(id).map(CaseView::tally);
        if let Some(after) = cases.apply(env) {
            stats.apply_case(before, after);
        }
    }
}
