//! Snapshot files of the read models: written atomically, read back only if intact.
//!
//! Layout: `ADJSNAP\x01` (8 bytes), the checkpoint position (u64 big-endian), the hash of the
//! event at that position (32 bytes, the *anchor*), the SHA-256 of the payload (32 bytes), then the
//! payload. The anchor ties a snapshot to the history it was folded from: a snapshot whose anchor
//! does not match the store's event at its position belongs to another store and is ignored.
//!
//! Writing goes to a temporary file in the same directory, which is fsynced and renamed over the
//! old snapshot, and the directory is fsynced: a crash leaves either the old snapshot or the new
//! one, never a mix.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use events::hash::Hash;
use sha2::{Digest, Sha256};

const MAGIC: &[u8; 8] = b"ADJSNAP\x01";
const HEADER: usize = 8 + 8 + 32 + 32;

/// A snapshot as read from disk.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub position: u64,
    pub anchor: Hash,
    pub payload: Vec<u8>,
}

/// Why a snapshot file was not used.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{path}: {problem}")]
    Damaged { path: PathBuf, problem: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// The default file name inside the data directory.
pub const FILE_NAME: &str = "projections.snapshot";

pub fn write(path: &Path, snapshot: &Snapshot) -> Result<(), SnapshotError> {
    let io = |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = path.with_extension("snapshot.tmp");
    let mut file = File::create(&tmp).map_err(io)?;
    let digest: [u8; 32] = Sha256::digest(&snapshot.payload).into();
    file.write_all(MAGIC).map_err(io)?;
    file.write_all(&snapshot.position.to_be_bytes())
        .map_err(io)?;
    file.write_all(&snapshot.anchor).map_err(io)?;
    file.write_all(&digest).map_err(io)?;
    file.write_all(&snapshot.payload).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    fs::rename(&tmp, path).map_err(io)?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    Ok(())
}

/// Reads a snapshot; `Ok(None)` when there is none.
pub fn read(path: &Path) -> Result<Option<Snapshot>, SnapshotError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(SnapshotError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let damaged = |problem: &str| SnapshotError::Damaged {
        path: path.to_path_buf(),
        problem: problem.to_owned(),
    };
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return Err(damaged("not a snapshot of this version"));
    }
    let mut position = [0u8; 8];
    position.copy_from_slice(&bytes[8..16]);
    let mut anchor = [0u8; 32];
    anchor.copy_from_slice(&bytes[16..48]);
    let digest: [u8; 32] = Sha256::digest(&bytes[HEADER..]).into();
    if digest[..] != bytes[48..80] {
        return Err(damaged("checksum mismatch"));
    }
    // The payload is most of the file: keep its buffer rather than copy it.
    let mut payload = bytes;
    payload.drain(..HEADER);
    Ok(Some(Snapshot {
        position: u64::from_be_bytes(position),
        anchor,
        payload,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Snapshot {
        Snapshot {
            position: 42,
            anchor: [7; 32],
            payload: b"folded read models".to_vec(),
        }
    }

    #[test]
    fn a_written_snapshot_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        assert!(read(&path).unwrap().is_none());
        write(&path, &sample()).unwrap();
        assert_eq!(read(&path).unwrap(), Some(sample()));
        assert!(!path.with_extension("snapshot.tmp").exists());
    }

    #[test]
    fn a_flipped_bit_or_a_truncation_is_reported_as_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        write(&path, &sample()).unwrap();
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(read(&path), Err(SnapshotError::Damaged { .. })));
        fs::write(&path, &bytes[..20]).unwrap();
        assert!(matches!(read(&path), Err(SnapshotError::Damaged { .. })));
    }
}
