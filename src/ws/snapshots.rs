//! Snapshots for subscribers, built and serialized away from the actors, each once per (topic,
//! position, window), and shared by every subscriber who asks for it at that position.
//!
//! The registry takes a [`ReadView`] from the projector (a few reference counts: see
//! `projections::view`), asks the [`SnapshotCache`] which of a subscribe's snapshots are ready,
//! being built for another subscriber, or still to build, and gives those to the [`Builder`]: the
//! blocking pool, with at most a fixed number of builds at a time, so that however many clients
//! subscribe, snapshots take at most that many threads and the rest wait their turn. Neither the
//! projector nor the registry ever serializes a snapshot.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Arc;

use bytestring::ByteString;
use projections::{QueueWindow, ReadView, Topic};
use tokio::sync::Semaphore;
use uuid::Uuid;

/// What identifies a snapshot's bytes: the topic, the position it shows, and (for `queue`) the
/// window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SnapshotKey {
    pub topic: Topic,
    pub position: u64,
    pub window: Option<QueueWindow>,
}

impl SnapshotKey {
    pub fn new(topic: Topic, position: u64, window: &QueueWindow) -> Self {
        SnapshotKey {
            topic,
            position,
            window: (topic == Topic::Queue).then_some(*window),
        }
    }
}

/// Where a snapshot stands for one subscriber who asks for it.
#[derive(Debug, PartialEq)]
pub enum Lookup {
    /// Built already: here it is.
    Ready(ByteString),
    /// Being built for someone else: the subscriber waits for the same build.
    Building,
    /// Nobody builds it yet: the caller starts the build (the subscriber waits for it).
    Build,
}

/// Finished snapshots kept for later subscribers at the newest position, at most.
const MAX_READY: usize = 256;
/// …and their bytes at most.
const MAX_READY_BYTES: usize = 64 * 1024 * 1024;

/// The snapshots being built, who waits for each, and the finished ones of the newest position.
/// Pure bookkeeping: no I/O, no actor.
#[derive(Default)]
pub struct SnapshotCache {
    /// The newest position asked for: finished snapshots are kept for it only.
    newest: u64,
    ready: HashMap<SnapshotKey, ByteString>,
    ready_bytes: usize,
    building: HashMap<SnapshotKey, Vec<Uuid>>,
}

impl SnapshotCache {
    /// `waiter` (a session) wants the snapshot `key`.
    pub fn lookup(&mut self, key: SnapshotKey, waiter: Uuid) -> Lookup {
        if key.position > self.newest {
            self.newest = key.position;
            self.ready.clear();
            self.ready_bytes = 0;
        }
        if let Some(bytes) = self.ready.get(&key) {
            return Lookup::Ready(bytes.clone());
        }
        match self.building.entry(key) {
            Entry::Occupied(mut waiting) => {
                waiting.get_mut().push(waiter);
                Lookup::Building
            }
            Entry::Vacant(slot) => {
                slot.insert(vec![waiter]);
                Lookup::Build
            }
        }
    }

    /// A build ended, with its bytes or without (it failed): answers who waited for it. The
    /// bytes are kept for later subscribers if they show the newest position and there is room.
    pub fn built(&mut self, key: &SnapshotKey, bytes: Option<&ByteString>) -> Vec<Uuid> {
        let waiters = self.building.remove(key).unwrap_or_default();
        if let Some(bytes) = bytes {
            let room =
                self.ready.len() < MAX_READY && self.ready_bytes + bytes.len() <= MAX_READY_BYTES;
            if key.position == self.newest && room {
                self.ready_bytes += bytes.len();
                self.ready.insert(*key, bytes.clone());
            }
        }
        waiters
    }

    /// Builds under way (for the tests and the metrics).
    pub fn building(&self) -> usize {
        self.building.len()
    }
}

/// Builds snapshots on the blocking pool, a bounded number at a time.
#[derive(Clone)]
pub struct Builder {
    permits: Arc<Semaphore>,
}

/// The snapshots of one build, in the order of their keys, or why there are none.
pub type Built = (Vec<SnapshotKey>, Result<Vec<ByteString>, String>);

impl Builder {
    /// At most `concurrent` builds at a time (at least one).
    pub fn new(concurrent: usize) -> Self {
        Builder {
            permits: Arc::new(Semaphore::new(concurrent.max(1))),
        }
    }

    /// One build per core, up to four: snapshots may take those threads of the blocking pool,
    /// never more.
    pub fn per_core() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self::new(cores.min(4))
    }

    /// Serializes the snapshots of `keys` from `view`, once a build may start.
    pub async fn build(&self, view: ReadView, keys: Vec<SnapshotKey>) -> Built {
        let permit = match self.permits.clone().acquire_owned().await {
            Ok(permit) => permit,
            Err(e) => return (keys, Err(e.to_string())),
        };
        let wanted = keys.clone();
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            wanted
                .iter()
                .map(|k| {
                    let window = k.window.unwrap_or_default();
                    ByteString::from(view.snapshot_json(&k.topic, &window))
                })
                .collect()
        });
        let result = task
            .await
            .map_err(|e| format!("a snapshot build failed: {e}"));
        (keys, result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use projections::Statuses;

    fn key(topic: Topic, position: u64) -> SnapshotKey {
        SnapshotKey::new(topic, position, &QueueWindow::default())
    }

    #[test]
    fn one_build_per_key_and_everyone_waiting_gets_it() {
        let mut cache = SnapshotCache::default();
        let (a, b, c) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let queue = key(Topic::Queue, 7);
        assert_eq!(cache.lookup(queue, a), Lookup::Build);
        assert_eq!(cache.lookup(queue, b), Lookup::Building);
        assert_eq!(cache.building(), 1);
        let bytes = ByteString::from("snapshot");
        assert_eq!(cache.built(&queue, Some(&bytes)), [a, b]);
        // Later at the same position: ready, no build.
        assert_eq!(cache.lookup(queue, c), Lookup::Ready(bytes));
        assert_eq!(cache.building(), 0);
    }

    #[test]
    fn keys_differ_by_position_and_window_but_not_by_window_outside_queue() {
        let narrow = QueueWindow {
            limit: 5,
            statuses: Statuses::UNDECIDED,
        };
        assert_ne!(key(Topic::Queue, 7), key(Topic::Queue, 8));
        assert_ne!(
            key(Topic::Queue, 7),
            SnapshotKey::new(Topic::Queue, 7, &narrow)
        );
        assert_eq!(
            key(Topic::Stats, 7),
            SnapshotKey::new(Topic::Stats, 7, &narrow)
        );
    }

    #[test]
    fn only_the_newest_position_is_kept_and_a_failed_build_keeps_nothing() {
        let mut cache = SnapshotCache::default();
        let who = Uuid::from_u128(1);
        let old = key(Topic::Stats, 3);
        assert_eq!(cache.lookup(old, who), Lookup::Build);
        let new = key(Topic::Stats, 4);
        assert_eq!(cache.lookup(new, who), Lookup::Build);
        // The older build ends after a newer position was asked for: delivered, not kept.
        assert_eq!(cache.built(&old, Some(&ByteString::from("3"))), [who]);
        assert_eq!(cache.lookup(old, who), Lookup::Build);
        assert_eq!(cache.built(&new, None), [who]);
        assert_eq!(cache.lookup(new, who), Lookup::Build);
        // A newer position forgets what was ready.
        assert_eq!(cache.built(&new, Some(&ByteString::from("4"))), [who]);
        assert!(matches!(cache.lookup(new, who), Lookup::Ready(_)));
        assert_eq!(cache.lookup(key(Topic::Stats, 5), who), Lookup::Build);
        assert_eq!(cache.lookup(new, who), Lookup::Build);
    }

    #[test]
    fn what_is_kept_is_bounded() {
        let mut cache = SnapshotCache::default();
        let who = Uuid::from_u128(1);
        let big = ByteString::from("x".repeat(MAX_READY_BYTES / 2 + 1));
        for n in 0..2u128 {
            let k = key(Topic::Case(Uuid::from_u128(n)), 1);
            cache.lookup(k, who);
            cache.built(&k, Some(&big));
        }
        assert!(matches!(
            cache.lookup(key(Topic::Case(Uuid::from_u128(0)), 1), who),
            Lookup::Ready(_)
        ));
        assert_eq!(
            cache.lookup(key(Topic::Case(Uuid::from_u128(1)), 1), who),
            Lookup::Build,
            "over the byte bound: not kept"
        );
        assert!(cache.ready_bytes <= MAX_READY_BYTES);
    }
}
