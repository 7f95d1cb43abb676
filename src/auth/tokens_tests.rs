//! Tests of [`TokenService`]: issuing, every refusal and its reason code, and their order.

use std::fs;
use std::time::Duration;

use events::domain::Role;
use events::Timestamp;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::auth::secret::HmacSecret;
use crate::auth::test_keys::{craft, fixture, hs_service, token_settings, SECRET};
use crate::config::JwtAlgorithm;

/// 2027-01-15T08:00:00.4Z: a little after a whole second, as a real clock would be.
const NOW: Timestamp = Timestamp::from_micros(1_800_000_000_400_000);
const USER: Uuid = Uuid::from_u128(0xada);
const FAMILY: Uuid = Uuid::from_u128(0xfa);

const ROLES: [Role; 2] = [Role::Reviewer, Role::Auditor];

/// A grant for USER in FAMILY at NOW: generation 2, credential version 5.
fn grant() -> Grant<'static> {
    Grant {
        user_id: USER,
        roles: &ROLES,
        family: FAMILY,
        generation: 2,
        credential_version: 5,
        issued_at: NOW,
    }
}

fn pair(service: &TokenService) -> TokenPair {
    service.issue_pair(&grant()).expect("issues")
}

fn later(d: Duration) -> Timestamp {
    NOW.plus(d)
}

fn hs_key() -> (EncodingKey, Algorithm) {
    (EncodingKey::from_secret(SECRET), Algorithm::HS256)
}

/// The claims of a fresh access token as JSON text, to build crafted tokens from.
fn access_claims_json(service: &TokenService) -> serde_json::Value {
    let claims = service
        .decode_access_at(&pair(service).access_token, NOW)
        .expect("valid");
    serde_json::to_value(claims).expect("serializes")
}

fn rs_service(private: bool) -> TokenService {
    let private = private.then(|| fixture("rs256-private.pem"));
    let keys = TokenKeys::from_pem_files(
        JwtAlgorithm::Rs256,
        &fixture("rs256-public.pem"),
        private.as_deref(),
    )
    .expect("keys");
    TokenService::new(keys, token_settings())
}

fn ed_service(public: &str, private: bool) -> TokenService {
    let private = private.then(|| fixture("eddsa-private.pem"));
    let keys = TokenKeys::from_pem_files(JwtAlgorithm::EdDsa, &fixture(public), private.as_deref())
        .expect("keys");
    TokenService::new(keys, token_settings())
}

fn with_settings(change: impl FnOnce(&mut TokenSettings)) -> TokenService {
    let mut settings = token_settings();
    change(&mut settings);
    let secret = HmacSecret::new(SECRET.to_vec()).expect("long enough");
    TokenService::new(TokenKeys::hs256(&secret), settings)
}

#[test]
fn a_pair_carries_every_claim() {
    let service = hs_service();
    let pair = pair(&service);
    let access = service
        .decode_access_at(&pair.access_token, NOW)
        .expect("valid access token");
    let refresh = service
        .decode_refresh_at(&pair.refresh_token, NOW)
        .expect("valid refresh token");

    assert_eq!(access.sub, USER);
    assert_eq!(access.typ, TokenType::Access);
    assert_eq!(refresh.typ, TokenType::Refresh);
    assert_eq!(access.roles, [Role::Reviewer, Role::Auditor]);
    assert_eq!((access.fam, refresh.fam), (FAMILY, FAMILY));
    assert_eq!((access.gen, refresh.gen), (2, 2));
    assert_eq!((access.cv, refresh.cv), (5, 5));
    assert_eq!(
        (access.jti, refresh.jti),
        (pair.access_jti, pair.refresh_jti)
    );
    assert_ne!(access.jti, refresh.jti);
    assert_eq!(access.jti.get_version_num(), 7);
    assert_eq!(
        (access.iss.as_str(), access.aud.as_str()),
        ("adjudicator", "adjudicator")
    );
    assert_eq!(access.iat, 1_800_000_000);
    assert_eq!(access.nbf, access.iat);
    assert_eq!(access.iat_us, NOW.as_micros());
    // 15 minutes after NOW, rounded up to the second.
    assert_eq!(access.exp, 1_800_000_000 + 900 + 1);
    assert_eq!(refresh.exp, 1_800_000_000 + 7 * 86_400 + 1);
    assert_eq!(pair.access_expires_at, access.expires_at());
    assert_eq!(pair.refresh_expires_at, refresh.expires_at());

    let header = pair.access_token.split('.').next().expect("header");
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("b64")).expect("json");
    assert_eq!(header["alg"], "HS256");

    let again = service.issue_pair(&grant()).expect("issues");
    assert_ne!(again.access_jti, pair.access_jti, "fresh ids every time");
}

#[test]
fn the_same_grant_and_ids_give_the_same_tokens() {
    for service in [
        hs_service(),
        rs_service(true),
        ed_service("eddsa-public.pem", true),
    ] {
        let first = pair(&service);
        let again = service
            .issue_pair_with_ids(&grant(), first.access_jti, first.refresh_jti)
            .expect("issues");
        assert_eq!(again, first, "{:?}", service.keys().algorithm());
    }
}

#[test]
fn an_empty_token_is_missing() {
    let err = hs_service().decode_at("", NOW).expect_err("empty");
    assert_eq!((err, err.code()), (TokenError::Missing, "token_missing"));
}

#[test]
fn malformed_tokens() {
    let service = hs_service();
    let good = pair(&service).access_token;
    let (header, rest) = good.split_once('.').expect("parts");
    let (payload, signature) = rest.split_once('.').expect("parts");
    let b64 = |s: &str| URL_SAFE_NO_PAD.encode(s);
    let too_long = format!("{header}.{}.{signature}", "A".repeat(MAX_TOKEN_BYTES));
    let cases = [
        "x".to_owned(),
        "a.b".to_owned(),
        format!("{header}.{payload}"),
        format!("{good}.{signature}"),
        format!(".{payload}.{signature}"),
        format!("{header}..{signature}"),
        format!("{header}=.{payload}.{signature}"),
        format!("{header}.{payload}=.{signature}"),
        format!("{header}.{payload}.{signature}="),
        format!("{header}.{payload}.not base64!"),
        format!("{}.{payload}.{signature}", b64("not json")),
        format!("{}.{payload}.{signature}", b64(r#"["HS256"]"#)),
        format!("{}.{payload}.{signature}", b64(r#"{"typ":"JWT"}"#)),
        format!("{}.{payload}.{signature}", b64(r#"{"alg":256}"#)),
        format!(
            "{}.{payload}.{signature}",
            b64(r#"{"alg":"HS256","crit":["b64"]}"#)
        ),
        format!(" {good}"),
        too_long,
    ];
    for token in &cases {
        let err = service.decode_at(token, NOW).expect_err("malformed");
        assert_eq!(err, TokenError::Malformed, "{token}");
        assert_eq!(err.code(), "token_malformed");
    }
}

#[test]
fn signed_claims_that_are_not_ours_are_malformed() {
    let service = hs_service();
    let mut claims = access_claims_json(&service);
    claims.as_object_mut().expect("object").remove("fam");
    let (key, alg) = hs_key();
    let header = r#"{"alg":"HS256","typ":"JWT"}"#;
    let token = craft(header, &claims.to_string(), Some((&key, alg)));
    assert_eq!(service.decode_at(&token, NOW), Err(TokenError::Malformed));
    let token = craft(header, "not json", Some((&key, alg)));
    assert_eq!(service.decode_at(&token, NOW), Err(TokenError::Malformed));
    let mut claims = access_claims_json(&service);
    claims["roles"] = json!(["superuser"]);
    let token = craft(header, &claims.to_string(), Some((&key, alg)));
    assert_eq!(service.decode_at(&token, NOW), Err(TokenError::Malformed));
}

#[test]
fn alg_none_is_refused() {
    let service = hs_service();
    let claims = access_claims_json(&service).to_string();
    let (key, alg) = hs_key();
    for header in [
        r#"{"alg":"none","typ":"JWT"}"#,
        r#"{"alg":"None"}"#,
        r#"{"alg":"NONE"}"#,
        r#"{"alg":""}"#,
    ] {
        let unsigned = craft(header, &claims, None);
        let err = service.decode_at(&unsigned, NOW).expect_err("alg none");
        assert_eq!(err, TokenError::WrongAlgorithm, "{header}");
        assert_eq!(err.code(), "token_invalid_signature");
        // Even with a valid HS256 signature, the header decides nothing.
        let signed = craft(header, &claims, Some((&key, alg)));
        assert_eq!(
            service.decode_at(&signed, NOW),
            Err(TokenError::WrongAlgorithm),
            "{header}"
        );
    }
    // The right algorithm with no signature at all.
    let unsigned = craft(r#"{"alg":"HS256"}"#, &claims, None);
    assert_eq!(
        service.decode_at(&unsigned, NOW),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn another_key_or_a_changed_payload_is_a_bad_signature() {
    let service = hs_service();
    let other = HmacSecret::new(b"another secret of at least thirty-two bytes".to_vec())
        .expect("long enough");
    let foreign = TokenService::new(TokenKeys::hs256(&other), token_settings());
    let token = pair(&foreign).access_token;
    let err = service.decode_at(&token, NOW).expect_err("wrong key");
    assert_eq!(
        (err, err.code()),
        (TokenError::BadSignature, "token_invalid_signature")
    );

    // Promote oneself to admin, keep the signature.
    let token = pair(&service).access_token;
    let mut parts = token.split('.');
    let (header, _, signature) = (parts.next(), parts.next(), parts.next());
    let mut claims = access_claims_json(&service);
    claims["roles"] = json!(["admin"]);
    let forged = format!(
        "{}.{}.{}",
        header.expect("header"),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        signature.expect("signature")
    );
    assert_eq!(
        service.decode_at(&forged, NOW),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn rs256_verifies_and_issues_only_with_a_private_key() {
    let issuer = rs_service(true);
    let verifier = rs_service(false);
    let pair = pair(&issuer);
    let claims = verifier
        .decode_access_at(&pair.access_token, NOW)
        .expect("verifies with the public key");
    assert_eq!(claims.sub, USER);
    assert!(matches!(
        verifier.issue_pair(&grant()),
        Err(IssueError::IssuingDisabled)
    ));
    // An RS256 token means nothing to an HS256 server, and the other way round.
    assert_eq!(
        hs_service().decode_at(&pair.access_token, NOW),
        Err(TokenError::WrongAlgorithm)
    );
    assert_eq!(
        verifier.decode_at(&self::pair(&hs_service()).access_token, NOW),
        Err(TokenError::WrongAlgorithm)
    );
}

#[test]
fn hs256_signed_with_the_rsa_public_key_is_refused() {
    let verifier = rs_service(false);
    let public_pem = fs::read(fixture("rs256-public.pem")).expect("fixture");
    let claims = access_claims_json(&hs_service()).to_string();
    let confused = EncodingKey::from_secret(&public_pem);
    // The classic confusion: header says HS256, the "secret" is the public key's PEM.
    let token = craft(
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &claims,
        Some((&confused, Algorithm::HS256)),
    );
    let err = verifier.decode_at(&token, NOW).expect_err("confusion");
    assert_eq!(
        (err, err.code()),
        (TokenError::WrongAlgorithm, "token_invalid_signature")
    );
    // The same HMAC under a header that claims RS256.
    let token = craft(
        r#"{"alg":"RS256","typ":"JWT"}"#,
        &claims,
        Some((&confused, Algorithm::HS256)),
    );
    assert_eq!(
        verifier.decode_at(&token, NOW),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn eddsa_verifies_with_its_own_public_key_only() {
    let issuer = ed_service("eddsa-public.pem", true);
    let pair = pair(&issuer);
    assert!(ed_service("eddsa-public.pem", false)
        .decode_refresh_at(&pair.refresh_token, NOW)
        .is_ok());
    let stranger = ed_service("eddsa-other-public.pem", false);
    assert_eq!(
        stranger.decode_at(&pair.access_token, NOW),
        Err(TokenError::BadSignature)
    );
    let header = pair.access_token.split('.').next().expect("header");
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("b64")).expect("json");
    assert_eq!(header["alg"], "EdDSA");
}

#[test]
fn expiry_without_leeway() {
    let service = hs_service();
    let token = pair(&service).access_token;
    let exp = service.decode_at(&token, NOW).expect("valid").expires_at();
    let just_before = Timestamp::from_micros(exp.as_micros() - 1);
    assert!(service.decode_at(&token, just_before).is_ok());
    let err = service.decode_at(&token, exp).expect_err("expired at exp");
    assert_eq!((err, err.code()), (TokenError::Expired, "token_expired"));
    assert_eq!(
        service.decode_at(&token, later(Duration::from_secs(3600))),
        Err(TokenError::Expired)
    );
}

#[test]
fn expiry_with_leeway() {
    let service = with_settings(|s| s.leeway = Duration::from_secs(5));
    let token = pair(&service).access_token;
    let exp = service.decode_at(&token, NOW).expect("valid").expires_at();
    assert!(service
        .decode_at(&token, exp.plus(Duration::from_micros(4_999_999)))
        .is_ok());
    assert_eq!(
        service.decode_at(&token, exp.plus(Duration::from_secs(5))),
        Err(TokenError::Expired)
    );
}

#[test]
fn not_yet_valid_is_malformed_unless_within_the_leeway() {
    let service = hs_service();
    let token = pair(&service).access_token;
    let a_second_early = Timestamp::from_micros(NOW.as_micros() - 1_000_000);
    let err = service
        .decode_at(&token, a_second_early)
        .expect_err("before nbf");
    assert_eq!(
        (err, err.code()),
        (TokenError::NotYetValid, "token_malformed")
    );
    // nbf is the issue time rounded down, so the start of its second is fine.
    let start_of_second = Timestamp::from_micros(1_800_000_000_000_000);
    assert!(service.decode_at(&token, start_of_second).is_ok());
    let lenient = with_settings(|s| s.leeway = Duration::from_secs(2));
    assert!(lenient.decode_at(&token, a_second_early).is_ok());
}

#[test]
fn another_issuer_or_audience_is_refused() {
    let token = pair(&hs_service()).access_token;
    let other_issuer = with_settings(|s| s.issuer = "someone-else".into());
    let err = other_issuer.decode_at(&token, NOW).expect_err("issuer");
    assert_eq!(
        (err, err.code()),
        (TokenError::WrongIssuer, "token_invalid_signature")
    );
    let other_audience = with_settings(|s| s.audience = "someone-else".into());
    let err = other_audience.decode_at(&token, NOW).expect_err("audience");
    assert_eq!(
        (err, err.code()),
        (TokenError::WrongAudience, "token_invalid_signature")
    );
}

#[test]
fn the_wrong_type_is_refused() {
    let service = hs_service();
    let pair = pair(&service);
    let err = service
        .decode_access_at(&pair.refresh_token, NOW)
        .expect_err("refresh as access");
    assert_eq!(
        (err, err.code()),
        (TokenError::WrongType, "token_wrong_type")
    );
    assert_eq!(
        service.decode_refresh_at(&pair.access_token, NOW),
        Err(TokenError::WrongType)
    );
    assert!(
        service.decode_at(&pair.refresh_token, NOW).is_ok(),
        "decode alone takes either"
    );
}

#[test]
fn checks_run_in_the_documented_order() {
    let service = hs_service();
    let long_after = later(Duration::from_secs(30 * 86_400));
    let claims = access_claims_json(&service).to_string();

    // Malformed before algorithm: a none token with a broken signature part.
    let broken = format!("{}!", craft(r#"{"alg":"none"}"#, &claims, None));
    assert_eq!(
        service.decode_at(&broken, long_after),
        Err(TokenError::Malformed)
    );
    // Algorithm before expiry.
    let none = craft(r#"{"alg":"none"}"#, &claims, None);
    assert_eq!(
        service.decode_at(&none, long_after),
        Err(TokenError::WrongAlgorithm)
    );
    // Signature before expiry.
    let bad = craft(
        r#"{"alg":"HS256"}"#,
        &claims,
        Some((&EncodingKey::from_secret(b"not our key"), Algorithm::HS256)),
    );
    assert_eq!(
        service.decode_at(&bad, long_after),
        Err(TokenError::BadSignature)
    );
    // Expiry before issuer and type.
    let pair = pair(&service);
    let other_issuer = with_settings(|s| s.issuer = "someone-else".into());
    assert_eq!(
        other_issuer.decode_access_at(&pair.refresh_token, long_after),
        Err(TokenError::Expired)
    );
    // Issuer before type.
    assert_eq!(
        other_issuer.decode_access_at(&pair.refresh_token, NOW),
        Err(TokenError::WrongIssuer)
    );
}
