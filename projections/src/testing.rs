//! Helpers for the unit tests: recorded events built by hand, with dummy hashes.

use events::domain::case::{self, Assessment, CaseEvent, CaseSubmitted};
use events::domain::{Culpability, DomainEvent, Priority};
use events::hash::GENESIS;
use events::{EventData, EventEnvelope, Metadata, RecordedEvent, Timestamp};
use uuid::Uuid;

/// The submitter of every test case.
pub const CLASSIFIER: Uuid = Uuid::from_u128(0xc1);

/// An event of `stream` at `version` and global `position`, recorded at `position` seconds after
/// the epoch.
pub fn env(stream: &str, version: u64, position: u64, event: DomainEvent) -> EventEnvelope {
    let at = Timestamp::from_micros(position as i64 * 1_000_000);
    let metadata = Metadata {
        user_id: Some(CLASSIFIER),
        correlation_id: Uuid::from_u128(u128::from(position)),
        causation_id: None,
    };
    let data = EventData::encode(&event, metadata, at).expect("test events encode");
    let record = RecordedEvent {
        position,
        stream: stream.to_owned(),
        version,
        data,
        prev_hash: GENESIS,
        hash: [position as u8; 32],
    };
    EventEnvelope::decode(record).expect("test events decode")
}

pub fn case_env(id: Uuid, version: u64, position: u64, event: CaseEvent) -> EventEnvelope {
    env(&case::stream_name(id), version, position, event.into())
}

pub fn submitted(id: Uuid, priority: Priority) -> CaseEvent {
    CaseEvent::Submitted(CaseSubmitted {
        case_id: id,
        subject_ref: "subject".into(),
        excerpt: "excerpt".into(),
        assessment: Assessment {
            culpability: Culpability::Knowingly,
            confidence: 0.87,
            rationale: "why".into(),
        },
        priority,
        submitted_by: CLASSIFIER,
    })
}
