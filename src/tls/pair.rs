//! Loading a certificate chain and its private key from PEM files into a rustls
//! [`CertifiedKey`], checking on the way everything that would otherwise fail at the first
//! handshake: the files can be read, hold PEM of the right kind, the key is of a type the
//! crypto provider signs with, it belongs to the leaf certificate, and it is private.

use std::path::PathBuf;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use thiserror::Error;

use crate::config::TlsFiles;
use crate::private_files::{check_private_file, PrivacyError};

/// Why a certificate and key pair could not be loaded. Messages name the files, never key bytes.
#[derive(Debug, Error)]
pub enum PairError {
    #[error("cannot read {} (--{flag}): {source}", path.display())]
    Read {
        flag: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} (--tls-cert) holds no PEM certificate (BEGIN CERTIFICATE)", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{} (--tls-cert) is not valid PEM: {reason}", path.display())]
    BadCertificate { path: PathBuf, reason: String },
    #[error(
        "{} (--tls-key) holds no PEM private key (BEGIN PRIVATE KEY, RSA PRIVATE KEY or EC \
         PRIVATE KEY)",
        path.display()
    )]
    NoKey { path: PathBuf },
    #[error("{} (--tls-key) is not a usable private key: {reason}", path.display())]
    BadKey { path: PathBuf, reason: String },
    #[error(
        "the private key {} (--tls-key) does not belong to the certificate {} (--tls-cert)",
        key.display(),
        cert.display()
    )]
    Mismatch { cert: PathBuf, key: PathBuf },
    #[error(transparent)]
    NotPrivate(#[from] PrivacyError),
}

/// Reads and checks the pair.
pub fn load(files: &TlsFiles, provider: &CryptoProvider) -> Result<CertifiedKey, PairError> {
    check_private_file(&files.key, "--tls-key")?;
    let read = |flag, path: &PathBuf| {
        std::fs::read(path).map_err(|source| PairError::Read {
            flag,
            path: path.clone(),
            source,
        })
    };
    let cert_pem = read("tls-cert", &files.cert)?;
    let key_pem = read("tls-key", &files.key)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PairError::BadCertificate {
            path: files.cert.clone(),
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(PairError::NoCertificate {
            path: files.cert.clone(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => PairError::NoKey {
            path: files.key.clone(),
        },
        other => PairError::BadKey {
            path: files.key.clone(),
            reason: other.to_string(),
        },
    })?;
    let signing_key =
        provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| PairError::BadKey {
                path: files.key.clone(),
                reason: e.to_string(),
            })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(_)) => Err(PairError::Mismatch {
            cert: files.cert.clone(),
            key: files.key.clone(),
        }),
        Err(e) => Err(PairError::BadCertificate {
            path: files.cert.clone(),
            reason: e.to_string(),
        }),
    }
}
