//! Verifying the whole log in one pass, in position order.
//!
//! Four checks, each naming the position where it first fails:
//!
//! * **positions**: every position from 1 to the last one is present, once, in order;
//! * **versions**: every stream's versions are 1, 2, 3, … in position order;
//! * **chains**: every event links to the previous event of its stream (`prev_hash`) and its
//!   content matches its hash (see [`crate::hash`]);
//! * **expected heads** (optional): at each position an auditor recorded a head commitment for,
//!   the log's commitment (see [`crate::commitment`]) is the recorded one; and the log reaches
//!   every recorded position.
//!
//! The first three catch damage and careless edits from the file alone. Only the last catches a
//! careful edit (an event changed and the rest of its stream rehashed, two events of different
//! streams swapped, the newest events removed), because it compares with something kept outside
//! the store. A failed head narrows the change down to the events after the last head that held
//! and at or before the one that failed.
//!
//! Memory grows with the number of streams (one version and one hash each), not with the number
//! of events. A broken stream is reported once, at its first bad event; checking goes on for the
//! other streams and for the log as a whole.

use std::collections::HashMap;

use serde::Serialize;

use crate::commitment::LogHead;
use crate::envelope::RecordedEvent;
use crate::hash::{chain_hash, Hash, GENESIS};

/// One problem found, at the position it names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChainFailure {
    /// The first position the problem concerns.
    pub position: u64,
    /// The stream and version of the event at fault, when the problem is one event's.
    pub stream: Option<String>,
    pub version: Option<u64>,
    pub problem: String,
}

/// `<stream> at version <v> (position <p>): <problem>`, or `log at position <p>: <problem>` for a
/// problem of the log as a whole (a gap, a head that does not hold).
impl std::fmt::Display for ChainFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.stream, self.version) {
            (Some(stream), Some(version)) => write!(
                f,
                "{stream} at version {version} (position {}): {}",
                self.position, self.problem
            ),
            _ => write!(f, "log at position {}: {}", self.position, self.problem),
        }
    }
}

/// The result, in the shape of the audit API's `verify` answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct VerifySummary {
    pub streams_checked: u64,
    pub events_checked: u64,
    pub ok: bool,
    pub failures: Vec<ChainFailure>,
    /// The commitment to the log as read, up to its last event.
    pub head: LogHead,
}

impl VerifySummary {
    /// The lowest position a failure names: where the log first differs from an intact one (or
    /// from an expected head, as far as the heads given can tell).
    pub fn first_bad_position(&self) -> Option<u64> {
        self.failures.iter().map(|f| f.position).min()
    }
}

#[derive(Default)]
pub struct ChainVerifier {
    /// Per stream: the last version and hash seen, or `None` once the stream is broken.
    streams: HashMap<String, Option<(u64, Hash)>>,
    events: u64,
    head: LogHead,
    /// Heads to check, in position order; `next` is the first not yet reached.
    expected: Vec<LogHead>,
    next: usize,
    /// The position of the last expected head that held (0: none yet).
    confirmed: u64,
    failures: Vec<ChainFailure>,
}

impl ChainVerifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Also checks the log against heads an auditor recorded earlier.
    pub fn expecting(mut expected: Vec<LogHead>) -> Self {
        expected.sort_by_key(|h| h.position);
        expected.dedup();
        let mut v = Self {
            expected,
            ..Self::default()
        };
        // The empty log's head needs no event to be checked.
        v.check_expected_heads();
        v
    }

    /// Checks the next event of the store (events must come in position order).
    pub fn check(&mut self, e: &RecordedEvent) {
        self.events += 1;
        self.check_position(e);
        self.check_chain(e);
        self.head = self.head.next(e.position, &e.hash);
        self.check_expected_heads();
    }

    fn check_position(&mut self, e: &RecordedEvent) {
        let wanted = self.head.position + 1;
        if e.position == wanted {
            return;
        }
        let problem = if e.position > wanted {
            if e.position == wanted + 1 {
                format!("position {wanted} is missing")
            } else {
                format!("positions {wanted} to {} are missing", e.position - 1)
            }
        } else {
            format!(
                "position {} comes after position {}: positions must grow by one",
                e.position, self.head.position
            )
        };
        self.failures.push(ChainFailure {
            position: wanted.min(e.position),
            stream: None,
            version: None,
            problem,
        });
    }

    fn check_chain(&mut self, e: &RecordedEvent) {
        let head = self
            .streams
            .entry(e.stream.clone())
            .or_insert(Some((0, GENESIS)));
        let Some((version, prev)) = *head else {
            return;
        };
        let problem = if e.version != version + 1 {
            Some(format!(
                "version {} follows version {version} of its stream: a version is missing, \
                 repeated or out of order",
                e.version
            ))
        } else if e.prev_hash != prev {
            Some("prev_hash does not match the previous event's hash".to_owned())
        } else if chain_hash(&prev, &e.stream, e.version, &e.data) != e.hash {
            Some("the event's content does not match its hash".to_owned())
        } else {
            None
        };
        match problem {
            None => *head = Some((e.version, e.hash)),
            Some(problem) => {
                *head = None;
                self.failures.push(ChainFailure {
                    position: e.position,
                    stream: Some(e.stream.clone()),
                    version: Some(e.version),
                    problem,
                });
            }
        }
    }

    /// The problems found so far, in the order found.
    pub fn failures(&self) -> &[ChainFailure] {
        &self.failures
    }

    /// Compares with every expected head the log has now reached.
    fn check_expected_heads(&mut self) {
        while let Some(expected) = self.expected.get(self.next).copied() {
            if expected.position > self.head.position {
                return;
            }
            self.next += 1;
            if expected == self.head {
                self.confirmed = expected.position;
                continue;
            }
            let problem = if expected.position < self.head.position {
                // Jumped over by a gap, reported above: the log has no event there.
                format!("the log has no event at position {}", expected.position)
            } else {
                self.differs(expected.position)
            };
            self.failures.push(ChainFailure {
                position: self.confirmed + 1,
                stream: None,
                version: None,
                problem: format!("expected head {expected}: {problem}"),
            });
        }
    }

    fn differs(&self, position: u64) -> String {
        let first = self.confirmed + 1;
        if first == position {
            format!("the event at position {position} is not the one committed to")
        } else {
            format!(
                "the log up to position {position} is not the one committed to: an event at a \
                 position from {first} to {position} was changed, removed, inserted or moved{}",
                self.holding()
            )
        }
    }

    fn holding(&self) -> String {
        if self.confirmed == 0 {
            String::new()
        } else {
            format!(" (the head at {} holds)", self.confirmed)
        }
    }

    pub fn summary(mut self) -> VerifySummary {
        for expected in self.expected.split_off(self.next) {
            // Events are missing, but not necessarily at the end: the later ones may have been
            // renumbered to close the gap. Only the heads that hold say where it cannot be.
            self.failures.push(ChainFailure {
                position: self.confirmed + 1,
                stream: None,
                version: None,
                problem: format!(
                    "expected head {expected}: the log ends at position {}, short of position \
                     {}: events after position {} were removed{}",
                    self.head.position,
                    expected.position,
                    self.confirmed,
                    self.holding()
                ),
            });
        }
        VerifySummary {
            streams_checked: self.streams.len() as u64,
            events_checked: self.events,
            ok: self.failures.is_empty(),
            failures: self.failures,
            head: self.head,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::sample_event;

    fn chain(stream: &str, n: u64, first_position: u64) -> Vec<RecordedEvent> {
        let mut prev = GENESIS;
        (1..=n)
            .map(|v| {
                let data = sample_event(v);
                let hash = chain_hash(&prev, stream, v, &data);
                let e = RecordedEvent {
                    position: first_position + v - 1,
                    stream: stream.into(),
                    version: v,
                    data,
                    prev_hash: prev,
                    hash,
                };
                prev = hash;
                e
            })
            .collect()
    }

    fn verify(events: &[RecordedEvent], expected: Vec<LogHead>) -> VerifySummary {
        let mut v = ChainVerifier::expecting(expected);
        events.iter().for_each(|e| v.check(e));
        v.summary()
    }

    /// Two streams, interleaved: a1 b1 a2 b2 a3 at positions 1..5.
    fn log() -> Vec<RecordedEvent> {
        let a = chain("a", 3, 0);
        let b = chain("b", 2, 0);
        let mut log = vec![
            a[0].clone(),
            b[0].clone(),
            a[1].clone(),
            b[1].clone(),
            a[2].clone(),
        ];
        for (i, e) in log.iter_mut().enumerate() {
            e.position = i as u64 + 1;
        }
        log
    }

    fn heads(log: &[RecordedEvent]) -> Vec<LogHead> {
        let mut v = ChainVerifier::new();
        log.iter()
            .map(|e| {
                v.check(e);
                v.head
            })
            .collect()
    }

    fn named(s: &VerifySummary) -> Vec<(u64, Option<&str>)> {
        s.failures
            .iter()
            .map(|f| (f.position, f.stream.as_deref()))
            .collect()
    }

    #[test]
    fn an_intact_log_verifies_against_its_own_heads() {
        let log = log();
        let heads = heads(&log);
        let s = verify(&log, heads.clone());
        assert_eq!((s.streams_checked, s.events_checked, s.ok), (2, 5, true));
        assert_eq!(s.head, heads[4]);
        assert!(s.failures.is_empty());
        let empty = verify(&[], vec![LogHead::EMPTY]);
        assert!(empty.ok);
        assert_eq!(empty.head, LogHead::EMPTY);
    }

    #[test]
    fn an_edit_a_removal_and_a_relink_are_each_named() {
        let mut edited = chain("edited", 3, 1);
        edited[1].data.payload.push(0);
        let mut removed = chain("removed", 3, 4);
        removed.remove(1);
        let mut relinked = chain("relinked", 2, 7);
        relinked[1].prev_hash = [1; 32];
        let all: Vec<_> = edited.into_iter().chain(removed).chain(relinked).collect();
        let s = verify(&all, vec![]);
        assert!(!s.ok);
        assert_eq!(
            named(&s),
            [
                (2, Some("edited")),
                (5, None),
                (6, Some("removed")),
                (8, Some("relinked"))
            ]
        );
        assert_eq!(s.failures[1].problem, "position 5 is missing");
        assert_eq!(s.first_bad_position(), Some(2));
    }

    #[test]
    fn a_lost_tail_is_caught_only_by_an_expected_head() {
        let log = log();
        let head = heads(&log)[4];
        let shortened = &log[..4];
        assert!(verify(shortened, vec![]).ok, "the file alone cannot tell");
        let s = verify(shortened, vec![head]);
        assert_eq!(named(&s), [(1, None)], "the removal may be anywhere");
        assert!(s.failures[0]
            .problem
            .contains("the log ends at position 4, short of position 5"));
        let s = verify(shortened, vec![heads(&log)[3], head]);
        assert_eq!(named(&s), [(5, None)], "after the head that holds");
    }

    #[test]
    fn a_rehashed_edit_is_caught_between_the_heads_that_hold_and_fail() {
        let log = log();
        let heads = heads(&log);
        // Edit b1 (position 2) and rehash stream b from there: every chain still holds.
        let mut tampered = log.clone();
        tampered[1].data.payload.push(1);
        tampered[1].hash = chain_hash(&GENESIS, "b", 1, &tampered[1].data);
        tampered[3].prev_hash = tampered[1].hash;
        tampered[3].hash = chain_hash(&tampered[1].hash, "b", 2, &tampered[3].data);
        assert!(verify(&tampered, vec![]).ok, "the chains alone cannot tell");

        let s = verify(&tampered, vec![heads[4]]);
        assert_eq!(named(&s), [(1, None)]);
        assert!(
            s.failures[0].problem.contains("from 1 to 5"),
            "{}",
            s.failures[0].problem
        );
        // With the head taken before it, the change is pinned to position 2 exactly.
        let s = verify(&tampered, vec![heads[0], heads[1], heads[4]]);
        assert_eq!(named(&s), [(2, None), (2, None)]);
        assert!(s.failures[0]
            .problem
            .contains("the event at position 2 is not"));
        assert_eq!(s.first_bad_position(), Some(2));
    }

    #[test]
    fn reordering_is_named_by_versions_within_a_stream_and_by_heads_across_streams() {
        let log = log();
        let heads = heads(&log);
        // a1 and a2 (positions 1 and 3) swapped: a2 now comes first.
        let mut same = log.clone();
        same.swap(0, 2);
        same[0].position = 1;
        same[2].position = 3;
        let s = verify(&same, vec![]);
        assert_eq!(named(&s), [(1, Some("a"))]);
        // a2 and b2 (positions 3 and 4) swapped: both streams still read in order.
        let mut across = log.clone();
        across.swap(2, 3);
        across[2].position = 3;
        across[3].position = 4;
        assert!(verify(&across, vec![]).ok);
        let s = verify(&across, vec![heads[1], heads[4]]);
        assert_eq!(named(&s), [(3, None)]);
        assert!(s.failures[0].problem.contains("from 3 to 5"));
    }

    #[test]
    fn positions_out_of_order_are_named() {
        let mut log = log();
        log[3].position = 2;
        let s = verify(&log, vec![]);
        assert!(named(&s).contains(&(2, None)), "{:?}", s.failures);
    }
}
