//! The data directory and the secret files are their owner's alone.
//!
//! The data directory holds the event store (password hashes), the signing secret, the first
//! admin's password and the snapshots (password hashes again). The server creates the directory
//! with mode 0700 and every file in it with mode 0600, and refuses to start when any of them (or
//! a secret file named by a flag) is open to the group or to others: it then says which file and
//! what to run. It never changes the mode of something that already exists: an existing
//! directory may be shared on purpose (`--data-dir /tmp` would otherwise make `/tmp` private),
//! so the operator decides.
//!
//! On systems without Unix modes these checks do nothing.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// The files of the data directory that hold secrets, or data a secret can be read from.
pub const DATA_FILES: [&str; 7] = [
    "events.sqlite3",
    "events.sqlite3-wal",
    "events.sqlite3-shm",
    "events.sqlite3.lock",
    "projections.snapshot",
    "jwt-secret",
    "admin-password",
];

/// Why the data directory or a secret file is not private.
#[derive(Debug, Error)]
pub enum PrivacyError {
    /// The data directory exists and others may enter or list it.
    #[error(
        "--data-dir {}: the directory is open to other users (mode {mode:04o}); it holds password \
         hashes and secrets. Make it private (chmod 700 {}) or choose a directory that does not \
         exist yet, which the server creates with mode 0700",
        path.display(),
        path.display()
    )]
    DirectoryNotPrivate {
        /// The directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The data directory is not a directory.
    #[error("--data-dir {}: not a directory", path.display())]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// A secret file may be read or written by the group or others.
    #[error(
        "{} ({what}) is open to other users (mode {mode:04o}); it must be readable by its owner \
         only: chmod 600 {}",
        path.display(),
        path.display()
    )]
    FileNotPrivate {
        /// The file.
        path: PathBuf,
        /// What it is, e.g. `--jwt-secret-file` or `the event store`.
        what: String,
        /// Its permission bits.
        mode: u32,
    },
    /// The directory could not be created or looked at.
    #[error("--data-dir {}: {source}", path.display())]
    Io {
        /// The directory.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
}

/// Makes sure the data directory exists and is private: creates it (and its missing parents)
/// with mode 0700, or checks the mode of the one that exists, never changing it.
pub fn prepare_data_dir(dir: &Path) -> Result<(), PrivacyError> {
    let io_error = |source| PrivacyError::Io {
        path: dir.to_owned(),
        source,
    };
    if !dir.exists() {
        match create_private_dir(dir) {
            Ok(()) => {}
            // Created meanwhile by someone else: judge it below like any existing directory.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_error(e)),
        }
    }
    let meta = fs::metadata(dir).map_err(io_error)?;
    if !meta.is_dir() {
        return Err(PrivacyError::NotADirectory {
            path: dir.to_owned(),
        });
    }
    match open_bits(&meta) {
        0 => Ok(()),
        _ => Err(PrivacyError::DirectoryNotPrivate {
            path: dir.to_owned(),
            mode: mode_of(&meta),
        }),
    }
}

/// Checks every file of [`DATA_FILES`] that exists in `dir`.
pub fn check_data_files(dir: &Path) -> Result<(), PrivacyError> {
    for name in DATA_FILES {
        check_private_file(
            &dir.join(name),
            &format!("in --data-dir, {}", describe(name)),
        )?;
    }
    Ok(())
}

/// Checks the data directory's files and the secret files the settings name: the signing secret
/// (`--jwt-secret-file`, which also keys the snapshots' authentication) and the private key of
/// `--jwt-private-key-file`. (`--tls-key` is checked each time it is loaded.)
pub fn check_secret_files(settings: &crate::config::Settings) -> Result<(), PrivacyError> {
    check_data_files(&settings.data_dir)?;
    check_private_file(&settings.jwt_secret_file, "--jwt-secret-file")?;
    if let Some(key) = &settings.jwt_private_key_file {
        check_private_file(key, "--jwt-private-key-file")?;
    }
    Ok(())
}

/// Refuses a file that exists and is open to the group or others; a missing file passes (it is
/// created private, or its absence is reported by whoever needs it).
pub fn check_private_file(path: &Path, what: &str) -> Result<(), PrivacyError> {
    match fs::metadata(path) {
        Ok(meta) if open_bits(&meta) != 0 => Err(PrivacyError::FileNotPrivate {
            path: path.to_owned(),
            what: what.to_owned(),
            mode: mode_of(&meta),
        }),
        _ => Ok(()),
    }
}

fn describe(name: &str) -> &'static str {
    match name {
        "jwt-secret" => "the signing secret",
        "admin-password" => "the first admin's password",
        "projections.snapshot" => "the read models' snapshot",
        "events.sqlite3.lock" => "the store's lock",
        _ => "the event store",
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        // Parents are ordinary directories (e.g. /var/lib); only the last one is ours.
        fs::create_dir_all(parent)?;
    }
    fs::DirBuilder::new().mode(0o700).create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}

/// The group and other permission bits.
#[cfg(unix)]
fn open_bits(meta: &fs::Metadata) -> u32 {
    mode_of(meta) & 0o077
}

#[cfg(not(unix))]
fn open_bits(_: &fs::Metadata) -> u32 {
    0
}

#[cfg(unix)]
fn mode_of(meta: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o7777
}

#[cfg(not(unix))]
fn mode_of(_: &fs::Metadata) -> u32 {
    0
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn set_mode(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("metadata").permissions().mode() & 0o7777
    }

    #[test]
    fn a_new_data_dir_is_created_private() {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("a").join("data");
        prepare_data_dir(&data).expect("created");
        assert_eq!(mode(&data), 0o700);
        prepare_data_dir(&data).expect("a private one passes");
    }

    #[test]
    fn an_existing_open_dir_is_refused_and_left_as_it_is() {
        let dir = tempfile::tempdir().expect("temp dir");
        let shared = dir.path().join("shared");
        fs::create_dir(&shared).expect("mkdir");
        for open in [0o755, 0o750, 0o1777] {
            set_mode(&shared, open);
            let err = prepare_data_dir(&shared).expect_err("open to others");
            assert!(
                matches!(err, PrivacyError::DirectoryNotPrivate { mode, .. } if mode == open),
                "{err}"
            );
            assert!(err.to_string().contains("chmod 700"), "{err}");
            assert_eq!(mode(&shared), open, "never chmodded");
        }
        let file = dir.path().join("file");
        fs::write(&file, "x").expect("write");
        assert!(matches!(
            prepare_data_dir(&file),
            Err(PrivacyError::NotADirectory { .. })
        ));
    }

    #[test]
    fn a_secret_file_open_to_others_is_refused_naming_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        check_data_files(dir.path()).expect("nothing there yet");
        let secret = dir.path().join("jwt-secret");
        fs::write(&secret, "k".repeat(40)).expect("write");
        set_mode(&secret, 0o600);
        check_data_files(dir.path()).expect("private");
        for open in [0o640, 0o604, 0o620] {
            set_mode(&secret, open);
            let err = check_data_files(dir.path()).expect_err("open");
            let shown = err.to_string();
            assert!(shown.contains(&secret.display().to_string()), "{shown}");
            assert!(shown.contains("the signing secret"), "{shown}");
            assert!(shown.contains("chmod 600"), "{shown}");
        }
        let given = dir.path().join("elsewhere");
        fs::write(&given, "k".repeat(40)).expect("write");
        set_mode(&given, 0o644);
        let err = check_private_file(&given, "--jwt-secret-file").expect_err("open");
        assert!(err.to_string().contains("--jwt-secret-file"), "{err}");
    }
}
