//! What each reviewer has decided: counts by kind and the time of the latest decision. A history
//! of acts, so a reopening does not take a decision back.

use std::collections::BTreeMap;

use events::domain::case::CaseEvent;
use events::domain::{Decision, DomainEvent};
use events::{EventEnvelope, Timestamp};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One reviewer's decisions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewerStats {
    pub confirm: u64,
    pub amend: u64,
    pub reject: u64,
    pub escalate: u64,
    pub last_decision_at: Option<Timestamp>,
}

impl ReviewerStats {
    pub fn total(&self) -> u64 {
        self.confirm + self.amend + self.reject + self.escalate
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewerActivity {
    by_reviewer: BTreeMap<Uuid, ReviewerStats>,
}

impl ReviewerActivity {
    pub fn get(&self, reviewer_id: Uuid) -> Option<&ReviewerStats> {
        self.by_reviewer.get(&reviewer_id)
    }

    /// Every reviewer who decided something, by id.
    pub fn iter(&self) -> impl Iterator<Item = (&Uuid, &ReviewerStats)> {
        self.by_reviewer.iter()
    }

    /// Folds one event; only decisions and escalations count.
    pub fn apply(&mut self, env: &EventEnvelope) {
        let (reviewer_id, decision) = match &env.event {
            DomainEvent::Case(CaseEvent::Decided(e)) => (e.reviewer_id, e.decision),
            DomainEvent::Case(CaseEvent::Escalated(e)) => (e.reviewer_id, Decision::Escalate),
            _ => return,
        };
        let stats = self.by_reviewer.entry(reviewer_id).or_default();
        let count = match decision {
            Decision::Confirm => &mut stats.confirm,
            Decision::Amend => &mut stats.amend,
            Decision::Reject => &mut stats.reject,
            Decision::Escalate => &mut stats.escalate,
        };
        *count = count.saturating_add(1);
        let at = env.record.data.recorded_at;
        stats.last_decision_at = Some(stats.last_decision_at.map_or(at, |t| t.max(at)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::case_env;
    use events::domain::case::{CaseDecided, CaseEscalated, CaseReopened};
    use events::domain::Culpability;

    #[test]
    fn decisions_and_escalations_count_per_reviewer() {
        let case = Uuid::from_u128(1);
        let (ada, bob) = (Uuid::from_u128(2), Uuid::from_u128(3));
        let decided = |by, decision, culpability| {
            CaseEvent::Decided(CaseDecided {
                reviewer_id: by,
                decision,
                final_culpability: culpability,
                notes: Some("n".into()),
            })
        };
        let events = [
            CaseEvent::Escalated(CaseEscalated {
                reviewer_id: ada,
                notes: "hard".into(),
            }),
            decided(bob, Decision::Amend, Some(Culpability::Negligently)),
            CaseEvent::Reopened(CaseReopened {
                reopened_by: bob,
                reason: "again".into(),
            }),
            decided(ada, Decision::Confirm, Some(Culpability::Knowingly)),
        ];
        let mut activity = ReviewerActivity::default();
        for (n, e) in events.into_iter().enumerate() {
            let n = n as u64 + 2;
            activity.apply(&case_env(case, n, n, e));
        }
        let a = activity.get(ada).unwrap();
        assert_eq!((a.escalate, a.confirm, a.total()), (1, 1, 2));
        assert_eq!(a.last_decision_at, Some(Timestamp::from_micros(5_000_000)));
        let b = activity.get(bob).unwrap();
        assert_eq!((b.amend, b.total()), (1, 1));
        assert_eq!(b.last_decision_at, Some(Timestamp::from_micros(3_000_000)));
        assert_eq!(activity.iter().count(), 2);
    }
}
