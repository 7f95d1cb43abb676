//! A fingerprint of a whole log: SHA-256 over every event's position, stream, version and hash,
//! in position order. Since each hash covers its event's content and the one before it, two
//! stores with the same fingerprint hold the same history at the same positions, whatever
//! their backends. `audit verify` prints it; `store copy` compares the two sides with it.

use sha2::{Digest, Sha256};

use events::RecordedEvent;

#[derive(Default)]
pub struct LogDigest {
    hasher: Sha256,
}

impl LogDigest {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the next event (events must come in position order).
    pub fn add(&mut self, e: &RecordedEvent) {
        self.hasher.update(e.position.to_be_bytes());
        self.hasher.update((e.stream.len() as u32).to_be_bytes());
        self.hasher.update(e.stream.as_bytes());
        self.hasher.update(e.version.to_be_bytes());
        self.hasher.update(e.hash);
    }

    /// Lowercase hex.
    pub fn finish(self) -> String {
        let bytes: [u8; 32] = self.hasher.finalize().into();
        events::hash::to_hex(&bytes)
    }
}
