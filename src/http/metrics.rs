//! `GET /metrics`: every metric in the Prometheus text exposition format. Two figures are
//! measured here, when Prometheus asks, because they need the store: whether the node is ready
//! (as `GET /readyz` judges it) and the age of the oldest event the read models have not applied.

use std::time::Duration;

use actix_web::{web, HttpResponse};

use super::health::node_readiness;
use super::AppState;
use crate::metrics::metrics;

/// How long a scrape waits for the store and the projector; past it the two figures keep their
/// last values, so that a busy node still answers its scrape in time.
const MEASURE_WITHIN: Duration = Duration::from_secs(2);

pub async fn metrics_text(state: web::Data<AppState>) -> HttpResponse {
    let measure = async {
        // Records `adjudicator_ready` as it goes.
        node_readiness(&state).await;
        metrics().set_projection_lag_seconds(projection_lag_seconds(&state).await);
    };
    if tokio::time::timeout(MEASURE_WITHIN, measure).await.is_err() {
        tracing::debug!("readiness and projection lag not measured in time for this scrape");
    }
    HttpResponse::Ok()
        .content_type(crate::metrics::CONTENT_TYPE)
        .body(crate::metrics::render())
}

/// How long ago the first event after the read models' position was recorded; 0 when there is
/// none (caught up) or the store cannot tell (readiness reports that).
async fn projection_lag_seconds(state: &AppState) -> f64 {
    let applied = metrics().projection_position();
    match state.store.read_all(applied, 1).await {
        Ok(next) => next.first().map_or(0.0, |event| {
            let age = events::Timestamp::now().as_micros() - event.data.recorded_at.as_micros();
            age.max(0) as f64 / 1e6
        }),
        Err(_) => 0.0,
    }
}
