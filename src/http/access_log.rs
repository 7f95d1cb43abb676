//! One log line per request, with the query string's tokens redacted: `?token=…` (the
//! WebSocket's) and any parameter named like a secret never reach the log. The address is the
//! client's (see `client_ip.rs`: behind `--trusted-proxies`, not the proxy's).

use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::time::Instant;

use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::Error;

pub struct AccessLog;

impl<S, B> Transform<S, ServiceRequest> for AccessLog
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    S::Future: 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Transform = AccessLogService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(AccessLogService { service }))
    }
}

pub struct AccessLogService<S> {
    service: S,
}

impl<S, B> Service<ServiceRequest> for AccessLogService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    S::Future: 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>>>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let started = Instant::now();
        let method = req.method().to_string();
        let target = redact(req.path(), req.query_string());
        let peer = super::client_ip::client_ip(req.request());
        let fut = self.service.call(req);
        Box::pin(async move {
            let res = fut.await?;
            tracing::info!(
                target: "access",
                "{peer} {method} {target} {} {:.1}ms",
                res.status().as_u16(),
                started.elapsed().as_secs_f64() * 1e3
            );
            Ok(res)
        })
    }
}

/// The path and query with the values of secret-looking parameters replaced by `[redacted]`.
pub fn redact(path: &str, query: &str) -> String {
    if query.is_empty() {
        return path.to_owned();
    }
    let parts: Vec<String> = query
        .split('&')
        .map(|pair| {
            let (name, _) = pair.split_once('=').unwrap_or((pair, ""));
            let lower = name.to_ascii_lowercase();
            if ["token", "secret", "password", "key"]
                .iter()
                .any(|s| lower.contains(s))
            {
                format!("{name}=[redacted]")
            } else {
                pair.to_owned()
            }
        })
        .collect();
    format!("{path}?{}", parts.join("&"))
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn tokens_in_query_strings_are_redacted() {
        assert_eq!(
            redact("/api/v1/ws", "token=eyJhbGciOi.x.y&v=1"),
            "/api/v1/ws?token=[redacted]&v=1"
        );
        assert_eq!(
            redact("/a", "access_token=abc"),
            "/a?access_token=[redacted]"
        );
        assert_eq!(redact("/a", "status=pending"), "/a?status=pending");
        assert_eq!(redact("/a", ""), "/a");
    }
}
