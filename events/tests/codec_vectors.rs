//! Test vectors of the payload codec: records written by any schema version stay readable.
//!
//! `tests/vectors/<event_type>.v<schema_version>.hex` holds the bincode payload of one fixed
//! sample value of that event type, as written by that schema version (see the README there).
//! The default run only reads those committed files and checks that
//!
//! * each one decodes (through `codec::decode`, upcasting if it is an old version) to the sample
//!   value written below,
//! * encoding the current samples reproduces the committed bytes of the current schema versions
//!   exactly, so an accidental change of encoding fails here before it reaches a store, and
//! * every event type of this build has a vector of its current schema version.
//!
//! **Adding a vector** (a new event type, or a new schema version of one): add its sample to
//! [`vectors`] (and to [`variant_index`] for a new type), then run once
//!
//! ```text
//! REGENERATE_VECTORS=1 cargo test -p events --test codec_vectors
//! ```
//!
//! which writes the files that are missing and nothing else: it never overwrites a committed
//! vector, so an old schema version's bytes cannot be "fixed" by regenerating. Commit the new
//! file. When a type gets a new schema version, its old sample stays in [`vectors`] unchanged,
//! written with the legacy struct its old version decodes into (as `case_submitted` v1 is).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Once;

use events::codec::{self, legacy::CaseSubmittedV1, CODEC_BINCODE2};
use events::domain::case::{
    Assessment, CaseClaimed, CaseDecided, CaseEscalated, CaseEvent, CaseReleased, CaseReopened,
    CaseSubmitted, ReleaseReason,
};
use events::domain::revocation::{
    FamilyRevocationReason, RevocationEvent, TokenFamilyRevoked, TokenRefreshed, TokenRevoked,
};
use events::domain::system::{DemoStoreMarked, SystemEvent};
use events::domain::user::{
    UserDisabled, UserEnabled, UserEvent, UserPasswordChanged, UserRegistered, UserRolesChanged,
};
use events::domain::{Culpability, Decision, DomainEvent, Priority, Role};
use events::Timestamp;
use uuid::Uuid;

/// One committed vector: the payload of `event_type` at `schema_version`.
struct Vector {
    event_type: &'static str,
    schema_version: u16,
    /// What decoding the committed bytes must give.
    expected: DomainEvent,
    /// The bytes this build writes for the sample: compared with the committed file for the
    /// current schema versions, and written to a missing file when regenerating.
    bytes: Vec<u8>,
    /// Whether this build still writes this schema version.
    current: bool,
}

impl Vector {
    fn file_name(&self) -> String {
        file_name(self.event_type, self.schema_version)
    }
}

fn file_name(event_type: &str, schema_version: u16) -> String {
    format!("{event_type}.v{schema_version}.hex")
}

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

// ---- the samples --------------------------------------------------------------------------
//
// Fixed forever: changing a sample changes what its committed vector must decode to.

const CASE_ID: Uuid = Uuid::from_u128(0x0192_f3a0_7c41_7d2e_8b6a_1f2e_3d4c_5b6a);
const CLASSIFIER_ID: Uuid = Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0c1a);
const REVIEWER_ID: Uuid = Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0e71);
const ADMIN_ID: Uuid = Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0ad1);
const TOKEN_ID: Uuid = Uuid::from_u128(0x0192_f3a0_7c41_7d2e_8b6a_0000_0000_7070);
const FAMILY_ID: Uuid = Uuid::from_u128(0x0192_f3a0_7c41_7d2e_8b6a_0000_0000_fa31);
/// 2026-11-27T22:55:15.123456Z
const TIME: Timestamp = Timestamp::from_micros(1_795_820_115_123_456);

fn assessment() -> Assessment {
    Assessment {
        culpability: Culpability::Recklessly,
        confidence: 0.875,
        rationale: "Knew of the risk — § 2.02(2)(c) — and took it.".into(),
    }
}

fn case_submitted_v1() -> CaseSubmittedV1 {
    CaseSubmittedV1 {
        case_id: CASE_ID,
        subject_ref: "docket/2026/0042".into(),
        excerpt: "Er wusste, dass die Brücke gesperrt war, und fuhr weiter.".into(),
        assessment: assessment(),
        submitted_by: CLASSIFIER_ID,
    }
}

fn case_submitted_v2() -> CaseSubmitted {
    CaseSubmitted {
        case_id: CASE_ID,
        subject_ref: "docket/2026/0042".into(),
        excerpt: "Er wusste, dass die Brücke gesperrt war, und fuhr weiter.".into(),
        assessment: assessment(),
        priority: Priority::High,
        submitted_by: CLASSIFIER_ID,
    }
}

/// The current build's sample of every event type.
fn current_samples() -> Vec<DomainEvent> {
    vec![
        CaseEvent::Submitted(case_submitted_v2()).into(),
        CaseEvent::Claimed(CaseClaimed {
            reviewer_id: REVIEWER_ID,
            lease_expires_at: TIME,
        })
        .into(),
        CaseEvent::Released(CaseReleased {
            reviewer_id: REVIEWER_ID,
            reason: ReleaseReason::LeaseExpired,
        })
        .into(),
        CaseEvent::Decided(CaseDecided {
            reviewer_id: REVIEWER_ID,
            decision: Decision::Amend,
            final_culpability: Some(Culpability::Negligently),
            notes: Some("Could not have seen the sign.".into()),
        })
        .into(),
        CaseEvent::Escalated(CaseEscalated {
            reviewer_id: REVIEWER_ID,
            notes: "Conflicting witness statements.".into(),
        })
        .into(),
        CaseEvent::Reopened(CaseReopened {
            reopened_by: ADMIN_ID,
            reason: "Appeal granted.".into(),
        })
        .into(),
        UserEvent::Registered(UserRegistered {
            user_id: REVIEWER_ID,
            username: "zoë".into(),
            display_name: "Zoë Reviewer".into(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".into(),
            roles: vec![Role::Reviewer, Role::SeniorReviewer],
        })
        .into(),
        UserEvent::RolesChanged(UserRolesChanged {
            roles: vec![Role::Auditor, Role::Admin],
        })
        .into(),
        UserEvent::Disabled(UserDisabled {}).into(),
        UserEvent::Enabled(UserEnabled {}).into(),
        UserEvent::PasswordChanged(UserPasswordChanged {
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$bmV3c2FsdA$bmV3aGFzaG5ld2hhc2g".into(),
        })
        .into(),
        RevocationEvent::TokenRevoked(TokenRevoked {
            jti: TOKEN_ID,
            user_id: REVIEWER_ID,
            expires_at: TIME,
        })
        .into(),
        RevocationEvent::FamilyRevoked(TokenFamilyRevoked {
            family_id: FAMILY_ID,
            user_id: REVIEWER_ID,
            expires_at: TIME,
            reason: FamilyRevocationReason::RefreshReuse,
        })
        .into(),
        RevocationEvent::Refreshed(TokenRefreshed {
            family_id: FAMILY_ID,
            user_id: REVIEWER_ID,
            used_jti: TOKEN_ID,
            access_jti: Uuid::from_u128(0x0192_f3a0_7c41_7d2e_8b6a_0000_0000_acce),
            refresh_jti: Uuid::from_u128(0x0192_f3a0_7c41_7d2e_8b6a_0000_0000_4e1f),
            issued_at: TIME,
            credential_version: 3,
        })
        .into(),
        SystemEvent::DemoStoreMarked(DemoStoreMarked {}).into(),
    ]
}

/// Every committed vector: the current samples, and the samples of older schema versions.
fn vectors() -> Vec<Vector> {
    let mut all: Vec<Vector> = current_samples()
        .into_iter()
        .map(|event| {
            let encoded = codec::encode(&event).expect("a sample encodes");
            Vector {
                event_type: encoded.event_type,
                schema_version: encoded.schema_version,
                expected: event,
                bytes: encoded.payload,
                current: true,
            }
        })
        .collect();

    // case_submitted v1: no priority; read back as `normal`.
    all.push(Vector {
        event_type: "case_submitted",
        schema_version: 1,
        expected: CaseEvent::Submitted(CaseSubmitted {
            priority: Priority::Normal,
            ..case_submitted_v2()
        })
        .into(),
        bytes: bincode::serde::encode_to_vec(case_submitted_v1(), bincode::config::standard())
            .expect("the v1 sample encodes"),
        current: false,
    });
    all
}

/// A distinct number for each kind of event. The match has no catch-all, so a new event type
/// does not compile until it is listed here, and then fails
/// `every_event_type_of_this_build_has_a_vector` until it has a sample.
fn variant_index(event: &DomainEvent) -> usize {
    use CaseEvent as C;
    use RevocationEvent as R;
    use UserEvent as U;
    match event {
        DomainEvent::Case(e) => match e {
            C::Submitted(_) => 0,
            C::Claimed(_) => 1,
            C::Released(_) => 2,
            C::Decided(_) => 3,
            C::Escalated(_) => 4,
            C::Reopened(_) => 5,
        },
        DomainEvent::User(e) => match e {
            U::Registered(_) => 6,
            U::RolesChanged(_) => 7,
            U::Disabled(_) => 8,
            U::Enabled(_) => 9,
            U::PasswordChanged(_) => 10,
        },
        DomainEvent::Revocation(e) => match e {
            R::TokenRevoked(_) => 11,
            R::FamilyRevoked(_) => 12,
            R::Refreshed(_) => 13,
        },
        DomainEvent::System(e) => match e {
            SystemEvent::DemoStoreMarked(_) => 14,
        },
    }
}
/// How many kinds of event [`variant_index`] knows.
const EVENT_KINDS: usize = 15;

// ---- files --------------------------------------------------------------------------------

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .map(|b| match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => panic!("not a hex digit: {:?}", b as char),
        })
        .collect();
    assert!(digits.len().is_multiple_of(2), "odd number of hex digits");
    digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect()
}

/// Writes the vectors that are missing, once per test run, if `REGENERATE_VECTORS=1`.
/// Never overwrites a committed file.
fn regenerate_missing_if_asked() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var("REGENERATE_VECTORS").as_deref() != Ok("1") {
            return;
        }
        std::fs::create_dir_all(vectors_dir()).unwrap();
        for v in vectors() {
            let path = vectors_dir().join(v.file_name());
            if !path.exists() {
                std::fs::write(&path, to_hex(&v.bytes) + "\n").unwrap();
                eprintln!("wrote {}", path.display());
            }
        }
    });
}

/// The committed bytes of a vector.
fn committed(name: &str) -> Vec<u8> {
    regenerate_missing_if_asked();
    let path = vectors_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; generate it with REGENERATE_VECTORS=1 (see the top of this file)",
            path.display()
        )
    });
    from_hex(&text)
}

/// The names of the `.hex` files in the vectors directory.
fn committed_names() -> BTreeSet<String> {
    regenerate_missing_if_asked();
    std::fs::read_dir(vectors_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".hex"))
        .collect()
}

// ---- tests --------------------------------------------------------------------------------

#[test]
fn every_committed_vector_decodes_to_its_sample() {
    let vectors = vectors();
    let names = committed_names();
    for name in &names {
        let v = vectors
            .iter()
            .find(|v| &v.file_name() == name)
            .unwrap_or_else(|| panic!("{name} has no sample in this test: add one to `vectors`"));
        let decoded = codec::decode(
            v.event_type,
            v.schema_version,
            CODEC_BINCODE2,
            &committed(name),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(decoded, v.expected, "{name}");
    }
    for v in &vectors {
        assert!(
            names.contains(&v.file_name()),
            "{} is not committed",
            v.file_name()
        );
    }
}

#[test]
fn a_version_1_submission_is_read_with_normal_priority() {
    let decoded = codec::decode(
        "case_submitted",
        1,
        CODEC_BINCODE2,
        &committed("case_submitted.v1.hex"),
    )
    .unwrap();
    let DomainEvent::Case(CaseEvent::Submitted(submitted)) = decoded else {
        panic!("not a submission: {decoded:?}");
    };
    assert_eq!(submitted.priority, Priority::Normal);
    assert_eq!(submitted, case_submitted_v1().upcast());
}

#[test]
fn encoding_the_current_samples_reproduces_the_committed_bytes() {
    for v in vectors().into_iter().filter(|v| v.current) {
        assert_eq!(
            to_hex(&v.bytes),
            to_hex(&committed(&v.file_name())),
            "the encoding of {} changed: give it a new schema version instead",
            v.file_name()
        );
    }
}

#[test]
fn every_event_type_of_this_build_has_a_vector() {
    let samples = current_samples();
    let kinds: BTreeSet<usize> = samples.iter().map(variant_index).collect();
    assert_eq!(
        kinds,
        (0..EVENT_KINDS).collect(),
        "every kind of event needs a sample"
    );

    let names = committed_names();
    let mut type_names = BTreeSet::new();
    for event in &samples {
        let name = file_name(event.type_name(), event.schema_version());
        assert!(
            names.contains(&name),
            "{name} is missing: the current schema version of {} has no vector",
            event.type_name()
        );
        type_names.insert(event.type_name());
    }
    assert_eq!(type_names.len(), EVENT_KINDS, "type names are not distinct");
}
