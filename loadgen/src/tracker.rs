//! Arrival times: one process-wide clock in nanoseconds, and per event position how many
//! subscribers have received its update and when the first and the last of them did. Recording
//! an arrival is an index and three stores; latencies are worked out after the run from the
//! instants the submissions were sent.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since the first call in this process (never 0 after that first call).
pub fn now_ns() -> u64 {
    let epoch = *EPOCH.get_or_init(Instant::now);
    epoch.elapsed().as_nanos() as u64 + 1
}

/// Receipts of one position's update.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Slot {
    pub count: u32,
    pub first_ns: u64,
    pub last_ns: u64,
}

/// Receipts for the positions `base .. base + capacity`; others are only counted.
#[derive(Default)]
pub struct Tracker {
    base: u64,
    slots: Vec<Slot>,
    pub outside: u64,
}

impl Tracker {
    pub fn new(base: u64, capacity: usize) -> Self {
        Tracker {
            base,
            slots: vec![Slot::default(); capacity],
            outside: 0,
        }
    }

    /// Notes that one subscriber received the update at `position` at `at_ns`. Returns whether
    /// the position is tracked.
    #[inline]
    pub fn record(&mut self, position: u64, at_ns: u64) -> bool {
        match self
            .slots
            .get_mut(position.wrapping_sub(self.base) as usize)
        {
            Some(s) if position >= self.base => {
                if s.count == 0 {
                    s.first_ns = at_ns;
                }
                s.count += 1;
                s.last_ns = s.last_ns.max(at_ns);
                true
            }
            _ => {
                self.outside += 1;
                false
            }
        }
    }

    pub fn slot(&self, position: u64) -> Option<Slot> {
        position
            .checked_sub(self.base)
            .and_then(|i| self.slots.get(i as usize))
            .copied()
    }

    /// For submissions sent at `sent_ns` that produced the update at `position`: the latency to
    /// the first and to the last of `subscribers`, for those that all of them received.
    pub fn deliveries(&self, sent: &[(u64, u64)], subscribers: u32) -> Deliveries {
        let mut d = Deliveries::default();
        for &(sent_ns, position) in sent {
            match self.slot(position) {
                Some(s) if s.count >= subscribers && s.count > 0 => {
                    let first = Duration::from_nanos(s.first_ns.saturating_sub(sent_ns));
                    let last = Duration::from_nanos(s.last_ns.saturating_sub(sent_ns));
                    d.to_first.push(first);
                    d.to_last.push(last);
                    d.each.push(Some((first, last)));
                    d.last_arrival_ns = d.last_arrival_ns.max(s.last_ns);
                }
                _ => {
                    d.incomplete += 1;
                    d.each.push(None);
                }
            }
        }
        d
    }
}

/// Latencies from submission to delivery, one per submission.
#[derive(Default, Debug)]
pub struct Deliveries {
    pub to_first: Vec<Duration>,
    pub to_last: Vec<Duration>,
    /// Submissions whose update some subscriber never received.
    pub incomplete: usize,
    /// The latest arrival among the complete ones.
    pub last_arrival_ns: u64,
    /// Per submission, in the order given: to the first and to the last subscriber, if complete.
    pub each: Vec<Option<(Duration, Duration)>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_first_last_and_count_per_position() {
        let mut t = Tracker::new(100, 3);
        assert!(t.record(101, 50));
        assert!(t.record(101, 40));
        assert!(t.record(101, 70));
        assert!(!t.record(99, 1));
        assert!(!t.record(103, 1));
        assert_eq!(t.outside, 2);
        assert_eq!(
            t.slot(101),
            Some(Slot {
                count: 3,
                first_ns: 50,
                last_ns: 70
            })
        );
        assert_eq!(t.slot(100), Some(Slot::default()));
        assert_eq!(t.slot(99), None);
    }

    #[test]
    fn latencies_count_only_updates_every_subscriber_received() {
        let mut t = Tracker::new(1, 10);
        for at in [1_000, 3_000] {
            t.record(1, at);
        }
        t.record(2, 5_000);
        let d = t.deliveries(&[(500, 1), (4_000, 2), (0, 42)], 2);
        assert_eq!(d.to_first, vec![Duration::from_nanos(500)]);
        assert_eq!(d.to_last, vec![Duration::from_nanos(2_500)]);
        assert_eq!(d.incomplete, 2);
        assert_eq!(
            d.each,
            vec![
                Some((Duration::from_nanos(500), Duration::from_nanos(2_500))),
                None,
                None
            ]
        );
        assert_eq!(d.last_arrival_ns, 3_000);
    }

    #[test]
    fn the_clock_only_moves_forward() {
        let a = now_ns();
        let b = now_ns();
        assert!(a >= 1 && b >= a);
    }
}
