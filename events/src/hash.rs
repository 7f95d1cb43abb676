//! The per-stream hash chain: `hash = SHA-256(previous hash ‖ canonical bytes of the event)`.
//!
//! The canonical bytes are defined here, field by field, so that an auditor can recompute a chain
//! from an export without this code: every integer big-endian, every string and byte string
//! preceded by its length as a big-endian `u32`, an absent id as 16 zero bytes.
//!
//! | field | encoding |
//! | --- | --- |
//! | stream | length-prefixed UTF-8 |
//! | stream version | u64 |
//! | event id | 16 bytes |
//! | type name | length-prefixed UTF-8 |
//! | schema version | u16 |
//! | codec id | u8 |
//! | recorded time | i64 microseconds since the epoch |
//! | user id, correlation id, causation id | 16 bytes each |
//! | payload | length-prefixed bytes |
//!
//! The global position is left out on purpose: it is the store's bookkeeping, not part of what
//! was decided, and a backend may only learn it at commit.

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::envelope::{EventData, RecordedEvent};

pub type Hash = [u8; 32];

/// The "previous hash" of a stream's first event.
pub const GENESIS: Hash = [0; 32];

pub fn chain_hash(prev: &Hash, stream: &str, version: u64, data: &EventData) -> Hash {
    let mut h = Sha256::new();
    h.update(prev);
    let put_bytes = |h: &mut Sha256, b: &[u8]| {
        h.update((b.len() as u32).to_be_bytes());
        h.update(b);
    };
    put_bytes(&mut h, stream.as_bytes());
    h.update(version.to_be_bytes());
    h.update(data.id.as_bytes());
    put_bytes(&mut h, data.event_type.as_bytes());
    h.update(data.schema_version.to_be_bytes());
    h.update([data.codec]);
    h.update(data.recorded_at.as_micros().to_be_bytes());
    let id = |u: Option<Uuid>| *u.unwrap_or(Uuid::nil()).as_bytes();
    h.update(id(data.metadata.user_id));
    h.update(data.metadata.correlation_id.as_bytes());
    h.update(id(data.metadata.causation_id));
    put_bytes(&mut h, &data.payload);
    h.finalize().into()
}

/// Where a stream's chain breaks.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("hash chain of {stream} breaks at version {version}: {problem}")]
pub struct ChainBreak {
    pub stream: String,
    pub version: u64,
    pub problem: &'static str,
}

/// Checks links of one stream, whose events are given in version order starting anywhere; pass
/// the hash of the event before the first one given (`GENESIS` when starting at version 1).
/// Returns the hash of the last event, to continue with the next page.
pub fn verify_links(prev: Hash, events: &[RecordedEvent]) -> Result<Hash, ChainBreak> {
    let mut prev = prev;
    let first = events.first().map_or(1, |e| e.version);
    for (expected_version, e) in (first..).zip(events) {
        let broken = |problem| ChainBreak {
            stream: e.stream.clone(),
            version: e.version,
            problem,
        };
        if e.version != expected_version {
            return Err(broken("a version is missing"));
        }
        if e.prev_hash != prev {
            return Err(broken("prev_hash does not match the previous event's hash"));
        }
        if chain_hash(&prev, &e.stream, e.version, &e.data) != e.hash {
            return Err(broken("the event's content does not match its hash"));
        }
        prev = e.hash;
    }
    Ok(prev)
}

/// Lowercase hex, as the audit API shows hashes.
pub fn to_hex(hash: &Hash) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}
