//! The second half of a token's check, after [`crate::auth::TokenService`] verified its
//! signature and times: is it still good for this user, according to the read models? Pure; no
//! I/O, no clock.
//!
//! The checks, in this order:
//!
//! 1. the `jti` or the refresh family (`fam`) revoked: `token_revoked`;
//! 2. no user with the id `sub`: `user_unknown`;
//! 3. the user disabled: `user_disabled` (403, WebSocket close 4403);
//! 4. issued before the user's `tokens_invalid_before` (the recorded time of their last
//!    disabling or password change): `token_revoked`.
//!
//! The last comparison is made in microseconds, with the private claim `iat_us`: the JWT `iat`
//! holds whole seconds, and an event at 10.4 s must void a token issued at 10.2 s but not one
//! issued at 10.7 s, though both have `iat` 10. Comparing seconds would have to either refuse a
//! fresh login made in the same second as a password change, or accept a token issued just
//! before the change.
//!
//! Reuse of a refresh token is not detected here: that needs the record of used refresh `jti`s,
//! which the refresh handler keeps.

use events::domain::Role;
use events::Timestamp;
use projections::{Revocations, Users};
use uuid::Uuid;

use super::claims::{Claims, TokenType};
use super::error::TokenError;

/// Who a valid token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user's id (`sub`).
    pub user_id: Uuid,
    /// The user's current username.
    pub username: String,
    /// The user's roles as the read model has them now, not as the token has them: a role an
    /// admin removes stops working at once, not when the token expires.
    pub roles: Vec<Role>,
    /// The token's id.
    pub jti: Uuid,
    /// The token's refresh family.
    pub family: Uuid,
    /// The token's `exp`.
    pub expires_at: Timestamp,
}

impl Principal {
    /// Whether the user holds `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// Checks decoded access-token claims against the read models; see the module's documentation.
pub fn check_access(
    claims: &Claims,
    users: &Users,
    revocations: &Revocations,
) -> Result<Principal, TokenError> {
    check(claims, TokenType::Access, users, revocations)
}

/// Checks decoded refresh-token claims against the read models, like [`check_access`].
pub fn check_refresh(
    claims: &Claims,
    users: &Users,
    revocations: &Revocations,
) -> Result<Principal, TokenError> {
    check(claims, TokenType::Refresh, users, revocations)
}

fn check(
    claims: &Claims,
    typ: TokenType,
    users: &Users,
    revocations: &Revocations,
) -> Result<Principal, TokenError> {
    // `decode_access` / `decode_refresh` checked this already; claims from `decode` may not have.
    if claims.typ != typ {
        return Err(TokenError::WrongType);
    }
    if revocations.is_token_revoked(claims.jti) {
        return Err(TokenError::Revoked);
    }
    if revocations.is_family_revoked(claims.fam) {
        return Err(TokenError::FamilyRevoked);
    }
    let user = users.get(claims.sub).ok_or(TokenError::UserUnknown)?;
    if user.disabled {
        return Err(TokenError::UserDisabled);
    }
    if let Some(before) = user.tokens_invalid_before {
        if claims.iat_us < before.as_micros() {
            return Err(TokenError::IssuedBeforeInvalidation);
        }
    }
    Ok(Principal {
        user_id: user.id,
        username: user.username.clone(),
        roles: user.roles.clone(),
        jti: claims.jti,
        family: claims.fam,
        expires_at: claims.expires_at(),
    })
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
