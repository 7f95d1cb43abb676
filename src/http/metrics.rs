//! `GET /metrics`: every metric in the Prometheus text exposition format.

use actix_web::HttpResponse;

pub async fn metrics() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(crate::metrics::CONTENT_TYPE)
        .body(crate::metrics::render())
}
