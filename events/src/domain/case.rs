//! The case aggregate: a classifier's assessment going through human review.
//!
//! ```text
//! pending ──claim──▶ in_review ──confirm/amend/reject──▶ decided ──reopen──▶ pending
//!    ▲                  │  │
//!    └──release/lease───┘  └──escalate──▶ escalated ──claim (senior)──▶ in_review
//! ```
//!
//! A senior's claim on an escalated case that is released (or whose lease runs out) returns the
//! case to `escalated`, not `pending`, so an escalation is never lost by walking away from it.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::{DomainError, Validator};
use super::values::*;
use crate::Timestamp;

/// The stream that holds one case's events.
pub fn stream_name(case_id: Uuid) -> String {
    format!("case-{case_id}")
}

/// What the classifier saw.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    pub culpability: Culpability,
    pub confidence: f64,
    pub rationale: String,
}

// ---- events -------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CaseSubmitted {
    pub case_id: Uuid,
    pub subject_ref: String,
    pub excerpt: String,
    pub assessment: Assessment,
    pub priority: Priority,
    pub submitted_by: Uuid,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseClaimed {
    pub reviewer_id: Uuid,
    pub lease_expires_at: Timestamp,
}

/// Why a claim ended without a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseReason {
    Released,
    LeaseExpired,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseReleased {
    pub reviewer_id: Uuid,
    pub reason: ReleaseReason,
}

/// A final decision: `confirm`, `amend` or `reject` (an escalation is [`CaseEscalated`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseDecided {
    pub reviewer_id: Uuid,
    pub decision: Decision,
    /// The culpability that stands after the decision; `None` for a rejection.
    pub final_culpability: Option<Culpability>,
    pub notes: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseEscalated {
    pub reviewer_id: Uuid,
    pub notes: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseReopened {
    pub reopened_by: Uuid,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum CaseEvent {
    Submitted(CaseSubmitted),
    Claimed(CaseClaimed),
    Released(CaseReleased),
    Decided(CaseDecided),
    Escalated(CaseEscalated),
    Reopened(CaseReopened),
}

// ---- commands -----------------------------------------------------------------------------

/// What a classifier submits.
#[derive(Clone, Debug, PartialEq)]
pub struct Submission {
    pub case_id: Uuid,
    pub subject_ref: String,
    pub excerpt: String,
    pub assessment: Assessment,
    pub priority: Priority,
}

#[derive(Clone, Debug, PartialEq)]
pub enum CaseAction {
    Submit(Submission),
    /// Claim for review, holding the case for `lease`. The holder may claim again to renew.
    Claim {
        lease: Duration,
    },
    Release,
    /// Sent by the server's lease timer; refused until the lease has run out.
    ExpireClaim,
    Decide {
        decision: Decision,
        final_culpability: Option<Culpability>,
        notes: Option<String>,
    },
    Reopen {
        reason: String,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct CaseCommand {
    pub actor: Actor,
    pub at: Timestamp,
    pub action: CaseAction,
}

// ---- state --------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    Pending,
    InReview,
    Escalated,
    Decided,
}

impl CaseStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            CaseStatus::Pending => "pending",
            CaseStatus::InReview => "in_review",
            CaseStatus::Escalated => "escalated",
            CaseStatus::Decided => "decided",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    pub reviewer_id: Uuid,
    pub expires_at: Timestamp,
}

/// What the decider needs to know of a case.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum CaseState {
    #[default]
    Unsubmitted,
    Submitted {
        status: CaseStatus,
        assessed: Culpability,
        claim: Option<Claim>,
        /// Escalated and not decided since: only a senior reviewer may claim or decide it.
        escalated: bool,
    },
}

pub fn evolve(state: CaseState, event: &CaseEvent) -> CaseState {
    use CaseState::*;
    match (state, event) {
        (Unsubmitted, CaseEvent::Submitted(e)) => Submitted {
            status: CaseStatus::Pending,
            assessed: e.assessment.culpability,
            claim: None,
            escalated: false,
        },
        (
            Submitted {
                status,
                assessed,
                claim,
                escalated,
            },
            event,
        ) => {
            let (status, claim, escalated) = match event {
                CaseEvent::Claimed(e) => (
                    CaseStatus::InReview,
                    Some(Claim {
                        reviewer_id: e.reviewer_id,
                        expires_at: e.lease_expires_at,
                    }),
                    escalated,
                ),
                CaseEvent::Released(_) if escalated => (CaseStatus::Escalated, None, true),
                CaseEvent::Released(_) => (CaseStatus::Pending, None, false),
                CaseEvent::Escalated(_) => (CaseStatus::Escalated, None, true),
                CaseEvent::Decided(_) => (CaseStatus::Decided, None, false),
                CaseEvent::Reopened(_) => (CaseStatus::Pending, None, false),
                // A second submission cannot be recorded (decide refuses it); ignore it.
                CaseEvent::Submitted(_) => (status, claim, escalated),
            };
            Submitted {
                status,
                assessed,
                claim,
                escalated,
            }
        }
        // Events are facts: an event that makes no sense here changes nothing.
        (state, _) => state,
    }
}

pub fn decide(state: &CaseState, cmd: CaseCommand) -> Result<Vec<CaseEvent>, DomainError> {
    let CaseCommand { actor, at, action } = cmd;
    let (status, assessed, claim, escalated) = match (state, &action) {
        (CaseState::Unsubmitted, CaseAction::Submit(s)) => return submit(&actor, s.clone()),
        (CaseState::Unsubmitted, _) => return Err(DomainError::NotFound),
        (CaseState::Submitted { .. }, CaseAction::Submit(_)) => {
            return Err(DomainError::AlreadyExists)
        }
        (
            CaseState::Submitted {
                status,
                assessed,
                claim,
                escalated,
            },
            _,
        ) => (*status, *assessed, *claim, *escalated),
    };
    let refuse = |action: &'static str| DomainError::InvalidTransition {
        action,
        state: status.as_str(),
    };
    match action {
        CaseAction::Submit(_) => Err(DomainError::AlreadyExists),
        CaseAction::Claim { lease } => {
            if lease < Duration::from_millis(1) {
                return Err(validation("lease", "must be at least 1ms"));
            }
            let claimed = CaseEvent::Claimed(CaseClaimed {
                reviewer_id: actor.user_id,
                lease_expires_at: at.plus(lease),
            });
            match (status, claim) {
                (CaseStatus::Pending, _) => {
                    require_any(&actor, &[Role::Reviewer, Role::SeniorReviewer])?;
                    Ok(vec![claimed])
                }
                (CaseStatus::Escalated, _) => {
                    require_any(&actor, &[Role::SeniorReviewer])?;
                    Ok(vec![claimed])
                }
                (CaseStatus::InReview, Some(c)) if c.reviewer_id == actor.user_id => {
                    // Renewing is claiming again: it needs the roles a claim needs, now, so a
                    // reviewer whose role was removed cannot keep a case.
                    require_any(&actor, reviewer_roles(escalated))?;
                    Ok(vec![claimed])
                }
                (CaseStatus::InReview, Some(c)) if at >= c.expires_at => {
                    require_any(&actor, reviewer_roles(escalated))?;
                    Ok(vec![
                        CaseEvent::Released(CaseReleased {
                            reviewer_id: c.reviewer_id,
                            reason: ReleaseReason::LeaseExpired,
                        }),
                        claimed,
                    ])
                }
                _ => Err(refuse("claim")),
            }
        }
        CaseAction::Release => match claim {
            Some(c) if status == CaseStatus::InReview => {
                if c.reviewer_id != actor.user_id && !actor.has(Role::Admin) {
                    return Err(DomainError::Forbidden(
                        "only the claim holder may release it",
                    ));
                }
                Ok(vec![CaseEvent::Released(CaseReleased {
                    reviewer_id: c.reviewer_id,
                    reason: ReleaseReason::Released,
                })])
            }
            _ => Err(refuse("release")),
        },
        CaseAction::ExpireClaim => match claim {
            Some(c) if status == CaseStatus::InReview && at >= c.expires_at => {
                Ok(vec![CaseEvent::Released(CaseReleased {
                    reviewer_id: c.reviewer_id,
                    reason: ReleaseReason::LeaseExpired,
                })])
            }
            _ => Err(refuse("expire the claim of")),
        },
        CaseAction::Decide {
            decision,
            final_culpability,
            notes,
        } => {
            let Some(c) = claim.filter(|_| status == CaseStatus::InReview) else {
                return Err(refuse("decide"));
            };
            if c.reviewer_id != actor.user_id {
                return Err(DomainError::Forbidden("only the claim holder may decide"));
            }
            // The holder must still be a reviewer: roles come from the user as they are now
            // (the command's actor), not as they were when the case was claimed.
            require_any(&actor, &[Role::Reviewer, Role::SeniorReviewer])?;
            if at >= c.expires_at {
                return Err(DomainError::InvalidTransition {
                    action: "decide",
                    state: "claimed with an expired lease",
                });
            }
            if escalated && !actor.has(Role::SeniorReviewer) {
                return Err(DomainError::Forbidden(
                    "only a senior reviewer may decide an escalated case",
                ));
            }
            decision_event(
                actor.user_id,
                assessed,
                escalated,
                decision,
                final_culpability,
                notes,
            )
            .map(|e| vec![e])
        }
        CaseAction::Reopen { reason } => {
            if status != CaseStatus::Decided {
                return Err(refuse("reopen"));
            }
            require_any(&actor, &[Role::Admin, Role::Auditor])?;
            let mut v = Validator::new();
            v.length("reason", &reason, 1, NOTES_MAX);
            v.finish()?;
            Ok(vec![CaseEvent::Reopened(CaseReopened {
                reopened_by: actor.user_id,
                reason,
            })])
        }
    }
}

fn submit(actor: &Actor, s: Submission) -> Result<Vec<CaseEvent>, DomainError> {
    require_any(actor, &[Role::Classifier, Role::Admin])?;
    let mut v = Validator::new();
    v.length("subject_ref", &s.subject_ref, 1, SUBJECT_REF_MAX);
    v.length("excerpt", &s.excerpt, 1, EXCERPT_MAX);
    v.length(
        "assessment.rationale",
        &s.assessment.rationale,
        0,
        RATIONALE_MAX,
    );
    let c = s.assessment.confidence;
    if !(0.0..=1.0).contains(&c) {
        v.error("assessment.confidence", "must be a number from 0 to 1");
    }
    v.finish()?;
    Ok(vec![CaseEvent::Submitted(CaseSubmitted {
        case_id: s.case_id,
        subject_ref: s.subject_ref,
        excerpt: s.excerpt,
        assessment: s.assessment,
        priority: s.priority,
        submitted_by: actor.user_id,
    })])
}

fn decision_event(
    reviewer_id: Uuid,
    assessed: Culpability,
    escalated: bool,
    decision: Decision,
    final_culpability: Option<Culpability>,
    notes: Option<String>,
) -> Result<CaseEvent, DomainError> {
    let mut v = Validator::new();
    let notes = notes.filter(|n| !n.trim().is_empty());
    if let Some(n) = &notes {
        v.length("notes", n, 0, NOTES_MAX);
    } else if decision != Decision::Confirm {
        v.error("notes", format!("is required for {decision}"));
    }
    let final_culpability = match (decision, final_culpability) {
        (Decision::Confirm, None) => Some(assessed),
        (Decision::Confirm, Some(f)) if f == assessed => Some(f),
        (Decision::Confirm, Some(_)) => {
            v.error(
                "final_culpability",
                "must equal the assessed culpability for confirm (use amend)",
            );
            None
        }
        (Decision::Amend, None) => {
            v.error("final_culpability", "is required for amend");
            None
        }
        (Decision::Amend, Some(f)) if f == assessed => {
            v.error(
                "final_culpability",
                "must differ from the assessed culpability (use confirm)",
            );
            None
        }
        (Decision::Amend, Some(f)) => Some(f),
        (Decision::Reject | Decision::Escalate, Some(_)) => {
            v.error(
                "final_culpability",
                format!("is not allowed for {decision}"),
            );
            None
        }
        (Decision::Reject | Decision::Escalate, None) => None,
    };
    v.finish()?;
    if decision == Decision::Escalate {
        if escalated {
            return Err(DomainError::InvalidTransition {
                action: "escalate",
                state: "escalated already",
            });
        }
        return Ok(CaseEvent::Escalated(CaseEscalated {
            reviewer_id,
            notes: notes.unwrap_or_default(),
        }));
    }
    Ok(CaseEvent::Decided(CaseDecided {
        reviewer_id,
        decision,
        final_culpability,
        notes,
    }))
}

/// The roles that may claim a case: senior reviewers only once it was escalated.
fn reviewer_roles(escalated: bool) -> &'static [Role] {
    if escalated {
        &[Role::SeniorReviewer]
    } else {
        &[Role::Reviewer, Role::SeniorReviewer]
    }
}

fn require_any(actor: &Actor, roles: &[Role]) -> Result<(), DomainError> {
    if actor.has_any(roles) {
        Ok(())
    } else {
        Err(DomainError::Forbidden("your roles do not allow this"))
    }
}

fn validation(field: &str, message: &str) -> DomainError {
    DomainError::Validation(vec![super::FieldError::new(field, message)])
}

#[cfg(test)]
#[path = "case_tests.rs"]
mod tests;
