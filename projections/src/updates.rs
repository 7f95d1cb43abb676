//! What the WebSocket pushes: topics, the `update` message one event causes on each topic, and
//! the `snapshot` message that starts a subscription.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::window::Statuses;

/// What a client subscribes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// Cases not yet decided.
    Queue,
    Stats,
    /// One case, decided or not.
    Case(Uuid),
    /// Every domain event; auditors and admins only.
    Audit,
}

/// A topic name the protocol does not know.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown topic {0:?}")]
pub struct TopicError(pub String);

impl Topic {
    /// `queue`, `stats`, `case:<id>` or `audit`.
    pub fn as_string(&self) -> String {
        self.to_string()
    }

    pub fn parse(s: &str) -> Result<Self, TopicError> {
        match s {
            "queue" => Ok(Topic::Queue),
            "stats" => Ok(Topic::Stats),
            "audit" => Ok(Topic::Audit),
            _ => s
                .strip_prefix("case:")
                .and_then(|id| Uuid::try_parse(id).ok())
                .map(Topic::Case)
                .ok_or_else(|| TopicError(s.to_owned())),
        }
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topic::Queue => f.write_str("queue"),
            Topic::Stats => f.write_str("stats"),
            Topic::Case(id) => write!(f, "case:{id}"),
            Topic::Audit => f.write_str("audit"),
        }
    }
}

impl FromStr for Topic {
    type Err = TopicError;
    fn from_str(s: &str) -> Result<Self, TopicError> {
        Topic::parse(s)
    }
}

impl Serialize for Topic {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Topic {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Topic::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// One change on one topic, caused by the event at `position`.
#[derive(Clone, Debug, PartialEq)]
pub struct Update {
    pub topic: Topic,
    pub position: u64,
    /// The domain event's type name, e.g. `case_claimed`.
    pub event: &'static str,
    /// The case after the event (`queue`, `case:<id>`), the new stats (`stats`), or the audit
    /// event (`audit`).
    pub data: Value,
    /// Which subscriptions get it: those whose statuses meet these. On `queue`, the statuses
    /// the case had before and has after the event, so that a subscriber of some statuses hears
    /// of a case that enters them and of one that leaves them; on other topics, all of them.
    pub statuses: Statuses,
}

#[derive(Serialize)]
struct UpdateMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    topic: &'a Topic,
    position: u64,
    event: &'a str,
    data: &'a Value,
}

#[derive(Serialize)]
struct SnapshotMessage<'a, T> {
    #[serde(rename = "type")]
    kind: &'static str,
    topic: &'a Topic,
    position: u64,
    data: &'a T,
}

impl Update {
    /// `{"type":"update","topic":…,"position":…,"event":…,"data":…}`.
    pub fn to_json(&self) -> String {
        crate::json::to_string(&UpdateMessage {
            kind: "update",
            topic: &self.topic,
            position: self.position,
            event: self.event,
            data: &self.data,
        })
    }
}

/// `{"type":"snapshot","topic":…,"position":…,"data":…}`: the read model of `topic` as of
/// `position` (see [`crate::ReadView::snapshot_json`]), serialized straight from it.
pub fn snapshot_json<T: Serialize>(topic: &Topic, position: u64, data: &T) -> String {
    crate::json::to_string(&SnapshotMessage {
        kind: "snapshot",
        topic,
        position,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn topics_round_trip_through_their_names() {
        let id = Uuid::from_u128(0x1234);
        for t in [Topic::Queue, Topic::Stats, Topic::Case(id), Topic::Audit] {
            assert_eq!(Topic::parse(&t.as_string()), Ok(t));
        }
        assert_eq!(
            Topic::Case(id).as_string(),
            "case:00000000-0000-0000-0000-000000001234"
        );
        for bad in ["", "Queue", "case:", "case:xyz", "cases", "audit "] {
            assert!(Topic::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(serde_json::to_string(&Topic::Stats).unwrap(), "\"stats\"");
        let back: Topic = serde_json::from_str("\"queue\"").unwrap();
        assert_eq!(back, Topic::Queue);
    }

    #[test]
    fn messages_have_the_protocols_shape() {
        let update = Update {
            topic: Topic::Queue,
            position: 17,
            event: "case_claimed",
            data: json!({"id": "x"}),
            statuses: Statuses::ALL,
        };
        assert_eq!(
            update.to_json(),
            r#"{"type":"update","topic":"queue","position":17,"event":"case_claimed","data":{"id":"x"}}"#
        );
        assert_eq!(
            snapshot_json(&Topic::Stats, 3, &json!({"pending": 1})),
            r#"{"type":"snapshot","topic":"stats","position":3,"data":{"pending":1}}"#
        );
    }
}
