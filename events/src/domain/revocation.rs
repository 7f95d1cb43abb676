//! Token revocations: one stream for the whole system, so every node learns of a revoked token
//! from the store. Each revocation carries the token's expiry so that read models can forget it
//! once the token would have expired anyway.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Timestamp;

/// The stream that holds every revocation.
pub const STREAM: &str = "revocations";

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
}
