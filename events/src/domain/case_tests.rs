//! Tests of the case aggregate's `decide` and `evolve`: every transition of the life cycle in
//! `case.rs`, who may cause it, what it records and why it is refused, as pure function calls.
//! A property test at the end drives random commands from random actors through the decider.

use std::time::Duration;

use proptest::prelude::*;
use uuid::Uuid;

use super::*;
use crate::domain::FieldError;

// ---- helpers ------------------------------------------------------------------------------

/// The lease every test claims with, unless it is about the lease.
const LEASE: Duration = Duration::from_secs(900);
/// The culpability the sample submission assesses.
const ASSESSED: Culpability = Culpability::Recklessly;

/// A point in time `seconds` after the epoch.
fn at(seconds: i64) -> Timestamp {
    Timestamp::from_micros(seconds * 1_000_000)
}

fn user(id: u128, roles: &[Role]) -> Actor {
    Actor::new(Uuid::from_u128(id), roles.to_vec())
}

fn classifier() -> Actor {
    user(1, &[Role::Classifier])
}

fn admin() -> Actor {
    user(2, &[Role::Admin])
}

fn auditor() -> Actor {
    user(3, &[Role::Auditor])
}

fn reviewer() -> Actor {
    user(10, &[Role::Reviewer])
}

fn other_reviewer() -> Actor {
    user(11, &[Role::Reviewer])
}

fn senior() -> Actor {
    user(20, &[Role::SeniorReviewer])
}

fn other_senior() -> Actor {
    user(21, &[Role::SeniorReviewer])
}

fn case_id() -> Uuid {
    Uuid::from_u128(0xca5e)
}

fn submission() -> Submission {
    Submission {
        case_id: case_id(),
        subject_ref: "docket/2026/0042".into(),
        excerpt: "He knew the bridge was closed and drove on anyway.".into(),
        assessment: Assessment {
            culpability: ASSESSED,
            confidence: 0.8,
            rationale: "Conscious disregard of a known risk.".into(),
        },
        priority: Priority::High,
    }
}

/// Runs one command against `state`.
fn run(
    state: &CaseState,
    actor: &Actor,
    t: i64,
    action: CaseAction,
) -> Result<Vec<CaseEvent>, DomainError> {
    decide(
        state,
        CaseCommand {
            actor: actor.clone(),
            at: at(t),
            action,
        },
    )
}

/// Folds events into a state with `evolve`, from `state`.
fn fold_onto(state: CaseState, events: &[CaseEvent]) -> CaseState {
    events.iter().fold(state, evolve)
}

/// Folds events into a fresh state with `evolve`.
fn fold(events: &[CaseEvent]) -> CaseState {
    fold_onto(CaseState::default(), events)
}

/// Runs a command that must be accepted and returns the state after its events.
fn step(state: CaseState, actor: &Actor, t: i64, action: CaseAction) -> CaseState {
    let events = run(&state, actor, t, action.clone())
        .unwrap_or_else(|e| panic!("{action:?} by {actor:?} at {t}s was refused: {e}"));
    fold_onto(state, &events)
}

fn claim_action() -> CaseAction {
    CaseAction::Claim { lease: LEASE }
}

fn decide_action(
    decision: Decision,
    final_culpability: Option<Culpability>,
    notes: Option<&str>,
) -> CaseAction {
    CaseAction::Decide {
        decision,
        final_culpability,
        notes: notes.map(str::to_owned),
    }
}

fn confirm() -> CaseAction {
    decide_action(Decision::Confirm, None, None)
}

fn escalate() -> CaseAction {
    decide_action(Decision::Escalate, None, Some("Needs a senior eye."))
}

fn reopen(reason: &str) -> CaseAction {
    CaseAction::Reopen {
        reason: reason.into(),
    }
}

/// A submitted case, pending review.
fn pending() -> CaseState {
    step(
        CaseState::default(),
        &classifier(),
        0,
        CaseAction::Submit(submission()),
    )
}

/// A pending case claimed by `actor` at 100s (lease until 1000s).
fn claimed_by(actor: &Actor) -> CaseState {
    step(pending(), actor, 100, claim_action())
}

/// A case the reviewer escalated at 200s, waiting for a senior.
fn escalated() -> CaseState {
    step(claimed_by(&reviewer()), &reviewer(), 200, escalate())
}

/// An escalated case claimed by the senior at 300s (lease until 1200s).
fn escalated_claimed_by_senior() -> CaseState {
    step(escalated(), &senior(), 300, claim_action())
}

/// A case the reviewer confirmed at 200s.
fn decided() -> CaseState {
    step(claimed_by(&reviewer()), &reviewer(), 200, confirm())
}

fn status(state: &CaseState) -> CaseStatus {
    match state {
        CaseState::Submitted { status, .. } => *status,
        CaseState::Unsubmitted => panic!("the case was never submitted"),
    }
}

fn claim_of(state: &CaseState) -> Option<Claim> {
    match state {
        CaseState::Submitted { claim, .. } => *claim,
        CaseState::Unsubmitted => None,
    }
}

/// The names of the fields a validation error reports, in order; panics on any other result.
fn invalid_fields<T: std::fmt::Debug>(result: Result<T, DomainError>) -> Vec<String> {
    match result {
        Err(DomainError::Validation(errors)) => errors.into_iter().map(|e| e.field).collect(),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

fn invalid_transition(action: &'static str, state: &'static str) -> DomainError {
    DomainError::InvalidTransition { action, state }
}

fn is_forbidden<T>(result: &Result<T, DomainError>) -> bool {
    matches!(result, Err(DomainError::Forbidden(_)))
}

fn claimed(reviewer: &Actor, expires: i64) -> CaseEvent {
    CaseEvent::Claimed(CaseClaimed {
        reviewer_id: reviewer.user_id,
        lease_expires_at: at(expires),
    })
}

fn released(holder: &Actor, reason: ReleaseReason) -> CaseEvent {
    CaseEvent::Released(CaseReleased {
        reviewer_id: holder.user_id,
        reason,
    })
}

// ---- submit -------------------------------------------------------------------------------

#[test]
fn a_classifier_submits_a_case_which_becomes_pending() {
    let events = run(
        &CaseState::default(),
        &classifier(),
        0,
        CaseAction::Submit(submission()),
    )
    .unwrap();
    let s = submission();
    assert_eq!(
        events,
        vec![CaseEvent::Submitted(CaseSubmitted {
            case_id: s.case_id,
            subject_ref: s.subject_ref,
            excerpt: s.excerpt,
            assessment: s.assessment,
            priority: Priority::High,
            submitted_by: classifier().user_id,
        })]
    );
    assert_eq!(
        fold(&events),
        CaseState::Submitted {
            status: CaseStatus::Pending,
            assessed: ASSESSED,
            claim: None,
            escalated: false,
        }
    );
}

#[test]
fn an_admin_may_submit_a_case_too() {
    let events = run(
        &CaseState::default(),
        &admin(),
        0,
        CaseAction::Submit(submission()),
    )
    .unwrap();
    assert!(matches!(&events[..], [CaseEvent::Submitted(e)] if e.submitted_by == admin().user_id));
}

#[test]
fn reviewers_and_auditors_may_not_submit() {
    for actor in [reviewer(), senior(), auditor()] {
        let result = run(
            &CaseState::default(),
            &actor,
            0,
            CaseAction::Submit(submission()),
        );
        assert!(is_forbidden(&result), "{actor:?} got {result:?}");
    }
}

#[test]
fn a_submission_names_every_invalid_field_at_once() {
    let mut s = submission();
    s.subject_ref = String::new();
    s.excerpt = String::new();
    s.assessment.rationale = "r".repeat(RATIONALE_MAX + 1);
    s.assessment.confidence = 1.1;
    let result = run(
        &CaseState::default(),
        &classifier(),
        0,
        CaseAction::Submit(s),
    );
    assert_eq!(
        result,
        Err(DomainError::Validation(vec![
            FieldError::new("subject_ref", "is required"),
            FieldError::new("excerpt", "is required"),
            FieldError::new("assessment.rationale", "must be at most 4000 characters"),
            FieldError::new("assessment.confidence", "must be a number from 0 to 1"),
        ]))
    );
}

#[test]
fn over_long_subject_ref_and_excerpt_are_refused() {
    let mut s = submission();
    s.subject_ref = "s".repeat(SUBJECT_REF_MAX + 1);
    s.excerpt = "e".repeat(EXCERPT_MAX + 1);
    let result = run(
        &CaseState::default(),
        &classifier(),
        0,
        CaseAction::Submit(s),
    );
    assert_eq!(
        result,
        Err(DomainError::Validation(vec![
            FieldError::new("subject_ref", "must be at most 256 characters"),
            FieldError::new("excerpt", "must be at most 20000 characters"),
        ]))
    );
}

#[test]
fn confidence_must_be_a_number_from_zero_to_one() {
    for bad in [-0.1, 1.1, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let mut s = submission();
        s.assessment.confidence = bad;
        let result = run(
            &CaseState::default(),
            &classifier(),
            0,
            CaseAction::Submit(s),
        );
        assert_eq!(
            invalid_fields(result),
            ["assessment.confidence"],
            "confidence {bad}"
        );
    }
    for good in [0.0, 1.0] {
        let mut s = submission();
        s.assessment.confidence = good;
        assert!(run(
            &CaseState::default(),
            &classifier(),
            0,
            CaseAction::Submit(s)
        )
        .is_ok());
    }
}

#[test]
fn lengths_are_counted_in_characters_not_bytes() {
    let mut s = submission();
    s.subject_ref = "é".repeat(SUBJECT_REF_MAX); // 512 bytes
    s.excerpt = "界".repeat(EXCERPT_MAX); // 60 000 bytes
    s.assessment.rationale = "🦀".repeat(RATIONALE_MAX); // 16 000 bytes
    assert!(run(
        &CaseState::default(),
        &classifier(),
        0,
        CaseAction::Submit(s.clone())
    )
    .is_ok());

    s.subject_ref.push('é');
    let result = run(
        &CaseState::default(),
        &classifier(),
        0,
        CaseAction::Submit(s),
    );
    assert_eq!(invalid_fields(result), ["subject_ref"]);
}

#[test]
fn an_empty_rationale_is_allowed() {
    let mut s = submission();
    s.assessment.rationale = String::new();
    assert!(run(
        &CaseState::default(),
        &classifier(),
        0,
        CaseAction::Submit(s)
    )
    .is_ok());
}

#[test]
fn submitting_an_existing_case_again_is_already_exists() {
    for state in [pending(), claimed_by(&reviewer()), decided()] {
        let result = run(&state, &classifier(), 500, CaseAction::Submit(submission()));
        assert_eq!(result, Err(DomainError::AlreadyExists));
    }
}

#[test]
fn every_other_command_on_an_unsubmitted_case_is_not_found() {
    let actions = [
        claim_action(),
        CaseAction::Release,
        CaseAction::ExpireClaim,
        confirm(),
        reopen("why"),
    ];
    for action in actions {
        let result = run(&CaseState::default(), &admin(), 0, action.clone());
        assert_eq!(result, Err(DomainError::NotFound), "{action:?}");
    }
}

// ---- claim --------------------------------------------------------------------------------

#[test]
fn a_reviewer_claims_a_pending_case_for_the_lease() {
    let events = run(&pending(), &reviewer(), 100, claim_action()).unwrap();
    assert_eq!(events, vec![claimed(&reviewer(), 1000)]);
    let state = fold_onto(pending(), &events);
    assert_eq!(status(&state), CaseStatus::InReview);
    assert_eq!(
        claim_of(&state),
        Some(Claim {
            reviewer_id: reviewer().user_id,
            expires_at: at(1000),
        })
    );
}

#[test]
fn a_senior_reviewer_may_claim_a_pending_case() {
    let state = claimed_by(&senior());
    assert_eq!(status(&state), CaseStatus::InReview);
    assert_eq!(claim_of(&state).unwrap().reviewer_id, senior().user_id);
}

#[test]
fn classifiers_and_auditors_may_not_claim() {
    for actor in [classifier(), auditor()] {
        let result = run(&pending(), &actor, 100, claim_action());
        assert!(is_forbidden(&result), "{actor:?} got {result:?}");
    }
}

#[test]
fn a_held_case_cannot_be_claimed_by_anyone_else_before_the_lease_ends() {
    let state = claimed_by(&reviewer());
    for actor in [other_reviewer(), senior()] {
        let result = run(&state, &actor, 999, claim_action());
        assert_eq!(result, Err(invalid_transition("claim", "in_review")));
    }
}

#[test]
fn the_holder_claiming_again_renews_the_lease() {
    let state = claimed_by(&reviewer());
    let events = run(&state, &reviewer(), 600, claim_action()).unwrap();
    assert_eq!(events, vec![claimed(&reviewer(), 1500)]);
    let state = fold_onto(state, &events);
    assert_eq!(claim_of(&state).unwrap().expires_at, at(1500));
    // Past the first lease, the renewed claim still lets the holder decide.
    assert!(run(&state, &reviewer(), 1200, confirm()).is_ok());
}

#[test]
fn a_holder_who_lost_the_reviewer_role_cannot_renew_decide_or_escalate() {
    // The same user as `reviewer()`, after an admin made them an auditor only.
    let demoted = user(10, &[Role::Auditor]);
    let state = claimed_by(&reviewer());
    for action in [claim_action(), confirm(), escalate()] {
        let result = run(&state, &demoted, 600, action.clone());
        assert!(is_forbidden(&result), "{action:?}: {result:?}");
    }
    // Walking away is still allowed: it gives the case back.
    assert!(run(&state, &demoted, 600, CaseAction::Release).is_ok());
}

#[test]
fn a_senior_who_lost_the_senior_role_cannot_renew_an_escalated_claim() {
    let demoted = user(20, &[Role::Reviewer]);
    let state = escalated_claimed_by_senior();
    let renew = run(&state, &demoted, 400, claim_action());
    assert!(is_forbidden(&renew), "{renew:?}");
    let decide = run(&state, &demoted, 400, confirm());
    assert!(is_forbidden(&decide), "{decide:?}");
}

#[test]
fn claiming_after_the_lease_expired_releases_the_old_claim_first() {
    let state = claimed_by(&reviewer());
    let events = run(&state, &other_reviewer(), 1000, claim_action()).unwrap();
    assert_eq!(
        events,
        vec![
            released(&reviewer(), ReleaseReason::LeaseExpired),
            claimed(&other_reviewer(), 1900),
        ]
    );
    let state = fold_onto(state, &events);
    assert_eq!(status(&state), CaseStatus::InReview);
    assert_eq!(
        claim_of(&state).unwrap().reviewer_id,
        other_reviewer().user_id
    );
    // The previous holder has lost the case.
    assert!(is_forbidden(&run(&state, &reviewer(), 1001, confirm())));
}

#[test]
fn a_zero_lease_is_a_validation_error() {
    let result = run(
        &pending(),
        &reviewer(),
        100,
        CaseAction::Claim {
            lease: Duration::ZERO,
        },
    );
    assert_eq!(invalid_fields(result), ["lease"]);
}

#[test]
fn a_lease_shorter_than_a_millisecond_is_a_validation_error() {
    let result = run(
        &pending(),
        &reviewer(),
        100,
        CaseAction::Claim {
            lease: Duration::from_nanos(500),
        },
    );
    assert_eq!(invalid_fields(result), ["lease"]);
}

#[test]
fn required_text_that_is_only_white_space_counts_as_missing() {
    let mut blank = submission();
    blank.subject_ref = "   ".into();
    blank.excerpt = "\n\t".into();
    let result = run(
        &CaseState::Unsubmitted,
        &classifier(),
        0,
        CaseAction::Submit(blank),
    );
    assert_eq!(invalid_fields(result), ["subject_ref", "excerpt"]);
    let result = run(&decided(), &admin(), 500, reopen("  "));
    assert_eq!(invalid_fields(result), ["reason"]);
}

#[test]
fn a_decided_case_cannot_be_claimed() {
    let result = run(&decided(), &reviewer(), 300, claim_action());
    assert_eq!(result, Err(invalid_transition("claim", "decided")));
}

// ---- release and lease expiry -------------------------------------------------------------

#[test]
fn the_holder_releases_a_case_back_to_pending() {
    let state = claimed_by(&reviewer());
    let events = run(&state, &reviewer(), 200, CaseAction::Release).unwrap();
    assert_eq!(events, vec![released(&reviewer(), ReleaseReason::Released)]);
    let state = fold_onto(state, &events);
    assert_eq!(status(&state), CaseStatus::Pending);
    assert_eq!(claim_of(&state), None);
    assert!(run(&state, &other_reviewer(), 201, claim_action()).is_ok());
}

#[test]
fn another_reviewer_may_not_release_someone_elses_claim() {
    let result = run(
        &claimed_by(&reviewer()),
        &other_reviewer(),
        200,
        CaseAction::Release,
    );
    assert!(is_forbidden(&result), "{result:?}");
}

#[test]
fn an_admin_may_release_anyones_claim() {
    let state = claimed_by(&reviewer());
    let events = run(&state, &admin(), 200, CaseAction::Release).unwrap();
    assert_eq!(events, vec![released(&reviewer(), ReleaseReason::Released)]);
    assert_eq!(status(&fold_onto(state, &events)), CaseStatus::Pending);
}

#[test]
fn an_unclaimed_case_cannot_be_released() {
    let result = run(&pending(), &admin(), 200, CaseAction::Release);
    assert_eq!(result, Err(invalid_transition("release", "pending")));
}

#[test]
fn a_claim_cannot_be_expired_before_its_lease_runs_out() {
    let result = run(
        &claimed_by(&reviewer()),
        &Actor::system(),
        999,
        CaseAction::ExpireClaim,
    );
    assert_eq!(
        result,
        Err(invalid_transition("expire the claim of", "in_review"))
    );
}

#[test]
fn a_claim_expires_at_and_after_the_end_of_its_lease() {
    for t in [1000, 5000] {
        let state = claimed_by(&reviewer());
        let events = run(&state, &Actor::system(), t, CaseAction::ExpireClaim).unwrap();
        assert_eq!(
            events,
            vec![released(&reviewer(), ReleaseReason::LeaseExpired)]
        );
        let state = fold_onto(state, &events);
        assert_eq!(status(&state), CaseStatus::Pending);
        assert_eq!(claim_of(&state), None);
    }
}

#[test]
fn an_unclaimed_case_has_no_claim_to_expire() {
    let result = run(&pending(), &Actor::system(), 5000, CaseAction::ExpireClaim);
    assert_eq!(
        result,
        Err(invalid_transition("expire the claim of", "pending"))
    );
}

// ---- decide -------------------------------------------------------------------------------

#[test]
fn confirm_keeps_the_assessed_culpability_and_needs_no_notes() {
    let state = claimed_by(&reviewer());
    let events = run(&state, &reviewer(), 200, confirm()).unwrap();
    assert_eq!(
        events,
        vec![CaseEvent::Decided(CaseDecided {
            reviewer_id: reviewer().user_id,
            decision: Decision::Confirm,
            final_culpability: Some(ASSESSED),
            notes: None,
        })]
    );
    let state = fold_onto(state, &events);
    assert_eq!(status(&state), CaseStatus::Decided);
    assert_eq!(claim_of(&state), None);
}

#[test]
fn confirm_accepts_notes_and_the_assessed_culpability_stated_explicitly() {
    let action = decide_action(Decision::Confirm, Some(ASSESSED), Some("Agreed."));
    let events = run(&claimed_by(&reviewer()), &reviewer(), 200, action).unwrap();
    assert!(matches!(
        &events[..],
        [CaseEvent::Decided(d)] if d.final_culpability == Some(ASSESSED) && d.notes.as_deref() == Some("Agreed.")
    ));
}

#[test]
fn confirm_with_a_different_culpability_is_refused() {
    let action = decide_action(Decision::Confirm, Some(Culpability::Purposely), None);
    let result = run(&claimed_by(&reviewer()), &reviewer(), 200, action);
    assert_eq!(invalid_fields(result), ["final_culpability"]);
}

#[test]
fn amend_records_the_corrected_culpability_and_the_notes() {
    let action = decide_action(
        Decision::Amend,
        Some(Culpability::Negligently),
        Some("He could not have known."),
    );
    let events = run(&claimed_by(&reviewer()), &reviewer(), 200, action).unwrap();
    assert_eq!(
        events,
        vec![CaseEvent::Decided(CaseDecided {
            reviewer_id: reviewer().user_id,
            decision: Decision::Amend,
            final_culpability: Some(Culpability::Negligently),
            notes: Some("He could not have known.".into()),
        })]
    );
}

#[test]
fn amend_requires_notes_and_a_different_culpability() {
    let state = claimed_by(&reviewer());
    let cases = [
        (
            decide_action(Decision::Amend, None, None),
            vec!["notes", "final_culpability"],
        ),
        (
            decide_action(Decision::Amend, Some(Culpability::Knowingly), None),
            vec!["notes"],
        ),
        (
            decide_action(Decision::Amend, None, Some("why")),
            vec!["final_culpability"],
        ),
        (
            decide_action(Decision::Amend, Some(ASSESSED), Some("why")),
            vec!["final_culpability"],
        ),
    ];
    for (action, fields) in cases {
        let result = run(&state, &reviewer(), 200, action.clone());
        assert_eq!(invalid_fields(result), fields, "{action:?}");
    }
}

#[test]
fn reject_requires_notes_and_records_no_culpability() {
    let state = claimed_by(&reviewer());
    let events = run(
        &state,
        &reviewer(),
        200,
        decide_action(Decision::Reject, None, Some("Wrong person.")),
    )
    .unwrap();
    assert_eq!(
        events,
        vec![CaseEvent::Decided(CaseDecided {
            reviewer_id: reviewer().user_id,
            decision: Decision::Reject,
            final_culpability: None,
            notes: Some("Wrong person.".into()),
        })]
    );

    let no_notes = run(
        &state,
        &reviewer(),
        200,
        decide_action(Decision::Reject, None, None),
    );
    assert_eq!(invalid_fields(no_notes), ["notes"]);
    let with_culpability = decide_action(
        Decision::Reject,
        Some(Culpability::None),
        Some("Wrong person."),
    );
    assert_eq!(
        invalid_fields(run(&state, &reviewer(), 200, with_culpability)),
        ["final_culpability"]
    );
}

#[test]
fn blank_notes_count_as_missing() {
    let result = run(
        &claimed_by(&reviewer()),
        &reviewer(),
        200,
        decide_action(Decision::Reject, None, Some(" \n\t ")),
    );
    assert_eq!(invalid_fields(result), ["notes"]);
}

#[test]
fn over_long_notes_are_refused() {
    let notes = "n".repeat(NOTES_MAX + 1);
    let result = run(
        &claimed_by(&reviewer()),
        &reviewer(),
        200,
        decide_action(Decision::Reject, None, Some(&notes)),
    );
    assert_eq!(
        result,
        Err(DomainError::Validation(vec![FieldError::new(
            "notes",
            "must be at most 4000 characters"
        )]))
    );
}

#[test]
fn escalate_requires_notes_and_sends_the_case_to_the_seniors() {
    let state = claimed_by(&reviewer());
    let events = run(&state, &reviewer(), 200, escalate()).unwrap();
    assert_eq!(
        events,
        vec![CaseEvent::Escalated(CaseEscalated {
            reviewer_id: reviewer().user_id,
            notes: "Needs a senior eye.".into(),
        })]
    );
    let after = fold_onto(state.clone(), &events);
    assert_eq!(status(&after), CaseStatus::Escalated);
    assert_eq!(claim_of(&after), None);

    let no_notes = run(
        &state,
        &reviewer(),
        200,
        decide_action(Decision::Escalate, None, None),
    );
    assert_eq!(invalid_fields(no_notes), ["notes"]);
    let with_culpability = decide_action(Decision::Escalate, Some(ASSESSED), Some("why"));
    assert_eq!(
        invalid_fields(run(&state, &reviewer(), 200, with_culpability)),
        ["final_culpability"]
    );
}

#[test]
fn only_the_claim_holder_may_decide() {
    let state = claimed_by(&reviewer());
    for actor in [other_reviewer(), senior(), admin()] {
        let result = run(&state, &actor, 200, confirm());
        assert!(is_forbidden(&result), "{actor:?} got {result:?}");
    }
}

#[test]
fn the_holder_may_not_decide_once_the_lease_has_expired() {
    let state = claimed_by(&reviewer());
    assert!(run(&state, &reviewer(), 999, confirm()).is_ok());
    for t in [1000, 5000] {
        let result = run(&state, &reviewer(), t, confirm());
        assert_eq!(
            result,
            Err(invalid_transition(
                "decide",
                "claimed with an expired lease"
            ))
        );
    }
}

#[test]
fn an_unclaimed_or_decided_case_cannot_be_decided() {
    assert_eq!(
        run(&pending(), &reviewer(), 200, confirm()),
        Err(invalid_transition("decide", "pending"))
    );
    assert_eq!(
        run(&escalated(), &senior(), 300, confirm()),
        Err(invalid_transition("decide", "escalated"))
    );
    assert_eq!(
        run(&decided(), &reviewer(), 300, confirm()),
        Err(invalid_transition("decide", "decided"))
    );
}

// ---- escalated cases ----------------------------------------------------------------------

#[test]
fn a_reviewer_may_not_claim_an_escalated_case() {
    for actor in [reviewer(), other_reviewer()] {
        let result = run(&escalated(), &actor, 300, claim_action());
        assert!(is_forbidden(&result), "{actor:?} got {result:?}");
    }
}

#[test]
fn a_senior_reviewer_claims_an_escalated_case() {
    let state = escalated_claimed_by_senior();
    assert_eq!(status(&state), CaseStatus::InReview);
    assert_eq!(
        claim_of(&state),
        Some(Claim {
            reviewer_id: senior().user_id,
            expires_at: at(1200),
        })
    );
}

#[test]
fn a_released_escalation_goes_back_to_the_seniors_not_to_pending() {
    let state = step(
        escalated_claimed_by_senior(),
        &senior(),
        400,
        CaseAction::Release,
    );
    assert_eq!(status(&state), CaseStatus::Escalated);
    assert_eq!(claim_of(&state), None);
    assert!(is_forbidden(&run(&state, &reviewer(), 401, claim_action())));
}

#[test]
fn an_expired_escalation_goes_back_to_the_seniors_not_to_pending() {
    let state = step(
        escalated_claimed_by_senior(),
        &Actor::system(),
        1200,
        CaseAction::ExpireClaim,
    );
    assert_eq!(status(&state), CaseStatus::Escalated);
    assert_eq!(claim_of(&state), None);
}

#[test]
fn only_a_senior_may_take_over_an_escalation_whose_lease_expired() {
    let state = escalated_claimed_by_senior();
    assert!(is_forbidden(&run(
        &state,
        &reviewer(),
        1200,
        claim_action()
    )));
    let events = run(&state, &other_senior(), 1200, claim_action()).unwrap();
    assert_eq!(
        events,
        vec![
            released(&senior(), ReleaseReason::LeaseExpired),
            claimed(&other_senior(), 2100),
        ]
    );
    // The take-over keeps the escalation: releasing it returns it to the seniors.
    let state = step(
        fold_onto(state, &events),
        &other_senior(),
        1300,
        CaseAction::Release,
    );
    assert_eq!(status(&state), CaseStatus::Escalated);
}

#[test]
fn a_senior_decides_an_escalated_case() {
    let action = decide_action(
        Decision::Amend,
        Some(Culpability::Knowingly),
        Some("He saw the sign."),
    );
    let state = step(escalated_claimed_by_senior(), &senior(), 400, action);
    assert_eq!(status(&state), CaseStatus::Decided);
    assert_eq!(claim_of(&state), None);
}

#[test]
fn an_escalated_case_cannot_be_escalated_again() {
    let result = run(&escalated_claimed_by_senior(), &senior(), 400, escalate());
    assert_eq!(
        result,
        Err(invalid_transition("escalate", "escalated already"))
    );
}

#[test]
fn a_decision_ends_the_escalation_so_a_reopened_case_is_open_to_reviewers() {
    let state = step(escalated_claimed_by_senior(), &senior(), 400, confirm());
    let state = step(state, &admin(), 500, reopen("New evidence."));
    assert_eq!(status(&state), CaseStatus::Pending);
    let state = step(state, &reviewer(), 600, claim_action());
    // And it may be escalated afresh.
    assert_eq!(
        status(&step(state, &reviewer(), 700, escalate())),
        CaseStatus::Escalated
    );
}

// ---- reopen -------------------------------------------------------------------------------

#[test]
fn an_admin_or_auditor_reopens_a_decided_case_with_a_reason() {
    for actor in [admin(), auditor()] {
        let state = decided();
        let events = run(&state, &actor, 300, reopen("Appeal granted.")).unwrap();
        assert_eq!(
            events,
            vec![CaseEvent::Reopened(CaseReopened {
                reopened_by: actor.user_id,
                reason: "Appeal granted.".into(),
            })]
        );
        let state = fold_onto(state, &events);
        assert_eq!(status(&state), CaseStatus::Pending);
        assert_eq!(claim_of(&state), None);
        assert!(run(&state, &reviewer(), 400, claim_action()).is_ok());
    }
}

#[test]
fn reviewers_may_not_reopen() {
    for actor in [reviewer(), senior(), classifier()] {
        let result = run(&decided(), &actor, 300, reopen("Appeal granted."));
        assert!(is_forbidden(&result), "{actor:?} got {result:?}");
    }
}

#[test]
fn reopening_needs_a_reason_of_bounded_length() {
    assert_eq!(
        invalid_fields(run(&decided(), &admin(), 300, reopen(""))),
        ["reason"]
    );
    let long = "r".repeat(NOTES_MAX + 1);
    assert_eq!(
        invalid_fields(run(&decided(), &admin(), 300, reopen(&long))),
        ["reason"]
    );
}

#[test]
fn only_a_decided_case_can_be_reopened() {
    assert_eq!(
        run(&pending(), &admin(), 300, reopen("why")),
        Err(invalid_transition("reopen", "pending"))
    );
    assert_eq!(
        run(&claimed_by(&reviewer()), &admin(), 300, reopen("why")),
        Err(invalid_transition("reopen", "in_review"))
    );
    assert_eq!(
        run(&escalated(), &admin(), 300, reopen("why")),
        Err(invalid_transition("reopen", "escalated"))
    );
}

// ---- evolve -------------------------------------------------------------------------------

#[test]
fn evolve_ignores_events_that_make_no_sense_in_the_state() {
    // Nothing happens to a case that was never submitted.
    assert_eq!(fold(&[claimed(&reviewer(), 1000)]), CaseState::Unsubmitted);
    // A stray second submission changes nothing, whatever state the case is in.
    let stray = CaseEvent::Submitted(CaseSubmitted {
        case_id: case_id(),
        subject_ref: "other".into(),
        excerpt: "other".into(),
        assessment: Assessment {
            culpability: Culpability::Purposely,
            confidence: 0.1,
            rationale: String::new(),
        },
        priority: Priority::Low,
        submitted_by: classifier().user_id,
    });
    for state in [
        pending(),
        claimed_by(&reviewer()),
        escalated(),
        escalated_claimed_by_senior(),
        decided(),
    ] {
        assert_eq!(
            fold_onto(state.clone(), std::slice::from_ref(&stray)),
            state
        );
    }
}

#[test]
fn a_whole_life_cycle_walks_through_every_status() {
    let mut statuses = Vec::new();
    let mut state = CaseState::default();
    let script: Vec<(Actor, i64, CaseAction)> = vec![
        (classifier(), 0, CaseAction::Submit(submission())),
        (reviewer(), 10, claim_action()),
        (reviewer(), 20, escalate()),
        (senior(), 30, claim_action()),
        (
            senior(),
            40,
            decide_action(
                Decision::Amend,
                Some(Culpability::Knowingly),
                Some("Saw it."),
            ),
        ),
        (auditor(), 50, reopen("Audit finding.")),
        (other_reviewer(), 60, claim_action()),
        (other_reviewer(), 70, confirm()),
    ];
    for (actor, t, action) in script {
        state = step(state, &actor, t, action);
        statuses.push(status(&state).as_str());
    }
    assert_eq!(
        statuses,
        [
            "pending",
            "in_review",
            "escalated",
            "in_review",
            "decided",
            "pending",
            "in_review",
            "decided"
        ]
    );
}

// ---- property -----------------------------------------------------------------------------

/// Anyone, but mostly the reviewers, so that claimed cases often meet their holder.
fn any_actor() -> impl Strategy<Value = Actor> {
    prop_oneof![
        4 => Just(reviewer()),
        4 => Just(senior()),
        1 => Just(other_reviewer()),
        1 => Just(other_senior()),
        1 => Just(user(30, &[Role::Reviewer, Role::Auditor])),
        1 => Just(classifier()),
        1 => Just(admin()),
        1 => Just(auditor()),
        1 => Just(Actor::system()),
    ]
}

/// Any command, valid or not; decisions are mostly well formed, so that cases get decided.
fn any_action() -> impl Strategy<Value = CaseAction> {
    let notes = prop_oneof![
        1 => Just(None),
        1 => Just(Some(" ".to_owned())),
        6 => Just(Some("why".to_owned())),
    ];
    let final_culpability = prop_oneof![
        3 => Just(None),
        2 => prop::sample::select(Culpability::ALL).prop_map(Some),
    ];
    prop_oneof![
        1 => (any::<bool>(), -1.0..2.0f64).prop_map(|(valid, confidence)| {
            let mut s = submission();
            s.assessment.confidence = confidence;
            if !valid {
                s.subject_ref.clear();
            }
            CaseAction::Submit(s)
        }),
        4 => (0u64..4).prop_map(|units| CaseAction::Claim { lease: Duration::from_secs(units * 300) }),
        1 => Just(CaseAction::Release),
        1 => Just(CaseAction::ExpireClaim),
        5 => (prop::sample::select(Decision::ALL), final_culpability, notes).prop_map(
            |(decision, final_culpability, notes)| CaseAction::Decide { decision, final_culpability, notes }
        ),
        1 => prop::sample::select(&["", "  ", "Appeal."][..]).prop_map(reopen),
    ]
}

/// A command: who, how many seconds after the previous command, and what.
fn any_command() -> impl Strategy<Value = (Actor, i64, CaseAction)> {
    (any_actor(), 0i64..200, any_action())
}

/// The invariants of a submitted case's state that every accepted event must keep.
fn check_invariants(state: &CaseState) -> Result<(), TestCaseError> {
    let CaseState::Submitted {
        status,
        claim,
        escalated,
        ..
    } = state
    else {
        return Err(TestCaseError::fail("a submitted case became unsubmitted"));
    };
    prop_assert!(["pending", "in_review", "escalated", "decided"].contains(&status.as_str()));
    prop_assert_eq!(
        claim.is_some(),
        *status == CaseStatus::InReview,
        "{:?}",
        state
    );
    if *escalated {
        prop_assert!(
            matches!(status, CaseStatus::Escalated | CaseStatus::InReview),
            "escalated flag with status {:?}",
            status
        );
    }
    if *status == CaseStatus::Escalated {
        prop_assert!(*escalated, "status escalated without the flag");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn random_commands_never_panic_and_accepted_events_keep_the_state_consistent(
        start_submitted in prop::bool::weighted(0.9),
        commands in prop::collection::vec(any_command(), 0..40),
    ) {
        // Most runs start from a submitted case, so that most commands meet a real case.
        let mut state = if start_submitted { pending() } else { CaseState::default() };
        let mut now = 0;
        for (actor, dt, action) in commands {
            now += dt;
            let cmd = CaseCommand { actor, at: at(now), action };
            let Ok(events) = decide(&state, cmd) else { continue };
            prop_assert!(!events.is_empty(), "an accepted command recorded nothing");
            state = fold_onto(state, &events);
            check_invariants(&state)?;
            if let CaseState::Submitted { escalated: true, claim: Some(c), .. } = &state {
                prop_assert!(
                    [senior().user_id, other_senior().user_id].contains(&c.reviewer_id),
                    "an escalated case is held by a non-senior: {:?}", c
                );
            }
        }
    }
}
