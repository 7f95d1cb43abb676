//! `Authenticated`: the caller, from `Authorization: Bearer <access token>`, checked in the
//! protocol's order (the signature and claims here, then revocation and the user against the
//! read models inside the projector), or the matching `401`/`403` problem.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest};
use events::domain::{Actor, Role};
use projections::Projections;

use super::problem::ApiError;
use super::AppState;
use crate::auth::{check_access, Principal, TokenError};
use crate::projector::WithModels;

pub struct Authenticated(pub Principal);

impl Authenticated {
    pub fn actor(&self) -> Actor {
        Actor::new(self.0.user_id, self.0.roles.clone())
    }

    /// Refuses with 403 unless the caller holds one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.iter().any(|r| self.0.roles.contains(r)) {
            Ok(())
        } else {
            let names: Vec<_> = roles.iter().map(|r| r.as_str()).collect();
            Err(ApiError::forbidden(format!(
                "this needs one of the roles: {}",
                names.join(", ")
            )))
        }
    }
}

pub fn token_problem(e: &TokenError) -> ApiError {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::UNAUTHORIZED);
    ApiError::new(status, e.code(), e.to_string())
}

/// The bearer token of a request, if any.
pub fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// Checks an access token completely: signature and claims, then revocation and the user.
pub async fn authenticate(state: &AppState, token: &str) -> Result<Principal, ApiError> {
    let claims = state
        .tokens
        .decode_access(token)
        .map_err(|e| token_problem(&e))?;
    state
        .projector
        .send(WithModels::new(move |m: &Projections| {
            check_access(&claims, m.users(), m.revocations()).map(|mut principal| {
                // What the check saw: a revocation after it may still be on its way.
                principal.checked_at = m.position();
                principal
            })
        }))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| token_problem(&e))
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal("no application state"))?;
            let token = token.unwrap_or_default();
            authenticate(&state, &token).await.map(Authenticated)
        })
    }
}
