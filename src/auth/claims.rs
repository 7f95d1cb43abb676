//! What a token says (its claims) and what issuing a login's pair of tokens gives back.

use events::domain::Role;
use events::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Which of a login's two tokens this is. Only `access` opens the API or a WebSocket; only
/// `refresh` buys a new pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    /// Short-lived; sent with every request.
    Access,
    /// Long-lived; sent only to `POST /api/v1/auth/refresh`, and used up there.
    Refresh,
}

impl TokenType {
    /// The `typ` claim's value.
    pub const fn as_str(self) -> &'static str {
        match self {
            TokenType::Access => "access",
            TokenType::Refresh => "refresh",
        }
    }
}

/// The claims of every token this server issues. Every field is required: a token without one
/// is not ours and is refused as malformed. Claims it does not know are ignored, so that a node
/// of an older version accepts the tokens of a newer one during a rolling upgrade.
///
/// Times are JWT NumericDates, whole seconds since the epoch, except `iat_us`: the issue time in
/// microseconds, the resolution of the recorded time of the events that void a user's older
/// tokens (see [`crate::auth::check`]). `iat` is `iat_us` rounded down to the second.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id.
    pub sub: Uuid,
    /// This token's id (UUID v7): what a revocation names.
    pub jti: Uuid,
    /// Issued at, in seconds.
    pub iat: i64,
    /// Issued at, in microseconds (a private claim).
    pub iat_us: i64,
    /// Not before, in seconds: the issue time.
    pub nbf: i64,
    /// Expires at, in seconds: valid strictly before it (plus the configured leeway).
    pub exp: i64,
    /// `--jwt-issuer`.
    pub iss: String,
    /// `--jwt-audience`.
    pub aud: String,
    /// Access or refresh.
    pub typ: TokenType,
    /// The user's roles when the token was issued, by name.
    pub roles: Vec<Role>,
    /// The refresh family: one id for every token of one login and of the refreshes that
    /// follow it, so that a logout or a detected reuse revokes them all at once.
    pub fam: Uuid,
    /// The family's generation (a private claim): the version of the family's refresh stream
    /// when the pair was issued, 0 for a login. A refresh appends at exactly this version, so a
    /// refresh token can be used once, on any node.
    pub gen: u64,
    /// The user's credential version (a private claim) when the pair was issued: see
    /// [`crate::auth::check`].
    pub cv: u64,
}

impl Claims {
    /// The expiry as a [`Timestamp`], e.g. for the revocation event of this token.
    pub fn expires_at(&self) -> Timestamp {
        Timestamp::from_micros(self.exp.saturating_mul(1_000_000))
    }

    /// The issue time with microsecond precision.
    pub fn issued_at(&self) -> Timestamp {
        Timestamp::from_micros(self.iat_us)
    }
}

/// A login's (or a refresh's) two tokens, with what the caller needs to answer and to record
/// them. Never log the tokens themselves.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenPair {
    /// The signed access token.
    pub access_token: String,
    /// The signed refresh token.
    pub refresh_token: String,
    /// The access token's `exp`.
    pub access_expires_at: Timestamp,
    /// The refresh token's `exp`.
    pub refresh_expires_at: Timestamp,
    /// The access token's `jti`.
    pub access_jti: Uuid,
    /// The refresh token's `jti`.
    pub refresh_jti: Uuid,
}

impl std::fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPair")
            .field("access_token", &"[redacted]")
            .field("refresh_token", &"[redacted]")
            .field("access_expires_at", &self.access_expires_at)
            .field("refresh_expires_at", &self.refresh_expires_at)
            .field("access_jti", &self.access_jti)
            .field("refresh_jti", &self.refresh_jti)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            sub: Uuid::from_u128(1),
            jti: Uuid::from_u128(2),
            iat: 10,
            iat_us: 10_400_000,
            nbf: 10,
            exp: 910,
            iss: "adjudicator".into(),
            aud: "adjudicator".into(),
            typ: TokenType::Access,
            roles: vec![Role::Reviewer, Role::SeniorReviewer],
            fam: Uuid::from_u128(3),
            gen: 2,
            cv: 4,
        }
    }

    #[test]
    fn json_shape() {
        let json = serde_json::to_value(claims()).expect("serializes");
        assert_eq!(json["typ"], "access");
        assert_eq!(
            json["roles"],
            serde_json::json!(["reviewer", "senior_reviewer"])
        );
        assert_eq!(json["iat_us"], 10_400_000);
        assert_eq!(
            (json["gen"].as_u64(), json["cv"].as_u64()),
            (Some(2), Some(4))
        );
        let back: Claims = serde_json::from_value(json).expect("deserializes");
        assert_eq!(back, claims());
        assert_eq!(back.expires_at(), Timestamp::from_micros(910_000_000));
        assert_eq!(back.issued_at(), Timestamp::from_micros(10_400_000));
    }

    #[test]
    fn every_claim_is_required_and_others_are_ignored() {
        let full = serde_json::to_value(claims()).expect("serializes");
        let serde_json::Value::Object(map) = full else {
            panic!("an object")
        };
        for key in map.keys() {
            let mut less = map.clone();
            less.remove(key);
            assert!(
                serde_json::from_value::<Claims>(serde_json::Value::Object(less)).is_err(),
                "{key} missing"
            );
        }
        let mut more = map.clone();
        more.insert("future".into(), true.into());
        let read = serde_json::from_value::<Claims>(serde_json::Value::Object(more));
        assert_eq!(read.ok(), Some(claims()));
        let mut typ = map;
        typ.insert("typ".into(), "id".into());
        assert!(serde_json::from_value::<Claims>(serde_json::Value::Object(typ)).is_err());
    }

    #[test]
    fn debug_of_a_pair_hides_the_tokens() {
        let pair = TokenPair {
            access_token: "eyJaccess".into(),
            refresh_token: "eyJrefresh".into(),
            access_expires_at: Timestamp::from_micros(0),
            refresh_expires_at: Timestamp::from_micros(0),
            access_jti: Uuid::nil(),
            refresh_jti: Uuid::nil(),
        };
        let shown = format!("{pair:?}");
        assert!(!shown.contains("eyJ"), "{shown}");
    }
}
