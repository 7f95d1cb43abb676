//! Every case by id, decided ones included: what `GET /api/v1/cases/{id}` answers.
//!
//! Each case is behind an `Arc`, shared with the queue's index of undecided cases and with the
//! read views handed to snapshot builders: an event changes its case in place when nobody else
//! holds it, and a copy of it when a view still does (copy-on-write).

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Arc;

use events::domain::case::CaseEvent;
use events::domain::DomainEvent;
use events::EventEnvelope;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::case_view::CaseView;
use crate::streams::case_id_of;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Cases {
    /// A hash map: a million cases are looked up on every event of a replay. Each case is
    /// behind an `Arc` (shared with read views), so the table holds small entries rather than
    /// 250-byte cases: a snapshot's load writes the cases one after the other instead of all over
    /// a 130 MB table, and the table is sized once from the snapshot's stated length.
    #[serde(deserialize_with = "crate::presized::hash_map")]
    by_id: HashMap<Uuid, Arc<CaseView>>,
}

impl Cases {
    pub fn get(&self, id: Uuid) -> Option<&CaseView> {
        self.by_id.get(&id).map(|c| &**c)
    }

    /// The case itself, shared: for a reader that keeps it while later events change the case.
    pub fn shared(&self, id: Uuid) -> Option<&Arc<CaseView>> {
        self.by_id.get(&id)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Every case, by id.
    pub fn iter(&self) -> impl Iterator<Item = &CaseView> {
        self.by_id.values().map(|c| &**c)
    }

    /// Folds one event and returns the case after it, or `None` when the event is not about a
    /// known case (another aggregate's event, or a case event before its submission).
    pub fn apply(&mut self, env: &EventEnvelope) -> Option<&Arc<CaseView>> {
        let DomainEvent::Case(event) = &env.event else {
            return None;
        };
        let id = case_id_of(env)?;
        match (self.by_id.entry(id), event) {
            (Entry::Vacant(slot), CaseEvent::Submitted(e)) => {
                Some(slot.insert(Arc::new(CaseView::submitted(id, e, env))))
            }
            // An event for a case never submitted: nothing to change.
            (Entry::Vacant(_), _) => None,
            (Entry::Occupied(slot), _) => {
                let view = slot.into_mut();
                Arc::make_mut(view).apply(env);
                Some(view)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{case_env, env, submitted};
    use events::domain::case::{CaseClaimed, CaseStatus};
    use events::domain::user::{UserEvent, UserRolesChanged};
    use events::domain::{Priority, Role};
    use events::Timestamp;

    #[test]
    fn cases_are_found_by_id_and_strangers_are_ignored() {
        let id = Uuid::from_u128(1);
        let mut cases = Cases::default();
        let claim = CaseEvent::Claimed(CaseClaimed {
            reviewer_id: Uuid::from_u128(2),
            lease_expires_at: Timestamp::from_micros(1),
        });
        // A claim before the submission is not a case yet.
        assert!(cases.apply(&case_env(id, 1, 1, claim.clone())).is_none());
        let roles = UserEvent::RolesChanged(UserRolesChanged {
            roles: vec![Role::Admin],
        });
        assert!(cases.apply(&env("user-x", 1, 2, roles.into())).is_none());
        assert!(cases.is_empty());

        let after = cases.apply(&case_env(id, 1, 3, submitted(id, Priority::High)));
        assert_eq!(after.map(|c| c.position), Some(3));
        let after = cases.apply(&case_env(id, 2, 4, claim));
        assert_eq!(
            after.map(|c| c.adjudication_status),
            Some(CaseStatus::InReview)
        );
        assert_eq!(cases.get(id).map(|c| c.version), Some(2));
        assert_eq!(cases.len(), 1);
        assert!(cases.get(Uuid::from_u128(9)).is_none());
    }

    #[test]
    fn a_case_is_changed_in_place_unless_someone_holds_it() {
        let id = Uuid::from_u128(1);
        let mut cases = Cases::default();
        cases.apply(&case_env(id, 1, 1, submitted(id, Priority::Normal)));
        let claim = |version, position| {
            let claim = CaseEvent::Claimed(CaseClaimed {
                reviewer_id: Uuid::from_u128(2),
                lease_expires_at: Timestamp::from_micros(position as i64),
            });
            case_env(id, version, position, claim)
        };
        let before = Arc::as_ptr(cases.shared(id).unwrap());
        cases.apply(&claim(2, 2));
        assert_eq!(
            Arc::as_ptr(cases.shared(id).unwrap()),
            before,
            "nobody held it"
        );

        // A reader holds the case as of position 2: the next event copies it, and the reader
        // still sees it as it was.
        let held = cases.shared(id).unwrap().clone();
        cases.apply(&claim(3, 3));
        assert_eq!(held.position, 2);
        assert_eq!(cases.get(id).map(|c| c.position), Some(3));
        assert_ne!(Arc::as_ptr(cases.shared(id).unwrap()), Arc::as_ptr(&held));
    }
}
