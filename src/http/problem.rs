//! Every HTTP error as `application/problem+json` (RFC 9457), in the protocol's shape:
//! `{"type", "title", "status", "detail", "code"}`, plus `errors` (the fields at fault) for
//! `validation_failed` and `current` (the case as it stands) for `version_conflict`.
//!
//! Details are written for the caller: never a stack trace, a SQL message or a secret. Internal
//! failures are logged here and answered with a generic message.

use std::fmt;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use events::domain::{DomainError, FieldError};
use serde_json::{json, Value};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub current: Option<Value>,
    pub retry_after: Option<Duration>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
            current: None,
            retry_after: None,
        }
    }

    pub fn bad_json(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_json", detail)
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        ApiError {
            errors,
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                detail,
            )
        }
    }

    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError::new(field, message)])
    }

    pub fn unauthorized(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    pub fn rate_limited(retry_after: Duration) -> Self {
        ApiError {
            retry_after: Some(retry_after),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many attempts; try again later",
            )
        }
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        ApiError {
            retry_after: Some(Duration::from_secs(1)),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
        }
    }

    /// A failure that is ours, not the caller's: logged in full, answered in general terms.
    pub fn internal(what: impl fmt::Display) -> Self {
        tracing::error!("internal error: {what}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "the server failed to handle the request",
        )
    }

    pub fn with_current(mut self, current: Value) -> Self {
        self.current = Some(current);
        self
    }

    pub fn body(&self) -> Value {
        let mut body = json!({
            "type": format!("https://adjudicator.dev/problems/{}", self.code.replace('_', "-")),
            "title": self.status.canonical_reason().unwrap_or("Error"),
            "status": self.status.as_u16(),
            "detail": self.detail,
            "code": self.code,
        });
        if !self.errors.is_empty() {
            body["errors"] = json!(self.errors);
        }
        if let Some(current) = &self.current {
            body["current"] = current.clone();
        }
        body
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut answer = HttpResponse::build(self.status);
        answer.content_type("application/problem+json");
        if let Some(after) = self.retry_after {
            // Rounded up: a client that waits what it is told must find the limit let go.
            let seconds = crate::auth::RetryAfter(after).seconds();
            answer.insert_header(("Retry-After", seconds.to_string()));
        }
        answer.body(self.body().to_string())
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Validation(fields) => ApiError::validation(fields),
            DomainError::Forbidden(why) => ApiError::forbidden(why),
            DomainError::InvalidTransition { .. } => {
                ApiError::conflict("invalid_transition", e.to_string())
            }
            DomainError::NotFound => ApiError::not_found("no such resource"),
            DomainError::AlreadyExists => ApiError::conflict("already_exists", e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    #[test]
    fn a_validation_error_names_every_field_and_carries_the_protocol_fields() {
        let e = ApiError::validation(vec![
            FieldError::new("excerpt", "is required"),
            FieldError::new("priority", "must be one of low, normal, high, urgent"),
        ]);
        let body = e.body();
        assert_eq!(body["status"], 422);
        assert_eq!(body["code"], "validation_failed");
        assert_eq!(body["errors"][0]["field"], "excerpt");
        assert_eq!(body["errors"][1]["field"], "priority");
        for key in ["type", "title", "detail"] {
            assert!(body[key].is_string(), "{key}");
        }
    }

    #[test]
    fn rate_limits_carry_retry_after_rounded_up_and_the_problem_content_type() {
        let response = ApiError::rate_limited(Duration::from_millis(2500)).error_response();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers().get("Retry-After").unwrap(), "3");
        assert_eq!(
            response.headers().get("content-type").unwrap(),
            "application/problem+json"
        );
        let bytes = response.into_body().try_into_bytes().unwrap();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["code"], "rate_limited");
    }

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let e = ApiError::internal("SQLITE_CORRUPT at /var/lib/secret-path");
        assert!(!e.body().to_string().contains("SQLITE"));
    }
}
