//! Payload encoding: a domain event to bytes and back.
//!
//! Every record carries a codec id and its event's schema version next to the payload, so the
//! reader knows how to decode it. Today there is one codec, bincode 2 with its `standard`
//! configuration (pinned to an exact version: the crate is no longer maintained). A later codec
//! gets a new id; records keep the one they were written with.
//!
//! Each event type's payload is its own struct, never the enum around it, so one type can change
//! shape without touching the encoding of the others.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::domain::case::{self, CaseEvent};
use crate::domain::revocation::RevocationEvent;
use crate::domain::system::SystemEvent;
use crate::domain::user::UserEvent;
use crate::domain::DomainEvent;

/// bincode 2.0.1, `config::standard()` (little endian, variable-length integers).
pub const CODEC_BINCODE2: u8 = 1;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("unknown codec id {0}")]
    UnknownCodec(u8),
    #[error("unknown event type {event_type:?} (schema version {schema_version})")]
    UnknownType {
        event_type: String,
        schema_version: u16,
    },
    #[error("cannot decode {event_type} v{schema_version}: {reason}")]
    Malformed {
        event_type: String,
        schema_version: u16,
        reason: String,
    },
    #[error("cannot encode {event_type}: {reason}")]
    Encode {
        event_type: &'static str,
        reason: String,
    },
}

/// A payload ready to be stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoded {
    pub event_type: &'static str,
    pub schema_version: u16,
    pub codec: u8,
    pub payload: Vec<u8>,
}

pub fn encode(event: &DomainEvent) -> Result<Encoded, CodecError> {
    use CaseEvent as C;
    use RevocationEvent as R;
    use UserEvent as U;
    let event_type = event.type_name();
    let payload = match event {
        DomainEvent::Case(e) => match e {
            C::Submitted(p) => to_bytes(event_type, p),
            C::Claimed(p) => to_bytes(event_type, p),
            C::Released(p) => to_bytes(event_type, p),
            C::Decided(p) => to_bytes(event_type, p),
            C::Escalated(p) => to_bytes(event_type, p),
            C::Reopened(p) => to_bytes(event_type, p),
        },
        DomainEvent::User(e) => match e {
            U::Registered(p) => to_bytes(event_type, p),
            U::RolesChanged(p) => to_bytes(event_type, p),
            U::Disabled(p) => to_bytes(event_type, p),
            U::Enabled(p) => to_bytes(event_type, p),
            U::PasswordChanged(p) => to_bytes(event_type, p),
        },
        DomainEvent::Revocation(e) => match e {
            R::TokenRevoked(p) => to_bytes(event_type, p),
            R::FamilyRevoked(p) => to_bytes(event_type, p),
            R::Refreshed(p) => to_bytes(event_type, p),
        },
        DomainEvent::System(e) => match e {
            SystemEvent::DemoStoreMarked(p) => to_bytes(event_type, p),
        },
    }?;
    Ok(Encoded {
        event_type,
        schema_version: event.schema_version(),
        codec: CODEC_BINCODE2,
        payload,
    })
}

pub fn decode(
    event_type: &str,
    schema_version: u16,
    codec: u8,
    payload: &[u8],
) -> Result<DomainEvent, CodecError> {
    if codec != CODEC_BINCODE2 {
        return Err(CodecError::UnknownCodec(codec));
    }
    let d = Decoder {
        event_type,
        schema_version,
        payload,
    };
    let event: DomainEvent = match (event_type, schema_version) {
        ("case_submitted", 1) => {
            let old: legacy::CaseSubmittedV1 = d.read()?;
            C::Submitted(old.upcast()).into()
        }
        ("case_submitted", 2) => C::Submitted(d.read()?).into(),
        ("case_claimed", 1) => C::Claimed(d.read()?).into(),
        ("case_released", 1) => C::Released(d.read()?).into(),
        ("case_decided", 1) => C::Decided(d.read()?).into(),
        ("case_escalated", 1) => C::Escalated(d.read()?).into(),
        ("case_reopened", 1) => C::Reopened(d.read()?).into(),
        ("user_registered", 1) => U::Registered(d.read()?).into(),
        ("user_roles_changed", 1) => U::RolesChanged(d.read()?).into(),
        ("user_disabled", 1) => U::Disabled(d.read()?).into(),
        ("user_enabled", 1) => U::Enabled(d.read()?).into(),
        ("user_password_changed", 1) => U::PasswordChanged(d.read()?).into(),
        ("token_revoked", 1) => R::TokenRevoked(d.read()?).into(),
        ("token_family_revoked", 1) => R::FamilyRevoked(d.read()?).into(),
        ("token_refreshed", 1) => R::Refreshed(d.read()?).into(),
        ("demo_store_marked", 1) => SystemEvent::DemoStoreMarked(d.read()?).into(),
        _ => {
            return Err(CodecError::UnknownType {
                event_type: event_type.to_owned(),
                schema_version,
            })
        }
    };
    Ok(event)
}

use CaseEvent as C;
use RevocationEvent as R;
use UserEvent as U;

fn to_bytes<T: Serialize>(event_type: &'static str, value: &T) -> Result<Vec<u8>, CodecError> {
    bincode::serde::encode_to_vec(value, bincode::config::standard()).map_err(|e| {
        CodecError::Encode {
            event_type,
            reason: e.to_string(),
        }
    })
}

/// The most that decoding one payload may allocate for its strings and lists. A length prefix
/// is believed before the bytes it announces are read, so without a bound a damaged or hostile
/// record claiming a 4 GiB username would make the reader allocate 4 GiB (found by the
/// `event_codec` fuzz target). The largest valid payload, a submission with a 20,000-character
/// excerpt, is under 128 KiB; a payload cannot hold more than its own length anyway.
pub const MAX_DECODED_BYTES: usize = 1 << 20;

struct Decoder<'a> {
    event_type: &'a str,
    schema_version: u16,
    payload: &'a [u8],
}

impl Decoder<'_> {
    fn read<T: DeserializeOwned>(&self) -> Result<T, CodecError> {
        let malformed = |reason: String| CodecError::Malformed {
            event_type: self.event_type.to_owned(),
            schema_version: self.schema_version,
            reason,
        };
        // The limit only bounds what decoding may allocate: the bytes are those of `standard()`.
        let config = bincode::config::standard().with_limit::<MAX_DECODED_BYTES>();
        let (value, used) = bincode::serde::decode_from_slice(self.payload, config)
            .map_err(|e| malformed(e.to_string()))?;
        if used != self.payload.len() {
            return Err(malformed(format!(
                "{} trailing bytes",
                self.payload.len() - used
            )));
        }
        Ok(value)
    }
}

/// Payload shapes that this build no longer writes but still reads.
pub mod legacy {
    use serde::{Deserialize, Serialize};
    use uuid::Uuid;

    use super::case::{Assessment, CaseSubmitted};
    use crate::domain::Priority;

    /// `case_submitted` v1, from before cases had a priority. Upcast as `normal`.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    pub struct CaseSubmittedV1 {
        pub case_id: Uuid,
        pub subject_ref: String,
        pub excerpt: String,
        pub assessment: Assessment,
        pub submitted_by: Uuid,
    }

    impl CaseSubmittedV1 {
        pub fn upcast(self) -> CaseSubmitted {
            CaseSubmitted {
                case_id: self.case_id,
                subject_ref: self.subject_ref,
                excerpt: self.excerpt,
                assessment: self.assessment,
                priority: Priority::Normal,
                submitted_by: self.submitted_by,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_codecs_types_and_garbage_are_errors_not_panics() {
        assert_eq!(
            decode("case_claimed", 1, 9, &[]),
            Err(CodecError::UnknownCodec(9))
        );
        assert!(matches!(
            decode("case_teleported", 1, CODEC_BINCODE2, &[]),
            Err(CodecError::UnknownType { .. })
        ));
        assert!(matches!(
            decode("case_claimed", 7, CODEC_BINCODE2, &[]),
            Err(CodecError::UnknownType { .. })
        ));
        assert!(matches!(
            decode("case_submitted", 2, CODEC_BINCODE2, &[0xff; 7]),
            Err(CodecError::Malformed { .. })
        ));
    }

    /// The `event_codec` fuzz target's first finding, committed as it was found (the target's
    /// input: a byte each for the type, the version and the codec, then the payload): a
    /// `user_registered` whose username claims 0xfcfcfcdc bytes. Before the limit the decoder
    /// allocated those 4 GiB before finding them missing.
    #[test]
    fn a_length_prefix_beyond_the_limit_is_refused_before_allocating() {
        let input = include_bytes!("../tests/fuzz_regressions/event_codec-oom-6bfc5955.bin");
        let payload = &input[3..];
        let err = decode("user_registered", 1, CODEC_BINCODE2, payload).unwrap_err();
        let CodecError::Malformed { reason, .. } = err else {
            panic!("not malformed: {err:?}");
        };
        assert!(reason.contains("LimitExceeded"), "{reason}");
    }

    #[test]
    fn the_largest_valid_payload_is_well_within_the_limit() {
        use crate::domain::case::{Assessment, CaseEvent, CaseSubmitted};
        use crate::domain::{Culpability, Priority};
        // Every text field at its longest, in 4-byte characters.
        let long = |chars: usize| "𝔄".repeat(chars);
        let event = DomainEvent::Case(CaseEvent::Submitted(CaseSubmitted {
            case_id: uuid::Uuid::nil(),
            subject_ref: long(256),
            excerpt: long(20_000),
            assessment: Assessment {
                culpability: Culpability::Knowingly,
                confidence: 0.5,
                rationale: long(4_000),
            },
            priority: Priority::Urgent,
            submitted_by: uuid::Uuid::nil(),
        }));
        let encoded = encode(&event).unwrap();
        assert!(
            encoded.payload.len() < 128 * 1024,
            "{}",
            encoded.payload.len()
        );
        let back = decode(
            encoded.event_type,
            encoded.schema_version,
            encoded.codec,
            &encoded.payload,
        )
        .unwrap();
        assert_eq!(back, event);
    }
}
