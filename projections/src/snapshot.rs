//! Snapshots of the read models as bytes, so that a restart folds only the events after the
//! snapshot's position. Layout: an 8-byte magic, the snapshot format version as a little-endian
//! `u16`, then the models in bincode 2 (serde, `config::standard()`).
//!
//! The format version changes whenever a model's shape does; a snapshot of another version is
//! refused, and the caller folds from the start instead.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The first bytes of every snapshot.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"ADJPROJ\x00";
/// The snapshot format this build writes and reads.
/// 2: users carry credential versions instead of a time before which tokens are void.
/// 3: the models carry the log's head commitment.
pub const SNAPSHOT_FORMAT_VERSION: u16 = 3;

const HEADER_LEN: usize = SNAPSHOT_MAGIC.len() + 2;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnapshotError {
    #[error("not a projections snapshot (wrong magic)")]
    WrongMagic,
    #[error("snapshot format version {found} is not supported (this build reads {supported})")]
    UnsupportedVersion { found: u16, supported: u16 },
    #[error("damaged snapshot: {0}")]
    Corrupt(String),
    #[error("cannot encode a snapshot: {0}")]
    Encode(String),
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, SnapshotError> {
    let mut bytes = Vec::with_capacity(HEADER_LEN + 4096);
    bytes.extend_from_slice(&SNAPSHOT_MAGIC);
    bytes.extend_from_slice(&SNAPSHOT_FORMAT_VERSION.to_le_bytes());
    let body = bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|e| SnapshotError::Encode(e.to_string()))?;
    bytes.extend_from_slice(&body);
    Ok(bytes)
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, SnapshotError> {
    if bytes.get(..SNAPSHOT_MAGIC.len()) != Some(&SNAPSHOT_MAGIC[..]) {
        return Err(SnapshotError::WrongMagic);
    }
    let version = bytes
        .get(SNAPSHOT_MAGIC.len()..HEADER_LEN)
        .and_then(|v| <[u8; 2]>::try_from(v).ok())
        .map(u16::from_le_bytes)
        .ok_or_else(|| SnapshotError::Corrupt("truncated header".into()))?;
    if version != SNAPSHOT_FORMAT_VERSION {
        return Err(SnapshotError::UnsupportedVersion {
            found: version,
            supported: SNAPSHOT_FORMAT_VERSION,
        });
    }
    let body = &bytes[HEADER_LEN..];
    let (value, used) = bincode::serde::decode_from_slice(body, bincode::config::standard())
        .map_err(|e| SnapshotError::Corrupt(e.to_string()))?;
    if used != body.len() {
        return Err(SnapshotError::Corrupt(format!(
            "{} trailing bytes",
            body.len() - used
        )));
    }
    Ok(value)
}
