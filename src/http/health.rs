//! `GET /healthz` (the process serves HTTP) and `GET /readyz` (the store answers and the read
//! models have caught up with it).

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::AppState;
use crate::projector::Status;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"status":"ok"}"#)
}

pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let (ready, body) = readiness(&state).await;
    let mut answer = if ready {
        HttpResponse::Ok()
    } else {
        let mut r = HttpResponse::ServiceUnavailable();
        r.insert_header(("Retry-After", "1"));
        r
    };
    answer.json(json!({ "ready": ready, "checks": body }))
}

/// Whether the node is ready, and the checks that say why: the store answers and the read
/// models have applied everything it holds.
pub async fn readiness(state: &AppState) -> (bool, serde_json::Value) {
    let head = state.store.head_position().await;
    let status = state.projector.send(Status).await;
    let (ready, body) = match (head, status) {
        (Ok(head), Ok(s)) => {
            let mut checks = json!({
                "store": "ok",
                "head_position": head,
                "projection_position": s.position,
                "projections": if s.healthy { "ok" } else { "failing" },
            });
            // Names the event (position, stream, type), never a path or a secret.
            if let Some(event) = &s.stalled {
                checks["projections"] = json!("stalled");
                checks["reason"] = json!(event.to_string());
            }
            (s.healthy && s.position >= head, checks)
        }
        (Err(e), _) => {
            // The store's own message may name a file or a host: logs only.
            tracing::warn!("readiness: the event store does not answer: {e}");
            (
                false,
                json!({ "store": "unavailable", "detail": "the event store does not answer" }),
            )
        }
        (_, Err(_)) => (false, json!({ "projections": "stopped" })),
    };
    crate::metrics::metrics().set_ready(ready);
    (ready, body)
}
