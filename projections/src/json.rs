//! JSON encoding of the read models, without panics.
//!
//! The read models are plain data: strings, numbers, ids and times, maps keyed by strings. For
//! such values serde_json cannot fail; should it ever, the value shows as `null` rather than
//! stopping the projector.

use serde::Serialize;
use serde_json::Value;

pub(crate) fn to_value<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

pub(crate) fn to_string<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}
