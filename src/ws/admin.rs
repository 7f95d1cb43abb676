//! The operators' view of the sessions: `GET /api/v1/admin/sessions`,
//! `DELETE /api/v1/admin/sessions/{id}`, `GET /api/v1/admin/limits` (admins only).

use actix_web::{web, HttpResponse};
use events::domain::Role;
use serde_json::json;
use uuid::Uuid;

use super::registry::{GetLimits, Kick, ListSessions};
use super::WsContext;
use crate::http::authn::Authenticated;
use crate::http::problem::ApiError;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/sessions", web::get().to(sessions))
        .route("/admin/sessions/{id}", web::delete().to(kick))
        .route("/admin/limits", web::get().to(limits));
}

async fn sessions(ws: web::Data<WsContext>, who: Authenticated) -> Result<HttpResponse, ApiError> {
    who.require(&[Role::Admin])?;
    let list = ws
        .registry
        .send(ListSessions)
        .await
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(json!({ "sessions": list })))
}

async fn kick(
    ws: web::Data<WsContext>,
    who: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    who.require(&[Role::Admin])?;
    let id = Uuid::try_parse(&id).map_err(|_| ApiError::not_found("no such session"))?;
    if ws
        .registry
        .send(Kick { id })
        .await
        .map_err(ApiError::internal)?
    {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::not_found("no such session"))
    }
}

async fn limits(ws: web::Data<WsContext>, who: Authenticated) -> Result<HttpResponse, ApiError> {
    who.require(&[Role::Admin])?;
    let limits = ws
        .registry
        .send(GetLimits)
        .await
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(limits))
}
