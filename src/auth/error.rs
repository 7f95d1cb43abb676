//! Why a token is refused, one variant per cause, each mapped to the protocol's reason code
//! (the `code` of a 401/403 problem answer and the reason of a WebSocket close), and why a pair
//! of tokens could not be issued.
//!
//! Where the protocol has no code of its own for a cause, the variant says which it shares:
//!
//! * a header `alg` other than the configured algorithm (`none` included), and an `iss` or `aud`
//!   other than ours, answer `token_invalid_signature`: the token was not signed by us for us,
//!   which is what a bad signature means too;
//! * an `nbf` in the future (beyond the leeway) answers `token_malformed`: we never issue such a
//!   token, so one can only be forged or mangled, and `token_expired` would tell the client to
//!   refresh, which cannot help.
//!
//! No message carries the token.

use thiserror::Error;

/// A refused token. [`TokenError::code`] is the protocol's reason string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TokenError {
    /// No token at all (empty). `token_missing`.
    #[error("no token was given")]
    Missing,
    /// Not three base64url parts with a JSON header, or claims that are not ours. `token_malformed`.
    #[error("the token is malformed")]
    Malformed,
    /// The header names another algorithm than the configured one (`none` included).
    /// `token_invalid_signature`.
    #[error("the token is signed with an algorithm this server does not accept")]
    WrongAlgorithm,
    /// The signature does not verify with our key. `token_invalid_signature`.
    #[error("the token's signature is invalid")]
    BadSignature,
    /// `exp` has passed (beyond the leeway). `token_expired`.
    #[error("the token has expired")]
    Expired,
    /// `nbf` lies in the future (beyond the leeway). `token_malformed`.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `iss` is not our issuer. `token_invalid_signature`.
    #[error("the token was issued by someone else")]
    WrongIssuer,
    /// `aud` is not our audience. `token_invalid_signature`.
    #[error("the token is meant for someone else")]
    WrongAudience,
    /// A refresh token where an access token is needed, or the other way round.
    /// `token_wrong_type`.
    #[error("the token is of the wrong type")]
    WrongType,
    /// The token's `jti` was revoked (logout). `token_revoked`.
    #[error("the token has been revoked")]
    Revoked,
    /// The token's refresh family was revoked (logout, refresh reuse). `token_revoked`.
    #[error("the token's login has been revoked")]
    FamilyRevoked,
    /// Issued with another credential version than the user's: a password change, disabling
    /// or roles change came since. `token_revoked`.
    #[error("the token was issued before the user's credentials changed")]
    CredentialsChanged,
    /// `sub` names no user. `user_unknown`.
    #[error("the token's user does not exist")]
    UserUnknown,
    /// The user is disabled. `user_disabled` (403, WebSocket close 4403).
    #[error("the user is disabled")]
    UserDisabled,
}

impl TokenError {
    /// The protocol's reason code: the problem answer's `code` and the WebSocket close reason.
    pub const fn code(&self) -> &'static str {
        match self {
            TokenError::Missing => "token_missing",
            TokenError::Malformed | TokenError::NotYetValid => "token_malformed",
            TokenError::WrongAlgorithm
            | TokenError::BadSignature
            | TokenError::WrongIssuer
            | TokenError::WrongAudience => "token_invalid_signature",
            TokenError::Expired => "token_expired",
            TokenError::WrongType => "token_wrong_type",
            TokenError::Revoked | TokenError::FamilyRevoked | TokenError::CredentialsChanged => {
                "token_revoked"
            }
            TokenError::UserUnknown => "user_unknown",
            TokenError::UserDisabled => "user_disabled",
        }
    }

    /// The WebSocket close code: 4403 for a disabled user, 4401 for everything else.
    pub const fn close_code(&self) -> u16 {
        match self {
            TokenError::UserDisabled => 4403,
            _ => 4401,
        }
    }

    /// The HTTP status: 403 for a disabled user, 401 for everything else.
    pub const fn http_status(&self) -> u16 {
        match self {
            TokenError::UserDisabled => 403,
            _ => 401,
        }
    }
}

/// Why a pair of tokens could not be issued.
#[derive(Debug, Error)]
pub enum IssueError {
    /// RS256 or EdDSA without `--jwt-private-key-file`: this node only verifies.
    #[error("this server has no private key (--jwt-private-key-file) and cannot issue tokens")]
    IssuingDisabled,
    /// The signing library failed.
    #[error("cannot sign a token: {0}")]
    Signing(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 4401 and 4403 reasons of the protocol that concern tokens.
    const PROTOCOL_CODES: [&str; 8] = [
        "token_missing",
        "token_malformed",
        "token_invalid_signature",
        "token_expired",
        "token_wrong_type",
        "token_revoked",
        "user_unknown",
        "user_disabled",
    ];

    const ALL: [TokenError; 14] = [
        TokenError::Missing,
        TokenError::Malformed,
        TokenError::WrongAlgorithm,
        TokenError::BadSignature,
        TokenError::Expired,
        TokenError::NotYetValid,
        TokenError::WrongIssuer,
        TokenError::WrongAudience,
        TokenError::WrongType,
        TokenError::Revoked,
        TokenError::FamilyRevoked,
        TokenError::CredentialsChanged,
        TokenError::UserUnknown,
        TokenError::UserDisabled,
    ];

    #[test]
    fn every_code_is_a_protocol_code_and_every_protocol_code_is_used() {
        for e in ALL {
            assert!(PROTOCOL_CODES.contains(&e.code()), "{e:?}");
        }
        for code in PROTOCOL_CODES {
            assert!(ALL.iter().any(|e| e.code() == code), "{code}");
        }
    }

    #[test]
    fn only_a_disabled_user_is_forbidden() {
        for e in ALL {
            let forbidden = e == TokenError::UserDisabled;
            assert_eq!(e.close_code(), if forbidden { 4403 } else { 4401 }, "{e:?}");
            assert_eq!(e.http_status(), if forbidden { 403 } else { 401 }, "{e:?}");
        }
    }
}
