//! Password hashing with argon2id, verification that takes as long for an unknown user as for a
//! wrong password, and the length policy for passwords given to the API.
//!
//! Hashing and verifying cost tens of milliseconds of CPU on purpose: call them from a blocking
//! thread (`actix_web::web::block`, `tokio::task::spawn_blocking`), never on an event loop.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, PasswordHash, Version};
use events::domain::FieldError;
use thiserror::Error;

/// Shortest password the API accepts, in characters.
pub const PASSWORD_MIN_CHARS: usize = 12;
/// Longest password the API accepts, in characters: bounds the hashing work one request causes.
pub const PASSWORD_MAX_CHARS: usize = 256;

/// argon2id with OWASP's recommended minimum: m = 19456 KiB (19 MiB), t = 2 passes, p = 1 lane,
/// 32-byte output. These are also the `argon2` crate's defaults today; they are written out so
/// that a change of the crate's defaults does not silently change ours. Verification reads the
/// parameters from each stored PHC string, so raising them later keeps old hashes valid.
const M_COST_KIB: u32 = 19 * 1024;
const T_COST: u32 = 2;
const P_COST: u32 = 1;

/// Why a password could not be hashed. Never carries the password.
#[derive(Debug, Error)]
pub enum PasswordError {
    /// The operating system's random generator failed, or argon2 refused its input.
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

fn hasher() -> Result<Argon2<'static>, PasswordError> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None)
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes `password` with a fresh 16-byte salt from the operating system's random generator;
/// returns the PHC string (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`).
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let hash = hasher()?
        .hash_password(password.as_bytes())
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `phc`. A string that is not a valid argon2 PHC
/// string matches nothing.
pub fn verify_password(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    // The parameters come from `parsed`; the instance's own are not used.
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// A hash of a password nobody knows, made once with the same parameters as real hashes.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        // A failure here leaves an empty string; verifying against it is then cheap, which only
        // weakens the timing cover, never the check (the result is thrown away).
        hash_password("adjudicator dummy password for unknown users").unwrap_or_default()
    })
}

/// Costs what a real [`verify_password`] costs, and is always false: call it when the username
/// is unknown so that the answer takes as long as for a wrong password. The fixed hash is made on
/// the first call; call [`warm_up`] at start so that no login pays for it.
pub fn dummy_verify(password: &str) -> bool {
    let _ = verify_password(password, dummy_hash());
    false
}

/// Makes the fixed hash of [`dummy_verify`] now rather than on the first unknown login.
pub fn warm_up() {
    let _ = dummy_hash();
}

/// The API's policy for a new password: 12 to 256 characters (Unicode scalar values, not bytes).
/// The `--demo` users are made by the server itself and do not pass through here.
pub fn check_password_policy(password: &str) -> Result<(), FieldError> {
    let chars = password.chars().count();
    if (PASSWORD_MIN_CHARS..=PASSWORD_MAX_CHARS).contains(&chars) {
        Ok(())
    } else {
        Err(FieldError::new(
            "password",
            format!("must be {PASSWORD_MIN_CHARS} to {PASSWORD_MAX_CHARS} characters"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn hashes_verify_and_salts_differ() {
        let a = hash_password("correct horse battery").expect("hashes");
        let b = hash_password("correct horse battery").expect("hashes");
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "a fresh salt each time");
        assert!(verify_password("correct horse battery", &a));
        assert!(verify_password("correct horse battery", &b));
        assert!(!verify_password("correct horse batterY", &a));
        assert!(!verify_password("", &a));
    }

    #[test]
    fn a_broken_hash_matches_nothing() {
        for phc in [
            "",
            "plain",
            "$argon2id$stub",
            "$argon2id$v=19$m=19456,t=2,p=1$x$y",
        ] {
            assert!(!verify_password("anything at all", phc), "{phc:?}");
        }
    }

    #[test]
    fn dummy_verify_is_false_and_costs_like_a_real_verification() {
        warm_up();
        let real = hash_password("a real password").expect("hashes");
        // The fastest of a few runs of each, so that a busy machine does not skew one side.
        let fastest = |f: &dyn Fn() -> bool| {
            (0..4)
                .map(|_| {
                    let started = Instant::now();
                    assert!(!f());
                    started.elapsed()
                })
                .min()
                .unwrap_or_default()
        };
        let real_cost = fastest(&|| verify_password("wrong password", &real));
        let dummy_cost = fastest(&|| dummy_verify("wrong password"));
        // The same work within a factor that a busy test machine can blur; a dummy that skipped
        // the work would be a thousand times faster.
        let ratio = dummy_cost.as_secs_f64() / real_cost.as_secs_f64();
        assert!(
            (0.25..4.0).contains(&ratio),
            "dummy {dummy_cost:?} vs real {real_cost:?}"
        );
    }

    #[test]
    fn policy_counts_characters() {
        assert!(check_password_policy(&"x".repeat(12)).is_ok());
        assert!(check_password_policy(&"x".repeat(256)).is_ok());
        // 12 characters but 24 bytes.
        assert!(check_password_policy(&"é".repeat(12)).is_ok());
        for bad in [
            String::new(),
            "x".repeat(11),
            "x".repeat(257),
            "é".repeat(11),
        ] {
            let err = check_password_policy(&bad).expect_err("refused");
            assert_eq!(err.field, "password");
            assert_eq!(err.message, "must be 12 to 256 characters");
        }
    }
}
