//! Every kind of event the system records, with the type name and schema version that identify
//! its payload in the store.
//!
//! Type names are part of the stored data and of the audit API: they never change. A payload
//! that changes shape gets a new schema version, and [`crate::codec`] keeps decoding the old one.

use super::case::CaseEvent;
use super::revocation::RevocationEvent;
use super::system::SystemEvent;
use super::user::UserEvent;

#[derive(Clone, Debug, PartialEq)]
pub enum DomainEvent {
    Case(CaseEvent),
    User(UserEvent),
    Revocation(RevocationEvent),
    System(SystemEvent),
}

impl DomainEvent {
    /// The stored type name, e.g. `case_decided`.
    pub fn type_name(&self) -> &'static str {
        use CaseEvent as C;
        use RevocationEvent as R;
        use UserEvent as U;
        match self {
            DomainEvent::Case(e) => match e {
                C::Submitted(_) => "case_submitted",
                C::Claimed(_) => "case_claimed",
                C::Released(_) => "case_released",
                C::Decided(_) => "case_decided",
                C::Escalated(_) => "case_escalated",
                C::Reopened(_) => "case_reopened",
            },
            DomainEvent::User(e) => match e {
                U::Registered(_) => "user_registered",
                U::RolesChanged(_) => "user_roles_changed",
                U::Disabled(_) => "user_disabled",
                U::Enabled(_) => "user_enabled",
                U::PasswordChanged(_) => "user_password_changed",
            },
            DomainEvent::Revocation(e) => match e {
                R::TokenRevoked(_) => "token_revoked",
                R::FamilyRevoked(_) => "token_family_revoked",
                R::Refreshed(_) => "token_refreshed",
            },
            DomainEvent::System(e) => match e {
                SystemEvent::DemoStoreMarked(_) => "demo_store_marked",
            },
        }
    }

    /// The schema version this build writes for the event's type.
    pub fn schema_version(&self) -> u16 {
        match self {
            // Version 1 had no priority; see `codec::legacy`.
            DomainEvent::Case(CaseEvent::Submitted(_)) => 2,
            _ => 1,
        }
    }
}

impl From<CaseEvent> for DomainEvent {
    fn from(e: CaseEvent) -> Self {
        DomainEvent::Case(e)
    }
}

impl From<UserEvent> for DomainEvent {
    fn from(e: UserEvent) -> Self {
        DomainEvent::User(e)
    }
}

impl From<SystemEvent> for DomainEvent {
    fn from(e: SystemEvent) -> Self {
        DomainEvent::System(e)
    }
}

impl From<RevocationEvent> for DomainEvent {
    fn from(e: RevocationEvent) -> Self {
        DomainEvent::Revocation(e)
    }
}
