//! The key that authenticates snapshot files, derived from the server secret.
//!
//! A snapshot holds the read models, password hashes included, and the server trusts what it
//! loads: a file planted in the data directory (from a backup of another server, or written by
//! someone who can write there but not read the secret) could otherwise add a user or drop a
//! revocation. So every snapshot carries a keyed BLAKE3 hash (a MAC) of its bytes under this
//! key, and one whose code does not verify is ignored (the server replays the log instead).
//!
//! The key is HMAC-SHA256(server secret, [`LABEL`]): a separate key from the one that signs
//! tokens, so that a snapshot's code can never be passed off as a token signature or the other
//! way round, and a new server secret voids the old snapshots (they are replayed once).

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// What the key is for, mixed into its derivation.
pub const LABEL: &[u8] = b"adjudicator snapshot authentication v2 (keyed BLAKE3)";

/// 32 bytes of key. `Debug` does not show them.
#[derive(Clone, PartialEq, Eq)]
pub struct SnapshotKey([u8; 32]);

impl SnapshotKey {
    /// The key derived from the server secret (the `--jwt-secret-file`'s bytes).
    pub fn derive(server_secret: &[u8]) -> Self {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(server_secret)
            .expect("HMAC takes a key of any length");
        mac.update(LABEL);
        SnapshotKey(mac.finalize().into_bytes().into())
    }

    /// A MAC, ready to update: BLAKE3 in its keyed mode (four times as fast as HMAC-SHA256 here,
    /// which took a tenth of a start at a million events).
    pub(super) fn mac(&self) -> blake3::Hasher {
        blake3::Hasher::new_keyed(&self.0)
    }
}

impl fmt::Debug for SnapshotKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SnapshotKey([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_depends_on_the_secret_and_is_not_the_secret() {
        let a = SnapshotKey::derive(&[1; 64]);
        assert_eq!(a, SnapshotKey::derive(&[1; 64]));
        assert_ne!(a, SnapshotKey::derive(&[2; 64]));
        assert_ne!(a.0[..], [1; 64][..32]);
        assert_eq!(format!("{a:?}"), "SnapshotKey([redacted])");
    }
}
