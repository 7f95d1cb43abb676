//! WebSockets: one session actor per socket under one registry actor.
//!
//! | file | what |
//! | --- | --- |
//! | `route.rs` | `GET /api/v1/ws`: checks before and after the upgrade |
//! | `origin.rs` | the `Origin` check against `--allowed-origins` |
//! | `session.rs` | the session actor |
//! | `registry/` | the registry actor: limits, heartbeats, fan-out (`mod.rs`); subscriptions and their snapshots (`subscriptions.rs`); revocations since a token's check (`controls.rs`); operators' messages and the drain (`operators.rs`); resumes from the log (`resume.rs`) |
//! | `outbound/` | a session's bounded outbound queue (`mod.rs`), written straight into a plain TCP socket (`direct.rs`) or by the response body (`body.rs`) |
//! | `frame.rs` | the frames the server sends, encoded once per push |
//! | `socket.rs` | the connection under a session, to drop it when a close does not get through |
//! | `recent.rs` | recent pushes, for resumes with `since` |
//! | `catchup/` | resumes older than the recent pushes, from the event log, one task per session |
//! | `snapshots.rs` | snapshots built off the actors, once per (topic, position, window), shared |
//! | `protocol.rs` | the messages |
//! | `admin.rs` | the operators' endpoints |

pub mod admin;
pub mod catchup;
pub mod frame;
pub mod origin;
pub mod outbound;
pub mod protocol;
pub mod recent;
pub mod registry;
pub mod route;
pub mod session;
pub mod snapshots;
pub mod socket;

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
