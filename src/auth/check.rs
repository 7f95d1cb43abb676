//! The second half of a token's check, after [`crate::auth::TokenService`] verified its
//! signature and times: is it still good for this user, according to the read models? Pure; no
//! I/O, no clock.
//!
//! The checks, in this order:
//!
//! 1. the `jti` or the refresh family (`fam`) revoked: `token_revoked`;
//! 2. no user with the id `sub`: `user_unknown`;
//! 3. the user disabled: `user_disabled` (403, WebSocket close 4403);
//! 4. the token's credential version (`cv`) is not the user's: `token_revoked`. For an access
//!    token it must equal the user's `credential_version` (the user stream's version of the last
//!    registration, password change, disabling or roles change); for a refresh token it must be
//!    at least the user's `sign_in_version` (the same without roles changes), so that a roles
//!    change ends every access token at once while the login goes on: the refreshed pair
//!    carries the new roles.
//!
//! Versions are compared rather than times. An earlier design voided tokens issued before the
//! recorded time of the change; but that time is stamped before the append, and a login or a
//! refresh that read the user from a read model not yet holding the change was issued *after*
//! it, and so survived the reset, renewable forever. A token now carries the version it was
//! issued from, and is void the moment the read model holds a newer one, however late it was
//! issued.
//!
//! Reuse of a refresh token is not detected here: the refresh handler finds it in the family's
//! refresh stream.

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
    /// The user's credential version now (a refreshed pair carries it).
    pub credential_version: u64,
    /// The read models' position when the check ran (0 until the caller sets it): a revocation
    /// after it may not have been seen (see the WebSocket registry's registration).
    pub checked_at: u64,
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
    let current = match typ {
        TokenType::Access => claims.cv == user.credential_version,
        TokenType::Refresh => {
            claims.cv >= user.sign_in_version && claims.cv <= user.credential_version
        }
    };
    if !current {
        return Err(TokenError::CredentialsChanged);
    }
    Ok(Principal {
        user_id: user.id,
        username: user.username.clone(),
        roles: user.roles.clone(),
        jti: claims.jti,
        family: claims.fam,
        expires_at: claims.expires_at(),
        credential_version: user.credential_version,
        checked_at: 0,
    })
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
