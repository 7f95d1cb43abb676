//! The HS256 signing secret (`--jwt-secret-file`): read it, or create the default file with a
//! random secret on first start.
//!
//! The key is the file's whole content without one trailing newline (`\n` or `\r\n`), so that a
//! file written with `echo` or an editor means what it shows. A key shorter than 32 bytes is
//! refused: HS256 is only as strong as its key.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use thiserror::Error;

/// Shortest key accepted, in bytes (RFC 7518 §3.2: at least the hash output size).
pub const MIN_SECRET_BYTES: usize = 32;
/// Random bytes in a created secret; written as 86 base64url characters.
pub const CREATED_SECRET_BYTES: usize = 64;

/// The key bytes. `Debug` does not show them.
#[derive(Clone, PartialEq, Eq)]
pub struct HmacSecret(Vec<u8>);

impl HmacSecret {
    /// A key from bytes held elsewhere (tests, benchmarks); `None` when shorter than
    /// [`MIN_SECRET_BYTES`].
    pub fn new(bytes: Vec<u8>) -> Option<Self> {
        (bytes.len() >= MIN_SECRET_BYTES).then_some(HmacSecret(bytes))
    }

    /// The key as bytes, for the signing library.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for HmacSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HmacSecret({} bytes)", self.0.len())
    }
}

/// Why the secret could not be had. Every message names the file, never its content.
#[derive(Debug, Error)]
pub enum SecretError {
    /// A file named by `--jwt-secret-file` does not exist; only the default one is created.
    #[error("JWT secret file {} (--jwt-secret-file) does not exist", path.display())]
    Missing {
        /// The configured path.
        path: PathBuf,
    },
    /// The file is there but too short to be a safe key.
    #[error(
        "JWT secret file {} (--jwt-secret-file) holds {len} bytes; at least {MIN_SECRET_BYTES} \
         are needed",
        path.display()
    )]
    TooShort {
        /// The file.
        path: PathBuf,
        /// Its length without the trailing newline.
        len: usize,
    },
    /// The file could not be read.
    #[error("cannot read JWT secret file {} (--jwt-secret-file): {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The default file could not be created.
    #[error("cannot create JWT secret file {} (--jwt-secret-file): {source}", path.display())]
    Create {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The operating system's random generator failed.
    #[error("cannot create JWT secret file {}: no randomness: {message}", path.display())]
    Random {
        /// The file.
        path: PathBuf,
        /// What the generator said.
        message: String,
    },
}

/// Reads the secret at `path`. When the file does not exist and `create_if_missing` is true (the
/// path is the default `<data-dir>/jwt-secret`), creates it, and its directory, with 64 random
/// bytes as 86 base64url characters, mode 0600, refusing to overwrite a file that appeared
/// meanwhile (which is then read instead).
pub fn load_or_create_secret(
    path: &Path,
    create_if_missing: bool,
) -> Result<HmacSecret, SecretError> {
    match read_secret(path) {
        Err(SecretError::Missing { .. }) if create_if_missing => match create_secret(path) {
            Ok(secret) => Ok(secret),
            Err(SecretError::Create { source, .. })
                if source.kind() == io::ErrorKind::AlreadyExists =>
            {
                read_secret(path)
            }
            Err(e) => Err(e),
        },
        other => other,
    }
}

fn read_secret(path: &Path) -> Result<HmacSecret, SecretError> {
    let mut bytes = fs::read(path).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            SecretError::Missing {
                path: path.to_owned(),
            }
        } else {
            SecretError::Read {
                path: path.to_owned(),
                source,
            }
        }
    })?;
    if bytes.ends_with(b"\r\n") {
        bytes.truncate(bytes.len() - 2);
    } else if bytes.ends_with(b"\n") {
        bytes.truncate(bytes.len() - 1);
    }
    if bytes.len() < MIN_SECRET_BYTES {
        return Err(SecretError::TooShort {
            path: path.to_owned(),
            len: bytes.len(),
        });
    }
    Ok(HmacSecret(bytes))
}

fn create_secret(path: &Path) -> Result<HmacSecret, SecretError> {
    let create_error = |source| SecretError::Create {
        path: path.to_owned(),
        source,
    };
    let mut random = [0u8; CREATED_SECRET_BYTES];
    getrandom::fill(&mut random).map_err(|e| SecretError::Random {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    let text = URL_SAFE_NO_PAD.encode(random);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(create_error)?;
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(create_error)?;
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| file.sync_all());
    if let Err(source) = written {
        // Leave no half-written key behind for the next start to trip over.
        drop(file);
        let _ = fs::remove_file(path);
        return Err(create_error(source));
    }
    Ok(HmacSecret(text.into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_the_default_file_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("data").join("jwt-secret");
        let created = load_or_create_secret(&path, true).expect("created");
        assert_eq!(created.expose().len(), 86);
        assert!(created
            .expose()
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_'));
        assert_eq!(fs::read(&path).expect("file"), created.expose());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).expect("metadata").permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        }
        let again = load_or_create_secret(&path, true).expect("read back");
        assert_eq!(again, created, "a second start keeps the key");
        let other_dir = tempfile::tempdir().expect("temp dir");
        let other =
            load_or_create_secret(&other_dir.path().join("jwt-secret"), true).expect("created");
        assert_ne!(other, created, "random");
    }

    #[test]
    fn a_configured_file_must_exist() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("my-secret");
        let err = load_or_create_secret(&path, false).expect_err("missing");
        assert!(matches!(err, SecretError::Missing { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "JWT secret file {} (--jwt-secret-file) does not exist",
                path.display()
            )
        );
        assert!(!path.exists(), "not created");
    }

    #[test]
    fn one_trailing_newline_is_not_part_of_the_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("secret");
        let key = "k".repeat(40);
        for (content, expected) in [
            (format!("{key}\n"), key.clone()),
            (format!("{key}\r\n"), key.clone()),
            (format!("{key}\n\n"), format!("{key}\n")),
            (format!(" {key} "), format!(" {key} ")),
            (key.clone(), key.clone()),
        ] {
            fs::write(&path, &content).expect("write");
            let secret = load_or_create_secret(&path, false).expect("long enough");
            assert_eq!(secret.expose(), expected.as_bytes(), "{content:?}");
        }
    }

    #[test]
    fn a_short_key_is_refused_naming_the_file_not_the_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("secret");
        fs::write(&path, format!("{}\n", "s".repeat(31))).expect("write");
        let err = load_or_create_secret(&path, true).expect_err("too short");
        assert!(
            matches!(err, SecretError::TooShort { len: 31, .. }),
            "{err:?}"
        );
        let shown = err.to_string();
        assert!(shown.contains(&path.display().to_string()), "{shown}");
        assert!(!shown.contains("sss"), "{shown}");
        fs::write(&path, "s".repeat(32)).expect("write");
        assert!(load_or_create_secret(&path, false).is_ok());
    }

    #[test]
    fn debug_hides_the_key() {
        let secret = HmacSecret::new(b"super secret key material here!!".to_vec()).expect("32");
        assert_eq!(format!("{secret:?}"), "HmacSecret(32 bytes)");
        assert_eq!(HmacSecret::new(vec![7; 31]), None);
    }

    #[cfg(unix)]
    #[test]
    fn an_unreadable_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        // A directory where the file should be: reading it fails with something else than
        // "not found", and it is not replaced.
        let path = dir.path().join("jwt-secret");
        fs::create_dir(&path).expect("dir");
        let err = load_or_create_secret(&path, true).expect_err("unreadable");
        assert!(matches!(err, SecretError::Read { .. }), "{err:?}");
        assert!(err.to_string().contains("jwt-secret"), "{err}");
    }
}
