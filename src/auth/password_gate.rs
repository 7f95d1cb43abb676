//! At most so many password hashings or verifications at once. Each argon2 run holds 19 MiB and
//! tens of milliseconds of a core; without a bound, a few hundred concurrent logins take
//! gigabytes and starve the blocking threads that SQLite reads share. A request that finds every
//! slot taken is refused at once (503 `unavailable` with `Retry-After`) rather than queued: a
//! queue would only move the memory elsewhere.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The bound: about two per core.
#[derive(Debug, Clone)]
pub struct PasswordGate {
    slots: Arc<Semaphore>,
    size: usize,
}

/// A slot, held while one argon2 run lasts; dropping it frees the slot.
#[derive(Debug)]
pub struct PasswordSlot(#[allow(dead_code)] OwnedSemaphorePermit);

impl PasswordGate {
    /// A gate of `size` slots (at least 1).
    pub fn new(size: usize) -> Self {
        let size = size.max(1);
        PasswordGate {
            slots: Arc::new(Semaphore::new(size)),
            size,
        }
    }

    /// Two slots per core this process may use.
    pub fn per_core() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::new(2 * cores)
    }

    /// How many runs may go at once.
    pub fn size(&self) -> usize {
        self.size
    }

    /// A slot if one is free now.
    pub fn try_enter(&self) -> Option<PasswordSlot> {
        self.slots
            .clone()
            .try_acquire_owned()
            .ok()
            .map(PasswordSlot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_run_out_and_come_back() {
        let gate = PasswordGate::new(2);
        let a = gate.try_enter().expect("first");
        let _b = gate.try_enter().expect("second");
        assert!(gate.try_enter().is_none(), "full");
        drop(a);
        assert!(gate.try_enter().is_some(), "freed");
        assert_eq!(PasswordGate::new(0).size(), 1);
        assert!(PasswordGate::per_core().size() >= 2);
    }
}
