//! Authentication building blocks, free of HTTP and actors so that the API, the WebSocket
//! sessions and the benchmarks share them:
//!
//! * [`password`]: argon2id hashing, verification in constant time for unknown users, and the
//!   password policy of the API.
//! * [`secret`]: the HS256 secret file, created on first start.
//! * [`keys`]: the signing and verification keys of the configured algorithm.
//! * [`claims`]: what a token says; [`tokens`]: issuing a pair and decoding one, in the order of
//!   the protocol's reason codes; [`error`]: those reason codes.
//! * [`check`]: the second half of a token's check, against the users and revocations read
//!   models.
//! * [`limiter`]: the sliding-window limiter of failed logins and connect attempts;
//!   [`login_limits`]: the login's limits built from it; [`password_gate`]: the bound on
//!   concurrent argon2 runs.
//! * [`refresh`]: what a refresh token presented again means (a retry or a reuse).
//! * [`rsa_size`]: RSA keys under 2048 bits are refused.

pub mod check;
pub mod claims;
pub mod error;
pub mod keys;
pub mod limiter;
pub mod login_limits;
pub mod password;
pub mod password_gate;
pub mod refresh;
pub mod rsa_size;
pub mod secret;
pub mod tokens;

#[cfg(test)]
mod test_keys;

pub use check::{check_access, check_refresh, Principal};
pub use claims::{Claims, TokenPair, TokenType};
pub use error::{IssueError, TokenError};
pub use keys::{KeyError, TokenKeys};
pub use limiter::{RetryAfter, SlidingWindow};
pub use login_limits::{LoginAttempt, LoginLimitSettings, LoginLimiter};
pub use password::{
    check_password_policy, dummy_verify, hash_password, verify_password, PasswordError,
};
pub use password_gate::{PasswordGate, PasswordSlot};
pub use secret::{load_or_create_secret, HmacSecret, SecretError};
pub use tokens::{Grant, TokenService, TokenSettings};
