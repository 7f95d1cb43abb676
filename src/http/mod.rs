//! The actix-web application: routes and the shared state handlers see.

mod health;

use std::sync::Arc;

use actix_web::web;
use events::EventStore;

/// What every handler may reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn EventStore>,
}

/// Registers every route on an actix-web app.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz));
}
