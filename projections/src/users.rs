//! Users by id and by username: who may log in, with which roles, and since when their older
//! tokens are void.

use std::collections::BTreeMap;
use std::fmt;

use events::domain::user::UserEvent;
use events::domain::{DomainEvent, Role};
use events::{EventEnvelope, Timestamp};
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
    /// Tokens issued before this time are void: the recorded time of the user's last disabling
    /// or password change. It never moves backwards.
    pub tokens_invalid_before: Option<Timestamp>,
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

    fn void_tokens_before(&mut self, at: Timestamp) {
        self.tokens_invalid_before = Some(self.tokens_invalid_before.map_or(at, |t| t.max(at)));
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
        let at = env.record.data.recorded_at;
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
                    tokens_invalid_before: None,
                    version: env.record.version,
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
            UserEvent::RolesChanged(e) => user.roles = e.roles.clone(),
            UserEvent::Disabled(_) => {
                user.disabled = true;
                user.void_tokens_before(at);
            }
            UserEvent::Enabled(_) => user.disabled = false,
            UserEvent::PasswordChanged(e) => {
                user.password_hash = PasswordHash::new(e.password_hash.clone());
                user.void_tokens_before(at);
            }
        }
        user.version = env.record.version;
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
        assert_eq!(ada.tokens_invalid_before, None);

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
            if n == 3 {
                let ada = users.get(id).unwrap();
                assert!(ada.disabled);
                assert_eq!(
                    ada.tokens_invalid_before,
                    Some(Timestamp::from_micros(3_000_000))
                );
            }
        }
        let ada = users.get(id).unwrap();
        assert!(!ada.disabled);
        assert_eq!(ada.roles, [Role::SeniorReviewer]);
        assert_eq!(ada.password_hash.expose(), "$argon2id$new");
        assert_eq!(
            ada.tokens_invalid_before,
            Some(Timestamp::from_micros(5_000_000))
        );
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
