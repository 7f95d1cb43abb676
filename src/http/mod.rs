//! The actix-web application: the shared state handlers see, and the routes.
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

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::web;
use events::EventStore;
use projections::Projections;
use uuid::Uuid;

use crate::auth::{LoginLimiter, PasswordGate, SlidingWindow, TokenService};
use crate::metrics::MeteredAddr;
use crate::projector::{Projector, WaitForPosition, WithModels};
use problem::ApiError;

/// What every handler may reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn EventStore>,
    pub projector: MeteredAddr<Projector>,
    pub tokens: Arc<TokenService>,
    pub claim_lease: Duration,
    pub refresh_ttl: Duration,
    /// Login attempts (see [`crate::auth::login_limits`]).
    pub login_limits: Arc<Mutex<LoginLimiter>>,
    /// Refresh attempts.
    pub refresh_limits: Arc<Mutex<RefreshLimits>>,
    /// The bound on concurrent argon2 runs (logins, new passwords).
    pub password_gate: PasswordGate,
}

/// Refresh attempts per client IP and per refresh family, each in a one-minute window.
pub struct RefreshLimits {
    pub per_ip: SlidingWindow,
    pub per_family: SlidingWindow,
}

impl RefreshLimits {
    pub fn new(per_ip: u32, per_family: u32) -> Self {
        let minute = Duration::from_secs(60);
        RefreshLimits {
            per_ip: SlidingWindow::new(per_ip, minute),
            per_family: SlidingWindow::new(per_family, minute),
        }
    }
}

/// How long a command waits for its own event to reach the read models.
const READ_YOUR_WRITES: Duration = Duration::from_secs(10);

/// Registers every route on an actix-web app.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/metrics", web::get().to(metrics::metrics_text))
        .route("/readyz", web::get().to(health::readyz))
        .configure(app::routes)
        .service(
            web::scope("/api/v1")
                .wrap(headers::api_answer())
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
