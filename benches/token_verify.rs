//! Measures what every API request and WebSocket connect pays for its token: `decode_access`
//! (signature, times, issuer) plus `check_access` (revocations, user) against read models of
//! 10,000 users, 10,000 revoked tokens and 10,000 revoked families. The target is under 20 µs
//! for the default HS256; RS256 and EdDSA are measured alongside for operators choosing one.
//!
//! Run with `cargo bench --bench token_verify`.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use adjudicator::auth::{check_access, Grant, HmacSecret, TokenKeys, TokenService, TokenSettings};
use adjudicator::config::JwtAlgorithm;
use criterion::{criterion_group, criterion_main, Criterion};
use events::domain::revocation::{
    FamilyRevocationReason, RevocationEvent, TokenFamilyRevoked, TokenRevoked, STREAM,
};
use events::domain::user::{stream_name, user_id_for, UserEvent, UserRegistered};
use events::domain::{DomainEvent, Role};
use events::hash::GENESIS;
use events::{EventData, EventEnvelope, Metadata, RecordedEvent, Timestamp};
use projections::Projections;
use uuid::Uuid;

const USERS: u64 = 10_000;
const REVOCATIONS: u64 = 10_000;

fn envelope(position: u64, stream: &str, event: DomainEvent) -> EventEnvelope {
    let metadata = Metadata {
        user_id: None,
        correlation_id: Uuid::from_u128(u128::from(position)),
        causation_id: None,
    };
    let data = EventData::encode(&event, metadata, Timestamp::from_micros(1_000_000))
        .expect("events encode");
    let record = RecordedEvent {
        position,
        stream: stream.to_owned(),
        version: 1,
        data,
        prev_hash: GENESIS,
        hash: GENESIS,
    };
    EventEnvelope::decode(record).expect("events decode")
}

/// The read models: `USERS` users `user-0…`, `REVOCATIONS` revoked tokens and as many revoked
/// families, none of them the measured token's.
fn projections() -> Projections {
    let mut p = Projections::new();
    let mut position = 0;
    for n in 0..USERS {
        position += 1;
        let username = format!("user-{n}");
        let user_id = user_id_for(&username);
        let event = UserEvent::Registered(UserRegistered {
            user_id,
            username,
            display_name: format!("User {n}"),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            roles: vec![Role::Reviewer],
        });
        p.apply(&envelope(position, &stream_name(user_id), event.into()));
    }
    let far = Timestamp::now().plus(Duration::from_secs(86_400));
    for n in 0..REVOCATIONS {
        let user_id = user_id_for(&format!("user-{}", n % USERS));
        for event in [
            RevocationEvent::TokenRevoked(TokenRevoked {
                jti: Uuid::now_v7(),
                user_id,
                expires_at: far,
            }),
            RevocationEvent::FamilyRevoked(TokenFamilyRevoked {
                family_id: Uuid::now_v7(),
                user_id,
                expires_at: far,
                reason: FamilyRevocationReason::Logout,
            }),
        ] {
            position += 1;
            p.apply(&envelope(position, STREAM, event.into()));
        }
    }
    assert_eq!(p.users().len(), USERS as usize);
    assert_eq!(
        p.revocations().len(),
        (REVOCATIONS as usize, REVOCATIONS as usize)
    );
    p
}

fn settings() -> TokenSettings {
    TokenSettings {
        issuer: "adjudicator".into(),
        audience: "adjudicator".into(),
        access_ttl: Duration::from_secs(15 * 60),
        refresh_ttl: Duration::from_secs(7 * 86_400),
        leeway: Duration::ZERO,
    }
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/jwt")
        .join(name)
}

fn services() -> Vec<(&'static str, TokenService)> {
    let secret = HmacSecret::new(vec![42; 64]).expect("long enough");
    let pem = |algorithm, name: &str| {
        let keys = TokenKeys::from_pem_files(
            algorithm,
            &fixture(&format!("{name}-public.pem")),
            Some(&fixture(&format!("{name}-private.pem"))),
        )
        .expect("fixture keys");
        TokenService::new(keys, settings())
    };
    vec![
        (
            "hs256",
            TokenService::new(TokenKeys::hs256(&secret), settings()),
        ),
        ("eddsa", pem(JwtAlgorithm::EdDsa, "eddsa")),
        ("rs256", pem(JwtAlgorithm::Rs256, "rs256")),
    ]
}

fn token_verify(c: &mut Criterion) {
    let projections = projections();
    let user = user_id_for("user-5000");
    let mut group = c.benchmark_group("token_verify");
    for (name, service) in services() {
        let credential_version = projections
            .users()
            .get(user)
            .expect("the user exists")
            .credential_version;
        let grant = Grant {
            user_id: user,
            roles: &[Role::Reviewer],
            family: Uuid::now_v7(),
            generation: 0,
            credential_version,
            issued_at: Timestamp::now(),
        };
        let pair = service.issue_pair(&grant).expect("issues");
        let token = pair.access_token;
        // Sanity: the measured path succeeds.
        let claims = service.decode_access(&token).expect("valid token");
        check_access(&claims, projections.users(), projections.revocations())
            .expect("valid principal");

        group.bench_function(format!("{name}/decode_access+check_access"), |b| {
            b.iter(|| {
                let claims = service
                    .decode_access(black_box(&token))
                    .expect("valid token");
                check_access(&claims, projections.users(), projections.revocations())
                    .expect("valid principal")
            })
        });
        if name == "hs256" {
            group.bench_function("hs256/decode_access", |b| {
                b.iter(|| service.decode_access(black_box(&token)).expect("valid"))
            });
            group.bench_function("check_access", |b| {
                b.iter(|| {
                    check_access(
                        black_box(&claims),
                        projections.users(),
                        projections.revocations(),
                    )
                    .expect("valid principal")
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, token_verify);
criterion_main!(benches);
