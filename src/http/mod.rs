//! The HTTP API: its handlers and routes. The state they see is [`crate::state::AppState`]
//! (re-exported here); `crate::routes` puts these routes and the WebSocket's together.
//!
//! | file | routes |
//! | --- | --- |
//! | `health.rs` | `/healthz`, `/readyz` |
//! | `session.rs` | `/api/v1/auth/login`, `/logout`, `/api/v1/me` |
//! | `refresh.rs` | `/api/v1/auth/refresh` |
//! | `client_ip.rs` | the client's address behind `--trusted-proxies` |
//! | `users.rs` | `/api/v1/users` |
//! | `cases.rs` | `/api/v1/cases…`, `/api/v1/stats` |
//! | `audit.rs` | `/api/v1/audit/…` |
//! | `app.rs` | `/` and `/app/…`: the browser app |

pub mod access_log;
mod app;
mod audit;
pub mod authn;
mod cases;
pub mod client_ip;
pub mod errors;
pub mod headers;
mod health;
pub mod json;
mod metrics;
pub mod problem;
mod refresh;
pub mod request_id;
mod session;
mod users;

use std::time::Duration;

use actix_web::web;
use projections::Projections;
use uuid::Uuid;

use crate::projector::{WaitForPosition, WithModels};
pub use crate::state::{AppState, RefreshLimits};
use problem::ApiError;

/// How long a command waits for its own event to reach the read models.
const READ_YOUR_WRITES: Duration = Duration::from_secs(10);

/// Registers the routes outside `/api/v1` (see `crate::routes` for the whole application).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/metrics", web::get().to(metrics::metrics_text))
        .route("/readyz", web::get().to(health::readyz))
        .configure(app::routes);
}

/// Registers the API's routes, inside the `/api/v1` scope.
pub fn api_routes(cfg: &mut web::ServiceConfig) {
    cfg.configure(session::routes)
        .configure(users::routes)
        .configure(cases::routes)
        .configure(audit::routes);
}

/// Waits until the read models have applied `position`.
pub(crate) async fn wait_for(state: &AppState, position: u64) -> Result<(), ApiError> {
    let wait = state.projector.send(WaitForPosition(position));
    match tokio::time::timeout(READ_YOUR_WRITES, wait).await {
        Ok(Ok(true)) => Ok(()),
        Ok(Ok(false)) => match state.projector.send(crate::projector::Status).await {
            Ok(status) if status.stalled.is_some() => Err(ApiError::unavailable(
                "the read models stopped at an event this server cannot read (see /readyz); \
                 the change was saved",
            )),
            _ => Err(ApiError::unavailable("the server is busy; try again")),
        },
        Ok(Err(e)) => Err(ApiError::internal(e)),
        Err(_) => Err(ApiError::unavailable(
            "the read models are behind the store; the change was saved",
        )),
    }
}

/// A case as the protocol shows it, if it exists.
pub(crate) async fn case_json(
    state: &AppState,
    id: Uuid,
) -> Result<Option<serde_json::Value>, ApiError> {
    state
        .projector
        .send(WithModels::new(move |m: &Projections| {
            m.case(id).map(|c| serde_json::json!(c))
        }))
        .await
        .map_err(ApiError::internal)
}
