//! The event codec's decoder on arbitrary bytes, as a damaged or hostile store would hand them
//! over: any event type (known or not), schema version and codec id, any payload. It answers an
//! event or an error, never panics, never allocates more than `codec::MAX_DECODED_BYTES` for one
//! payload, and an event it decodes encodes again into bytes that decode and encode to the same
//! bytes.

#![no_main]

use events::codec::{decode, encode};
use libfuzzer_sys::fuzz_target;

/// Every type name this build knows, and one it does not.
const TYPES: [&str; 16] = [
    "case_submitted",
    "case_claimed",
    "case_released",
    "case_decided",
    "case_escalated",
    "case_reopened",
    "user_registered",
    "user_roles_changed",
    "user_disabled",
    "user_enabled",
    "user_password_changed",
    "token_revoked",
    "token_family_revoked",
    "token_refreshed",
    "demo_store_marked",
    "no_such_event",
];

fuzz_target!(|data: &[u8]| {
    let [kind, version, codec, payload @ ..] = data else {
        return;
    };
    let event_type = TYPES[usize::from(*kind) % TYPES.len()];
    // Mostly the versions that exist (1 and 2), sometimes any.
    let schema_version = match version {
        0..=127 => 1,
        128..=250 => 2,
        other => u16::from(*other),
    };
    // Mostly the one codec there is.
    let codec = if *codec < 250 { 1 } else { *codec };
    let Ok(event) = decode(event_type, schema_version, codec, payload) else {
        return;
    };
    let again = encode(&event).expect("a decoded event encodes");
    let round = decode(
        again.event_type,
        again.schema_version,
        again.codec,
        &again.payload,
    )
    .expect("what this build encodes, it decodes");
    // Compared as bytes, not values: a stored confidence may be NaN, which is not equal to
    // itself (the target's second run found one).
    let third = encode(&round).expect("a decoded event encodes");
    assert_eq!(third, again);
});
