//! The token parser: `TokenService::decode_at` on arbitrary tokens. Random bytes rarely get past
//! the signature, so half the inputs are turned into tokens *signed with the right key*: the
//! header and claims parsing, the time arithmetic (`exp`, `nbf`, leeway) and the issuer checks
//! then see arbitrary JSON. Whatever comes in, the answer is claims or a reason, never a panic,
//! and claims only for a token that says `iss`/`aud` `adjudicator` and is in date.

#![no_main]

use std::time::Duration;

use adjudicator::auth::{HmacSecret, TokenKeys, TokenService, TokenSettings};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use events::Timestamp;
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"the fuzz target's key, at least thirty-two bytes long";

fn service() -> TokenService {
    let secret = HmacSecret::new(SECRET.to_vec()).expect("long enough");
    TokenService::new(
        TokenKeys::hs256(&secret),
        TokenSettings {
            issuer: "adjudicator".into(),
            audience: "adjudicator".into(),
            access_ttl: Duration::from_secs(900),
            refresh_ttl: Duration::from_secs(7 * 86_400),
            leeway: Duration::from_secs(30),
        },
    )
}

/// `header.payload.signature`, the two parts taken as they are and signed with the key.
fn signed(header: &[u8], payload: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let key = EncodingKey::from_secret(SECRET);
    let signature = jsonwebtoken::crypto::sign(input.as_bytes(), &key, Algorithm::HS256)
        .expect("HS256 signs anything");
    format!("{input}.{signature}")
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    // A fixed "now" keeps runs reproducible: 2025-01-01T00:00:00Z.
    let now = Timestamp::from_micros(1_735_689_600_000_000);
    let token = if mode & 1 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        // The claims after the first NUL; before it, the header (a fixed good one if empty).
        let (header, payload) = match rest.iter().position(|b| *b == 0) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (&b""[..], rest),
        };
        let header: &[u8] = if header.is_empty() {
            br#"{"alg":"HS256","typ":"JWT"}"#
        } else {
            header
        };
        signed(header, payload)
    };
    let service = service();
    if let Ok(claims) = service.decode_at(&token, now) {
        assert_eq!(claims.iss, "adjudicator");
        assert_eq!(claims.aud, "adjudicator");
    }
    let _ = service.decode_access_at(&token, now);
    let _ = service.decode_refresh_at(&token, now);
});
