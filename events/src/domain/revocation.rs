//! Token revocations: one stream for the whole system, so every node learns of a revoked token
//! from the store. Each revocation carries the token's expiry so that read models can forget it
//! once the token would have expired anyway.
//!
//! Refreshes have a stream per refresh family, `refresh-<family id>` ([`family_stream`]): each
//! refresh appends a [`TokenRefreshed`] with the exact version the presented refresh token was
//! issued at (its `gen` claim), so of two uses of one refresh token, on one node or on several,
//! exactly one appends; the other finds the first one's event and knows the token was used. A
//! detected reuse appends [`TokenFamilyRevoked`] to the same stream, again at an exact version,
//! so it is recorded once however many nodes see the reuse.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Timestamp;

/// The stream that holds every revocation.
pub const STREAM: &str = "revocations";

/// The stream of one refresh family's refreshes (and of its revocation after a reuse).
pub fn family_stream(family_id: Uuid) -> String {
    format!("refresh-{family_id}")
}

/// One token (by its `jti`) may no longer be used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRevoked {
    pub jti: Uuid,
    pub user_id: Uuid,
    pub expires_at: Timestamp,
}

/// Every token of one login (its refresh family) may no longer be used: a logout, or a refresh
/// token presented twice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenFamilyRevoked {
    pub family_id: Uuid,
    pub user_id: Uuid,
    pub expires_at: Timestamp,
    pub reason: FamilyRevocationReason,
}

/// A refresh token was used up and a new pair issued in its place, in the family's stream. The
/// new pair's ids and issue time are recorded so that a client whose answer was lost can be
/// given the very same pair again (see the refresh handler's grace window); the pair itself (the
/// signed tokens) is never stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRefreshed {
    pub family_id: Uuid,
    pub user_id: Uuid,
    /// The refresh token presented (its `jti`): used up from now on.
    pub used_jti: Uuid,
    /// The new access token's `jti`.
    pub access_jti: Uuid,
    /// The new refresh token's `jti`.
    pub refresh_jti: Uuid,
    /// When the new pair was issued (its `iat_us`).
    pub issued_at: Timestamp,
    /// The user's credential version the new pair carries (its `cv` claim).
    pub credential_version: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FamilyRevocationReason {
    Logout,
    RefreshReuse,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RevocationEvent {
    TokenRevoked(TokenRevoked),
    FamilyRevoked(TokenFamilyRevoked),
    Refreshed(TokenRefreshed),
}
