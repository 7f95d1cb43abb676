//! The actix-web application: the shared state handlers see, and the routes.
//!
//! | file | routes |
//! | --- | --- |
//! | `health.rs` | `/healthz`, `/readyz` |
//! | `session.rs` | `/api/v1/auth/login`, `/refresh`, `/logout`, `/api/v1/me` |
//! | `users.rs` | `/api/v1/users` |
//! | `cases.rs` | `/api/v1/cases…`, `/api/v1/stats` |
//! | `audit.rs` | `/api/v1/audit/…` |
//! | `app.rs` | `/` and `/app/…`: the browser app |

pub mod access_log;
mod app;
mod audit;
pub mod authn;
mod cases;
pub mod errors;
mod health;
pub mod json;
mod metrics;
pub mod problem;
mod session;
mod users;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::Addr;
use actix_web::web;
use events::EventStore;
use projections::Projections;
use uuid::Uuid;

use crate::auth::{SlidingWindow, TokenService};
use crate::projector::{Projector, WaitForPosition, WithModels};
use problem::ApiError;

/// What every handler may reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn EventStore>,
    pub projector: Addr<Projector>,
    pub tokens: Arc<TokenService>,
    pub claim_lease: Duration,
    pub refresh_ttl: Duration,
    pub login_limits: Arc<LoginLimits>,
    /// Refreshes run one at a time, so a refresh token presented twice at once is caught.
    pub refresh_lock: Arc<tokio::sync::Mutex<()>>,
}

/// Failed logins, per client IP and per username.
pub struct LoginLimits {
    pub per_ip: Mutex<SlidingWindow>,
    pub per_user: Mutex<SlidingWindow>,
}

/// How long a command waits for its own event to reach the read models.
const READ_YOUR_WRITES: Duration = Duration::from_secs(10);

/// Registers every route on an actix-web app.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/metrics", web::get().to(metrics::metrics))
        .route("/readyz", web::get().to(health::readyz))
        .configure(app::routes)
        .service(
            web::scope("/api/v1")
                .configure(session::routes)
                .configure(users::routes)
                .configure(cases::routes)
                .configure(audit::routes)
                .configure(crate::ws::routes),
        );
}

/// Waits until the read models have applied `position`.
pub(crate) async fn wait_for(state: &AppState, position: u64) -> Result<(), ApiError> {
    let wait = state.projector.send(WaitForPosition(position));
    match tokio::time::timeout(READ_YOUR_WRITES, wait).await {
        Ok(Ok(true)) => Ok(()),
        Ok(Ok(false)) => Err(ApiError::unavailable("the server is busy; try again")),
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
