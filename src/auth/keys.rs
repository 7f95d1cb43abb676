//! The keys of the configured algorithm: HS256 with the secret file, or RS256 / EdDSA with PEM
//! files, verification always, signing only when the secret or a private key is there.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use thiserror::Error;

use super::secret::{load_or_create_secret, HmacSecret, SecretError};
use crate::config::{JwtAlgorithm, Settings};

/// Why the keys could not be loaded. Messages name the files and flags, never key material.
#[derive(Debug, Error)]
pub enum KeyError {
    /// The HS256 secret file.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// A PEM file could not be read.
    #[error("cannot read {} (--{flag}): {source}", path.display())]
    Read {
        /// `jwt-public-key-file` or `jwt-private-key-file`.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// A PEM file does not hold a key of the configured algorithm and kind.
    #[error("{} (--{flag}) is not a PEM {kind} key for {algorithm}: {reason}", path.display())]
    Invalid {
        /// `jwt-public-key-file` or `jwt-private-key-file`.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// `public` or `private`.
        kind: &'static str,
        /// The configured algorithm.
        algorithm: JwtAlgorithm,
        /// What is wrong with it.
        reason: String,
    },
    /// The private key does not sign what the public key verifies.
    #[error(
        "the private key {} (--jwt-private-key-file) does not belong to the public key {} \
         (--jwt-public-key-file)",
        private.display(),
        public.display()
    )]
    Mismatch {
        /// The public key file.
        public: PathBuf,
        /// The private key file.
        private: PathBuf,
    },
    /// The settings name no public key for an asymmetric algorithm (`Settings::resolve` refuses
    /// that already; this guards other constructions).
    #[error("--jwt-algorithm {0} needs --jwt-public-key-file")]
    NoPublicKey(JwtAlgorithm),
}

/// The verification key and, when this node may issue tokens, the signing key, of one algorithm.
#[derive(Clone)]
pub struct TokenKeys {
    algorithm: JwtAlgorithm,
    decoding: DecodingKey,
    encoding: Option<EncodingKey>,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("algorithm", &self.algorithm)
            .field("can_issue", &self.can_issue())
            .finish_non_exhaustive()
    }
}

/// The `jsonwebtoken` algorithm of a configured one.
pub(crate) const fn jwt_algorithm(algorithm: JwtAlgorithm) -> Algorithm {
    match algorithm {
        JwtAlgorithm::Hs256 => Algorithm::HS256,
        JwtAlgorithm::Rs256 => Algorithm::RS256,
        JwtAlgorithm::EdDsa => Algorithm::EdDSA,
    }
}

impl TokenKeys {
    /// HS256 with `secret`: signs and verifies.
    pub fn hs256(secret: &HmacSecret) -> Self {
        TokenKeys {
            algorithm: JwtAlgorithm::Hs256,
            decoding: DecodingKey::from_secret(secret.expose()),
            encoding: Some(EncodingKey::from_secret(secret.expose())),
        }
    }

    /// Loads the keys the settings name: the secret file for HS256 (creating it when it is the
    /// default `<data-dir>/jwt-secret` and missing), the PEM files otherwise.
    pub fn load(settings: &Settings) -> Result<Self, KeyError> {
        match settings.jwt_algorithm {
            JwtAlgorithm::Hs256 => {
                let is_default = settings.jwt_secret_file == settings.data_dir.join("jwt-secret");
                let secret = load_or_create_secret(&settings.jwt_secret_file, is_default)?;
                Ok(Self::hs256(&secret))
            }
            algorithm => {
                let public = settings
                    .jwt_public_key_file
                    .as_deref()
                    .ok_or(KeyError::NoPublicKey(algorithm))?;
                Self::from_pem_files(algorithm, public, settings.jwt_private_key_file.as_deref())
            }
        }
    }

    /// RS256 or EdDSA keys from PEM files (`BEGIN PUBLIC KEY`, and `BEGIN PRIVATE KEY` or
    /// `BEGIN RSA PRIVATE KEY`). With a private key, checks that it belongs to the public one.
    pub fn from_pem_files(
        algorithm: JwtAlgorithm,
        public: &Path,
        private: Option<&Path>,
    ) -> Result<Self, KeyError> {
        let public_pem = read_pem("jwt-public-key-file", public)?;
        let decoding =
            decoding_key(algorithm, &public_pem).map_err(|reason| KeyError::Invalid {
                flag: "jwt-public-key-file",
                path: public.to_owned(),
                kind: "public",
                algorithm,
                reason,
            })?;
        let encoding = match private {
            None => None,
            Some(path) => {
                let private_pem = read_pem("jwt-private-key-file", path)?;
                let key =
                    encoding_key(algorithm, &private_pem).map_err(|reason| KeyError::Invalid {
                        flag: "jwt-private-key-file",
                        path: path.to_owned(),
                        kind: "private",
                        algorithm,
                        reason,
                    })?;
                if !pair_matches(algorithm, &key, &decoding) {
                    return Err(KeyError::Mismatch {
                        public: public.to_owned(),
                        private: path.to_owned(),
                    });
                }
                Some(key)
            }
        };
        Ok(TokenKeys {
            algorithm,
            decoding,
            encoding,
        })
    }

    /// The configured algorithm.
    pub fn algorithm(&self) -> JwtAlgorithm {
        self.algorithm
    }

    /// Whether this node can sign tokens (HS256, or a private key was given).
    pub fn can_issue(&self) -> bool {
        self.encoding.is_some()
    }

    pub(crate) fn decoding(&self) -> &DecodingKey {
        &self.decoding
    }

    pub(crate) fn encoding(&self) -> Option<&EncodingKey> {
        self.encoding.as_ref()
    }
}

fn read_pem(flag: &'static str, path: &Path) -> Result<Vec<u8>, KeyError> {
    fs::read(path).map_err(|source| KeyError::Read {
        flag,
        path: path.to_owned(),
        source,
    })
}

/// The PEM label must say what kind of key it is, so that a private key given as the public one
/// (or the other way round) is caught at start, not at the first login.
fn has_label(pem: &[u8], labels: &[&str]) -> bool {
    let text = String::from_utf8_lossy(pem);
    labels
        .iter()
        .any(|label| text.contains(&format!("-----BEGIN {label}-----")))
}

fn decoding_key(algorithm: JwtAlgorithm, pem: &[u8]) -> Result<DecodingKey, String> {
    if !has_label(pem, &["PUBLIC KEY", "RSA PUBLIC KEY"]) {
        return Err("expected a PEM block BEGIN PUBLIC KEY".to_owned());
    }
    let key = match algorithm {
        JwtAlgorithm::Rs256 => DecodingKey::from_rsa_pem(pem),
        JwtAlgorithm::EdDsa => DecodingKey::from_ed_pem(pem),
        JwtAlgorithm::Hs256 => return Err("HS256 takes no PEM key".to_owned()),
    };
    key.map_err(|e| e.to_string())
        .and_then(|k| super::rsa_size::check(algorithm, k))
}

fn encoding_key(algorithm: JwtAlgorithm, pem: &[u8]) -> Result<EncodingKey, String> {
    if !has_label(pem, &["PRIVATE KEY", "RSA PRIVATE KEY"]) {
        return Err("expected a PEM block BEGIN PRIVATE KEY".to_owned());
    }
    let key = match algorithm {
        JwtAlgorithm::Rs256 => EncodingKey::from_rsa_pem(pem),
        JwtAlgorithm::EdDsa => EncodingKey::from_ed_pem(pem),
        JwtAlgorithm::Hs256 => return Err("HS256 takes no PEM key".to_owned()),
    };
    key.map_err(|e| e.to_string())
}

/// Signs a probe with the private key and verifies it with the public one.
fn pair_matches(algorithm: JwtAlgorithm, encoding: &EncodingKey, decoding: &DecodingKey) -> bool {
    const PROBE: &[u8] = b"adjudicator key pair check";
    let alg = jwt_algorithm(algorithm);
    jsonwebtoken::crypto::sign(PROBE, encoding, alg)
        .and_then(|signature| jsonwebtoken::crypto::verify(&signature, PROBE, decoding, alg))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::test_keys::fixture;

    #[test]
    fn loads_each_algorithm_with_and_without_a_private_key() {
        for (algorithm, name) in [
            (JwtAlgorithm::Rs256, "rs256"),
            (JwtAlgorithm::EdDsa, "eddsa"),
        ] {
            let public = fixture(&format!("{name}-public.pem"));
            let private = fixture(&format!("{name}-private.pem"));
            let both = TokenKeys::from_pem_files(algorithm, &public, Some(&private))
                .expect("a matching pair");
            assert!(both.can_issue());
            assert_eq!(both.algorithm(), algorithm);
            let verify_only =
                TokenKeys::from_pem_files(algorithm, &public, None).expect("public only");
            assert!(!verify_only.can_issue());
        }
    }

    #[test]
    fn a_key_of_another_algorithm_or_kind_is_refused() {
        let rsa_public = fixture("rs256-public.pem");
        let rsa_private = fixture("rs256-private.pem");
        let ed_public = fixture("eddsa-public.pem");
        for (algorithm, public, private, flag) in [
            (JwtAlgorithm::Rs256, &ed_public, None, "jwt-public-key-file"),
            (
                JwtAlgorithm::EdDsa,
                &rsa_public,
                None,
                "jwt-public-key-file",
            ),
            (
                JwtAlgorithm::Rs256,
                &rsa_private,
                None,
                "jwt-public-key-file",
            ),
            (
                JwtAlgorithm::Rs256,
                &rsa_public,
                Some(&rsa_public),
                "jwt-private-key-file",
            ),
            (
                JwtAlgorithm::EdDsa,
                &ed_public,
                Some(&rsa_private),
                "jwt-private-key-file",
            ),
        ] {
            let err = TokenKeys::from_pem_files(algorithm, public, private.map(PathBuf::as_path))
                .expect_err("refused");
            assert!(matches!(err, KeyError::Invalid { .. }), "{err:?}");
            let shown = err.to_string();
            assert!(shown.contains(&format!("--{flag}")), "{shown}");
            assert!(!shown.contains("MII"), "no key material: {shown}");
        }
    }

    #[test]
    fn a_private_key_of_another_pair_is_refused() {
        let err = TokenKeys::from_pem_files(
            JwtAlgorithm::EdDsa,
            &fixture("eddsa-other-public.pem"),
            Some(&fixture("eddsa-private.pem")),
        )
        .expect_err("mismatch");
        assert!(matches!(err, KeyError::Mismatch { .. }), "{err:?}");
    }

    #[test]
    fn a_missing_pem_file_is_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("absent.pem");
        let err = TokenKeys::from_pem_files(JwtAlgorithm::Rs256, &path, None).expect_err("missing");
        assert!(matches!(err, KeyError::Read { .. }), "{err:?}");
        assert!(err.to_string().contains("absent.pem"), "{err}");
    }

    #[test]
    fn load_follows_the_settings() {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().join("data");
        let args = crate::cli::ServeArgs {
            data_dir: Some(data_dir.clone()),
            ..Default::default()
        };
        let settings = Settings::resolve(&args).expect("valid");
        let keys = TokenKeys::load(&settings).expect("default secret created");
        assert_eq!(keys.algorithm(), JwtAlgorithm::Hs256);
        assert!(keys.can_issue());
        assert!(data_dir.join("jwt-secret").exists());

        let args = crate::cli::ServeArgs {
            data_dir: Some(data_dir.clone()),
            jwt_secret_file: Some(dir.path().join("elsewhere")),
            ..Default::default()
        };
        let settings = Settings::resolve(&args).expect("valid");
        let err = TokenKeys::load(&settings).expect_err("a named file must exist");
        assert!(
            matches!(err, KeyError::Secret(SecretError::Missing { .. })),
            "{err:?}"
        );

        let args = crate::cli::ServeArgs {
            jwt_algorithm: Some("EdDSA".into()),
            jwt_public_key_file: Some(fixture("eddsa-public.pem")),
            ..Default::default()
        };
        let settings = Settings::resolve(&args).expect("valid");
        let keys = TokenKeys::load(&settings).expect("loads");
        assert_eq!(keys.algorithm(), JwtAlgorithm::EdDsa);
        assert!(!keys.can_issue());
    }
}
