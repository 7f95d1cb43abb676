//! Users by id and by username: who may log in, with which roles, and which of their tokens are
//! still good.
//!
//! Tokens carry the user's *credential version* (`cv`): the user stream's version of the last
//! event that changed what the user may do (registration, password change, disabling, roles). A
//! token whose `cv` differs from the current one is void. Versions, unlike times, cannot be
//! raced: a token issued from a read model that had not yet applied a password change carries
//! the old version, and is refused as soon as the change is applied, however late it was issued.

use std::collections::BTreeMap;
use std::fmt;

use events::domain::user::UserEvent;
use events::domain::{DomainEvent, Role};
use events::EventEnvelope;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::streams::user_id_of;

/// What JSON and `Debug` show instead of a password hash.
pub const REDACTED: &str = "[redacted]";

/// A password hash (an argon2id PHC string). Binary snapshots keep it; JSON and `Debug` show
/// only [`REDACTED`], so serializing a [`UserRecord`] for an answer by mistake leaks nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    pub fn new(hash: impl Into<String>) -> Self {
        PasswordHash(hash.into())
    }

    /// The hash itself, to verify a password at login.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PasswordHash({REDACTED})")
    }
}

impl Serialize for PasswordHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(REDACTED)
        } else {
            s.serialize_str(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for PasswordHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(PasswordHash)
    }
}

/// Everything the server knows of a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub roles: Vec<Role>,
    pub disabled: bool,
    pub password_hash: PasswordHash,
    /// The stream version of the last registration, password change, disabling or roles change:
    /// an access token is good only with exactly this `cv`.
    pub credential_version: u64,
    /// The stream version of the last registration, password change or disabling: a refresh
    /// token with a `cv` below it is void. A roles change alone does not end a login: the
    /// refreshed pair carries the new roles and version.
    pub sign_in_version: u64,
    /// The user stream's version after the last event applied.
    pub version: u64,
    /// The global position of the last event applied.
    pub position: u64,
}

/// A user as the API shows one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub roles: Vec<Role>,
    pub disabled: bool,
}

impl UserRecord {
    pub fn view(&self) -> UserView {
        UserView {
            id: self.id,
            username: self.username.clone(),
            display_name: self.display_name.clone(),
            roles: self.roles.clone(),
            disabled: self.disabled,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Users {
    by_id: BTreeMap<Uuid, UserRecord>,
    by_username: BTreeMap<String, Uuid>,
}

impl Users {
    pub fn get(&self, id: Uuid) -> Option<&UserRecord> {
        self.by_id.get(&id)
    }

    pub fn by_username(&self, username: &str) -> Option<&UserRecord> {
        self.by_username
            .get(username)
            .and_then(|id| self.by_id.get(id))
    }

    /// Every user, by username.
    pub fn iter(&self) -> impl Iterator<Item = &UserRecord> {
        self.by_username
            .values()
            .filter_map(|id| self.by_id.get(id))
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Folds one event; events of other aggregates and events of unknown users change nothing.
    pub fn apply(&mut self, env: &EventEnvelope) {
        let DomainEvent::User(event) = &env.event else {
            return;
        };
        let Some(id) = user_id_of(env) else {
            return;
        };
        let version = env.record.version;
        if let UserEvent::Registered(e) = event {
            // A second registration cannot be recorded (the stream exists); ignore it as
            // `events::domain::user::evolve` does.
            if self.by_id.contains_key(&id) || self.by_username.contains_key(&e.username) {
                return;
            }
            self.by_username.insert(e.username.clone(), id);
            self.by_id.insert(
                id,
                UserRecord {
                    id,
                    username: e.username.clone(),
                    display_name: e.display_name.clone(),
                    roles: e.roles.clone(),
                    disabled: false,
                    password_hash: PasswordHash::new(e.password_hash.clone()),
                    credential_version: version,
                    sign_in_version: version,
                    version,
                    position: env.record.position,
                },
            );
            return;
        }
        let Some(user) = self.by_id.get_mut(&id) else {
            return;
        };
        match event {
            UserEvent::Registered(_) => {}
            UserEvent::RolesChanged(e) => {
                user.roles = e.roles.clone();
                user.credential_version = version;
            }
            UserEvent::Disabled(_) => {
                user.disabled = true;
                user.credential_version = version;
                user.sign_in_version = version;
            }
            UserEvent::Enabled(_) => user.disabled = false,
            UserEvent::PasswordChanged(e) => {
                user.password_hash = PasswordHash::new(e.password_hash.clone());
                user.credential_version = version;
                user.sign_in_version = version;
            }
        }
        user.version = version;
        user.position = env.record.position;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::env;
    use events::domain::user::{
        stream_name, user_id_for, UserDisabled, UserEnabled, UserPasswordChanged, UserRegistered,
        UserRolesChanged,
    };

    fn user_env(id: Uuid, version: u64, position: u64, e: UserEvent) -> EventEnvelope {
        env(&stream_name(id), version, position, e.into())
    }

    fn registered(username: &str) -> UserEvent {
        UserEvent::Registered(UserRegistered {
            user_id: user_id_for(username),
            username: username.into(),
            display_name: "Ada Lovelace".into(),
            password_hash: "$argon2id$secret".into(),
            roles: vec![Role::Reviewer],
        })
    }

    #[test]
    fn users_are_found_by_id_and_name_and_changes_void_older_tokens() {
        let id = user_id_for("ada");
        let mut users = Users::default();
        users.apply(&user_env(id, 1, 1, registered("ada")));
        let ada = users.by_username("ada").unwrap();
        assert_eq!(ada.id, id);
        assert_eq!(ada.password_hash.expose(), "$argon2id$secret");
        assert_eq!((ada.credential_version, ada.sign_in_version), (1, 1));

        let events = [
            UserEvent::RolesChanged(UserRolesChanged {
                roles: vec![Role::SeniorReviewer],
            }),
            UserEvent::Disabled(UserDisabled {}),
            UserEvent::Enabled(UserEnabled {}),
            UserEvent::PasswordChanged(UserPasswordChanged {
                password_hash: "$argon2id$new".into(),
            }),
        ];
        for (n, e) in events.into_iter().enumerate() {
            let n = n as u64 + 2;
            users.apply(&user_env(id, n, n, e));
            let ada = users.get(id).unwrap();
            match n {
                2 => assert_eq!((ada.credential_version, ada.sign_in_version), (2, 1)),
                3 => {
                    assert!(ada.disabled);
                    assert_eq!((ada.credential_version, ada.sign_in_version), (3, 3));
                }
                4 => assert_eq!(
                    (ada.credential_version, ada.sign_in_version),
                    (3, 3),
                    "enabling again revives no token"
                ),
                _ => {}
            }
        }
        let ada = users.get(id).unwrap();
        assert!(!ada.disabled);
        assert_eq!(ada.roles, [Role::SeniorReviewer]);
        assert_eq!(ada.password_hash.expose(), "$argon2id$new");
        assert_eq!((ada.credential_version, ada.sign_in_version), (5, 5));
        assert_eq!((ada.version, ada.position), (5, 5));

        // A second registration and events of strangers change nothing.
        let before = users.clone();
        users.apply(&user_env(id, 6, 6, registered("ada")));
        users.apply(&user_env(
            Uuid::from_u128(9),
            1,
            7,
            UserEvent::Disabled(UserDisabled {}),
        ));
        assert_eq!(users, before);
        assert_eq!(users.iter().count(), 1);
    }

    #[test]
    fn json_and_debug_never_show_a_password_hash() {
        let id = user_id_for("ada");
        let mut users = Users::default();
        users.apply(&user_env(id, 1, 1, registered("ada")));
        let ada = users.get(id).unwrap();
        let json = serde_json::to_string(ada).unwrap();
        assert!(!json.contains("argon2id"), "{json}");
        assert!(json.contains(REDACTED));
        assert!(!format!("{ada:?}").contains("argon2id"));
        let view = serde_json::to_value(ada.view()).unwrap();
        assert_eq!(
            view,
            serde_json::json!({
                "id": id, "username": "ada", "display_name": "Ada Lovelace",
                "roles": ["reviewer"], "disabled": false
            })
        );
        // Binary snapshots keep it.
        let cfg = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(&users, cfg).unwrap();
        let (back, _): (Users, usize) = bincode::serde::decode_from_slice(&bytes, cfg).unwrap();
        assert_eq!(back, users);
    }
}
