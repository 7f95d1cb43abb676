//! `GET /healthz` (the process serves HTTP) and `GET /readyz` (the node should get new
//! traffic: the store answers, the read models have caught up with it, and the node takes new
//! WebSocket sessions).
//!
//! "Caught up" means the read models reach the head the store had when the check began within
//! [`CATCH_UP`]: on a cluster, other nodes append all the time, so a projector that is a few
//! milliseconds behind is healthy, and one that stays behind is not.
//!
//! `/readyz` is usually open to whoever can reach the port (load balancers probe it without a
//! token), so it says *what* is not ready, never *why*: a store's error can name files, hosts or
//! SQL. The cause goes to the log instead. The one exception is a projector stalled at an event
//! it cannot decode: the answer names that event (position, stream, type), which holds no file
//! name and no secret, since an operator needs it to act.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use events::StoreError;
use serde_json::{json, Value};

use super::AppState;
use crate::projector::{ProjectorStatus, Status, WaitForPosition};
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
    let (models_ready, mut checks) = node_readiness(&state).await;
    let sessions = match ws.registry.send(GetLimits).await {
        Ok(l) if l.draining => "draining",
        Ok(l) if l.connected_sessions >= l.max_connections => "full",
        Ok(_) => "ok",
        Err(_) => "stopped",
    };
    checks["websockets"] = json!(sessions);
    let ready = models_ready && sessions == "ok";
    let mut answer = if ready {
        HttpResponse::Ok()
    } else {
        let mut r = HttpResponse::ServiceUnavailable();
        r.insert_header(("Retry-After", "1"));
        r
    };
    answer.json(json!({ "ready": ready, "checks": checks }))
}

/// Whether the store answers and the read models have caught up with it, and the checks that
/// say what is not. Logs the cause and sets the readiness gauge.
pub async fn node_readiness(state: &AppState) -> (bool, Value) {
    let head = state.store.head_position().await;
    let caught_up = match &head {
        Ok(head) => {
            let wait = state.projector.send(WaitForPosition(*head));
            matches!(tokio::time::timeout(CATCH_UP, wait).await, Ok(Ok(true)))
        }
        Err(_) => false,
    };
    let status = state.projector.send(Status).await.ok();
    if let Err(e) = &head {
        tracing::warn!("not ready: the event store does not answer: {e}");
    }
    if let Some(ProjectorStatus {
        healthy: false,
        last_error: Some(e),
        ..
    }) = &status
    {
        tracing::warn!("not ready: the projector is failing: {e}");
    }
    let (ready, checks) = readiness(head, status, caught_up);
    crate::metrics::metrics().set_ready(ready);
    (ready, checks)
}

/// Whether the models are ready, and the checks as the answer shows them: states and positions,
/// no error text.
fn readiness(
    head: Result<u64, StoreError>,
    status: Option<ProjectorStatus>,
    caught_up: bool,
) -> (bool, Value) {
    match (head, status) {
        (Ok(head), Some(s)) => {
            let mut checks = json!({
                "store": "ok",
                "head_position": head,
                "projection_position": s.position,
                "projections": if s.healthy { "ok" } else { "failing" },
            });
            if let Some(event) = &s.stalled {
                checks["projections"] = json!("stalled");
                checks["reason"] = json!(event.to_string());
            }
            (s.healthy && caught_up, checks)
        }
        (Err(_), _) => (false, json!({ "store": "unavailable" })),
        (Ok(_), None) => (false, json!({ "projections": "stopped" })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_store_is_named_but_its_error_is_not_shown() {
        let error = StoreError::Unavailable(
            "cannot open /var/lib/adjudicator/events.sqlite3: SQLITE_CANTOPEN".into(),
        );
        let (ready, checks) = readiness(Err(error), None, false);
        assert!(!ready);
        assert_eq!(checks, json!({ "store": "unavailable" }));
    }

    #[test]
    fn a_failing_projector_shows_its_state_not_its_error() {
        let status = ProjectorStatus {
            position: 7,
            healthy: false,
            last_error: Some("cannot decode the event at /secret/path".into()),
            stalled: None,
        };
        let (ready, checks) = readiness(Ok(9), Some(status), false);
        assert!(!ready);
        assert!(!checks.to_string().contains("secret"), "{checks}");
        assert_eq!(checks["projections"], "failing");
    }

    #[test]
    fn caught_up_and_healthy_is_ready() {
        let status = || ProjectorStatus {
            position: 9,
            healthy: true,
            last_error: None,
            stalled: None,
        };
        assert!(readiness(Ok(9), Some(status()), true).0);
        assert!(!readiness(Ok(9), Some(status()), false).0);
        assert!(!readiness(Ok(9), None, true).0);
    }

    #[test]
    fn a_stalled_projector_names_the_event_it_stopped_at() {
        let event = events::UndecodableEvent {
            position: 8,
            stream: "case-1".into(),
            event_type: "case_exploded".into(),
            schema_version: 1,
            reason: "unknown event type".into(),
        };
        let status = ProjectorStatus {
            position: 7,
            healthy: false,
            last_error: Some(event.to_string()),
            stalled: Some(event),
        };
        let (ready, checks) = readiness(Ok(9), Some(status), false);
        assert!(!ready);
        assert_eq!(checks["projections"], "stalled");
        let reason = checks["reason"].as_str().unwrap();
        assert!(reason.contains("position 8") && reason.contains("case_exploded"));
    }
}
