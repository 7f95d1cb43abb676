//! Verifying every stream's hash chain in one pass over the whole store, in position order.
//!
//! Memory grows with the number of streams (one version and one hash each), not with the number
//! of events. A stream that breaks is reported once, at its first bad event; checking goes on
//! for the others.

use std::collections::HashMap;

use serde::Serialize;

use crate::envelope::RecordedEvent;
use crate::hash::{chain_hash, Hash, GENESIS};

/// One broken link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChainFailure {
    pub stream: String,
    pub version: u64,
    pub position: u64,
    pub problem: &'static str,
}

/// The result, in the shape of the audit API's `verify` answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct VerifySummary {
    pub streams_checked: u64,
    pub events_checked: u64,
    pub ok: bool,
    pub failures: Vec<ChainFailure>,
}

#[derive(Default)]
pub struct ChainVerifier {
    /// Per stream: the last version and hash seen, or `None` once the stream is broken.
    heads: HashMap<String, Option<(u64, Hash)>>,
    events: u64,
    failures: Vec<ChainFailure>,
}

impl ChainVerifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks the next event of the store (events must come in position order).
    pub fn check(&mut self, e: &RecordedEvent) {
        self.events += 1;
        let head = self
            .heads
            .entry(e.stream.clone())
            .or_insert(Some((0, GENESIS)));
        let Some((version, prev)) = *head else {
            return;
        };
        let problem = if e.version != version + 1 {
            Some("a version is missing or repeated")
        } else if e.prev_hash != prev {
            Some("prev_hash does not match the previous event's hash")
        } else if chain_hash(&prev, &e.stream, e.version, &e.data) != e.hash {
            Some("the event's content does not match its hash")
        } else {
            None
        };
        match problem {
            None => *head = Some((e.version, e.hash)),
            Some(problem) => {
                *head = None;
                self.failures.push(ChainFailure {
                    stream: e.stream.clone(),
                    version: e.version,
                    position: e.position,
                    problem,
                });
            }
        }
    }

    /// The breaks found so far, in the order found.
    pub fn failures(&self) -> &[ChainFailure] {
        &self.failures
    }

    pub fn summary(self) -> VerifySummary {
        VerifySummary {
            streams_checked: self.heads.len() as u64,
            events_checked: self.events,
            ok: self.failures.is_empty(),
            failures: self.failures,
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

    #[test]
    fn intact_chains_verify() {
        let mut v = ChainVerifier::new();
        for e in chain("a", 3, 1).iter().chain(&chain("b", 2, 4)) {
            v.check(e);
        }
        let s = v.summary();
        assert_eq!((s.streams_checked, s.events_checked, s.ok), (2, 5, true));
    }

    #[test]
    fn an_edit_a_removal_and_a_relink_are_each_named() {
        let mut edited = chain("edited", 3, 1);
        edited[1].data.payload.push(0);
        let mut removed = chain("removed", 3, 4);
        removed.remove(1);
        let mut relinked = chain("relinked", 2, 7);
        relinked[1].prev_hash = [1; 32];
        let mut v = ChainVerifier::new();
        for e in edited.iter().chain(&removed).chain(&relinked) {
            v.check(e);
        }
        let s = v.summary();
        assert!(!s.ok);
        let named: Vec<_> = s
            .failures
            .iter()
            .map(|f| (f.stream.as_str(), f.version))
            .collect();
        assert_eq!(named, [("edited", 2), ("removed", 3), ("relinked", 2)]);
    }
}
