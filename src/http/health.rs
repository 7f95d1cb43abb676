//! `GET /healthz` (the process serves HTTP) and `GET /readyz` (the node should get new
//! traffic: the store answers, the read models have caught up with it, and the node takes new
//! WebSocket sessions).
//!
//! "Caught up" means the read models reach the head the store had when the check began within
//! [`CATCH_UP`]: on a cluster, other nodes append all the time, so a projector that is a few
//! milliseconds behind is healthy, and one that stays behind is not.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::AppState;
use crate::projector::{Status, WaitForPosition};
use crate::ws::registry::GetLimits;
use crate::ws::WsContext;

/// How long the read models may take to reach the head the check read.
const CATCH_UP: Duration = Duration::from_secs(1);

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"status":"ok"}"#)
}

pub async fn readyz(state: web::Data<AppState>, ws: web::Data<WsContext>) -> HttpResponse {
    let head = state.store.head_position().await;
    let caught_up = match &head {
        Ok(head) => {
            let wait = state.projector.send(WaitForPosition(*head));
            matches!(tokio::time::timeout(CATCH_UP, wait).await, Ok(Ok(true)))
        }
        Err(_) => false,
    };
    let status = state.projector.send(Status).await;
    let (models_ready, mut body) = match (head, status) {
        (Ok(head), Ok(s)) => (
            s.healthy && caught_up,
            json!({
                "store": "ok",
                "head_position": head,
                "projection_position": s.position,
                "projections": if s.healthy { "ok" } else { "failing" },
            }),
        ),
        (Err(e), _) => (
            false,
            json!({ "store": "unavailable", "detail": e.to_string() }),
        ),
        (_, Err(_)) => (false, json!({ "projections": "stopped" })),
    };
    let sessions = match ws.registry.send(GetLimits).await {
        Ok(l) if l.draining => "draining",
        Ok(l) if l.connected_sessions >= l.max_connections => "full",
        Ok(_) => "ok",
        Err(_) => "stopped",
    };
    body["websockets"] = json!(sessions);
    let ready = models_ready && sessions == "ok";
    let mut answer = if ready {
        HttpResponse::Ok()
    } else {
        let mut r = HttpResponse::ServiceUnavailable();
        r.insert_header(("Retry-After", "1"));
        r
    };
    answer.json(json!({ "ready": ready, "checks": body }))
}
