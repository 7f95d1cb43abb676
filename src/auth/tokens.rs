//! Issuing a login's pair of JWTs, and decoding a presented one.
//!
//! [`TokenService::decode`] checks, in this order, each with its own [`TokenError`]:
//!
//! 1. present: an empty token is `token_missing`;
//! 2. well-formed: three `.`-separated unpadded base64url parts (the signature may be empty, as
//!    in an `alg: none` token), at most [`MAX_TOKEN_BYTES`], a header that is a JSON object with
//!    a string `alg` and no `crit`; else `token_malformed`. These checks are ours, made before the
//!    signing library sees the token, so that "malformed" and "bad signature" are told apart
//!    reliably;
//! 3. algorithm: the header's `alg` must be exactly the configured one; any other, `none`
//!    included, is `token_invalid_signature` (the protocol has no code of its own for it). The
//!    signature is then verified with the configured algorithm and key only, never with what the
//!    header asks for, so an HS256 token "signed" with our RSA public key is refused;
//! 4. signature: `token_invalid_signature`;
//! 5. claims: every claim of [`Claims`] present with its type, else `token_malformed`;
//! 6. time: `exp` passed beyond the leeway is `token_expired`; `nbf` in the future beyond the
//!    leeway is `token_malformed` (we never issue one);
//! 7. `iss` and `aud` must be ours, else `token_invalid_signature`.
//!
//! The type (`typ`) is checked by [`TokenService::decode_access`] and
//! [`TokenService::decode_refresh`] (`token_wrong_type`); revocations and the user by
//! [`crate::auth::check`].

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use events::domain::Role;
use events::Timestamp;
use jsonwebtoken::{Algorithm, Header};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::claims::{Claims, TokenPair, TokenType};
use super::error::{IssueError, TokenError};
use super::keys::{jwt_algorithm, KeyError, TokenKeys};
use crate::config::Settings;

/// Longest token accepted; ours are well under 1 KiB.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

const MICROS_PER_SEC: i128 = 1_000_000;

/// What tokens say and how long they live, from the settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSettings {
    /// `iss` of issued tokens, required of presented ones.
    pub issuer: String,
    /// `aud` of issued tokens, required of presented ones.
    pub audience: String,
    /// Lifetime of access tokens.
    pub access_ttl: Duration,
    /// Lifetime of refresh tokens.
    pub refresh_ttl: Duration,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
}

impl TokenSettings {
    /// The token settings of the server's settings.
    pub fn from_settings(settings: &Settings) -> Self {
        TokenSettings {
            issuer: settings.jwt_issuer.clone(),
            audience: settings.jwt_audience.clone(),
            access_ttl: settings.access_token_ttl,
            refresh_ttl: settings.refresh_token_ttl,
            leeway: settings.jwt_leeway,
        }
    }
}

/// What a pair of tokens is issued for: a user with their current roles and credential version,
/// one login's family and its generation, and the issue time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant<'a> {
    /// `sub`.
    pub user_id: Uuid,
    /// `roles`: the user's roles now.
    pub roles: &'a [Role],
    /// `fam`: a new id for a login, the presented token's for a refresh.
    pub family: Uuid,
    /// `gen`: 0 for a login; after a refresh, the family stream's new version.
    pub generation: u64,
    /// `cv`: the user's credential version as the read model has it.
    pub credential_version: u64,
    /// `iat_us`.
    pub issued_at: Timestamp,
}

/// Issues and decodes tokens with one algorithm and its keys. Cheap to share (`Arc`) and
/// thread-safe; holds no clock except in the `decode*` methods that do not take `now`.
#[derive(Debug, Clone)]
pub struct TokenService {
    keys: TokenKeys,
    settings: TokenSettings,
    algorithm: Algorithm,
    alg_name: &'static str,
    leeway_us: i128,
}

impl TokenService {
    /// A service with these keys and settings.
    pub fn new(keys: TokenKeys, settings: TokenSettings) -> Self {
        let algorithm = jwt_algorithm(keys.algorithm());
        let alg_name = keys.algorithm().as_str();
        let leeway_us = i128::try_from(settings.leeway.as_micros()).unwrap_or(i128::MAX);
        TokenService {
            keys,
            settings,
            algorithm,
            alg_name,
            leeway_us,
        }
    }

    /// Loads the keys the settings name (see [`TokenKeys::load`]) and builds the service.
    pub fn from_settings(settings: &Settings) -> Result<Self, KeyError> {
        Ok(Self::new(
            TokenKeys::load(settings)?,
            TokenSettings::from_settings(settings),
        ))
    }

    /// The keys, e.g. to tell whether this node can issue tokens.
    pub fn keys(&self) -> &TokenKeys {
        &self.keys
    }

    /// The settings.
    pub fn settings(&self) -> &TokenSettings {
        &self.settings
    }

    /// Issues an access and a refresh token for `grant`, each with a new `jti` (UUID v7).
    pub fn issue_pair(&self, grant: &Grant<'_>) -> Result<TokenPair, IssueError> {
        self.issue_pair_with_ids(grant, Uuid::now_v7(), Uuid::now_v7())
    }

    /// Issues the pair of `grant` with the given `jti`s. The same grant and ids give the same
    /// claims, hence (every algorithm we use signs deterministically) the same tokens: that is
    /// how a refresh whose answer was lost is answered the same pair again.
    pub fn issue_pair_with_ids(
        &self,
        grant: &Grant<'_>,
        access_jti: Uuid,
        refresh_jti: Uuid,
    ) -> Result<TokenPair, IssueError> {
        let key = self.keys.encoding().ok_or(IssueError::IssuingDisabled)?;
        let header = Header::new(self.algorithm);
        let issue = |typ: TokenType, ttl: Duration, jti: Uuid| {
            let claims = self.claims(grant, typ, ttl, jti);
            jsonwebtoken::encode(&header, &claims, key)
                .map(|token| (token, claims.expires_at()))
                .map_err(|e| IssueError::Signing(e.to_string()))
        };
        let (access_token, access_expires_at) =
            issue(TokenType::Access, self.settings.access_ttl, access_jti)?;
        let (refresh_token, refresh_expires_at) =
            issue(TokenType::Refresh, self.settings.refresh_ttl, refresh_jti)?;
        Ok(TokenPair {
            access_token,
            refresh_token,
            access_expires_at,
            refresh_expires_at,
            access_jti,
            refresh_jti,
        })
    }

    fn claims(&self, grant: &Grant<'_>, typ: TokenType, ttl: Duration, jti: Uuid) -> Claims {
        let now = grant.issued_at;
        let now_us = i128::from(now.as_micros());
        let ttl_us = i128::try_from(ttl.as_micros()).unwrap_or(i128::MAX / 2);
        let iat = seconds(now_us.div_euclid(MICROS_PER_SEC));
        // Rounded up: a token lives at least its TTL, and less than a second more.
        let exp = seconds((now_us + ttl_us + MICROS_PER_SEC - 1).div_euclid(MICROS_PER_SEC));
        Claims {
            sub: grant.user_id,
            jti,
            iat,
            iat_us: now.as_micros(),
            nbf: iat,
            exp,
            iss: self.settings.issuer.clone(),
            aud: self.settings.audience.clone(),
            typ,
            roles: grant.roles.to_vec(),
            fam: grant.family,
            gen: grant.generation,
            cv: grant.credential_version,
        }
    }

    /// Decodes and checks `token` as of the system clock; see the module's documentation for
    /// the checks and their order.
    pub fn decode(&self, token: &str) -> Result<Claims, TokenError> {
        self.decode_at(token, Timestamp::now())
    }

    /// [`TokenService::decode`], then requires `typ: access`.
    pub fn decode_access(&self, token: &str) -> Result<Claims, TokenError> {
        self.decode_access_at(token, Timestamp::now())
    }

    /// [`TokenService::decode`], then requires `typ: refresh`.
    pub fn decode_refresh(&self, token: &str) -> Result<Claims, TokenError> {
        self.decode_refresh_at(token, Timestamp::now())
    }

    /// [`TokenService::decode_access`] as of `now`.
    pub fn decode_access_at(&self, token: &str, now: Timestamp) -> Result<Claims, TokenError> {
        require_type(self.decode_at(token, now)?, TokenType::Access)
    }

    /// [`TokenService::decode_refresh`] as of `now`.
    pub fn decode_refresh_at(&self, token: &str, now: Timestamp) -> Result<Claims, TokenError> {
        require_type(self.decode_at(token, now)?, TokenType::Refresh)
    }

    /// [`TokenService::decode`] as of `now`.
    pub fn decode_at(&self, token: &str, now: Timestamp) -> Result<Claims, TokenError> {
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        let parts = split(token)?;
        if parts.alg != self.alg_name {
            return Err(TokenError::WrongAlgorithm);
        }
        let verified = jsonwebtoken::crypto::verify(
            parts.signature,
            parts.signing_input.as_bytes(),
            self.keys.decoding(),
            self.algorithm,
        );
        if !matches!(verified, Ok(true)) {
            return Err(TokenError::BadSignature);
        }
        let claims: Claims =
            serde_json::from_slice(&parts.payload).map_err(|_| TokenError::Malformed)?;
        let now_us = i128::from(now.as_micros());
        if now_us >= i128::from(claims.exp) * MICROS_PER_SEC + self.leeway_us {
            return Err(TokenError::Expired);
        }
        if i128::from(claims.nbf) * MICROS_PER_SEC > now_us + self.leeway_us {
            return Err(TokenError::NotYetValid);
        }
        if claims.iss != self.settings.issuer {
            return Err(TokenError::WrongIssuer);
        }
        if claims.aud != self.settings.audience {
            return Err(TokenError::WrongAudience);
        }
        Ok(claims)
    }
}

fn require_type(claims: Claims, typ: TokenType) -> Result<Claims, TokenError> {
    if claims.typ == typ {
        Ok(claims)
    } else {
        Err(TokenError::WrongType)
    }
}

/// Seconds that fit a JWT NumericDate as we write it.
fn seconds(s: i128) -> i64 {
    i64::try_from(s).unwrap_or(if s < 0 { i64::MIN } else { i64::MAX })
}

/// A token taken apart: what the signature covers, the signature as sent, the decoded payload
/// and the header's `alg`.
struct Parts<'a> {
    signing_input: &'a str,
    signature: &'a str,
    payload: Vec<u8>,
    alg: String,
}

fn b64(part: &str) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed)
}

/// The well-formedness checks (step 2 of the module's list).
fn split(token: &str) -> Result<Parts<'_>, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Malformed);
    }
    let (signing_input, signature) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
    let (header, payload) = signing_input.split_once('.').ok_or(TokenError::Malformed)?;
    if header.is_empty() || payload.is_empty() || payload.contains('.') {
        return Err(TokenError::Malformed);
    }
    let header: Map<String, Value> =
        serde_json::from_slice(&b64(header)?).map_err(|_| TokenError::Malformed)?;
    let payload = b64(payload)?;
    b64(signature)?;
    if header.contains_key("crit") {
        // We implement no header extension, so one a token requires cannot be honoured.
        return Err(TokenError::Malformed);
    }
    let alg = match header.get("alg") {
        Some(Value::String(alg)) => alg.clone(),
        _ => return Err(TokenError::Malformed),
    };
    Ok(Parts {
        signing_input,
        signature,
        payload,
        alg,
    })
}

#[cfg(test)]
#[path = "tokens_tests.rs"]
mod tests;
