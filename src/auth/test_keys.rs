//! Shared pieces of the auth unit tests: the key fixtures, a standard HS256 service, tokens
//! crafted by hand.

use std::path::PathBuf;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey};

use super::secret::HmacSecret;
use super::{TokenKeys, TokenService, TokenSettings};

/// A file of `tests/fixtures/jwt/`.
pub(crate) fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/jwt")
        .join(name)
}

/// The HS256 key of the tests.
pub(crate) const SECRET: &[u8] = b"test secret of the auth unit tests, 48 bytes!!!!";

/// Issuer and audience `adjudicator`, 15 minutes and 7 days, no leeway.
pub(crate) fn token_settings() -> TokenSettings {
    TokenSettings {
        issuer: "adjudicator".into(),
        audience: "adjudicator".into(),
        access_ttl: Duration::from_secs(15 * 60),
        refresh_ttl: Duration::from_secs(7 * 86_400),
        leeway: Duration::ZERO,
    }
}

/// HS256 with [`SECRET`] and [`token_settings`].
pub(crate) fn hs_service() -> TokenService {
    let secret = HmacSecret::new(SECRET.to_vec()).expect("long enough");
    TokenService::new(TokenKeys::hs256(&secret), token_settings())
}

/// A token with this header and payload (JSON texts), signed by `sign` over `header.payload`
/// (`None`: an empty signature).
pub(crate) fn craft(
    header: &str,
    payload: &str,
    sign: Option<(&EncodingKey, Algorithm)>,
) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = match sign {
        Some((key, alg)) => jsonwebtoken::crypto::sign(input.as_bytes(), key, alg).expect("signs"),
        None => String::new(),
    };
    format!("{input}.{signature}")
}
