//! `POST /auth/refresh`: a refresh token for a new pair.
//!
//! A refresh token is single use, and the proof of use is in the store, not in a node's memory:
//! each refresh appends `token_refreshed` to its family's stream (`refresh-<family>`) at
//! exactly the version the token was issued at (its `gen` claim). Of two uses of one token, on
//! one node or on several sharing a store, exactly one append succeeds. The other finds the
//! first one's event, and [`crate::auth::refresh::judge`] says what it is: a client retrying
//! because it lost its answer (answered the same pair again, within a short grace window), or a
//! reuse, which revokes the whole family once (`token_family_revoked`, appended to the same
//! stream at an exact version, never again once the family is revoked).
//!
//! Refreshes are limited per client IP and per family (`--refresh-rate-per-ip`,
//! `--refresh-rate-per-family`, per minute), counted before any work.

use std::time::Instant;

use actix_web::{web, HttpRequest, HttpResponse};
use events::domain::revocation::{
    family_stream, FamilyRevocationReason, RevocationEvent, TokenFamilyRevoked, TokenRefreshed,
};
use events::domain::DomainEvent;
use events::{EventData, ExpectedVersion, Metadata, StoreError, Timestamp};
use projections::Projections;
use serde::Deserialize;
use uuid::Uuid;

use super::authn::token_problem;
use super::client_ip::client_ip;
use super::json::Json;
use super::problem::ApiError;
use super::session::{issue_error, token_answer};
use super::{wait_for, AppState};
use crate::auth::refresh::{judge, Judgement};
use crate::auth::{check_refresh, Claims, Grant, Principal, RetryAfter, TokenError};
use crate::projector::WithModels;

/// How often a reuse's revocation is tried again when the family's stream moves under it.
const REVOKE_ATTEMPTS: usize = 5;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RefreshBody {
    refresh_token: String,
}

pub(super) async fn refresh(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Json<RefreshBody>,
) -> Result<HttpResponse, ApiError> {
    // When the request came, before any wait: two uses of one token that overlap are a reuse.
    let arrived = Timestamp::now();
    let ip = client_ip(&req).to_string();
    limit(&state, |l| l.per_ip.hit(&ip, Instant::now()))?;
    let claims = state
        .tokens
        .decode_refresh(&body.0.refresh_token)
        .map_err(|e| token_problem(&e))?;
    let family = claims.fam.to_string();
    limit(&state, |l| l.per_family.hit(&family, Instant::now()))?;
    let check = claims.clone();
    let principal = state
        .projector
        .send(WithModels::new(move |m: &Projections| {
            check_refresh(&check, m.users(), m.revocations())
        }))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| token_problem(&e))?;
    let rotation = TokenRefreshed {
        family_id: claims.fam,
        user_id: claims.sub,
        used_jti: claims.jti,
        access_jti: Uuid::now_v7(),
        refresh_jti: Uuid::now_v7(),
        issued_at: Timestamp::now(),
        credential_version: principal.credential_version,
    };
    let expected = match claims.gen {
        0 => ExpectedVersion::NoStream,
        n => ExpectedVersion::Exact(n),
    };
    let event = RevocationEvent::Refreshed(rotation.clone());
    match append(&state, &claims, expected, event).await {
        Ok(_) => answer(&state, &principal, &claims, &rotation),
        Err(StoreError::Conflict { actual, .. }) => {
            after_conflict(&state, &claims, &principal, arrived, actual).await
        }
        Err(e) => Err(super::cases::command_error(e.into(), None)),
    }
}

/// Runs `hit` on the refresh limits; 429 with `Retry-After` when over.
fn limit(
    state: &AppState,
    hit: impl FnOnce(&mut super::RefreshLimits) -> Result<(), RetryAfter>,
) -> Result<(), ApiError> {
    let mut limits = state.refresh_limits.lock().map_err(ApiError::internal)?;
    hit(&mut limits).map_err(|wait| ApiError::rate_limited(wait.0))
}

/// The pair of `rotation`: the same grant and ids always sign to the same tokens.
fn answer(
    state: &AppState,
    principal: &Principal,
    claims: &Claims,
    rotation: &TokenRefreshed,
) -> Result<HttpResponse, ApiError> {
    let grant = Grant {
        user_id: principal.user_id,
        roles: &principal.roles,
        family: claims.fam,
        generation: claims.gen + 1,
        credential_version: rotation.credential_version,
        issued_at: rotation.issued_at,
    };
    let pair = state
        .tokens
        .issue_pair_with_ids(&grant, rotation.access_jti, rotation.refresh_jti)
        .map_err(issue_error)?;
    Ok(HttpResponse::Ok().json(token_answer(&pair)))
}

/// The token's family moved on (its stream is at `head`): a retry or a reuse.
async fn after_conflict(
    state: &AppState,
    claims: &Claims,
    principal: &Principal,
    arrived: Timestamp,
    head: u64,
) -> Result<HttpResponse, ApiError> {
    let next = read_one(state, claims.fam, claims.gen + 1).await?;
    let last = if head == claims.gen + 1 {
        next.clone()
    } else {
        read_one(state, claims.fam, head).await?
    };
    match judge(claims, arrived, next.as_ref(), last.as_ref(), head) {
        Judgement::Retry(rotation) => {
            if rotation.credential_version != principal.credential_version {
                return Err(token_problem(&TokenError::CredentialsChanged));
            }
            tracing::info!(user_id = %claims.sub, "refresh retried: the same pair again");
            answer(state, principal, claims, &rotation)
        }
        Judgement::AlreadyRevoked => Err(reused()),
        Judgement::Reuse => {
            revoke_family(state, claims, head).await?;
            tracing::warn!(user_id = %claims.sub, "refresh token reused: family revoked");
            Err(reused())
        }
    }
}

fn reused() -> ApiError {
    ApiError::unauthorized(
        "token_reused",
        "this refresh token was used already; every token of this login is now revoked",
    )
}

/// Revokes the family in its own stream, once: at the exact version it was seen at, and not
/// at all if another node (or request) revoked it first. Answers once the read models know it.
async fn revoke_family(state: &AppState, claims: &Claims, mut head: u64) -> Result<(), ApiError> {
    for _ in 0..REVOKE_ATTEMPTS {
        let event = RevocationEvent::FamilyRevoked(TokenFamilyRevoked {
            family_id: claims.fam,
            user_id: claims.sub,
            expires_at: Timestamp::now().plus(state.refresh_ttl),
            reason: FamilyRevocationReason::RefreshReuse,
        });
        match append(state, claims, ExpectedVersion::Exact(head), event).await {
            Ok(position) => return wait_for(state, position).await,
            Err(StoreError::Conflict { actual, .. }) => {
                head = actual;
                let last = read_one(state, claims.fam, head).await?;
                if matches!(last, Some(RevocationEvent::FamilyRevoked(_))) {
                    return Ok(());
                }
            }
            Err(e) => return Err(super::cases::command_error(e.into(), None)),
        }
    }
    Err(ApiError::unavailable(
        "the login is being refreshed elsewhere; try again",
    ))
}

/// Appends `event` to the family's stream; answers its position.
async fn append(
    state: &AppState,
    claims: &Claims,
    expected: ExpectedVersion,
    event: RevocationEvent,
) -> Result<u64, StoreError> {
    let metadata = Metadata::for_request(Some(claims.sub));
    let data = EventData::encode(&DomainEvent::Revocation(event), metadata, Timestamp::now())
        .map_err(|e| StoreError::InvalidRequest(e.to_string()))?;
    let appended = state
        .store
        .append(&family_stream(claims.fam), expected, vec![data])
        .await?;
    Ok(appended.positions.last().copied().unwrap_or(0))
}

/// The family stream's event at `version`, if there is one.
async fn read_one(
    state: &AppState,
    family: Uuid,
    version: u64,
) -> Result<Option<RevocationEvent>, ApiError> {
    let records = state
        .store
        .read_stream(&family_stream(family), version, 1)
        .await
        .map_err(|e| super::cases::command_error(e.into(), None))?;
    let Some(record) = records.into_iter().next() else {
        return Ok(None);
    };
    match record.data.decode().map_err(ApiError::internal)? {
        DomainEvent::Revocation(event) => Ok(Some(event)),
        _ => Ok(None),
    }
}
