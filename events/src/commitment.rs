//! The head commitment: one short value that commits to the whole log up to a position.
//!
//! Each stream's hash chain proves that stream's events are unedited *given its last hash*, but
//! nothing ties streams together or proves a stream's tail is still there. The commitment does:
//! a running hash over every event of the store in position order,
//!
//! ```text
//! C_0 = 32 zero bytes
//! C_n = SHA-256(C_{n-1} ‖ position_n as u64 big-endian ‖ hash_n)
//! ```
//!
//! where `hash_n` is the event's own chain hash (which covers its stream, version, id, type,
//! time, actors and payload: see [`crate::hash`]). Two logs have the same `C_n` only if they have
//! the same events at positions 1..n, in the same order: removing, inserting, reordering or
//! editing any of them (rehashing its stream included) changes every commitment from there on.
//!
//! The fold needs nothing from a backend but `read_all` in position order, so every backend has
//! it without a schema change: the projector keeps it as part of its state, and `audit verify`
//! recomputes it from the stored events. An auditor keeps `position:commitment` pairs somewhere
//! the store's operators cannot edit, and checks the log against them later.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::hash::{to_hex, Hash};

/// The commitment to the log up to and including `position` (0 and zeros for an empty log).
/// Serialized as `{"position": 42, "commitment": "<64 hex digits>"}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LogHead {
    pub position: u64,
    #[serde(with = "hex_hash")]
    pub commitment: Hash,
}

impl LogHead {
    /// The head of the empty log.
    pub const EMPTY: LogHead = LogHead {
        position: 0,
        commitment: [0; 32],
    };

    /// The head after the event at `position` with chain hash `hash`. The caller folds events in
    /// position order; a gap or a repeat is the caller's to detect (see [`crate::verify`]).
    pub fn next(&self, position: u64, hash: &Hash) -> LogHead {
        LogHead {
            position,
            commitment: fold(&self.commitment, position, hash),
        }
    }

    /// Lowercase hex of the commitment.
    pub fn commitment_hex(&self) -> String {
        to_hex(&self.commitment)
    }
}

/// One step: `SHA-256(previous ‖ position (u64 BE) ‖ hash)`.
pub fn fold(previous: &Hash, position: u64, hash: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update(previous);
    h.update(position.to_be_bytes());
    h.update(hash);
    h.finalize().into()
}

/// `<position>:<64 hex digits>`, as `adjudicator audit head` prints it.
impl fmt::Display for LogHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.position, self.commitment_hex())
    }
}

/// A hash as lowercase hex in serialized form (JSON answers, snapshots).
mod hex_hash {
    use serde::{de, Deserialize, Deserializer, Serializer};

    use crate::hash::{to_hex, Hash};

    pub fn serialize<S: Serializer>(hash: &Hash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&to_hex(hash))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Hash, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_hex(&text).ok_or_else(|| de::Error::custom("not 64 hex digits"))
    }
}

/// 64 hex digits (either case) to a hash.
fn parse_hex(hex: &str) -> Option<Hash> {
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut hash = [0u8; 32];
    for (i, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(hash)
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a head is <position>:<64 hex digits>, e.g. 42:3f…; got {0:?}")]
pub struct BadHead(String);

impl FromStr for LogHead {
    type Err = BadHead;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadHead(s.chars().take(100).collect());
        let (position, hex) = s.trim().split_once(':').ok_or_else(bad)?;
        let position: u64 = position.parse().map_err(|_| bad())?;
        let commitment = parse_hex(hex).ok_or_else(bad)?;
        Ok(LogHead {
            position,
            commitment,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heads(hashes: &[(u64, Hash)]) -> Vec<LogHead> {
        let mut head = LogHead::EMPTY;
        hashes
            .iter()
            .map(|(p, h)| {
                head = head.next(*p, h);
                head
            })
            .collect()
    }

    #[test]
    fn the_fold_is_the_documented_formula() {
        let hash = [7u8; 32];
        let mut bytes = vec![0u8; 32];
        bytes.extend_from_slice(&1u64.to_be_bytes());
        bytes.extend_from_slice(&hash);
        let expected: Hash = Sha256::digest(&bytes).into();
        assert_eq!(LogHead::EMPTY.next(1, &hash).commitment, expected);
    }

    #[test]
    fn order_positions_and_content_all_change_the_commitment() {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let base = heads(&[(1, a), (2, b)]);
        let swapped = heads(&[(1, b), (2, a)]);
        let renumbered = heads(&[(1, a), (3, b)]);
        let mut edited_b = b;
        edited_b[31] ^= 1;
        let edited = heads(&[(1, a), (2, edited_b)]);
        let last = base[1];
        for other in [swapped[1], renumbered[1], edited[1]] {
            assert_ne!(other.commitment, last.commitment);
        }
        assert_eq!(heads(&[(1, a), (2, b)])[1], last, "deterministic");
    }

    #[test]
    fn heads_print_and_parse() {
        let head = LogHead::EMPTY.next(1, &[9; 32]).next(2, &[3; 32]);
        let text = head.to_string();
        assert!(text.starts_with("2:"));
        assert_eq!(text.len(), 2 + 64);
        assert_eq!(text.parse::<LogHead>(), Ok(head));
        assert_eq!(
            text.to_uppercase().parse::<LogHead>(),
            Ok(head),
            "hex in either case"
        );
        for bad in [
            "",
            "2",
            ":ab",
            "x:00",
            "2:00",
            &format!("2:{}", "g".repeat(64)),
        ] {
            assert!(bad.parse::<LogHead>().is_err(), "{bad:?}");
        }
        assert!(format!("2:+{}", "0".repeat(63)).parse::<LogHead>().is_err());
    }

    #[test]
    fn heads_serialize_with_hex_commitments() {
        let head = LogHead::EMPTY.next(1, &[9; 32]);
        let json = serde_json::to_value(head).unwrap();
        assert_eq!(json["position"], 1);
        assert_eq!(json["commitment"], head.commitment_hex());
        assert_eq!(serde_json::from_value::<LogHead>(json).unwrap(), head);
    }
}
