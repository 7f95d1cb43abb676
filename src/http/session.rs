//! Logging in and out: `POST /auth/login`, `/auth/logout`, and `GET /me` (`/auth/refresh` is
//! in `refresh.rs`).
//!
//! A login is refused before any work when its username is longer than any username can be
//! (422), and counted against the limits *before* its password is checked (see
//! [`crate::auth::login_limits`]); the check itself (argon2) runs behind a bound on concurrent
//! runs, answering 503 `unavailable` when every slot is taken. An unknown user costs the same
//! time and gets the same answer as a wrong password.

use std::time::Instant;

use actix_web::{web, HttpRequest, HttpResponse};
use events::domain::revocation::{
    self, FamilyRevocationReason, RevocationEvent, TokenFamilyRevoked, TokenRevoked,
};
use events::domain::values::USERNAME_MAX;
use events::domain::DomainEvent;
use events::{EventData, ExpectedVersion, Metadata, Timestamp};
use projections::{Projections, UserRecord};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::authn::Authenticated;
use super::client_ip::client_ip;
use super::json::{Json, JsonOrEmpty};
use super::problem::ApiError;
use super::{wait_for, AppState};
use crate::auth::{dummy_verify, verify_password, Grant, PasswordSlot, TokenPair};
use crate::projector::WithModels;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth/login", web::post().to(login))
        .route("/auth/refresh", web::post().to(super::refresh::refresh))
        .route("/auth/logout", web::post().to(logout))
        .route("/me", web::get().to(me));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    username: String,
    password: String,
}

/// A slot for one argon2 run, or 503 `unavailable` (with `Retry-After`) when all are taken.
pub(super) fn password_slot(state: &AppState) -> Result<PasswordSlot, ApiError> {
    state
        .password_gate
        .try_enter()
        .ok_or_else(|| ApiError::unavailable("too many password checks at once; try again"))
}

async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Json<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    let LoginBody { username, password } = body.0;
    // No username is longer: refuse before the limiter keeps a key for it.
    if username.len() > USERNAME_MAX {
        return Err(ApiError::field(
            "username",
            format!("must be at most {USERNAME_MAX} characters"),
        ));
    }
    let ip = client_ip(&req);
    let slot = password_slot(&state)?;
    let attempt = state
        .login_limits
        .lock()
        .map_err(ApiError::internal)?
        .begin(&username, ip, Instant::now())
        .map_err(|wait| ApiError::rate_limited(wait.0))?;
    let name = username.clone();
    let user: Option<UserRecord> = match state
        .projector
        .send(WithModels::new(move |m: &Projections| {
            m.users().by_username(&name).cloned()
        }))
        .await
    {
        Ok(user) => user,
        Err(e) => {
            if let Ok(mut limits) = state.login_limits.lock() {
                limits.abandon(&attempt);
            }
            return Err(ApiError::internal(e));
        }
    };
    // Argon2 takes tens of milliseconds of CPU: keep it off the async workers, and hold the
    // slot while it runs.
    let candidate = user.clone();
    let verified = web::block(move || {
        let _slot = slot;
        match &candidate {
            Some(u) if !u.disabled => verify_password(&password, u.password_hash.expose()),
            _ => {
                dummy_verify(&password);
                false
            }
        }
    })
    .await
    .map_err(ApiError::internal)?;
    let user = match (verified, user) {
        (true, Some(user)) => user,
        _ => {
            tracing::info!(%ip, "login failed");
            return Err(ApiError::unauthorized(
                "invalid_credentials",
                "the username or the password is wrong",
            ));
        }
    };
    if let Ok(mut limits) = state.login_limits.lock() {
        limits.succeeded(&attempt, Instant::now());
    }
    let pair = issue(&state, &user, Uuid::now_v7(), 0)?;
    tracing::info!(user_id = %user.id, %ip, "login");
    Ok(HttpResponse::Ok().json(token_answer(&pair)))
}

/// A new pair for `user` (as the read models have them now) in `family` at `generation`.
fn issue(
    state: &AppState,
    user: &UserRecord,
    family: Uuid,
    generation: u64,
) -> Result<TokenPair, ApiError> {
    let grant = Grant {
        user_id: user.id,
        roles: &user.roles,
        family,
        generation,
        credential_version: user.credential_version,
        issued_at: Timestamp::now(),
    };
    state.tokens.issue_pair(&grant).map_err(issue_error)
}

/// Why tokens cannot be issued here, as an answer.
pub(super) fn issue_error(e: crate::auth::IssueError) -> ApiError {
    ApiError::unavailable(format!("tokens cannot be issued here: {e}"))
}

/// The protocol's answer to a login or a refresh.
pub(super) fn token_answer(pair: &TokenPair) -> serde_json::Value {
    let expires_in =
        (pair.access_expires_at.as_micros() - Timestamp::now().as_micros()).max(0) / 1_000_000;
    json!({
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "token_type": "Bearer",
        "expires_in": expires_in,
    })
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LogoutBody {
    refresh_token: Option<String>,
}

async fn logout(
    state: web::Data<AppState>,
    who: Authenticated,
    req: HttpRequest,
    JsonOrEmpty(body): JsonOrEmpty<LogoutBody>,
) -> Result<HttpResponse, ApiError> {
    let p = &who.0;
    let expires_at = Timestamp::now().plus(state.refresh_ttl);
    let mut families = vec![p.family];
    if let Some(token) = body.refresh_token {
        // A refresh token of another of the caller's logins ends that login too.
        if let Ok(claims) = state.tokens.decode_refresh(&token) {
            if claims.sub == p.user_id && !families.contains(&claims.fam) {
                families.push(claims.fam);
            }
        }
    }
    let mut events = vec![RevocationEvent::TokenRevoked(TokenRevoked {
        jti: p.jti,
        user_id: p.user_id,
        expires_at: p.expires_at,
    })];
    events.extend(families.into_iter().map(|family_id| {
        RevocationEvent::FamilyRevoked(TokenFamilyRevoked {
            family_id,
            user_id: p.user_id,
            expires_at,
            reason: FamilyRevocationReason::Logout,
        })
    }));
    let metadata = Metadata::for_request(Some(p.user_id));
    append_revocations(
        &state,
        revocation::STREAM,
        ExpectedVersion::Any,
        events,
        metadata,
    )
    .await?;
    tracing::info!(user_id = %p.user_id, ip = %client_ip(&req), "logout");
    Ok(HttpResponse::NoContent().finish())
}

/// Appends revocations to `stream` and waits until the read models know them, so the revoked
/// tokens are refused from the moment this returns.
pub(super) async fn append_revocations(
    state: &AppState,
    stream: &str,
    expected: ExpectedVersion,
    events: Vec<RevocationEvent>,
    metadata: Metadata,
) -> Result<(), ApiError> {
    let at = Timestamp::now();
    let data = events
        .into_iter()
        .map(|e| EventData::encode(&DomainEvent::Revocation(e), metadata, at))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::internal)?;
    let appended = state
        .store
        .append(stream, expected, data)
        .await
        .map_err(|e| super::cases::command_error(e.into(), None))?;
    wait_for(state, appended.positions.last().copied().unwrap_or(0)).await
}

async fn me(state: web::Data<AppState>, who: Authenticated) -> Result<HttpResponse, ApiError> {
    let id = who.0.user_id;
    let user = state
        .projector
        .send(WithModels::new(move |m: &Projections| {
            m.users().get(id).map(|u| u.view())
        }))
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::unauthorized("user_unknown", "the user no longer exists"))?;
    Ok(HttpResponse::Ok().json(user))
}
