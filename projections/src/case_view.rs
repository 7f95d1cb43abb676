//! One case as every answer and push shows it, and how one event changes it.
//!
//! The field names and their order are the protocol's; the same struct goes into snapshots
//! (bincode), so it stays plain: no skipped, flattened or untagged fields.

use events::domain::case::{Assessment, CaseEvent, CaseStatus, CaseSubmitted};
use events::domain::{Culpability, Decision, DomainEvent, Priority};
use events::{EventEnvelope, Timestamp};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A case after the events folded so far.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CaseView {
    pub id: Uuid,
    pub subject_ref: String,
    pub excerpt: String,
    pub assessment: Assessment,
    pub priority: Priority,
    pub adjudication_status: CaseStatus,
    pub decision: Option<Decision>,
    pub final_culpability: Option<Culpability>,
    pub reviewer_id: Option<Uuid>,
    pub reviewer_notes: Option<String>,
    pub claimed_by: Option<Uuid>,
    pub claim_expires_at: Option<Timestamp>,
    pub submitted_at: Timestamp,
    pub decided_at: Option<Timestamp>,
    /// The case stream's version after the last event applied.
    pub version: u64,
    /// The global position of the last event applied.
    pub position: u64,
}

/// What the counters of [`crate::Stats`] need to know of a case: its status and decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CaseTally {
    pub status: CaseStatus,
    pub decision: Option<Decision>,
}

impl CaseView {
    /// A case as its submission creates it: pending, with nothing decided.
    pub fn submitted(id: Uuid, e: &CaseSubmitted, env: &EventEnvelope) -> Self {
        CaseView {
            id,
            subject_ref: e.subject_ref.clone(),
            excerpt: e.excerpt.clone(),
            assessment: e.assessment.clone(),
            priority: e.priority,
            adjudication_status: CaseStatus::Pending,
            decision: None,
            final_culpability: None,
            reviewer_id: None,
            reviewer_notes: None,
            claimed_by: None,
            claim_expires_at: None,
            submitted_at: env.record.data.recorded_at,
            decided_at: None,
            version: env.record.version,
            position: env.record.position,
        }
    }

    pub fn tally(&self) -> CaseTally {
        CaseTally {
            status: self.adjudication_status,
            decision: self.decision,
        }
    }

    /// Whether the case was escalated and not decided since. This is exactly when its decision
    /// reads `escalate`: an escalation sets it, a claim and a release keep it, and a decision or
    /// a reopening replaces it.
    pub fn is_escalated(&self) -> bool {
        self.decision == Some(Decision::Escalate)
    }

    /// Folds one event of this case's stream into the view, mirroring
    /// [`events::domain::case::evolve`]. Events of other aggregates change nothing.
    pub fn apply(&mut self, env: &EventEnvelope) {
        let DomainEvent::Case(event) = &env.event else {
            return;
        };
        match event {
            // A second submission cannot be recorded (the decider refuses it); like `evolve`,
            // treat it as a return to pending and keep what the first one said.
            CaseEvent::Submitted(_) => {
                self.adjudication_status = CaseStatus::Pending;
                self.clear_claim();
            }
            CaseEvent::Claimed(e) => {
                self.adjudication_status = CaseStatus::InReview;
                self.claimed_by = Some(e.reviewer_id);
                self.claim_expires_at = Some(e.lease_expires_at);
            }
            CaseEvent::Released(_) => {
                self.adjudication_status = if self.is_escalated() {
                    CaseStatus::Escalated
                } else {
                    CaseStatus::Pending
                };
                self.clear_claim();
            }
            CaseEvent::Escalated(e) => {
                self.adjudication_status = CaseStatus::Escalated;
                self.decision = Some(Decision::Escalate);
                self.final_culpability = None;
                self.reviewer_id = Some(e.reviewer_id);
                self.reviewer_notes = Some(e.notes.clone());
                self.clear_claim();
            }
            CaseEvent::Decided(e) => {
                self.adjudication_status = CaseStatus::Decided;
                self.decision = Some(e.decision);
                self.final_culpability = e.final_culpability;
                self.reviewer_id = Some(e.reviewer_id);
                self.reviewer_notes = e.notes.clone();
                self.decided_at = Some(env.record.data.recorded_at);
                self.clear_claim();
            }
            CaseEvent::Reopened(_) => {
                self.adjudication_status = CaseStatus::Pending;
                self.decision = None;
                self.final_culpability = None;
                self.reviewer_id = None;
                self.reviewer_notes = None;
                self.decided_at = None;
                self.clear_claim();
            }
        }
        self.version = env.record.version;
        self.position = env.record.position;
    }

    fn clear_claim(&mut self) {
        self.claimed_by = None;
        self.claim_expires_at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{case_env, submitted};
    use events::domain::case::{
        CaseClaimed, CaseDecided, CaseEscalated, CaseReleased, CaseReopened, ReleaseReason,
    };

    const REVIEWER: Uuid = Uuid::from_u128(0xaa);
    const SENIOR: Uuid = Uuid::from_u128(0xbb);

    fn claimed(by: Uuid) -> CaseEvent {
        CaseEvent::Claimed(CaseClaimed {
            reviewer_id: by,
            lease_expires_at: Timestamp::from_micros(9_000_000),
        })
    }

    fn released(by: Uuid) -> CaseEvent {
        CaseEvent::Released(CaseReleased {
            reviewer_id: by,
            reason: ReleaseReason::Released,
        })
    }

    fn fold(events: Vec<CaseEvent>) -> CaseView {
        let id = Uuid::from_u128(1);
        let first = case_env(id, 1, 1, submitted(id, Priority::Normal));
        let DomainEvent::Case(CaseEvent::Submitted(s)) = &first.event else {
            panic!("not a submission")
        };
        let mut view = CaseView::submitted(id, s, &first);
        for (i, e) in events.into_iter().enumerate() {
            let n = i as u64 + 2;
            view.apply(&case_env(id, n, n * 10, e));
        }
        view
    }

    #[test]
    fn json_has_exactly_the_protocol_fields_in_order() {
        let view = fold(vec![]);
        let json = serde_json::to_string(&view).unwrap();
        let id = Uuid::from_u128(1);
        assert_eq!(
            json,
            format!(
                concat!(
                    r#"{{"id":"{id}","subject_ref":"subject","excerpt":"excerpt","#,
                    r#""assessment":{{"culpability":"knowingly","confidence":0.87,"rationale":"why"}},"#,
                    r#""priority":"normal","adjudication_status":"pending","decision":null,"#,
                    r#""final_culpability":null,"reviewer_id":null,"reviewer_notes":null,"#,
                    r#""claimed_by":null,"claim_expires_at":null,"#,
                    r#""submitted_at":"1970-01-01T00:00:01.000000Z","decided_at":null,"#,
                    r#""version":1,"position":1}}"#
                ),
                id = id
            )
        );
        let back: CaseView = serde_json::from_str(&json).unwrap();
        assert_eq!(back, view);
    }

    #[test]
    fn claim_then_decide_fills_the_decision_and_clears_the_claim() {
        let claimed_view = fold(vec![claimed(REVIEWER)]);
        assert_eq!(claimed_view.adjudication_status, CaseStatus::InReview);
        assert_eq!(claimed_view.claimed_by, Some(REVIEWER));
        assert_eq!(
            claimed_view.claim_expires_at,
            Some(Timestamp::from_micros(9_000_000))
        );

        let decided = fold(vec![
            claimed(REVIEWER),
            CaseEvent::Decided(CaseDecided {
                reviewer_id: REVIEWER,
                decision: Decision::Amend,
                final_culpability: Some(Culpability::Recklessly),
                notes: Some("reckless at most".into()),
            }),
        ]);
        assert_eq!(decided.adjudication_status, CaseStatus::Decided);
        assert_eq!(decided.decision, Some(Decision::Amend));
        assert_eq!(decided.final_culpability, Some(Culpability::Recklessly));
        assert_eq!(decided.reviewer_id, Some(REVIEWER));
        assert_eq!(decided.reviewer_notes.as_deref(), Some("reckless at most"));
        assert_eq!(decided.decided_at, Some(Timestamp::from_micros(30_000_000)));
        assert_eq!(decided.claimed_by, None);
        assert_eq!(decided.claim_expires_at, None);
        assert_eq!((decided.version, decided.position), (3, 30));
    }

    #[test]
    fn a_released_escalation_returns_to_escalated_and_a_reopening_clears_everything() {
        let escalate = CaseEvent::Escalated(CaseEscalated {
            reviewer_id: REVIEWER,
            notes: "senior please".into(),
        });
        let view = fold(vec![
            claimed(REVIEWER),
            escalate.clone(),
            claimed(SENIOR),
            released(SENIOR),
        ]);
        assert_eq!(view.adjudication_status, CaseStatus::Escalated);
        assert_eq!(view.decision, Some(Decision::Escalate));
        assert_eq!(view.reviewer_id, Some(REVIEWER));
        assert_eq!(view.reviewer_notes.as_deref(), Some("senior please"));
        assert_eq!(view.claimed_by, None);

        let plain = fold(vec![claimed(REVIEWER), released(REVIEWER)]);
        assert_eq!(plain.adjudication_status, CaseStatus::Pending);

        let reopened = fold(vec![
            claimed(REVIEWER),
            CaseEvent::Decided(CaseDecided {
                reviewer_id: REVIEWER,
                decision: Decision::Reject,
                final_culpability: None,
                notes: Some("no".into()),
            }),
            CaseEvent::Reopened(CaseReopened {
                reopened_by: SENIOR,
                reason: "look again".into(),
            }),
        ]);
        let fresh = fold(vec![]);
        assert_eq!(reopened.adjudication_status, CaseStatus::Pending);
        assert_eq!(
            CaseView {
                version: fresh.version,
                position: fresh.position,
                ..reopened
            },
            fresh
        );
    }
}
