//! Logging in and out: `POST /auth/login`, `/auth/refresh`, `/auth/logout`, and `GET /me`.
//!
//! Failed logins are limited per client IP and per username; an unknown user costs the same
//! time and gets the same answer as a wrong password. A refresh token is single use: the old
//! one is revoked as the new pair is issued, and presenting it again revokes its whole family
//! (every token of that login) and answers `token_reused`.

use std::net::IpAddr;
use std::time::Instant;

use actix_web::{web, HttpRequest, HttpResponse};
use events::domain::revocation::{
    self, FamilyRevocationReason, RevocationEvent, TokenFamilyRevoked, TokenRevoked,
};
use events::domain::DomainEvent;
use events::{EventData, ExpectedVersion, Metadata, Timestamp};
use projections::{Projections, UserRecord};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::authn::{token_problem, Authenticated};
use super::json::{Json, JsonOrEmpty};
use super::problem::ApiError;
use super::{wait_for, AppState};
use crate::auth::{check_refresh, dummy_verify, verify_password, Claims, TokenPair};
use crate::projector::WithModels;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth/login", web::post().to(login))
        .route("/auth/refresh", web::post().to(refresh))
        .route("/auth/logout", web::post().to(logout))
        .route("/me", web::get().to(me));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    username: String,
    password: String,
}

fn client_ip(req: &HttpRequest) -> String {
    req.peer_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]))
        .to_string()
}

async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Json<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    let LoginBody { username, password } = body.0;
    let ip = client_ip(&req);
    let now = Instant::now();
    {
        let limits = &state.login_limits;
        let per_ip = limits.per_ip.lock().map_err(ApiError::internal)?;
        let per_user = limits.per_user.lock().map_err(ApiError::internal)?;
        let wait = [per_ip.check(&ip, now), per_user.check(&username, now)]
            .into_iter()
            .filter_map(Result::err)
            .map(|r| r.0)
            .max();
        if let Some(wait) = wait {
            return Err(ApiError::rate_limited(wait));
        }
    }
    // The issue time is taken before the credentials are checked, so that a password change or
    // a disabling recorded while the check runs voids the pair (see `crate::auth::check`).
    let issued_at = Timestamp::now();
    let name = username.clone();
    let user: Option<UserRecord> = state
        .projector
        .send(WithModels::new(move |m: &Projections| {
            m.users().by_username(&name).cloned()
        }))
        .await
        .map_err(ApiError::internal)?;
    // Argon2 takes tens of milliseconds of CPU: keep it off the async workers.
    let candidate = user.clone();
    let verified = web::block(move || match &candidate {
        Some(u) if !u.disabled => verify_password(&password, u.password_hash.expose()),
        _ => {
            dummy_verify(&password);
            false
        }
    })
    .await
    .map_err(ApiError::internal)?;
    let user = match (verified, user) {
        (true, Some(user)) => user,
        _ => {
            let limits = &state.login_limits;
            if let Ok(mut l) = limits.per_ip.lock() {
                l.record(&ip, Instant::now());
            }
            if let Ok(mut l) = limits.per_user.lock() {
                l.record(&username, Instant::now());
            }
            tracing::info!(%ip, "login failed");
            return Err(ApiError::unauthorized(
                "invalid_credentials",
                "the username or the password is wrong",
            ));
        }
    };
    if let Ok(mut l) = state.login_limits.per_user.lock() {
        l.reset(&username);
    }
    let pair = issue(&state, &user, Uuid::now_v7(), issued_at)?;
    tracing::info!(user_id = %user.id, "login");
    Ok(HttpResponse::Ok().json(token_answer(&pair)))
}

fn issue(
    state: &AppState,
    user: &UserRecord,
    family: Uuid,
    issued_at: Timestamp,
) -> Result<TokenPair, ApiError> {
    state
        .tokens
        .issue_pair(user.id, &user.roles, family, issued_at)
        .map_err(|e| ApiError::unavailable(format!("tokens cannot be issued here: {e}")))
}

fn token_answer(pair: &TokenPair) -> serde_json::Value {
    let expires_in =
        (pair.access_expires_at.as_micros() - Timestamp::now().as_micros()).max(0) / 1_000_000;
    json!({
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "token_type": "Bearer",
        "expires_in": expires_in,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    refresh_token: String,
}

async fn refresh(
    state: web::Data<AppState>,
    body: Json<RefreshBody>,
) -> Result<HttpResponse, ApiError> {
    let claims = state
        .tokens
        .decode_refresh(&body.0.refresh_token)
        .map_err(|e| token_problem(&e))?;
    let _one_at_a_time = state.refresh_lock.lock().await;
    let issued_at = Timestamp::now();
    let check = claims.clone();
    let (used, checked) = state
        .projector
        .send(WithModels::new(move |m: &Projections| {
            let used = m.revocations().is_token_revoked(check.jti);
            let checked = check_refresh(&check, m.users(), m.revocations())
                .map(|p| m.users().get(p.user_id).cloned());
            (used, checked)
        }))
        .await
        .map_err(ApiError::internal)?;
    if used {
        // Reuse: someone holds a copy of this token. End the whole login.
        revoke(
            &state,
            family_revoked(&state, &claims, FamilyRevocationReason::RefreshReuse),
        )
        .await?;
        tracing::warn!(user_id = %claims.sub, "refresh token reused: family revoked");
        return Err(ApiError::unauthorized(
            "token_reused",
            "this refresh token was used already; every token of this login is now revoked",
        ));
    }
    let user = checked
        .map_err(|e| token_problem(&e))?
        .ok_or_else(|| ApiError::unauthorized("user_unknown", "the user no longer exists"))?;
    revoke(
        &state,
        RevocationEvent::TokenRevoked(TokenRevoked {
            jti: claims.jti,
            user_id: claims.sub,
            expires_at: claims.expires_at(),
        }),
    )
    .await?;
    let pair = issue(&state, &user, claims.fam, issued_at)?;
    Ok(HttpResponse::Ok().json(token_answer(&pair)))
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
    append_revocations(&state, events, Some(p.user_id)).await?;
    tracing::info!(user_id = %p.user_id, ip = %client_ip(&req), "logout");
    Ok(HttpResponse::NoContent().finish())
}

fn family_revoked(
    state: &AppState,
    claims: &Claims,
    reason: FamilyRevocationReason,
) -> RevocationEvent {
    RevocationEvent::FamilyRevoked(TokenFamilyRevoked {
        family_id: claims.fam,
        user_id: claims.sub,
        expires_at: Timestamp::now().plus(state.refresh_ttl),
        reason,
    })
}

async fn revoke(state: &AppState, event: RevocationEvent) -> Result<(), ApiError> {
    append_revocations(state, vec![event], None).await
}

/// Appends revocations and waits until the read models know them, so the revoked tokens are
/// refused from the moment this returns.
async fn append_revocations(
    state: &AppState,
    events: Vec<RevocationEvent>,
    user: Option<Uuid>,
) -> Result<(), ApiError> {
    let at = Timestamp::now();
    let metadata = Metadata::for_request(user);
    let data = events
        .into_iter()
        .map(|e| EventData::encode(&DomainEvent::Revocation(e), metadata, at))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::internal)?;
    let appended = state
        .store
        .append(revocation::STREAM, ExpectedVersion::Any, data)
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
