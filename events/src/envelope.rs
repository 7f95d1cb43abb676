//! What the store keeps around each payload.
//!
//! [`EventData`] is an event as the caller hands it to the store; [`RecordedEvent`] is the same
//! event as the store gives it back, with its place (stream version, global position) and its
//! link in the stream's hash chain.

use uuid::Uuid;

use crate::codec::{self, CodecError};
use crate::domain::DomainEvent;
use crate::hash::Hash;
use crate::Timestamp;

/// Who caused an event and in answer to what.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    /// The acting user; `None` for the server itself.
    pub user_id: Option<Uuid>,
    /// Shared by every event caused by one outside request.
    pub correlation_id: Uuid,
    /// The event or request that directly caused this one, when known.
    pub causation_id: Option<Uuid>,
}

impl Metadata {
    /// A new correlation for one outside request by `user_id`.
    pub fn for_request(user_id: Option<Uuid>) -> Self {
        Metadata {
            user_id,
            correlation_id: Uuid::now_v7(),
            causation_id: None,
        }
    }
}

/// An event on its way into the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventData {
    /// UUID v7: unique, and sorts by creation time.
    pub id: Uuid,
    pub event_type: String,
    pub schema_version: u16,
    pub codec: u8,
    pub payload: Vec<u8>,
    pub recorded_at: Timestamp,
    pub metadata: Metadata,
}

impl EventData {
    /// Encodes a domain event with a fresh id, recorded at `at`.
    pub fn encode(
        event: &DomainEvent,
        metadata: Metadata,
        at: Timestamp,
    ) -> Result<Self, CodecError> {
        let encoded = codec::encode(event)?;
        Ok(EventData {
            id: Uuid::now_v7(),
            event_type: encoded.event_type.to_owned(),
            schema_version: encoded.schema_version,
            codec: encoded.codec,
            payload: encoded.payload,
            recorded_at: at,
            metadata,
        })
    }

    pub fn decode(&self) -> Result<DomainEvent, CodecError> {
        codec::decode(
            &self.event_type,
            self.schema_version,
            self.codec,
            &self.payload,
        )
    }
}

/// An event as stored: its data, where it stands, and its link in the hash chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedEvent {
    /// Global position: 1 for the first event in the store, growing by one for each event.
    pub position: u64,
    pub stream: String,
    /// Stream version: 1 for the first event of the stream.
    pub version: u64,
    pub data: EventData,
    /// The hash of the stream's previous event ([`crate::hash::GENESIS`] for the first).
    pub prev_hash: Hash,
    pub hash: Hash,
}

/// A recorded event with its payload decoded: what read models fold.
#[derive(Clone, Debug, PartialEq)]
pub struct EventEnvelope {
    pub record: RecordedEvent,
    pub event: DomainEvent,
}

/// A stored record this build cannot decode, named by where it stands and what it claims to be,
/// so that an operator can find it: reported by `serve` (which stops), by a running server
/// (which marks itself not ready) and by `adjudicator replay`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the event at position {position} (stream {stream:?}, type {event_type:?}, schema version \
     {schema_version}) cannot be decoded by this build: {reason}"
)]
pub struct UndecodableEvent {
    pub position: u64,
    pub stream: String,
    pub event_type: String,
    pub schema_version: u16,
    /// What the codec said, clipped like the names.
    pub reason: String,
}

/// At most this many characters of a stream or type name in a message: a damaged record may
/// hold anything there.
const NAME_CHARS: usize = 128;

fn clipped(name: &str) -> String {
    name.chars().take(NAME_CHARS).collect()
}

fn clipped_reason(e: &CodecError) -> String {
    e.to_string().chars().take(2 * NAME_CHARS).collect()
}

impl EventEnvelope {
    pub fn decode(record: RecordedEvent) -> Result<Self, UndecodableEvent> {
        match record.data.decode() {
            Ok(event) => Ok(EventEnvelope { record, event }),
            Err(source) => Err(UndecodableEvent {
                position: record.position,
                stream: clipped(&record.stream),
                event_type: clipped(&record.data.event_type),
                schema_version: record.data.schema_version,
                reason: clipped_reason(&source),
            }),
        }
    }

    pub fn position(&self) -> u64 {
        self.record.position
    }
}
