//! Point-in-time reads for auditors: a case, or the whole queue, as it stood at a past position
//! or time. Pure folds over the events the caller reads from the store.

use std::str::FromStr;

use events::{EventEnvelope, Timestamp};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::case_view::CaseView;
use crate::cases::Cases;
use crate::queue::Queue;
use crate::streams::case_id_of;

/// A past moment: a global position, or a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AsOf {
    /// Every event at or before this position.
    Position(u64),
    /// Every event recorded at or before this time.
    Time(Timestamp),
}

/// An `as_of` that is neither a position nor an RFC 3339 time.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("as_of must be a position or an RFC 3339 time, not {0:?}")]
pub struct AsOfError(pub String);

impl AsOf {
    /// Whether the event had happened at this moment.
    pub fn includes(&self, env: &EventEnvelope) -> bool {
        match *self {
            AsOf::Position(p) => env.record.position <= p,
            AsOf::Time(t) => env.record.data.recorded_at <= t,
        }
    }

    /// The `as_of` query parameter: digits are a position, anything else an RFC 3339 time.
    pub fn parse(s: &str) -> Result<Self, AsOfError> {
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return s
                .parse()
                .map(AsOf::Position)
                .map_err(|_| AsOfError(s.to_owned()));
        }
        Timestamp::parse_rfc3339(s)
            .map(AsOf::Time)
            .map_err(|_| AsOfError(s.to_owned()))
    }
}

impl FromStr for AsOf {
    type Err = AsOfError;
    fn from_str(s: &str) -> Result<Self, AsOfError> {
        AsOf::parse(s)
    }
}

/// The case as it stood at `as_of`: the fold of its events that `as_of` includes. `None` if it
/// had not been submitted then. Events of other streams are skipped, so the caller may pass the
/// case's stream or the whole log.
pub fn case_as_of<'a>(
    events: impl IntoIterator<Item = &'a EventEnvelope>,
    case_id: Uuid,
    as_of: AsOf,
) -> Option<CaseView> {
    let mut cases = Cases::default();
    for env in events {
        if as_of.includes(env) && case_id_of(env) == Some(case_id) {
            cases.apply(env);
        }
    }
    cases.get(case_id).cloned()
}

/// The queue as it stood at `as_of`: every case not yet decided then, in queue order.
pub fn queue_as_of<'a>(
    events: impl IntoIterator<Item = &'a EventEnvelope>,
    as_of: AsOf,
) -> Vec<CaseView> {
    let mut cases = Cases::default();
    let mut queue = Queue::default();
    for env in events {
        if as_of.includes(env) {
            // The queue lets go of the case first, so that it is changed in place.
            if let Some(id) = case_id_of(env) {
                queue.release(id);
            }
            if let Some(case) = cases.apply(env) {
                queue.apply_case(case);
            }
        }
    }
    queue.all().into_iter().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{case_env, submitted};
    use events::domain::case::{CaseClaimed, CaseEvent, CaseStatus};
    use events::domain::Priority;

    #[test]
    fn as_of_parses_positions_and_times() {
        assert_eq!(AsOf::parse("42"), Ok(AsOf::Position(42)));
        assert_eq!(
            AsOf::parse("1970-01-01T00:00:01Z"),
            Ok(AsOf::Time(Timestamp::from_micros(1_000_000)))
        );
        for bad in ["", "-1", "yesterday", "99999999999999999999999"] {
            assert!(AsOf::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn past_states_are_folded_from_the_events_then() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let events = vec![
            case_env(a, 1, 1, submitted(a, Priority::Normal)),
            case_env(b, 1, 2, submitted(b, Priority::Urgent)),
            case_env(
                a,
                2,
                3,
                CaseEvent::Claimed(CaseClaimed {
                    reviewer_id: Uuid::from_u128(9),
                    lease_expires_at: Timestamp::from_micros(i64::MAX),
                }),
            ),
        ];
        assert_eq!(case_as_of(&events, a, AsOf::Position(0)), None);
        let then = case_as_of(&events, a, AsOf::Position(2)).unwrap();
        assert_eq!(then.adjudication_status, CaseStatus::Pending);
        assert_eq!(then.position, 1);
        let now = case_as_of(&events, a, AsOf::Time(Timestamp::from_micros(3_000_000)));
        assert_eq!(
            now.map(|c| c.adjudication_status),
            Some(CaseStatus::InReview)
        );

        let queue = queue_as_of(&events, AsOf::Time(Timestamp::from_micros(1_500_000)));
        assert_eq!(queue.iter().map(|c| c.id).collect::<Vec<_>>(), [a]);
        let queue = queue_as_of(&events, AsOf::Position(3));
        assert_eq!(queue.iter().map(|c| c.id).collect::<Vec<_>>(), [b, a]);
    }
}
