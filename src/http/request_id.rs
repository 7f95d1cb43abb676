//! The request id: taken from the client's `X-Request-Id` when it is a reasonable token, else
//! made here; returned in the answer's `X-Request-Id`, written on the access log line and in
//! the span of the request (and of a WebSocket session the request opens), so that one request
//! can be followed from a client's report through every log line it caused.

use actix_web::HttpMessage;

/// The header, in and out.
pub const HEADER: &str = "x-request-id";

/// The longest request id taken from a client.
const MAX_LEN: usize = 128;

/// A request's id, kept in the request's extensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(pub String);

impl RequestId {
    /// The client's id if it is 1 to 128 characters of letters, digits and `-_.:/+=` (nothing
    /// that could forge a log line or a field), else a new UUID.
    pub fn from_header(value: Option<&str>) -> RequestId {
        match value {
            Some(v) if acceptable(v) => RequestId(v.to_owned()),
            _ => RequestId(uuid::Uuid::now_v7().to_string()),
        }
    }

    /// The id of `req`, as the access log middleware set it ("-" outside a request).
    pub fn of(req: &impl HttpMessage) -> String {
        req.extensions()
            .get::<RequestId>()
            .map_or_else(|| "-".to_owned(), |id| id.0.clone())
    }
}

fn acceptable(value: &str) -> bool {
    (1..=MAX_LEN).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_client_id_is_kept_and_anything_else_replaced() {
        assert_eq!(
            RequestId::from_header(Some("abc-123_x.y:z")).0,
            "abc-123_x.y:z"
        );
        for bad in [
            "",
            "has space",
            "new\nline",
            "quote\"",
            "{\"json\":1}",
            &"x".repeat(129),
        ] {
            let id = RequestId::from_header(Some(bad)).0;
            assert_ne!(id, bad);
            assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
        }
        let made = RequestId::from_header(None).0;
        assert!(uuid::Uuid::parse_str(&made).is_ok(), "{made}");
    }
}
