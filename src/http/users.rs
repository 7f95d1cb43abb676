//! User administration (admin only): `POST /users`, `GET /users`, `PATCH /users/{id}`
//! (`disabled`, `roles`, `password`).
//!
//! Disabling a user, or changing their password, voids every token issued to them before the
//! change: the read models record the time, and every token check compares against it.

use actix_web::{web, HttpResponse};
use events::domain::user::{UserAction, UserCommand};
use events::domain::{FieldError, Role};
use projections::Projections;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::authn::Authenticated;
use super::cases::command_error;
use super::json::Json;
use super::problem::ApiError;
use super::session::password_slot;
use super::{wait_for, AppState};
use crate::auth::{check_password_policy, hash_password};
use crate::commands;
use crate::projector::WithModels;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/users", web::post().to(create))
        .route("/users", web::get().to(list))
        .route("/users/{id}", web::patch().to(update));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    username: String,
    password: String,
    #[serde(default)]
    display_name: String,
    roles: Vec<Role>,
}

async fn create(
    state: web::Data<AppState>,
    who: Authenticated,
    body: Json<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    who.require(&[Role::Admin])?;
    let body = body.0;
    check_password_policy(&body.password).map_err(|e| ApiError::validation(vec![e]))?;
    let password_hash = hash(&state, body.password).await?;
    let user_id = events::domain::user::user_id_for(&body.username);
    let actor = who.actor();
    let outcome = commands::run_user(state.store.as_ref(), user_id, who.metadata(), || {
        UserCommand {
            actor: actor.clone(),
            action: UserAction::Register {
                username: body.username.clone(),
                display_name: body.display_name.clone(),
                password_hash: password_hash.clone(),
                roles: body.roles.clone(),
            },
        }
    })
    .await
    .map_err(|e| match e {
        commands::CommandError::Domain(events::domain::DomainError::AlreadyExists) => {
            ApiError::conflict("already_exists", "that username is taken")
        }
        other => command_error(other, None),
    })?;
    let user = user_after(&state, user_id, outcome).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/users/{user_id}")))
        .json(user))
}

async fn list(state: web::Data<AppState>, who: Authenticated) -> Result<HttpResponse, ApiError> {
    who.require(&[Role::Admin])?;
    let users = state
        .projector
        .send(WithModels::new(|m: &Projections| {
            let mut users: Vec<_> = m.users().iter().map(|u| u.view()).collect();
            users.sort_by(|a, b| a.username.cmp(&b.username));
            json!({ "users": users })
        }))
        .await
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(users))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    disabled: Option<bool>,
    roles: Option<Vec<Role>>,
    /// A new password: voids every token issued to the user before the change.
    password: Option<String>,
}

async fn update(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
    body: Json<UpdateBody>,
) -> Result<HttpResponse, ApiError> {
    who.require(&[Role::Admin])?;
    let user_id =
        Uuid::try_parse(&id).map_err(|_| ApiError::not_found(format!("no user {id:?}")))?;
    let body = body.0;
    if body.disabled.is_none() && body.roles.is_none() && body.password.is_none() {
        return Err(ApiError::validation(vec![FieldError::new(
            "body",
            "give at least one of `disabled`, `roles`, `password`",
        )]));
    }
    let mut actions = Vec::new();
    if let Some(password) = body.password {
        check_password_policy(&password).map_err(|e| ApiError::validation(vec![e]))?;
        let password_hash = hash(&state, password).await?;
        actions.push(UserAction::ChangePassword { password_hash });
    }
    if let Some(roles) = body.roles {
        actions.push(UserAction::ChangeRoles(roles));
    }
    match body.disabled {
        Some(true) => actions.push(UserAction::Disable),
        Some(false) => actions.push(UserAction::Enable),
        None => {}
    }
    let mut outcome = None;
    for action in actions {
        let actor = who.actor();
        let done = commands::run_user(state.store.as_ref(), user_id, who.metadata(), || {
            UserCommand {
                actor: actor.clone(),
                action: action.clone(),
            }
        })
        .await
        .map_err(|e| match e {
            commands::CommandError::Domain(events::domain::DomainError::NotFound) => {
                ApiError::not_found(format!("no user {user_id}"))
            }
            other => command_error(other, None),
        })?;
        outcome = done.or(outcome);
    }
    let user = user_after(&state, user_id, outcome).await?;
    Ok(HttpResponse::Ok().json(user))
}

/// Hashes a new password on a blocking thread, within the bound on concurrent argon2 runs.
async fn hash(state: &AppState, password: String) -> Result<String, ApiError> {
    let slot = password_slot(state)?;
    web::block(move || {
        let _slot = slot;
        hash_password(&password)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)
}

async fn user_after(
    state: &AppState,
    user_id: Uuid,
    outcome: commands::Outcome,
) -> Result<serde_json::Value, ApiError> {
    if let Some(appended) = outcome {
        wait_for(state, appended.positions.last().copied().unwrap_or(0)).await?;
    }
    state
        .projector
        .send(WithModels::new(move |m: &Projections| {
            m.users().get(user_id).map(|u| json!(u.view()))
        }))
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("no user {user_id}")))
}
