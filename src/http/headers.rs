//! Headers that protect answers in browsers and caches:
//!
//! * `X-Content-Type-Options: nosniff` on every answer, so a browser never runs a JSON or text
//!   answer as a script or page because it "looks like" one;
//! * `Cache-Control: no-store` on every API answer: tokens (login, refresh), cases and audit data
//!   are for the caller only, never for a shared or browser cache;
//! * `Strict-Transport-Security` when the server speaks TLS itself, so a browser that has seen
//!   it once never falls back to plain HTTP for this host.

use actix_web::middleware::DefaultHeaders;

/// One year, the value HSTS preload lists ask for.
pub const HSTS: &str = "max-age=31536000";

/// The headers of every answer; `tls` adds HSTS.
pub fn every_answer(tls: bool) -> DefaultHeaders {
    let headers = DefaultHeaders::new().add(("X-Content-Type-Options", "nosniff"));
    if tls {
        headers.add(("Strict-Transport-Security", HSTS))
    } else {
        headers
    }
}

/// The headers of every `/api/v1` answer.
pub fn api_answer() -> DefaultHeaders {
    DefaultHeaders::new().add(("Cache-Control", "no-store"))
}
