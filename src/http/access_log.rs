//! Around every request: its [`RequestId`] (in a span that every log line of the request
//! carries, and in the answer's `X-Request-Id`), one access log line with the query string's
//! tokens redacted (`?token=…`, the WebSocket's, and any parameter named like a secret never
//! reach the log; names are judged after percent-decoding, as the server's own query parser
//! reads them, so `?t%6Fken=…` is redacted too), and the HTTP metrics by route template
//! (`/api/v1/cases/{id}/decision`, never the path itself, so no id becomes a label). The address
//! is the client's (see `client_ip.rs`: behind `--trusted-proxies`, not the proxy's).

use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::time::Instant;

use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{Error, HttpMessage};
use tracing::Instrument;

use super::request_id::{RequestId, HEADER};
use crate::metrics::labels::UNMATCHED_ROUTE;
use crate::metrics::{metrics, HttpMethod};

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
        // Every request passes here: a WebSocket learns whether it came first on its connection.
        crate::ws::socket::count_request(&req);
        let method = req.method().to_string();
        let target = redact(req.path(), req.query_string());
        let peer = super::client_ip::client_ip(req.request());
        let id = RequestId::from_header(req.headers().get(HEADER).and_then(|v| v.to_str().ok()));
        let request_id = id.0.clone();
        req.extensions_mut().insert(id);
        let span = tracing::info_span!("request", request_id = %request_id);
        let fut = span.in_scope(|| self.service.call(req));
        Box::pin(
            async move {
                let mut res = fut.await?;
                let status = res.status().as_u16();
                let seconds = started.elapsed().as_secs_f64();
                let route = res
                    .request()
                    .match_pattern()
                    .unwrap_or_else(|| UNMATCHED_ROUTE.to_owned());
                metrics().http_request(&route, HttpMethod::of(&method), status, seconds);
                if let Ok(value) = HeaderValue::from_str(&request_id) {
                    res.headers_mut()
                        .insert(HeaderName::from_static(HEADER), value);
                }
                tracing::info!(
                    target: "access",
                    request_id = %request_id,
                    status,
                    route = %route,
                    duration_ms = seconds * 1e3,
                    "{peer} {method} {target} {status} {:.1}ms",
                    seconds * 1e3
                );
                Ok(res)
            }
            .instrument(span),
        )
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
            if names_a_secret(name) {
                format!("{name}=[redacted]")
            } else {
                pair.to_owned()
            }
        })
        .collect();
    format!("{path}?{}", parts.join("&"))
}

/// Whether a raw (percent-encoded) parameter name, once decoded as a form name (`+` is a
/// space), contains a word that secrets go by.
fn names_a_secret(raw: &str) -> bool {
    let spaced = raw.replace('+', " ");
    let decoded = percent_encoding::percent_decode_str(&spaced).decode_utf8_lossy();
    let lower = decoded.to_lowercase();
    ["token", "secret", "password", "key"]
        .iter()
        .any(|s| lower.contains(s))
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

    #[test]
    fn names_are_decoded_before_they_are_judged() {
        assert_eq!(
            redact("/api/v1/ws", "t%6Fken=eyJ.x.y"),
            "/api/v1/ws?t%6Fken=[redacted]"
        );
        assert_eq!(redact("/a", "%54OKEN=abc&v=1"), "/a?%54OKEN=[redacted]&v=1");
        assert_eq!(
            redact("/a", "access%5Ftoken=abc"),
            "/a?access%5Ftoken=[redacted]"
        );
        assert_eq!(
            redact("/a", "pass%77ord=hunter2"),
            "/a?pass%77ord=[redacted]"
        );
        assert_eq!(redact("/a", "api+key=abc"), "/a?api+key=[redacted]");
        // A name that is not valid UTF-8 once decoded is judged on its readable part.
        assert_eq!(redact("/a", "%FFtoken=abc"), "/a?%FFtoken=[redacted]");
        assert_eq!(redact("/a", "st%61tus=pending"), "/a?st%61tus=pending");
    }
}
