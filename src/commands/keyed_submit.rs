//! Submitting a case under an `Idempotency-Key`: the rules are the domain's
//! ([`events::domain::idempotency`]); this module finds the key's case in the store, judges the
//! submission against it, and creates the case only when there is none to answer.
//!
//! Nothing is kept besides the case streams themselves: the key's case is found by its derived
//! id, whatever node or process created it.

use events::domain::case::{self, CaseAction, CaseCommand, CaseEvent, CaseSubmitted, Submission};
use events::domain::idempotency::{case_id_for_key, judge, Retry};
use events::domain::{Actor, DomainError, DomainEvent};
use events::{AppendResult, EventStore, Metadata, Timestamp};
use uuid::Uuid;

use super::{run_case, CommandError};

/// What a keyed submission did.
#[derive(Debug)]
pub enum KeyedOutcome {
    /// A new case.
    Created {
        case_id: Uuid,
        appended: AppendResult,
    },
    /// The key's case from an earlier submission: nothing was appended.
    Replayed { case_id: Uuid, position: u64 },
}

#[derive(Debug, thiserror::Error)]
pub enum KeyedError {
    /// The key names a case of another submission, within the window.
    #[error("this Idempotency-Key was used for a different submission within the last 24 hours")]
    KeyReused,
    /// Other requests with the same key kept changing the picture; the caller may retry.
    #[error("too many concurrent submissions with this Idempotency-Key")]
    Contended,
    #[error(transparent)]
    Command(#[from] CommandError),
}

/// Rounds of look-up and create at most: each extra round means another request created the
/// case this one was about to, and the next look-up finds it.
const ROUNDS: usize = 4;

/// Submits `submission` (its `case_id` is ignored: the key decides it) by `actor` under `key`.
pub async fn submit_with_key(
    store: &dyn EventStore,
    actor: &Actor,
    metadata: Metadata,
    key: &str,
    submission: Submission,
) -> Result<KeyedOutcome, KeyedError> {
    let submitter = actor.user_id;
    let mut generation = last_generation(store, submitter, key).await?.unwrap_or(0);
    for _ in 0..ROUNDS {
        let case_id = case_id_for_key(submitter, key, generation);
        if let Some((first, at, position)) = first_submission(store, case_id).await? {
            match judge(&first, at, submitter, &submission, Timestamp::now()) {
                Retry::Same => return Ok(KeyedOutcome::Replayed { case_id, position }),
                Retry::Different => return Err(KeyedError::KeyReused),
                Retry::Expired => {
                    generation += 1;
                    continue;
                }
            }
        }
        let submission = Submission {
            case_id,
            ..submission.clone()
        };
        // Version 0 exactly: of two requests creating this case, one appends and the other
        // finds its case in the next round.
        let created = run_case(store, case_id, Some(0), metadata, || CaseCommand {
            actor: actor.clone(),
            at: Timestamp::now(),
            action: CaseAction::Submit(submission.clone()),
        })
        .await;
        match created {
            Ok(Some(appended)) => return Ok(KeyedOutcome::Created { case_id, appended }),
            Ok(None) => return Err(CommandError::Domain(DomainError::AlreadyExists).into()),
            Err(CommandError::VersionConflict { .. })
            | Err(CommandError::Domain(DomainError::AlreadyExists)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(KeyedError::Contended)
}

/// The last generation of `key` that has a case, if any. Generations exist from 0 up without a
/// hole, so a doubling search then a bisection find it in a few reads.
async fn last_generation(
    store: &dyn EventStore,
    submitter: Uuid,
    key: &str,
) -> Result<Option<u32>, CommandError> {
    let exists = |generation: u32| async move {
        let stream = case::stream_name(case_id_for_key(submitter, key, generation));
        Ok::<_, CommandError>(!store.read_stream(&stream, 1, 1).await?.is_empty())
    };
    if !exists(0).await? {
        return Ok(None);
    }
    let (mut present, mut absent) = (0u32, 1u32);
    while exists(absent).await? {
        present = absent;
        absent = absent.saturating_mul(2);
        if absent == u32::MAX {
            return Ok(Some(present));
        }
    }
    while absent - present > 1 {
        let middle = present + (absent - present) / 2;
        if exists(middle).await? {
            present = middle;
        } else {
            absent = middle;
        }
    }
    Ok(Some(present))
}

/// The submission that created `case_id`, when it was recorded, and its position.
async fn first_submission(
    store: &dyn EventStore,
    case_id: Uuid,
) -> Result<Option<(CaseSubmitted, Timestamp, u64)>, CommandError> {
    let stream = case::stream_name(case_id);
    let Some(record) = store.read_stream(&stream, 1, 1).await?.into_iter().next() else {
        return Ok(None);
    };
    match record.data.decode()? {
        DomainEvent::Case(CaseEvent::Submitted(first)) => {
            Ok(Some((first, record.data.recorded_at, record.position)))
        }
        // A case stream always starts with its submission; anything else is not this key's case.
        _ => Err(CommandError::Domain(DomainError::AlreadyExists)),
    }
}
