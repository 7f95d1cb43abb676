//! WebSockets: one session actor per socket under one registry actor.
//!
//! | file | what |
//! | --- | --- |
//! | `route.rs` | `GET /api/v1/ws`: checks before and after the upgrade |
//! | `origin.rs` | the `Origin` check against `--allowed-origins` |
//! | `session.rs` | the session actor |
//! | `registry/` | the registry actor: limits, heartbeats, topics, fan-out (`mod.rs`); operators' messages and the drain (`operators.rs`) |
//! | `outbound.rs` | a session's bounded outbound queue and its writer |
//! | `recent.rs` | recent pushes, for resumes with `since` |
//! | `protocol.rs` | the messages |
//! | `admin.rs` | the operators' endpoints |

pub mod admin;
pub mod origin;
pub mod outbound;
pub mod protocol;
pub mod recent;
pub mod registry;
pub mod route;
pub mod session;

use actix_web::web;

use crate::metrics::MeteredAddr;
use registry::Registry;
use session::SessionConfig;

/// What the WebSocket routes need.
#[derive(Clone)]
pub struct WsContext {
    pub registry: MeteredAddr<Registry>,
    pub session: SessionConfig,
    pub max_frame_bytes: usize,
    pub allowed_origins: crate::config::AllowedOrigins,
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/ws", web::get().to(route::upgrade))
        .configure(admin::routes);
}
