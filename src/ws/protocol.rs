//! The WebSocket messages of the protocol: parsing what clients send and writing what the
//! server sends. Pure functions over JSON; no actor or socket here.

use events::domain::Role;
use events::Timestamp;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

/// A client message that parsed.
#[derive(Debug, PartialEq)]
pub enum ClientMessage {
    Subscribe {
        id: Value,
        topics: Vec<String>,
        since: Option<u64>,
    },
    Unsubscribe {
        id: Value,
        topics: Vec<String>,
    },
    Ping {
        id: Value,
    },
    Auth {
        id: Value,
        token: String,
    },
}

/// Why a client message was not understood; answered with an `error` message.
#[derive(Debug, PartialEq)]
pub struct BadMessage {
    /// The request id, when the message had one.
    pub id: Option<Value>,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscribeBody {
    #[serde(rename = "type")]
    _type: String,
    #[serde(default)]
    id: Value,
    topics: Vec<String>,
    since: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicsBody {
    #[serde(rename = "type")]
    _type: String,
    #[serde(default)]
    id: Value,
    topics: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PingBody {
    #[serde(rename = "type")]
    _type: String,
    #[serde(default)]
    id: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthBody {
    #[serde(rename = "type")]
    _type: String,
    #[serde(default)]
    id: Value,
    token: String,
}

/// Topics one message may name at most.
pub const MAX_TOPICS: usize = 64;

pub fn parse(text: &str) -> Result<ClientMessage, BadMessage> {
    let value: Value = serde_json::from_str(text).map_err(|_| BadMessage {
        id: None,
        message: "not a JSON object".into(),
    })?;
    let id = value.get("id").cloned();
    let bad = |message: String| BadMessage {
        id: id.clone(),
        message,
    };
    let kind = value
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("a message needs a string `type`".into()))?
        .to_owned();
    let shape = |e: serde_json::Error| bad(format!("{kind}: {e}"));
    let message = match kind.as_str() {
        "subscribe" => {
            let b: SubscribeBody = serde_json::from_value(value).map_err(shape)?;
            ClientMessage::Subscribe {
                id: b.id,
                topics: b.topics,
                since: b.since,
            }
        }
        "unsubscribe" => {
            let b: TopicsBody = serde_json::from_value(value).map_err(shape)?;
            ClientMessage::Unsubscribe {
                id: b.id,
                topics: b.topics,
            }
        }
        "ping" => {
            let b: PingBody = serde_json::from_value(value).map_err(shape)?;
            ClientMessage::Ping { id: b.id }
        }
        "auth" => {
            let b: AuthBody = serde_json::from_value(value).map_err(shape)?;
            ClientMessage::Auth {
                id: b.id,
                token: b.token,
            }
        }
        other => return Err(bad(format!("unknown message type {other:?}"))),
    };
    if let ClientMessage::Subscribe { topics, .. } | ClientMessage::Unsubscribe { topics, .. } =
        &message
    {
        if topics.is_empty() || topics.len() > MAX_TOPICS {
            return Err(bad(format!("`topics` names 1 to {MAX_TOPICS} topics")));
        }
    }
    Ok(message)
}

pub fn welcome(
    session_id: Uuid,
    user_id: Uuid,
    username: &str,
    roles: &[Role],
    heartbeat_interval_ms: u128,
    position: u64,
    token_expires_at: Timestamp,
) -> String {
    json!({
        "type": "welcome",
        "session_id": session_id,
        "user": { "id": user_id, "username": username, "roles": roles },
        "heartbeat_interval_ms": heartbeat_interval_ms as u64,
        "position": position,
        "token_expires_at": token_expires_at,
    })
    .to_string()
}

pub fn subscribed(id: &Value, topics: &[String], position: u64) -> String {
    json!({ "type": "subscribed", "id": id, "topics": topics, "position": position }).to_string()
}

pub fn unsubscribed(id: &Value, topics: &[String]) -> String {
    json!({ "type": "unsubscribed", "id": id, "topics": topics }).to_string()
}

pub fn pong(id: &Value) -> String {
    json!({ "type": "pong", "id": id, "server_time": Timestamp::now() }).to_string()
}

pub fn authenticated(id: &Value, token_expires_at: Timestamp) -> String {
    json!({ "type": "authenticated", "id": id, "token_expires_at": token_expires_at }).to_string()
}

pub fn error(id: Option<&Value>, code: &str, message: &str) -> String {
    let mut m = json!({ "type": "error", "code": code, "message": message });
    if let Some(id) = id.filter(|id| !id.is_null()) {
        m["id"] = id.clone();
    }
    m.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_four_client_messages_parse() {
        assert_eq!(
            parse(r#"{"type":"subscribe","id":1,"topics":["queue"],"since":5}"#),
            Ok(ClientMessage::Subscribe {
                id: json!(1),
                topics: vec!["queue".into()],
                since: Some(5)
            })
        );
        assert_eq!(
            parse(r#"{"type":"ping","id":"a"}"#),
            Ok(ClientMessage::Ping { id: json!("a") })
        );
        assert!(matches!(
            parse(r#"{"type":"auth","id":2,"token":"t"}"#),
            Ok(ClientMessage::Auth { .. })
        ));
        assert!(matches!(
            parse(r#"{"type":"unsubscribe","id":3,"topics":["stats"]}"#),
            Ok(ClientMessage::Unsubscribe { .. })
        ));
    }

    #[test]
    fn bad_messages_say_why_and_keep_the_request_id() {
        assert_eq!(parse("nope").unwrap_err().id, None);
        let unknown = parse(r#"{"type":"dance","id":7}"#).unwrap_err();
        assert_eq!(unknown.id, Some(json!(7)));
        assert!(unknown.message.contains("dance"));
        assert!(
            parse(r#"{"type":"subscribe","id":1}"#).is_err(),
            "missing topics"
        );
        assert!(
            parse(r#"{"type":"subscribe","topics":"queue"}"#).is_err(),
            "wrong type"
        );
        assert!(
            parse(r#"{"type":"subscribe","topics":[]}"#).is_err(),
            "no topic"
        );
        assert!(parse(r#"{"id":1}"#).is_err(), "no type");
    }

    #[test]
    fn errors_carry_the_id_only_when_there_is_one() {
        let with = error(Some(&json!(4)), "unknown_topic", "no such topic");
        assert_eq!(serde_json::from_str::<Value>(&with).unwrap()["id"], 4);
        let without = error(None, "bad_message", "not JSON");
        assert!(serde_json::from_str::<Value>(&without)
            .unwrap()
            .get("id")
            .is_none());
    }
}
