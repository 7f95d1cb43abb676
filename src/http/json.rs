//! `Json<T>`: the request body as a typed value, or the protocol's error; `JsonOrEmpty<T>` for a
//! body that may be left out (logout's).
//!
//! * a body over `--max-body-bytes` answers 413 `payload_too_large` (counted as it arrives, so a
//!   huge body is never buffered);
//! * a body that is not JSON at all answers 400 `bad_json`;
//! * JSON of the wrong shape (an unknown field, a missing one, a wrong type or value) answers 422
//!   `validation_failed` naming the field by its path, e.g. `assessment.confidence`.
//!
//! Request types use `#[serde(deny_unknown_fields)]` so that a misspelt field is an error rather
//! than silently ignored.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use super::problem::ApiError;

/// The largest body a handler accepts; set from `--max-body-bytes`.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit(pub usize);

pub struct Json<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let media_type = check_media_type(req);
        let body = read_body(req, payload);
        Box::pin(async move {
            media_type?;
            parse(&body.await?).map(Json)
        })
    }
}

/// Like [`Json`] for a body that is optional: an empty body (whatever its media type) is
/// `T::default()`; a body that is there meets the same limit, media type and rules.
pub struct JsonOrEmpty<T>(pub T);

impl<T: DeserializeOwned + Default + 'static> FromRequest for JsonOrEmpty<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let media_type = check_media_type(req);
        let body = read_body(req, payload);
        Box::pin(async move {
            let body = body.await?;
            if body.is_empty() {
                return Ok(JsonOrEmpty(T::default()));
            }
            media_type?;
            parse(&body).map(JsonOrEmpty)
        })
    }
}

/// A body's `Content-Type`, when given, must be JSON.
fn check_media_type(req: &HttpRequest) -> Result<(), ApiError> {
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.to_ascii_lowercase());
    match content_type {
        Some(ct) if !ct.starts_with("application/json") && !ct.contains("+json") => {
            Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            ))
        }
        _ => Ok(()),
    }
}

/// Reads the whole body within `--max-body-bytes`, counting as it arrives.
fn read_body(
    req: &HttpRequest,
    payload: &mut Payload,
) -> impl Future<Output = Result<web::BytesMut, ApiError>> + 'static {
    let limit = req
        .app_data::<web::Data<BodyLimit>>()
        .map_or(64 * 1024, |l| l.0);
    let mut payload = payload.take();
    async move {
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| ApiError::bad_json(format!("reading the body: {e}")))?;
            if body.len() + chunk.len() > limit {
                return Err(too_large(limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the body is larger than {limit} bytes"),
    )
}

/// Parses a body, telling broken JSON from JSON of the wrong shape.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_json("the body is empty; send a JSON object"));
    }
    // Syntax first: a body that is not JSON at all (trailing garbage included) is `bad_json`
    // even when its first value would also be of the wrong shape.
    serde_json::from_slice::<serde::de::IgnoredAny>(body)
        .map_err(|e| ApiError::bad_json(format!("the body is not valid JSON: {e}")))?;
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = match inner.classify() {
            serde_json::error::Category::Data => strip_position(&inner.to_string()),
            // The syntax is fine (checked above): serde_json reports a value of the wrong type
            // where an enum's name belongs (`"priority": 3`) as "expected value".
            _ => "is not a value of the expected type".to_owned(),
        };
        let field = field_name(&path, &message);
        ApiError::field(&field, message)
    })?;
    de.end()
        .map_err(|e| ApiError::bad_json(format!("the body is not valid JSON: {e}")))?;
    Ok(value)
}

/// serde's messages end with " at line 1 column 42", which means nothing to the caller here.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// The field at fault: the path where the error happened, joined with the field a "missing
/// field `x`" or "unknown field `x`" message names unless the path ends with it already (the
/// path of an unknown field includes its key).
fn field_name(path: &str, message: &str) -> String {
    let named = message
        .split('`')
        .nth(1)
        .filter(|_| message.starts_with("missing field") || message.starts_with("unknown field"));
    let path = if path == "." { "" } else { path };
    match (path, named) {
        ("", Some(f)) => f.to_owned(),
        (p, Some(f))
            if message.starts_with("unknown field")
                && (p == f || p.ends_with(&format!(".{f}"))) =>
        {
            p.to_owned()
        }
        (p, Some(f)) => format!("{p}.{f}"),
        ("", None) => "body".to_owned(),
        (p, None) => p.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        confidence: f64,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        inner: Inner,
    }

    fn field_of(body: &str) -> (u16, String) {
        let e = parse::<Outer>(body.as_bytes()).unwrap_err();
        let field = e
            .errors
            .first()
            .map(|f| f.field.clone())
            .unwrap_or_default();
        (e.status.as_u16(), field)
    }

    #[test]
    fn broken_json_is_bad_json() {
        assert_eq!(field_of("{\"name\": ").0, 400);
        assert_eq!(field_of("").0, 400);
        assert_eq!(field_of("{} trailing").0, 400);
    }

    #[test]
    fn wrong_shapes_name_the_field() {
        assert_eq!(
            field_of(r#"{"inner": {"confidence": 1}}"#),
            (422, "name".into())
        );
        assert_eq!(
            field_of(r#"{"name": "x", "inner": {"confidence": "high"}}"#),
            (422, "inner.confidence".into())
        );
        assert_eq!(
            field_of(r#"{"name": "x", "inner": {"confidence": 1}, "extra": 1}"#),
            (422, "extra".into())
        );
        assert_eq!(
            field_of(r#"{"name": "x", "inner": {"confidence": 1, "nope": 2}}"#),
            (422, "inner.nope".into())
        );
        assert_eq!(
            field_of(r#"{"name": 1, "inner": {"confidence": 1}}"#),
            (422, "name".into())
        );
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    enum Level {
        #[serde(rename = "low")]
        Low,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct WithEnum {
        level: Level,
    }

    #[test]
    fn an_enum_given_a_value_of_another_type_names_the_field() {
        for body in [
            r#"{"level": 3}"#,
            r#"{"level": "high"}"#,
            r#"{"level": null}"#,
        ] {
            let e = parse::<WithEnum>(body.as_bytes()).unwrap_err();
            assert_eq!(e.status.as_u16(), 422, "{body}");
            assert_eq!(e.errors[0].field, "level", "{body}");
        }
    }
}
