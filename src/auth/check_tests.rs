//! Tests of [`check_access`] and [`check_refresh`] against read models folded from events.

use events::domain::revocation::{
    FamilyRevocationReason, RevocationEvent, TokenFamilyRevoked, TokenRevoked, STREAM,
};
use events::domain::user::{
    stream_name, user_id_for, UserDisabled, UserEnabled, UserEvent, UserPasswordChanged,
    UserRegistered, UserRolesChanged,
};
use events::domain::{DomainEvent, Role};
use events::hash::GENESIS;
use events::{EventData, EventEnvelope, Metadata, RecordedEvent, Timestamp};
use uuid::Uuid;

use super::*;
use crate::auth::test_keys::hs_service;
use crate::auth::TokenPair;

/// A whole second since the epoch, around which the tests issue tokens.
const SECOND: i64 = 1_800_000_010;

fn at(seconds: i64, micros: i64) -> Timestamp {
    Timestamp::from_micros(seconds * 1_000_000 + micros)
}

/// The read models and the next position.
#[derive(Default)]
struct World {
    users: Users,
    revocations: Revocations,
    position: u64,
}

impl World {
    fn with_ada() -> Self {
        let mut world = World::default();
        world.apply(
            &stream_name(ada()),
            at(SECOND - 100, 0),
            UserEvent::Registered(UserRegistered {
                user_id: ada(),
                username: "ada".into(),
                display_name: "Ada".into(),
                password_hash: "$argon2id$stub".into(),
                roles: vec![Role::Reviewer],
            })
            .into(),
        );
        world
    }

    fn apply(&mut self, stream: &str, recorded_at: Timestamp, event: DomainEvent) {
        self.position += 1;
        let metadata = Metadata {
            user_id: None,
            correlation_id: Uuid::from_u128(u128::from(self.position)),
            causation_id: None,
        };
        let data = EventData::encode(&event, metadata, recorded_at).expect("encodes");
        let record = RecordedEvent {
            position: self.position,
            stream: stream.to_owned(),
            version: self.position,
            data,
            prev_hash: GENESIS,
            hash: GENESIS,
        };
        let env = EventEnvelope::decode(record).expect("decodes");
        self.users.apply(&env);
        self.revocations.apply(&env);
    }

    fn user_event(&mut self, recorded_at: Timestamp, event: UserEvent) {
        self.apply(&stream_name(ada()), recorded_at, event.into());
    }

    fn revoke(&mut self, event: RevocationEvent) {
        self.apply(STREAM, at(SECOND, 0), event.into());
    }

    fn access(&self, claims: &Claims) -> Result<Principal, TokenError> {
        check_access(claims, &self.users, &self.revocations)
    }

    fn refresh(&self, claims: &Claims) -> Result<Principal, TokenError> {
        check_refresh(claims, &self.users, &self.revocations)
    }
}

fn ada() -> Uuid {
    user_id_for("ada")
}

const FAMILY: Uuid = Uuid::from_u128(0xfa);

/// Ada's access and refresh claims, issued at `now` from `world`'s read models (with the user's
/// credential version as they have it then).
fn login(world: &World, user: Uuid, now: Timestamp) -> (TokenPair, Claims, Claims) {
    let credential_version = world.users.get(user).map_or(1, |u| u.credential_version);
    issue(user, credential_version, now)
}

/// A pair for `user` with credential version `cv`, issued at `now`.
fn issue(user: Uuid, cv: u64, now: Timestamp) -> (TokenPair, Claims, Claims) {
    let service = hs_service();
    let grant = crate::auth::Grant {
        user_id: user,
        roles: &[Role::Reviewer],
        family: FAMILY,
        generation: 0,
        credential_version: cv,
        issued_at: now,
    };
    let pair = service.issue_pair(&grant).expect("issues");
    let access = service
        .decode_access_at(&pair.access_token, now)
        .expect("valid");
    let refresh = service
        .decode_refresh_at(&pair.refresh_token, now)
        .expect("valid");
    (pair, access, refresh)
}

#[test]
fn a_good_token_gives_its_principal() {
    let world = World::with_ada();
    let (pair, access, refresh) = login(&world, ada(), at(SECOND, 0));
    let principal = world.access(&access).expect("valid");
    assert_eq!(
        principal,
        Principal {
            user_id: ada(),
            username: "ada".into(),
            roles: vec![Role::Reviewer],
            jti: pair.access_jti,
            family: FAMILY,
            expires_at: pair.access_expires_at,
            credential_version: 1,
            checked_at: 0,
        }
    );
    assert!(principal.has(Role::Reviewer) && !principal.has(Role::Admin));
    let principal = world.refresh(&refresh).expect("valid");
    assert_eq!(principal.jti, pair.refresh_jti);
    assert_eq!(principal.expires_at, pair.refresh_expires_at);
}

#[test]
fn each_check_wants_its_own_type() {
    let world = World::with_ada();
    let (_, access, refresh) = login(&world, ada(), at(SECOND, 0));
    assert_eq!(world.access(&refresh), Err(TokenError::WrongType));
    assert_eq!(world.refresh(&access), Err(TokenError::WrongType));
}

#[test]
fn a_revoked_jti_is_revoked() {
    let mut world = World::with_ada();
    let (pair, access, refresh) = login(&world, ada(), at(SECOND, 0));
    world.revoke(RevocationEvent::TokenRevoked(TokenRevoked {
        jti: pair.access_jti,
        user_id: ada(),
        expires_at: pair.access_expires_at,
    }));
    let err = world.access(&access).expect_err("revoked");
    assert_eq!((err, err.code()), (TokenError::Revoked, "token_revoked"));
    assert!(world.refresh(&refresh).is_ok(), "only that token");
}

#[test]
fn a_revoked_family_revokes_both_tokens() {
    let mut world = World::with_ada();
    let (pair, access, refresh) = login(&world, ada(), at(SECOND, 0));
    world.revoke(RevocationEvent::FamilyRevoked(TokenFamilyRevoked {
        family_id: FAMILY,
        user_id: ada(),
        expires_at: pair.refresh_expires_at,
        reason: FamilyRevocationReason::RefreshReuse,
    }));
    for result in [world.access(&access), world.refresh(&refresh)] {
        let err = result.expect_err("family revoked");
        assert_eq!(
            (err, err.code()),
            (TokenError::FamilyRevoked, "token_revoked")
        );
    }
}

#[test]
fn an_unknown_user_is_unknown() {
    let world = World::with_ada();
    let (_, access, _) = login(&world, user_id_for("nobody"), at(SECOND, 0));
    let err = world.access(&access).expect_err("unknown");
    assert_eq!((err, err.code()), (TokenError::UserUnknown, "user_unknown"));
    assert_eq!(err.close_code(), 4401);
}

#[test]
fn a_disabled_user_is_disabled_and_stays_logged_out_when_enabled_again() {
    let mut world = World::with_ada();
    let (_, access, refresh) = login(&world, ada(), at(SECOND, 0));
    world.user_event(at(SECOND + 1, 0), UserEvent::Disabled(UserDisabled {}));
    let err = world.access(&access).expect_err("disabled");
    assert_eq!(
        (err, err.code()),
        (TokenError::UserDisabled, "user_disabled")
    );
    assert_eq!(err.close_code(), 4403);

    world.user_event(at(SECOND + 2, 0), UserEvent::Enabled(UserEnabled {}));
    for result in [world.access(&access), world.refresh(&refresh)] {
        let err = result.expect_err("issued before the disabling");
        assert_eq!(
            (err, err.code()),
            (TokenError::CredentialsChanged, "token_revoked")
        );
    }
    let (_, fresh, _) = login(&world, ada(), at(SECOND + 3, 0));
    assert!(world.access(&fresh).is_ok());
}

#[test]
fn a_password_change_voids_every_token_of_the_older_version() {
    let mut world = World::with_ada();
    let (_, before, before_refresh) = login(&world, ada(), at(SECOND, 200_000));
    world.user_event(
        at(SECOND, 400_000),
        UserEvent::PasswordChanged(UserPasswordChanged {
            password_hash: "$argon2id$new".into(),
        }),
    );
    let err = world.access(&before).expect_err("issued before the change");
    assert_eq!(
        (err, err.code()),
        (TokenError::CredentialsChanged, "token_revoked")
    );
    assert_eq!(
        world.refresh(&before_refresh),
        Err(TokenError::CredentialsChanged)
    );
    let (_, after, after_refresh) = login(&world, ada(), at(SECOND, 700_000));
    assert!(world.access(&after).is_ok());
    assert!(world.refresh(&after_refresh).is_ok());
}

/// The race of issue 12 item 6: a login or refresh that read the user from read models that did
/// not hold the password change yet, and issued its pair *after* the change was recorded. The
/// pair carries the old credential version and is void once the change is applied, whatever
/// its issue time.
#[test]
fn a_pair_issued_after_a_change_from_stale_read_models_is_void() {
    let mut world = World::with_ada();
    let stale_version = world.users.get(ada()).expect("ada").credential_version;
    // The change is recorded at SECOND; the read models apply it later.
    world.user_event(
        at(SECOND, 0),
        UserEvent::PasswordChanged(UserPasswordChanged {
            password_hash: "$argon2id$new".into(),
        }),
    );
    // Issued a whole second after the change was recorded, from the stale version.
    let (_, access, refresh) = issue(ada(), stale_version, at(SECOND + 1, 0));
    assert_eq!(world.access(&access), Err(TokenError::CredentialsChanged));
    assert_eq!(world.refresh(&refresh), Err(TokenError::CredentialsChanged));
}

#[test]
fn a_roles_change_voids_access_tokens_but_not_the_login() {
    let mut world = World::with_ada();
    let (_, access, refresh) = login(&world, ada(), at(SECOND, 0));
    world.user_event(
        at(SECOND + 1, 0),
        UserEvent::RolesChanged(UserRolesChanged {
            roles: vec![Role::Auditor],
        }),
    );
    assert_eq!(
        world.access(&access),
        Err(TokenError::CredentialsChanged),
        "the roles it was issued with are not the user's any more"
    );
    let principal = world.refresh(&refresh).expect("a refresh goes on");
    assert_eq!(principal.roles, [Role::Auditor], "the user's current roles");
    assert_eq!(principal.credential_version, 2, "the refreshed pair's cv");
    let (_, fresh, _) = login(&world, ada(), at(SECOND + 2, 0));
    assert_eq!(
        world.access(&fresh).expect("current").roles,
        [Role::Auditor]
    );
}

#[test]
fn a_token_from_a_future_version_is_refused() {
    let world = World::with_ada();
    let (_, access, refresh) = issue(ada(), 9, at(SECOND, 0));
    assert_eq!(world.access(&access), Err(TokenError::CredentialsChanged));
    assert_eq!(world.refresh(&refresh), Err(TokenError::CredentialsChanged));
}

#[test]
fn checks_run_in_the_documented_order() {
    let mut world = World::with_ada();
    let (pair, access, _) = login(&world, ada(), at(SECOND, 0));
    world.user_event(at(SECOND + 1, 0), UserEvent::Disabled(UserDisabled {}));
    assert_eq!(
        world.access(&access),
        Err(TokenError::UserDisabled),
        "disabled before the credential version"
    );
    world.revoke(RevocationEvent::FamilyRevoked(TokenFamilyRevoked {
        family_id: FAMILY,
        user_id: ada(),
        expires_at: pair.refresh_expires_at,
        reason: FamilyRevocationReason::Logout,
    }));
    assert_eq!(world.access(&access), Err(TokenError::FamilyRevoked));
    world.revoke(RevocationEvent::TokenRevoked(TokenRevoked {
        jti: pair.access_jti,
        user_id: ada(),
        expires_at: pair.access_expires_at,
    }));
    assert_eq!(world.access(&access), Err(TokenError::Revoked));
}
