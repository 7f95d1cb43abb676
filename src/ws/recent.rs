//! The most recent pushes, kept so that a client resuming with `since` gets exactly the updates
//! it missed. Bounded in entries and in bytes; the oldest go first.

use std::collections::VecDeque;

use bytestring::ByteString;
use projections::{Statuses, Topic};

/// One push: its position, topic, the statuses it concerns (see [`projections::Update`]), and
/// its bytes.
pub type Entry = (u64, Topic, Statuses, ByteString);

pub struct Recent {
    entries: VecDeque<Entry>,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
    /// Every update with a position after this one is (still) here.
    complete_after: u64,
}

impl Recent {
    pub fn new(max_entries: usize, max_bytes: usize, head: u64) -> Self {
        Recent {
            entries: VecDeque::new(),
            bytes: 0,
            max_entries,
            max_bytes,
            complete_after: head,
        }
    }

    pub fn push(&mut self, position: u64, topic: Topic, statuses: Statuses, text: ByteString) {
        self.bytes += text.len();
        self.entries.push_back((position, topic, statuses, text));
        while self.entries.len() > self.max_entries || self.bytes > self.max_bytes {
            let Some((p, _, _, t)) = self.entries.pop_front() else {
                break;
            };
            self.bytes -= t.len();
            self.complete_after = self.complete_after.max(p);
        }
    }

    /// The updates after `since` that `wanted` (given each one's topic and statuses) keeps,
    /// in order; `None` if some may be gone already.
    pub fn since<'a>(
        &'a self,
        since: u64,
        wanted: impl Fn(&Topic, Statuses) -> bool + 'a,
    ) -> Option<impl Iterator<Item = &'a Entry> + 'a> {
        if since < self.complete_after {
            return None;
        }
        let start = self.entries.partition_point(|(p, _, _, _)| *p <= since);
        Some(
            self.entries
                .range(start..)
                .filter(move |(_, t, s, _)| wanted(t, *s)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resumes_from_any_position_still_held() {
        let mut r = Recent::new(4, 1 << 20, 0);
        for p in 1..=6 {
            r.push(
                p,
                Topic::Stats,
                Statuses::ALL,
                ByteString::from(format!("{p}")),
            );
        }
        // Positions 1 and 2 were dropped: a resume from 0 or 1 cannot be served.
        assert!(r.since(1, |_, _| true).is_none());
        let got: Vec<u64> = r.since(2, |_, _| true).unwrap().map(|e| e.0).collect();
        assert_eq!(got, [3, 4, 5, 6]);
        let got: Vec<u64> = r.since(5, |_, _| true).unwrap().map(|e| e.0).collect();
        assert_eq!(got, [6]);
    }

    #[test]
    fn the_byte_bound_holds() {
        let mut r = Recent::new(100, 10, 0);
        for p in 1..=5 {
            r.push(p, Topic::Audit, Statuses::ALL, ByteString::from("abcd"));
        }
        assert!(r.bytes <= 10);
        assert!(r.since(4, |_, _| true).is_some());
        assert!(r.since(0, |_, _| true).is_none());
    }
}
