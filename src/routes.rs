//! Every route of the application in one place: the HTTP API's (`http`) and the WebSocket's
//! (`ws`), which share the `/api/v1` scope and its answer headers. Neither module registers the
//! other's routes.

use actix_web::web;

use crate::{http, ws};

/// Registers every route on an actix-web app.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.configure(http::routes).service(
        web::scope("/api/v1")
            .wrap(http::headers::api_answer())
            .configure(http::api_routes)
            .configure(ws::routes),
    );
}
