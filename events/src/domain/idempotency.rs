//! Submissions that a client may retry without creating a second case (`Idempotency-Key`).
//!
//! The case id is derived from the submitter and the key (UUID v5), so a retry finds the first
//! submission's stream in the store: on one node or several sharing a store, before or after a
//! restart, with no table of keys to keep or bound. The stream is created with `NoStream`, so of
//! two submissions racing with one key exactly one appends.
//!
//! A key binds for [`KEY_WINDOW`] after the submission that first used it. Used again later, it
//! starts a new *generation*: the next id derived from the same submitter and key. Generations
//! are made one after another, each only once the one before has expired, so they exist from 0
//! up to some last one, and that last one is the only one still bound.

use std::time::Duration;

use uuid::Uuid;

use super::case::{CaseSubmitted, Submission};
use crate::Timestamp;

/// The namespace of case ids derived from idempotency keys; fixed forever.
const KEY_NAMESPACE: Uuid = Uuid::from_u128(0x8e3b_61f2_4d0a_4b77_a5c9_2f6d_0e81_c3b5);

/// How long a key answers with its first submission's case.
pub const KEY_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

/// The longest key, in characters.
pub const KEY_MAX_CHARS: usize = 128;

/// A key is 1 to 128 printable ASCII characters (space to `~`).
pub fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > KEY_MAX_CHARS {
        return Err(format!(
            "Idempotency-Key must be 1 to {KEY_MAX_CHARS} characters"
        ));
    }
    if !key.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err("Idempotency-Key must be printable ASCII characters".into());
    }
    Ok(())
}

/// The id of the case that `submitter`'s submission with `key` creates in `generation`.
pub fn case_id_for_key(submitter: Uuid, key: &str, generation: u32) -> Uuid {
    let mut name = Vec::with_capacity(16 + 4 + key.len());
    name.extend_from_slice(submitter.as_bytes());
    name.extend_from_slice(&generation.to_be_bytes());
    name.extend_from_slice(key.as_bytes());
    Uuid::new_v5(&KEY_NAMESPACE, &name)
}

/// What a submission with a key that has a case already is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// The same submission within the window: answer its case, append nothing.
    Same,
    /// Another submission with the same key within the window: refused.
    Different,
    /// The key's window has passed: the submission is a new one (the next generation).
    Expired,
}

/// Judges a submission by `submitter` at `now` against the case the key already names, submitted
/// as `first` at `first_at`.
pub fn judge(
    first: &CaseSubmitted,
    first_at: Timestamp,
    submitter: Uuid,
    submission: &Submission,
    now: Timestamp,
) -> Retry {
    let window = i64::try_from(KEY_WINDOW.as_micros()).unwrap_or(i64::MAX);
    if now.as_micros().saturating_sub(first_at.as_micros()) >= window {
        return Retry::Expired;
    }
    let same = first.submitted_by == submitter
        && first.subject_ref == submission.subject_ref
        && first.excerpt == submission.excerpt
        && first.assessment == submission.assessment
        && first.priority == submission.priority;
    if same {
        Retry::Same
    } else {
        Retry::Different
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::case::Assessment;
    use crate::domain::{Culpability, Priority};

    const USER: Uuid = Uuid::from_u128(7);

    fn submission() -> Submission {
        Submission {
            case_id: Uuid::nil(),
            subject_ref: "DOC-1".into(),
            excerpt: "He did it.".into(),
            assessment: Assessment {
                culpability: Culpability::Knowingly,
                confidence: 0.8,
                rationale: String::new(),
            },
            priority: Priority::Normal,
        }
    }

    fn recorded(s: &Submission) -> CaseSubmitted {
        CaseSubmitted {
            case_id: s.case_id,
            subject_ref: s.subject_ref.clone(),
            excerpt: s.excerpt.clone(),
            assessment: s.assessment.clone(),
            priority: s.priority,
            submitted_by: USER,
        }
    }

    #[test]
    fn keys_are_one_to_128_printable_characters() {
        for good in ["a", "order 17/3 retry", &"k".repeat(128), "~!@#$%^&*()"] {
            assert_eq!(check_key(good), Ok(()), "{good:?}");
        }
        for bad in [
            "",
            &"k".repeat(129),
            "tab\there",
            "new\nline",
            "é",
            "\u{7f}",
        ] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ids_differ_by_submitter_key_and_generation_and_nothing_else() {
        let id = case_id_for_key(USER, "k1", 0);
        assert_eq!(id, case_id_for_key(USER, "k1", 0));
        assert_eq!(id.get_version_num(), 5);
        let others = [
            case_id_for_key(Uuid::from_u128(8), "k1", 0),
            case_id_for_key(USER, "k2", 0),
            case_id_for_key(USER, "k1", 1),
        ];
        for other in others {
            assert_ne!(other, id);
        }
    }

    #[test]
    fn a_retry_is_judged_by_its_body_its_submitter_and_the_window() {
        let s = submission();
        let first = recorded(&s);
        let at = Timestamp::from_micros(1_000_000);
        let later = |d: Duration| Timestamp::from_micros(at.as_micros() + d.as_micros() as i64);
        let just_inside = later(KEY_WINDOW - Duration::from_micros(1));
        assert_eq!(judge(&first, at, USER, &s, at), Retry::Same);
        assert_eq!(judge(&first, at, USER, &s, just_inside), Retry::Same);
        assert_eq!(
            judge(&first, at, USER, &s, later(KEY_WINDOW)),
            Retry::Expired
        );
        let mut other = s.clone();
        other.assessment.confidence = 0.81;
        assert_eq!(judge(&first, at, USER, &other, at), Retry::Different);
        let mut other = s.clone();
        other.priority = Priority::Urgent;
        assert_eq!(judge(&first, at, USER, &other, at), Retry::Different);
        assert_eq!(
            judge(&first, at, Uuid::from_u128(8), &s, at),
            Retry::Different
        );
        assert_eq!(
            judge(&first, at, USER, &other, later(KEY_WINDOW)),
            Retry::Expired,
            "after the window any body starts anew"
        );
    }
}
