//! How an event is written into the log and read back.
//!
//! The payload is the KurrentDB event's data (content type `application/octet-stream`: it is
//! bincode), the type name its event type, the event id its event id. The rest of the envelope
//! travels as the event's metadata, a JSON object whose values are all strings (what KurrentDB's
//! newer append APIs require of metadata):
//!
//! | key | value |
//! | --- | --- |
//! | `stream`, `version` | the event's stream and its version there (from 1) |
//! | `schemaVersion`, `codec` | how the payload is encoded |
//! | `recordedAt` | RFC 3339, microseconds, UTC |
//! | `userId` | the acting user; absent for the server itself |
//! | `$correlationId`, `$causationId` | KurrentDB's own names, so its `$by_correlation_id` projection understands them; `$causationId` absent when unknown |
//! | `prevHash`, `hash` | the hash-chain link, lowercase hex |
//!
//! The global position is not stored: it is the event's revision in the log.

use std::collections::BTreeMap;

use bytes::Bytes;
use uuid::Uuid;

use crate::envelope::{EventData, Metadata, RecordedEvent};
use crate::hash::{to_hex, Hash};
use crate::store::StoreError;
use crate::Timestamp;

/// The event type of the log's first event, which marks a stream as an Adjudicator log.
pub(super) const MARKER_TYPE: &str = "adjudicator-log";
/// The layout this build writes and reads; a log marked with a later one is refused.
pub(super) const LAYOUT: u64 = 1;

/// The first event of a new log.
pub(super) fn marker() -> kurrentdb::EventData {
    kurrentdb::EventData::binary(MARKER_TYPE, Bytes::from(marker_data()))
        .id(Uuid::now_v7())
        .metadata(Bytes::from_static(b"{}"))
}

fn marker_data() -> Vec<u8> {
    format!("{{\"layout\":{LAYOUT}}}").into_bytes()
}

/// Checks the log's first event; `Err` says why the stream is not a log this build can use.
pub(super) fn check_marker(event_type: &str, data: &[u8]) -> Result<(), String> {
    if event_type != MARKER_TYPE {
        return Err(format!(
            "not an Adjudicator log: its first event is a `{event_type}`, not a `{MARKER_TYPE}`"
        ));
    }
    #[derive(serde::Deserialize)]
    struct Marker {
        layout: u64,
    }
    let marker: Marker = serde_json::from_slice(data)
        .map_err(|e| format!("the log's marker event does not parse: {e}"))?;
    if marker.layout > LAYOUT {
        return Err(format!(
            "the log was written by a newer Adjudicator (layout {}, this build reads up to {LAYOUT}); \
             upgrade this binary",
            marker.layout
        ));
    }
    Ok(())
}

/// The KurrentDB event that stores `event` (its position is where it lands in the log).
pub(super) fn to_event_data(event: &RecordedEvent) -> kurrentdb::EventData {
    kurrentdb::EventData::binary(
        &event.data.event_type,
        Bytes::copy_from_slice(&event.data.payload),
    )
    .id(event.data.id)
    .metadata(Bytes::from(encode_metadata(event)))
}

/// A rough upper bound of the bytes `event` takes in an append request.
pub(super) fn encoded_size(event: &EventData) -> usize {
    // Metadata: two hashes in hex (128), three ids (108), keys, time, stream name; framing.
    event.payload.len() + 2 * event.event_type.len() + 600
}

/// The metadata of `event`, as described in the module documentation.
pub(super) fn encode_metadata(event: &RecordedEvent) -> Vec<u8> {
    let d = &event.data;
    let mut m: BTreeMap<&str, String> = BTreeMap::new();
    m.insert("stream", event.stream.clone());
    m.insert("version", event.version.to_string());
    m.insert("schemaVersion", d.schema_version.to_string());
    m.insert("codec", d.codec.to_string());
    m.insert("recordedAt", d.recorded_at.to_rfc3339());
    if let Some(user) = d.metadata.user_id {
        m.insert("userId", user.to_string());
    }
    m.insert("$correlationId", d.metadata.correlation_id.to_string());
    if let Some(causation) = d.metadata.causation_id {
        m.insert("$causationId", causation.to_string());
    }
    m.insert("prevHash", to_hex(&event.prev_hash));
    m.insert("hash", to_hex(&event.hash));
    // A map of strings always serializes.
    serde_json::to_vec(&m).unwrap_or_default()
}

/// The event at revision `position` of `log`, as the store gives it back.
pub(super) fn decode(
    log: &str,
    event: &kurrentdb::RecordedEvent,
) -> Result<RecordedEvent, StoreError> {
    decode_parts(
        event.revision,
        event.id,
        &event.event_type,
        &event.data,
        &event.custom_metadata,
    )
    .map_err(|problem| StoreError::Corrupt {
        path: format!("KurrentDB stream {log}"),
        problem: format!("event at revision {}: {problem}", event.revision),
    })
}

/// [`decode`] from the parts of a KurrentDB event.
pub(super) fn decode_parts(
    position: u64,
    id: Uuid,
    event_type: &str,
    payload: &[u8],
    metadata: &[u8],
) -> Result<RecordedEvent, String> {
    let m: BTreeMap<String, String> = serde_json::from_slice(metadata)
        .map_err(|e| format!("its metadata is not an Adjudicator envelope: {e}"))?;
    let field = |key: &str| {
        m.get(key)
            .map(String::as_str)
            .ok_or_else(|| format!("its metadata has no `{key}`"))
    };
    let number = |key: &str| -> Result<u64, String> {
        field(key)?
            .parse()
            .map_err(|_| format!("its metadata's `{key}` is not a number"))
    };
    let uuid = |key: &str| -> Result<Uuid, String> {
        field(key)?
            .parse()
            .map_err(|_| format!("its metadata's `{key}` is not a UUID"))
    };
    let optional_uuid = |key: &str| -> Result<Option<Uuid>, String> {
        match m.contains_key(key) {
            true => uuid(key).map(Some),
            false => Ok(None),
        }
    };
    let small = |key: &str, max: u64| -> Result<u64, String> {
        let n = number(key)?;
        if n > max {
            return Err(format!("its metadata's `{key}` is out of range"));
        }
        Ok(n)
    };
    let version = number("version")?;
    if version == 0 {
        return Err("its metadata's `version` is 0 (versions start at 1)".into());
    }
    Ok(RecordedEvent {
        position,
        stream: field("stream")?.to_owned(),
        version,
        data: EventData {
            id,
            event_type: event_type.to_owned(),
            schema_version: small("schemaVersion", u64::from(u16::MAX))? as u16,
            codec: small("codec", u64::from(u8::MAX))? as u8,
            payload: payload.to_vec(),
            recorded_at: Timestamp::parse_rfc3339(field("recordedAt")?)
                .map_err(|e| format!("its metadata's `recordedAt`: {e}"))?,
            metadata: Metadata {
                user_id: optional_uuid("userId")?,
                correlation_id: uuid("$correlationId")?,
                causation_id: optional_uuid("$causationId")?,
            },
        },
        prev_hash: parse_hash(field("prevHash")?)
            .ok_or("its metadata's `prevHash` is not a hash")?,
        hash: parse_hash(field("hash")?).ok_or("its metadata's `hash` is not a hash")?,
    })
}

/// 64 lowercase or uppercase hex digits.
fn parse_hash(hex: &str) -> Option<Hash> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16);
    let mut hash = [0u8; 32];
    for (out, pair) in hash.iter_mut().zip(bytes.chunks_exact(2)) {
        *out = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Some(hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::sample_event;
    use crate::hash::{chain_hash, GENESIS};

    fn recorded(position: u64, data: EventData) -> RecordedEvent {
        let hash = chain_hash(&GENESIS, "case-1", 1, &data);
        RecordedEvent {
            position,
            stream: "case-1".into(),
            version: 1,
            data,
            prev_hash: GENESIS,
            hash,
        }
    }

    fn round_trip(e: &RecordedEvent) -> RecordedEvent {
        let metadata = encode_metadata(e);
        decode_parts(
            e.position,
            e.data.id,
            &e.data.event_type,
            &e.data.payload,
            &metadata,
        )
        .expect("decodes")
    }

    #[test]
    fn an_event_reads_back_exactly_as_written() {
        let mut data = sample_event(7);
        data.metadata.causation_id = Some(Uuid::now_v7());
        let e = recorded(42, data);
        assert_eq!(round_trip(&e), e);
    }

    #[test]
    fn absent_ids_stay_absent() {
        let mut data = sample_event(1);
        data.metadata.user_id = None;
        data.metadata.causation_id = None;
        let e = recorded(1, data);
        let metadata = String::from_utf8(encode_metadata(&e)).expect("utf-8");
        assert!(!metadata.contains("userId"), "{metadata}");
        assert!(!metadata.contains("$causationId"), "{metadata}");
        assert_eq!(round_trip(&e), e);
    }

    #[test]
    fn metadata_values_are_all_strings() {
        let e = recorded(3, sample_event(3));
        let value: serde_json::Value = serde_json::from_slice(&encode_metadata(&e)).expect("json");
        let object = value.as_object().expect("an object");
        assert!(object.values().all(serde_json::Value::is_string), "{value}");
        assert_eq!(object["version"], "1");
        assert_eq!(object["hash"], to_hex(&e.hash));
    }

    #[test]
    fn foreign_or_damaged_metadata_is_refused() {
        let e = recorded(3, sample_event(3));
        let decode = |metadata: &[u8]| decode_parts(3, e.data.id, "x", b"", metadata);
        assert!(decode(b"").is_err());
        assert!(decode(b"{\"stream\":\"s\"}")
            .unwrap_err()
            .contains("no `version`"));
        let mut m: BTreeMap<String, String> =
            serde_json::from_slice(&encode_metadata(&e)).expect("json");
        m.insert("hash".into(), "zz".into());
        let bad = serde_json::to_vec(&m).expect("json");
        assert!(decode(&bad).unwrap_err().contains("`hash`"));
        m.insert("hash".into(), to_hex(&e.hash));
        m.insert("version".into(), "0".into());
        let bad = serde_json::to_vec(&m).expect("json");
        assert!(decode(&bad).unwrap_err().contains("versions start at 1"));
    }

    #[test]
    fn hashes_parse_from_hex() {
        let hash: Hash = std::array::from_fn(|i| i as u8 * 7);
        assert_eq!(parse_hash(&to_hex(&hash)), Some(hash));
        assert_eq!(parse_hash(&to_hex(&hash).to_uppercase()), Some(hash));
        assert_eq!(parse_hash("00"), None);
        assert_eq!(parse_hash(&"g".repeat(64)), None);
    }

    #[test]
    fn the_marker_is_checked() {
        assert_eq!(check_marker(MARKER_TYPE, &marker_data()), Ok(()));
        assert!(check_marker("OrderPlaced", b"{}")
            .unwrap_err()
            .contains("not an Adjudicator log"));
        assert!(check_marker(MARKER_TYPE, b"{\"layout\":2}")
            .unwrap_err()
            .contains("newer Adjudicator"));
        assert!(check_marker(MARKER_TYPE, b"nope").is_err());
    }
}
