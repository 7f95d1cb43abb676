//! Snapshot files of the read models: written atomically and privately, read back only if intact
//! and written by this server.
//!
//! Layout: `ADJSNAP\x03` (8 bytes), the checkpoint position (u64 big-endian), the hash of the
//! event at that position (32 bytes, the *anchor*), a keyed BLAKE3 hash (32 bytes) under the
//! [`SnapshotKey`] of the magic, position, anchor and payload, then the payload. The anchor ties
//! a snapshot to the history it was folded from: a snapshot whose anchor does not match the
//! store's event at its position belongs to another store and is ignored. The MAC ties it to the
//! server's secret: a snapshot planted by someone who does not hold the secret is refused, not
//! trusted, and a bit flipped on disk is caught the same way. (Version 1 files had a plain
//! SHA-256 instead, which anyone could recompute; version 2 an HMAC-SHA256, four times slower to
//! check; both are ignored and replayed once.)
//!
//! Writing goes to a temporary file (mode 0600: it holds password hashes) in the same directory,
//! which is fsynced and renamed over the old snapshot, and the directory is fsynced: a crash
//! leaves either the old snapshot or the new one, never a mix.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use events::hash::Hash;

pub use super::snapshot_key::SnapshotKey;

const MAGIC: &[u8; 8] = b"ADJSNAP\x03";
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
    #[error(
        "{path}: its authentication code does not verify with this server's secret \
         (damaged, written with another secret, or planted)"
    )]
    NotAuthentic { path: PathBuf },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// The default file name inside the data directory.
pub const FILE_NAME: &str = "projections.snapshot";

/// Where snapshots go and the key that authenticates them.
#[derive(Clone, Debug)]
pub struct SnapshotFile {
    pub path: PathBuf,
    pub key: SnapshotKey,
}

/// The MAC of a snapshot's header fields and payload.
fn mac(key: &SnapshotKey, position: u64, anchor: &Hash, payload: &[u8]) -> blake3::Hasher {
    let mut mac = key.mac();
    mac.update(MAGIC);
    mac.update(&position.to_be_bytes());
    mac.update(anchor);
    mac.update(payload);
    mac
}

pub fn write(file: &SnapshotFile, snapshot: &Snapshot) -> Result<(), SnapshotError> {
    let path = file.path.as_path();
    let io = |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = path.with_extension("snapshot.tmp");
    // A temporary file left by a crash may have any mode: start from a fresh one.
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io(e)),
        _ => {}
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut out = options.open(&tmp).map_err(io)?;
    let code: [u8; 32] = mac(
        &file.key,
        snapshot.position,
        &snapshot.anchor,
        &snapshot.payload,
    )
    .finalize()
    .into();
    out.write_all(MAGIC).map_err(io)?;
    out.write_all(&snapshot.position.to_be_bytes())
        .map_err(io)?;
    out.write_all(&snapshot.anchor).map_err(io)?;
    out.write_all(&code).map_err(io)?;
    out.write_all(&snapshot.payload).map_err(io)?;
    out.sync_all().map_err(io)?;
    drop(out);
    fs::rename(&tmp, path).map_err(io)?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    Ok(())
}

/// Reads a snapshot; `Ok(None)` when there is none.
pub fn read(file: &SnapshotFile) -> Result<Option<Snapshot>, SnapshotError> {
    let path = file.path.as_path();
    let io = |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    };
    let damaged = |problem: &str| SnapshotError::Damaged {
        path: path.to_path_buf(),
        problem: problem.to_owned(),
    };
    let mut input = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(io(source)),
    };
    // The header and the payload are read into buffers of their own: the payload (most of the
    // file, 140 MB at a million events) is then never moved again.
    let mut header = [0u8; HEADER];
    match input.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            return Err(damaged("not a snapshot of this version"))
        }
        Err(source) => return Err(io(source)),
    }
    if &header[..8] != MAGIC {
        return Err(damaged("not a snapshot of this version"));
    }
    let size = input.metadata().map_err(io)?.len();
    let mut payload = Vec::with_capacity(usize::try_from(size).unwrap_or(0).saturating_sub(HEADER));
    input.read_to_end(&mut payload).map_err(io)?;
    let mut position = [0u8; 8];
    position.copy_from_slice(&header[8..16]);
    let position = u64::from_be_bytes(position);
    let mut anchor = [0u8; 32];
    anchor.copy_from_slice(&header[16..48]);
    let mut code = [0u8; 32];
    code.copy_from_slice(&header[48..80]);
    // `blake3::Hash` compares in constant time: a forger learns nothing from how long a refusal
    // took.
    if mac(&file.key, position, &anchor, &payload).finalize() != blake3::Hash::from_bytes(code) {
        return Err(SnapshotError::NotAuthentic {
            path: path.to_path_buf(),
        });
    }
    Ok(Some(Snapshot {
        position,
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

    fn file_in(dir: &Path, secret: &[u8]) -> SnapshotFile {
        SnapshotFile {
            path: dir.join(FILE_NAME),
            key: SnapshotKey::derive(secret),
        }
    }

    #[test]
    fn a_written_snapshot_reads_back_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let file = file_in(dir.path(), b"server secret");
        assert!(read(&file).unwrap().is_none());
        write(&file, &sample()).unwrap();
        assert_eq!(read(&file).unwrap(), Some(sample()));
        assert!(!file.path.with_extension("snapshot.tmp").exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&file.path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        }
    }

    #[test]
    fn a_flipped_bit_or_a_truncation_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = file_in(dir.path(), b"server secret");
        write(&file, &sample()).unwrap();
        let mut bytes = fs::read(&file.path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&file.path, &bytes).unwrap();
        assert!(matches!(
            read(&file),
            Err(SnapshotError::NotAuthentic { .. })
        ));
        bytes[last] ^= 1;
        bytes[10] ^= 1; // the position
        fs::write(&file.path, &bytes).unwrap();
        assert!(matches!(
            read(&file),
            Err(SnapshotError::NotAuthentic { .. })
        ));
        fs::write(&file.path, &bytes[..20]).unwrap();
        assert!(matches!(read(&file), Err(SnapshotError::Damaged { .. })));
    }

    #[test]
    fn a_snapshot_written_with_another_secret_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write(&file_in(dir.path(), b"the attacker's secret"), &sample()).unwrap();
        let err = read(&file_in(dir.path(), b"server secret")).unwrap_err();
        assert!(matches!(err, SnapshotError::NotAuthentic { .. }), "{err}");
        assert!(err.to_string().contains("planted"), "{err}");
    }

    #[test]
    fn a_version_1_snapshot_with_a_plain_checksum_is_refused() {
        use sha2::{Digest, Sha256};
        let dir = tempfile::tempdir().unwrap();
        let file = file_in(dir.path(), b"server secret");
        let s = sample();
        let mut bytes = b"ADJSNAP\x01".to_vec();
        bytes.extend_from_slice(&s.position.to_be_bytes());
        bytes.extend_from_slice(&s.anchor);
        bytes.extend_from_slice(&Sha256::digest(&s.payload));
        bytes.extend_from_slice(&s.payload);
        fs::write(&file.path, bytes).unwrap();
        assert!(matches!(read(&file), Err(SnapshotError::Damaged { .. })));
    }

    #[test]
    fn a_version_2_snapshot_with_an_hmac_is_refused_as_of_another_version() {
        use hmac::{Hmac, KeyInit, Mac};
        let dir = tempfile::tempdir().unwrap();
        let file = file_in(dir.path(), b"server secret");
        let s = sample();
        let mut header = b"ADJSNAP\x02".to_vec();
        header.extend_from_slice(&s.position.to_be_bytes());
        header.extend_from_slice(&s.anchor);
        let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&[9; 32]).unwrap();
        mac.update(&header);
        mac.update(&s.payload);
        let mut bytes = header;
        bytes.extend_from_slice(&mac.finalize().into_bytes());
        bytes.extend_from_slice(&s.payload);
        fs::write(&file.path, bytes).unwrap();
        let err = read(&file).unwrap_err();
        assert!(
            err.to_string().contains("not a snapshot of this version"),
            "{err}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_stale_temporary_file_does_not_lend_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = file_in(dir.path(), b"server secret");
        let tmp = file.path.with_extension("snapshot.tmp");
        fs::write(&tmp, b"left by a crash").unwrap();
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)).unwrap();
        write(&file, &sample()).unwrap();
        let mode = fs::metadata(&file.path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
}
