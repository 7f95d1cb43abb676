//! The small value types of the domain and the limits the protocol puts on input.
//!
//! The enums are encoded by bincode as their variant index, so new variants go at the end and
//! existing ones are never reordered or removed.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const SUBJECT_REF_MAX: usize = 256;
pub const EXCERPT_MAX: usize = 20_000;
pub const RATIONALE_MAX: usize = 4_000;
pub const NOTES_MAX: usize = 4_000;
pub const USERNAME_MIN: usize = 3;
pub const USERNAME_MAX: usize = 64;
pub const DISPLAY_NAME_MAX: usize = 128;

/// Declares a string-named enum with `as_str`, `FromStr`, `Display` and snake_case serde names.
macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, UnknownName> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownName {
                        kind: stringify!($name),
                        allowed: &[$($text),+],
                    }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// A name that is not one of an enum's values.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("must be one of {}", .allowed.join(", "))]
pub struct UnknownName {
    pub kind: &'static str,
    pub allowed: &'static [&'static str],
}

named_enum!(
    /// The Model Penal Code's levels of culpability, and `none`.
    Culpability {
        Purposely => "purposely",
        Knowingly => "knowingly",
        Recklessly => "recklessly",
        Negligently => "negligently",
        None => "none",
    }
);

named_enum!(
    /// How urgently a case should be reviewed; the queue shows `urgent` first.
    Priority {
        Low => "low",
        Normal => "normal",
        High => "high",
        Urgent => "urgent",
    }
);

named_enum!(
    /// What a reviewer decides about a claimed case.
    Decision {
        Confirm => "confirm",
        Amend => "amend",
        Reject => "reject",
        Escalate => "escalate",
    }
);

named_enum!(
    /// What a user may do. A user holds one or more roles.
    Role {
        Reviewer => "reviewer",
        SeniorReviewer => "senior_reviewer",
        Auditor => "auditor",
        Admin => "admin",
        Classifier => "classifier",
    }
);

/// Who issues a command: a user and the roles their token carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub user_id: Uuid,
    pub roles: Vec<Role>,
}

impl Actor {
    pub fn new(user_id: Uuid, roles: Vec<Role>) -> Self {
        Actor { user_id, roles }
    }

    /// The server itself: first-start bootstrap, demo data and lease expiry. It has the nil id
    /// and the admin role.
    pub fn system() -> Self {
        Actor {
            user_id: Uuid::nil(),
            roles: vec![Role::Admin],
        }
    }

    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    pub fn has_any(&self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.has(*r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_allowed_ones() {
        for c in Culpability::ALL {
            assert_eq!(c.as_str().parse::<Culpability>().unwrap(), *c);
        }
        let err = "maybe".parse::<Decision>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "must be one of confirm, amend, reject, escalate"
        );
        assert_eq!(
            serde_json::to_string(&Role::SeniorReviewer).unwrap(),
            "\"senior_reviewer\""
        );
    }

    #[test]
    fn priority_orders_from_low_to_urgent() {
        assert!(Priority::Urgent > Priority::High);
        assert!(Priority::High > Priority::Normal);
        assert!(Priority::Normal > Priority::Low);
    }
}
