//! What this process knows of every stream, built from the log: its version, the hash of its last
//! event, and where its events lie in the log. Appends are checked and chained against it, and
//! `read_stream` finds a stream's events through it.
//!
//! A stream's events lie in runs of consecutive positions (one run per append, merged when
//! appends to one stream follow each other in the log), so the table costs about 24 bytes per
//! append plus one entry per stream, and reading a stream costs one read of the log per run.
//! Pure data: no I/O, tested on its own.

use std::collections::HashMap;

use crate::envelope::{EventData, RecordedEvent};
use crate::hash::{chain_hash, verify_links, ChainBreak, Hash, GENESIS};
use crate::store::{AppendResult, ExpectedVersion, StoreError};

/// Every stream of the log up to `head`.
#[derive(Default)]
pub(super) struct Table {
    head: u64,
    streams: HashMap<String, Entry>,
}

struct Entry {
    version: u64,
    last_hash: Hash,
    runs: Vec<Run>,
}

/// Versions `first_version ..` of a stream at positions `first_position ..`, `len` of them.
#[derive(Clone, Copy, Debug)]
struct Run {
    first_version: u64,
    first_position: u64,
    len: u64,
}

/// A stretch of the log to read: `len` events from `position` on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Piece {
    pub position: u64,
    pub len: u64,
}

/// Why an event read from the log cannot be added.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(super) enum ApplyError {
    /// The event lies beyond the next position: the ones between must be read first.
    #[error("position {found} does not follow {head}")]
    Gap { head: u64, found: u64 },
    /// The event does not continue its stream.
    #[error(transparent)]
    Chain(#[from] ChainBreak),
}

/// One request of a batch as planned against the table: its events, placed and chained, or why
/// it is refused.
pub(super) type Planned = Result<Vec<RecordedEvent>, StoreError>;

impl Table {
    /// The position of the last event known (0: none).
    pub fn head(&self) -> u64 {
        self.head
    }

    /// Adds the event at the next position, after checking that it continues its stream's
    /// versions and hash chain. Returns `false` for an event at or before the head, which is
    /// already known.
    pub fn apply(&mut self, event: &RecordedEvent) -> Result<bool, ApplyError> {
        if event.position <= self.head {
            return Ok(false);
        }
        if event.position != self.head + 1 {
            return Err(ApplyError::Gap {
                head: self.head,
                found: event.position,
            });
        }
        let (version, last_hash) = self
            .streams
            .get(&event.stream)
            .map_or((0, GENESIS), |s| (s.version, s.last_hash));
        if event.version != version + 1 {
            return Err(ChainBreak {
                stream: event.stream.clone(),
                version: event.version,
                problem: "the version does not follow the stream's last one",
            }
            .into());
        }
        verify_links(last_hash, std::slice::from_ref(event))?;
        match self.streams.get_mut(&event.stream) {
            Some(entry) => entry.push(event),
            None => {
                let mut entry = Entry {
                    version: 0,
                    last_hash: GENESIS,
                    runs: Vec::new(),
                };
                entry.push(event);
                self.streams.insert(event.stream.clone(), entry);
            }
        }
        self.head = event.position;
        Ok(true)
    }

    /// Checks each request's expected version against the streams as the requests before it in
    /// the batch leave them, and places the events of those admitted at the positions after the
    /// head, in order, chained. A refused request takes no position.
    pub fn plan<'a>(
        &self,
        requests: impl IntoIterator<Item = (&'a str, ExpectedVersion, &'a [EventData])>,
    ) -> Vec<Planned> {
        let mut heads: HashMap<&str, (u64, Hash)> = HashMap::new();
        let mut position = self.head;
        let mut planned = Vec::new();
        for (stream, expected, events) in requests {
            let (mut version, mut prev) = heads.get(stream).copied().unwrap_or_else(|| {
                self.streams
                    .get(stream)
                    .map_or((0, GENESIS), |s| (s.version, s.last_hash))
            });
            if !expected.admits(version) {
                planned.push(Err(StoreError::Conflict {
                    stream: stream.to_owned(),
                    expected,
                    actual: version,
                }));
                continue;
            }
            let mut placed = Vec::with_capacity(events.len());
            for data in events {
                version += 1;
                position += 1;
                let hash = chain_hash(&prev, stream, version, data);
                placed.push(RecordedEvent {
                    position,
                    stream: stream.to_owned(),
                    version,
                    data: data.clone(),
                    prev_hash: prev,
                    hash,
                });
                prev = hash;
            }
            heads.insert(stream, (version, prev));
            planned.push(Ok(placed));
        }
        planned
    }

    /// Where the events of `stream` with versions `from_version ..` lie, at most `limit` of
    /// them, in version order.
    pub fn pieces(&self, stream: &str, from_version: u64, limit: usize) -> Vec<Piece> {
        let Some(entry) = self.streams.get(stream) else {
            return Vec::new();
        };
        let first = from_version.max(1);
        let last = entry
            .version
            .min(first.saturating_add(limit as u64).saturating_sub(1));
        if limit == 0 || first > last {
            return Vec::new();
        }
        let start = entry
            .runs
            .partition_point(|r| r.first_version + r.len <= first);
        let mut pieces = Vec::new();
        for run in &entry.runs[start..] {
            if run.first_version > last {
                break;
            }
            let from = first.max(run.first_version);
            let to = last.min(run.first_version + run.len - 1);
            pieces.push(Piece {
                position: run.first_position + (from - run.first_version),
                len: to - from + 1,
            });
        }
        pieces
    }
}

impl Entry {
    fn push(&mut self, event: &RecordedEvent) {
        match self.runs.last_mut() {
            Some(run)
                if run.first_position + run.len == event.position
                    && run.first_version + run.len == event.version =>
            {
                run.len += 1;
            }
            _ => self.runs.push(Run {
                first_version: event.version,
                first_position: event.position,
                len: 1,
            }),
        }
        self.version = event.version;
        self.last_hash = event.hash;
    }
}

/// What an append of `events` (planned, non-empty) answers.
pub(super) fn append_result(events: &[RecordedEvent]) -> AppendResult {
    AppendResult {
        stream_version: events.last().map_or(0, |e| e.version),
        positions: events.iter().map(|e| e.position).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::sample_event;

    fn events(n: u64) -> Vec<EventData> {
        (0..n).map(sample_event).collect()
    }

    /// Plans one request and applies it, as the writer does after a successful append.
    fn append(t: &mut Table, stream: &str, expected: ExpectedVersion, n: u64) -> Planned {
        let data = events(n);
        let planned = t
            .plan([(stream, expected, data.as_slice())])
            .pop()
            .expect("one answer");
        if let Ok(placed) = &planned {
            for e in placed {
                assert_eq!(t.apply(e), Ok(true));
            }
        }
        planned
    }

    #[test]
    fn versions_and_positions_follow_each_other() {
        let mut t = Table::default();
        let a = append(&mut t, "a", ExpectedVersion::NoStream, 2).expect("new stream");
        assert_eq!(append_result(&a).positions, vec![1, 2]);
        let b = append(&mut t, "b", ExpectedVersion::Any, 1).expect("any");
        assert_eq!(append_result(&b).positions, vec![3]);
        let a2 = append(&mut t, "a", ExpectedVersion::Exact(2), 3).expect("exact");
        let result = append_result(&a2);
        assert_eq!(result.stream_version, 5);
        assert_eq!(result.positions, vec![4, 5, 6]);
        assert_eq!(a2[0].prev_hash, a[1].hash, "the chain continues");
        assert_eq!(t.head(), 6);
    }

    #[test]
    fn conflicts_name_the_actual_version_and_take_no_position() {
        let mut t = Table::default();
        append(&mut t, "a", ExpectedVersion::Any, 3).expect("any");
        for expected in [ExpectedVersion::NoStream, ExpectedVersion::Exact(2)] {
            match append(&mut t, "a", expected, 1) {
                Err(StoreError::Conflict { actual, .. }) => assert_eq!(actual, 3),
                other => panic!("expected a conflict, got {other:?}"),
            }
        }
        let next = append(&mut t, "b", ExpectedVersion::Any, 1).expect("any");
        assert_eq!(next[0].position, 4);
    }

    #[test]
    fn a_batch_sees_the_requests_before_it() {
        let t = Table::default();
        let one = events(1);
        let two = events(2);
        let planned = t.plan([
            ("a", ExpectedVersion::NoStream, one.as_slice()),
            ("a", ExpectedVersion::NoStream, one.as_slice()),
            ("a", ExpectedVersion::Exact(1), two.as_slice()),
            ("b", ExpectedVersion::Exact(0), one.as_slice()),
        ]);
        let first = planned[0].as_ref().expect("first wins");
        assert!(matches!(
            planned[1],
            Err(StoreError::Conflict { actual: 1, .. })
        ));
        let third = planned[2].as_ref().expect("continues the first");
        assert_eq!(third[0].prev_hash, first[0].hash);
        assert_eq!(
            third
                .iter()
                .map(|e| (e.version, e.position))
                .collect::<Vec<_>>(),
            vec![(2, 2), (3, 3)]
        );
        assert_eq!(planned[3].as_ref().expect("other stream")[0].position, 4);
        assert_eq!(t.head(), 0, "planning changes nothing");
    }

    #[test]
    fn known_events_are_ignored_and_gaps_refused() {
        let mut t = Table::default();
        let a = append(&mut t, "a", ExpectedVersion::Any, 2).expect("any");
        assert_eq!(t.apply(&a[0]), Ok(false));
        let mut far = a[1].clone();
        far.position = 5;
        assert_eq!(t.apply(&far), Err(ApplyError::Gap { head: 2, found: 5 }));
    }

    #[test]
    fn a_broken_chain_is_refused() {
        let mut t = Table::default();
        append(&mut t, "a", ExpectedVersion::Any, 1).expect("any");
        let data = events(1);
        let mut next = t
            .plan([("a", ExpectedVersion::Any, data.as_slice())])
            .remove(0)
            .expect("planned")
            .remove(0);
        let honest = next.clone();
        next.data.payload.push(0);
        assert!(matches!(t.apply(&next), Err(ApplyError::Chain(_))));
        let mut skipped = honest.clone();
        skipped.version = 3;
        assert!(matches!(t.apply(&skipped), Err(ApplyError::Chain(_))));
        assert_eq!(t.apply(&honest), Ok(true));
    }

    #[test]
    fn pieces_follow_the_runs() {
        let mut t = Table::default();
        append(&mut t, "a", ExpectedVersion::Any, 3).expect("a 1-3 at 1-3");
        append(&mut t, "a", ExpectedVersion::Any, 2).expect("a 4-5 at 4-5, one run");
        append(&mut t, "b", ExpectedVersion::Any, 1).expect("b at 6");
        append(&mut t, "a", ExpectedVersion::Any, 4).expect("a 6-9 at 7-10");
        let piece = |position, len| Piece { position, len };
        assert_eq!(
            t.pieces("a", 1, 100),
            vec![piece(1, 5), piece(7, 4)],
            "adjacent appends merge"
        );
        assert_eq!(t.pieces("a", 4, 3), vec![piece(4, 2), piece(7, 1)]);
        assert_eq!(t.pieces("a", 7, 100), vec![piece(8, 3)]);
        assert_eq!(
            t.pieces("a", 0, 2),
            vec![piece(1, 2)],
            "version 0 reads from 1"
        );
        assert!(t.pieces("a", 10, 100).is_empty());
        assert!(t.pieces("missing", 1, 100).is_empty());
        assert_eq!(t.pieces("b", 1, 100), vec![piece(6, 1)]);
    }
}
