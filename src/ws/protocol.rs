//! The WebSocket messages of the protocol: parsing what clients send and writing what the
//! server sends. Pure functions over JSON; no actor or socket here.

use events::domain::case::CaseStatus;
use events::domain::Role;
use events::Timestamp;
use projections::window::{DEFAULT_LIMIT, MAX_LIMIT};
use projections::{QueueWindow, Statuses};
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
        /// What the `queue` topic shows, if the message names it (the default window if the
        /// message has no `queue`).
        queue: QueueWindow,
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
    queue: Option<Value>,
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

/// Topics one session may hold at most (`too_many_topics` beyond).
pub const MAX_TOPICS_PER_SESSION: usize = 256;

/// Subscribes a session may send per second, on average (`subscribe_rate` beyond)…
pub const SUBSCRIBE_RATE: u32 = 5;
/// …and at once.
pub const SUBSCRIBE_BURST: u32 = 10;

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
            let queue = match &b.queue {
                None => QueueWindow::default(),
                Some(options) => queue_window(options).map_err(bad)?,
            };
            ClientMessage::Subscribe {
                id: b.id,
                topics: b.topics,
                since: b.since,
                queue,
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
        if topics.is_empty() {
            return Err(bad("`topics` names at least one topic".into()));
        }
    }
    Ok(message)
}

/// The statuses a window may ask for: those of the queue, which holds no decided case.
const WINDOW_STATUSES: [CaseStatus; 3] = [
    CaseStatus::Pending,
    CaseStatus::InReview,
    CaseStatus::Escalated,
];

/// A subscription's `"queue": {"limit", "status"}`, each optional; the error names the field.
pub fn queue_window(options: &Value) -> Result<QueueWindow, String> {
    let Some(options) = options.as_object() else {
        return Err("`queue` must be an object with `limit` and `status`, both optional".into());
    };
    if let Some(other) = options
        .keys()
        .find(|k| !matches!(k.as_str(), "limit" | "status"))
    {
        return Err(format!(
            "`queue.{other}` is not an option (`limit`, `status`)"
        ));
    }
    let limit = match options.get("limit") {
        None => DEFAULT_LIMIT,
        Some(l) => l
            .as_u64()
            .and_then(|l| usize::try_from(l).ok())
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| format!("`queue.limit` must be an integer from 1 to {MAX_LIMIT}"))?,
    };
    let statuses = match options.get("status") {
        None => Statuses::UNDECIDED,
        Some(list) => window_statuses(list)?,
    };
    Ok(QueueWindow { limit, statuses })
}

fn window_statuses(list: &Value) -> Result<Statuses, String> {
    let names = WINDOW_STATUSES.map(CaseStatus::as_str).join(", ");
    let wrong = || format!("`queue.status` must be a non-empty list of {names}");
    let items = list
        .as_array()
        .filter(|a| !a.is_empty())
        .ok_or_else(wrong)?;
    items
        .iter()
        .map(|item| {
            let name = item.as_str().ok_or_else(wrong)?;
            WINDOW_STATUSES
                .into_iter()
                .find(|s| s.as_str() == name)
                .ok_or_else(|| format!("`queue.status`: {name:?} is not one of {names}"))
        })
        .collect()
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
                since: Some(5),
                queue: QueueWindow::default(),
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
    fn a_subscribe_may_say_which_window_of_the_queue_it_wants() {
        let window = |text: &str| match parse(text) {
            Ok(ClientMessage::Subscribe { queue, .. }) => Ok(queue),
            Ok(other) => panic!("{other:?}"),
            Err(bad) => Err(bad.message),
        };
        let with = |options: &str| {
            window(&format!(
                r#"{{"type":"subscribe","id":1,"topics":["queue"],"queue":{options}}}"#
            ))
        };
        assert_eq!(
            with(r#"{"limit":7,"status":["escalated","pending","pending"]}"#),
            Ok(QueueWindow {
                limit: 7,
                statuses: Statuses::of(CaseStatus::Pending).with(CaseStatus::Escalated),
            })
        );
        assert_eq!(
            with(r#"{"limit":1000}"#),
            Ok(QueueWindow {
                limit: 1000,
                statuses: Statuses::UNDECIDED
            })
        );
        assert_eq!(
            with(r#"{"status":["in_review"]}"#),
            Ok(QueueWindow {
                limit: 100,
                statuses: Statuses::of(CaseStatus::InReview)
            })
        );
        assert_eq!(with("{}"), Ok(QueueWindow::default()));
        assert_eq!(
            window(r#"{"type":"subscribe","topics":["stats"]}"#),
            Ok(QueueWindow::default())
        );
        for (options, field) in [
            ("0", "`queue`"),
            ("[]", "`queue`"),
            (r#"{"limit":0}"#, "`queue.limit`"),
            (r#"{"limit":1001}"#, "`queue.limit`"),
            (r#"{"limit":-1}"#, "`queue.limit`"),
            (r#"{"limit":2.5}"#, "`queue.limit`"),
            (r#"{"limit":"10"}"#, "`queue.limit`"),
            (r#"{"status":[]}"#, "`queue.status`"),
            (r#"{"status":"pending"}"#, "`queue.status`"),
            (r#"{"status":[1]}"#, "`queue.status`"),
            (r#"{"status":["decided"]}"#, "`queue.status`"),
            (r#"{"status":["pending","closed"]}"#, "`queue.status`"),
            (r#"{"offset":3}"#, "`queue.offset`"),
        ] {
            let message = with(options).expect_err(options);
            assert!(message.starts_with(field), "{options}: {message}");
        }
        let bad = parse(r#"{"type":"subscribe","id":9,"topics":["queue"],"queue":{"limit":0}}"#)
            .unwrap_err();
        assert_eq!(bad.id, Some(json!(9)));
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
