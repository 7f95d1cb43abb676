//! The user aggregate: accounts, their roles, and the events that void their tokens.
//!
//! A user's id is derived from the username (UUID v5), so the stream `user-<id>` exists exactly
//! when the username is taken: registering appends with `NoStream`, and two concurrent
//! registrations of one name cannot both succeed.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::{DomainError, Validator};
use super::values::*;

/// The namespace of user ids; fixed forever, since ids derive from it.
const USER_NAMESPACE: Uuid = Uuid::from_u128(0x5d1c_7a8e_2b4f_4c1e_9a3d_6f0e_8b2c_4a71);

pub fn user_id_for(username: &str) -> Uuid {
    Uuid::new_v5(&USER_NAMESPACE, username.as_bytes())
}

pub fn stream_name(user_id: Uuid) -> String {
    format!("user-{user_id}")
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRegistered {
    pub user_id: Uuid,
    pub username: String,
    pub display_name: String,
    /// An argon2id PHC string; never a password.
    pub password_hash: String,
    pub roles: Vec<Role>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRolesChanged {
    pub roles: Vec<Role>,
}

/// Disabling a user voids every token issued to them before the event's recorded time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDisabled {}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserEnabled {}

/// A new password voids every token issued to the user before the event's recorded time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserPasswordChanged {
    pub password_hash: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserEvent {
    Registered(UserRegistered),
    RolesChanged(UserRolesChanged),
    Disabled(UserDisabled),
    Enabled(UserEnabled),
    PasswordChanged(UserPasswordChanged),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserAction {
    Register {
        username: String,
        display_name: String,
        password_hash: String,
        roles: Vec<Role>,
    },
    ChangeRoles(Vec<Role>),
    Disable,
    Enable,
    ChangePassword {
        password_hash: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserCommand {
    pub actor: Actor,
    pub action: UserAction,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum UserState {
    #[default]
    Unregistered,
    Registered {
        user_id: Uuid,
        disabled: bool,
    },
}

pub fn evolve(state: UserState, event: &UserEvent) -> UserState {
    match (state, event) {
        (UserState::Unregistered, UserEvent::Registered(e)) => UserState::Registered {
            user_id: e.user_id,
            disabled: false,
        },
        (UserState::Registered { user_id, .. }, UserEvent::Disabled(_)) => UserState::Registered {
            user_id,
            disabled: true,
        },
        (UserState::Registered { user_id, .. }, UserEvent::Enabled(_)) => UserState::Registered {
            user_id,
            disabled: false,
        },
        (state, _) => state,
    }
}

pub fn decide(state: &UserState, cmd: UserCommand) -> Result<Vec<UserEvent>, DomainError> {
    let UserCommand { actor, action } = cmd;
    let (user_id, disabled) = match (state, &action) {
        (UserState::Unregistered, UserAction::Register { .. }) => (None, false),
        (UserState::Unregistered, _) => return Err(DomainError::NotFound),
        (UserState::Registered { .. }, UserAction::Register { .. }) => {
            return Err(DomainError::AlreadyExists)
        }
        (UserState::Registered { user_id, disabled }, _) => (Some(*user_id), *disabled),
    };
    let is_self = user_id == Some(actor.user_id);
    match action {
        UserAction::ChangePassword { .. } if is_self => {}
        _ if actor.has(Role::Admin) => {}
        _ => return Err(DomainError::Forbidden("only an admin may manage users")),
    }
    let event = match action {
        UserAction::Register {
            username,
            display_name,
            password_hash,
            roles,
        } => {
            let mut v = Validator::new();
            validate_username(&mut v, &username);
            v.length("display_name", &display_name, 0, DISPLAY_NAME_MAX);
            validate_roles(&mut v, &roles);
            v.finish()?;
            UserEvent::Registered(UserRegistered {
                user_id: user_id_for(&username),
                username,
                display_name,
                password_hash,
                roles,
            })
        }
        UserAction::ChangeRoles(roles) => {
            let mut v = Validator::new();
            validate_roles(&mut v, &roles);
            v.finish()?;
            UserEvent::RolesChanged(UserRolesChanged { roles })
        }
        // Disabling twice or enabling an enabled user changes nothing: answer without an event.
        UserAction::Disable if disabled => return Ok(vec![]),
        UserAction::Disable => UserEvent::Disabled(UserDisabled {}),
        UserAction::Enable if !disabled => return Ok(vec![]),
        UserAction::Enable => UserEvent::Enabled(UserEnabled {}),
        UserAction::ChangePassword { password_hash } => {
            UserEvent::PasswordChanged(UserPasswordChanged { password_hash })
        }
    };
    Ok(vec![event])
}

/// `username`: 3-64 characters of `a-z 0-9 _ . -`.
pub fn validate_username(v: &mut Validator, username: &str) {
    let n = username.len();
    if !(USERNAME_MIN..=USERNAME_MAX).contains(&n) {
        v.error(
            "username",
            format!("must be {USERNAME_MIN} to {USERNAME_MAX} characters"),
        );
    } else if !username
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
    {
        v.error("username", "may contain only a-z, 0-9, '_', '.' and '-'");
    }
}

fn validate_roles(v: &mut Validator, roles: &[Role]) {
    if roles.is_empty() {
        v.error("roles", "must name at least one role");
    }
    let mut seen = roles.to_vec();
    seen.sort();
    seen.dedup();
    if seen.len() != roles.len() {
        v.error("roles", "must not repeat a role");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin() -> Actor {
        Actor::new(Uuid::from_u128(1), vec![Role::Admin])
    }

    fn register(username: &str, roles: Vec<Role>) -> UserAction {
        UserAction::Register {
            username: username.into(),
            display_name: "Ada".into(),
            password_hash: "$argon2id$stub".into(),
            roles,
        }
    }

    fn registered(username: &str) -> UserState {
        let events = decide(
            &UserState::Unregistered,
            UserCommand {
                actor: admin(),
                action: register(username, vec![Role::Reviewer]),
            },
        )
        .unwrap();
        events.iter().fold(UserState::default(), evolve)
    }

    #[test]
    fn user_ids_derive_from_usernames() {
        assert_eq!(user_id_for("ada"), user_id_for("ada"));
        assert_ne!(user_id_for("ada"), user_id_for("bob"));
        assert_eq!(
            registered("ada"),
            UserState::Registered {
                user_id: user_id_for("ada"),
                disabled: false
            }
        );
    }

    #[test]
    fn registration_validates_every_field_at_once() {
        let err = decide(
            &UserState::Unregistered,
            UserCommand {
                actor: admin(),
                action: UserAction::Register {
                    username: "Ad".into(),
                    display_name: "x".repeat(129),
                    password_hash: String::new(),
                    roles: vec![],
                },
            },
        )
        .unwrap_err();
        let DomainError::Validation(fields) = err else {
            panic!("expected a validation error, got {err:?}")
        };
        let names: Vec<_> = fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(names, ["username", "display_name", "roles"]);
    }

    #[test]
    fn usernames_allow_only_the_protocol_alphabet() {
        for bad in ["ADA", "a d a", "ada!", "ab", &"a".repeat(65)] {
            let mut v = Validator::new();
            validate_username(&mut v, bad);
            assert!(v.finish().is_err(), "{bad:?} should be refused");
        }
        for good in ["ada", "a.b-c_1", &"a".repeat(64)] {
            let mut v = Validator::new();
            validate_username(&mut v, good);
            assert!(v.finish().is_ok(), "{good:?} should be accepted");
        }
    }

    #[test]
    fn only_admins_manage_users_but_anyone_changes_their_own_password() {
        let state = registered("ada");
        let ada = Actor::new(user_id_for("ada"), vec![Role::Reviewer]);
        let refused = decide(
            &state,
            UserCommand {
                actor: ada.clone(),
                action: UserAction::Disable,
            },
        );
        assert!(matches!(refused, Err(DomainError::Forbidden(_))));
        let own = decide(
            &state,
            UserCommand {
                actor: ada,
                action: UserAction::ChangePassword {
                    password_hash: "new".into(),
                },
            },
        );
        assert!(matches!(
            own.as_deref(),
            Ok([UserEvent::PasswordChanged(_)])
        ));
        let other = decide(
            &state,
            UserCommand {
                actor: Actor::new(Uuid::from_u128(9), vec![Role::Reviewer]),
                action: UserAction::ChangePassword {
                    password_hash: "new".into(),
                },
            },
        );
        assert!(matches!(other, Err(DomainError::Forbidden(_))));
    }

    #[test]
    fn disable_and_enable_toggle_and_repeat_as_no_ops() {
        let state = registered("ada");
        let cmd = |action| UserCommand {
            actor: admin(),
            action,
        };
        let events = decide(&state, cmd(UserAction::Disable)).unwrap();
        let disabled = events.iter().fold(state, evolve);
        assert!(matches!(
            disabled,
            UserState::Registered { disabled: true, .. }
        ));
        assert_eq!(decide(&disabled, cmd(UserAction::Disable)).unwrap(), vec![]);
        let events = decide(&disabled, cmd(UserAction::Enable)).unwrap();
        let enabled = events.iter().fold(disabled, evolve);
        assert!(matches!(
            enabled,
            UserState::Registered {
                disabled: false,
                ..
            }
        ));
    }

    #[test]
    fn a_taken_name_or_a_missing_user_is_refused() {
        let state = registered("ada");
        let again = decide(
            &state,
            UserCommand {
                actor: admin(),
                action: register("ada", vec![Role::Admin]),
            },
        );
        assert_eq!(again, Err(DomainError::AlreadyExists));
        let missing = decide(
            &UserState::Unregistered,
            UserCommand {
                actor: admin(),
                action: UserAction::Disable,
            },
        );
        assert_eq!(missing, Err(DomainError::NotFound));
    }
}
