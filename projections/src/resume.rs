//! The updates a resume rebuilds from the log: for `audit` and `case:<id>`, the same `update`
//! a live push of the event was, folded from the events alone.
//!
//! `audit` needs no state: its update is the event itself ([`audit_update`]). `case:<id>` needs
//! the case before the event, which is the fold of that case's own stream; so a resume folds
//! each wanted case's events up to `since` quietly ([`ResumeFold::seed`]) and then turns every
//! later event into updates ([`ResumeFold::apply`]) with the function the projector uses
//! ([`case_update`]). `queue` and `stats` depend on every case, and are not served from here.

use std::collections::BTreeSet;

use events::EventEnvelope;
use uuid::Uuid;

use crate::cases::Cases;
use crate::projections::{audit_update, case_update};
use crate::streams::case_id_of;
use crate::updates::{Topic, Update};

/// The topics a resume serves from the log, and the state they need.
#[derive(Debug, Default)]
pub struct ResumeFold {
    audit: bool,
    wanted: BTreeSet<Uuid>,
    /// Only the wanted cases.
    cases: Cases,
}

impl ResumeFold {
    /// The topics among `topics` that this fold serves (`audit`, `case:<id>`); the others are
    /// ignored.
    pub fn new(topics: &[Topic]) -> Self {
        let mut fold = ResumeFold::default();
        for topic in topics {
            match topic {
                Topic::Audit => fold.audit = true,
                Topic::Case(id) => {
                    fold.wanted.insert(*id);
                }
                Topic::Queue | Topic::Stats => {}
            }
        }
        fold
    }

    /// Whether `topic` is served from the log.
    pub fn serves(topic: &Topic) -> bool {
        matches!(topic, Topic::Audit | Topic::Case(_))
    }

    /// True when every event is wanted (`audit`): read the whole log, not the cases' streams.
    pub fn wants_every_event(&self) -> bool {
        self.audit
    }

    /// The cases whose streams hold the events wanted (when not every event is).
    pub fn case_ids(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.wanted.iter().copied()
    }

    /// Folds an event at or before the resume's `since`: the state it leaves, no updates.
    pub fn seed(&mut self, env: &EventEnvelope) {
        if self.is_wanted_case(env).is_some() {
            self.cases.apply(env);
        }
    }

    /// The updates of an event after `since`, in the projector's order (`case:<id>`, then
    /// `audit`), for the topics of this fold only.
    pub fn apply(&mut self, env: &EventEnvelope) -> Vec<Update> {
        let mut updates = Vec::new();
        if self.is_wanted_case(env).is_some() {
            if let Some(after) = self.cases.apply(env) {
                updates.push(case_update(env.position(), env.event.type_name(), after));
            }
        }
        if self.audit {
            updates.push(audit_update(env));
        }
        updates
    }

    fn is_wanted_case(&self, env: &EventEnvelope) -> Option<Uuid> {
        case_id_of(env).filter(|id| self.wanted.contains(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{case_env, submitted};
    use crate::Projections;
    use events::domain::case::{CaseClaimed, CaseEvent};
    use events::domain::Priority;
    use events::Timestamp;

    #[test]
    fn rebuilds_exactly_the_updates_the_projector_pushed() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        let claimed = || {
            CaseEvent::Claimed(CaseClaimed {
                reviewer_id: Uuid::from_u128(9),
                lease_expires_at: Timestamp::from_micros(99),
            })
        };
        let log = vec![
            case_env(a, 1, 1, submitted(a, Priority::Normal)),
            case_env(b, 1, 2, submitted(b, Priority::High)),
            case_env(a, 2, 3, claimed()),
            case_env(b, 2, 4, claimed()),
        ];
        let mut live = Projections::new();
        let pushed: Vec<Update> = log.iter().flat_map(|e| live.apply(e)).collect();
        let topics = [Topic::Audit, Topic::Case(a)];
        for since in 0..=4u64 {
            let mut fold = ResumeFold::new(&topics);
            let mut rebuilt = Vec::new();
            for env in &log {
                if env.position() <= since {
                    fold.seed(env);
                } else {
                    rebuilt.extend(fold.apply(env));
                }
            }
            let expected: Vec<&Update> = pushed
                .iter()
                .filter(|u| u.position > since && topics.contains(&u.topic))
                .collect();
            assert_eq!(
                rebuilt.iter().collect::<Vec<_>>(),
                expected,
                "since {since}"
            );
        }
    }

    #[test]
    fn serves_audit_and_cases_only() {
        assert!(ResumeFold::serves(&Topic::Audit));
        assert!(ResumeFold::serves(&Topic::Case(Uuid::from_u128(1))));
        assert!(!ResumeFold::serves(&Topic::Queue));
        assert!(!ResumeFold::serves(&Topic::Stats));
        let fold = ResumeFold::new(&[Topic::Queue, Topic::Case(Uuid::from_u128(1))]);
        assert!(!fold.wants_every_event());
        assert_eq!(fold.case_ids().count(), 1);
    }
}
