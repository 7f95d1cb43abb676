//! Which sessions an event ends, and the events of that kind seen lately.
//!
//! A session's token is checked against the read models (at some position P) before the
//! session registers. A revocation at a position after P that reached the registry before the
//! registration would find no session to close, and the session would live on with a revoked
//! token. So the registry keeps the controls it handled lately, with their positions, and
//! refuses a registration (or an in-band renewal) that one of them, later than its check, ends.
//! A control that reaches the registry after the registration finds the session and closes it,
//! as for any session.

use std::collections::VecDeque;

use crate::auth::Principal;
use crate::projector::Control;

/// Controls remembered at most: a revocation flood cannot grow the registry.
pub const MAX_RECENT_CONTROLS: usize = 10_000;

/// The close code and reason with which `control` ends a session of `principal`, if it does.
pub fn closes(control: Control, principal: &Principal) -> Option<(u16, &'static str)> {
    match control {
        Control::TokenRevoked(jti) if principal.jti == jti => Some((4401, "token_revoked")),
        Control::FamilyRevoked(f) if principal.family == f => Some((4401, "token_revoked")),
        Control::UserDisabled(u) if principal.user_id == u => Some((4403, "user_disabled")),
        Control::UserTokensVoided(u) if principal.user_id == u => Some((4401, "token_revoked")),
        _ => None,
    }
}

/// The controls handled lately, in position order.
#[derive(Debug)]
pub struct RecentControls {
    entries: VecDeque<(u64, Control)>,
    /// Every control after this position is still in `entries`.
    complete_after: u64,
    max: usize,
}

impl RecentControls {
    /// Nothing seen yet; the registry starts at `head`, so every control after it will be.
    pub fn new(head: u64, max: usize) -> Self {
        RecentControls {
            entries: VecDeque::new(),
            complete_after: head,
            max: max.max(1),
        }
    }

    /// Remembers `control`, of the event at `position`, forgetting the oldest beyond the bound.
    pub fn push(&mut self, position: u64, control: Control) {
        self.entries.push_back((position, control));
        while self.entries.len() > self.max {
            if let Some((forgotten, _)) = self.entries.pop_front() {
                self.complete_after = self.complete_after.max(forgotten);
            }
        }
    }

    /// Why `principal`, checked at its `checked_at` position, may not be registered now: a
    /// control after its check that ends it. If controls after the check were forgotten (a
    /// flood of them while it connected), it cannot be told: refused with 1011, to reconnect.
    pub fn refusal(&self, principal: &Principal) -> Option<(u16, &'static str)> {
        if principal.checked_at < self.complete_after {
            return Some((1011, "internal_error"));
        }
        self.entries
            .iter()
            .rev()
            .take_while(|(position, _)| *position > principal.checked_at)
            .find_map(|(_, control)| closes(*control, principal))
    }
}

#[cfg(test)]
mod tests {
    use events::domain::Role;
    use events::Timestamp;
    use uuid::Uuid;

    use super::*;

    fn principal(checked_at: u64) -> Principal {
        Principal {
            user_id: Uuid::from_u128(1),
            username: "ada".into(),
            roles: vec![Role::Reviewer],
            jti: Uuid::from_u128(2),
            family: Uuid::from_u128(3),
            expires_at: Timestamp::from_micros(0),
            credential_version: 1,
            checked_at,
        }
    }

    #[test]
    fn a_revocation_after_the_check_refuses_the_registration() {
        let mut recent = RecentControls::new(10, 100);
        recent.push(12, Control::FamilyRevoked(Uuid::from_u128(3)));
        assert_eq!(
            recent.refusal(&principal(11)),
            Some((4401, "token_revoked")),
            "revoked after the check: the check could not see it"
        );
        assert_eq!(
            recent.refusal(&principal(12)),
            None,
            "the check saw it already (and would have refused)"
        );
    }

    #[test]
    fn each_control_ends_only_its_own_sessions() {
        let mut recent = RecentControls::new(0, 100);
        recent.push(1, Control::TokenRevoked(Uuid::from_u128(99)));
        recent.push(2, Control::FamilyRevoked(Uuid::from_u128(98)));
        recent.push(3, Control::UserDisabled(Uuid::from_u128(97)));
        assert_eq!(recent.refusal(&principal(0)), None);
        recent.push(4, Control::UserDisabled(Uuid::from_u128(1)));
        assert_eq!(recent.refusal(&principal(0)), Some((4403, "user_disabled")));
        let mut recent = RecentControls::new(0, 100);
        recent.push(5, Control::UserTokensVoided(Uuid::from_u128(1)));
        assert_eq!(recent.refusal(&principal(4)), Some((4401, "token_revoked")));
        recent.push(6, Control::TokenRevoked(Uuid::from_u128(2)));
        assert_eq!(recent.refusal(&principal(5)), Some((4401, "token_revoked")));
    }

    #[test]
    fn memory_is_bounded_and_a_check_older_than_it_is_refused() {
        let mut recent = RecentControls::new(0, 3);
        for position in 1..=10 {
            recent.push(position, Control::TokenRevoked(Uuid::from_u128(99)));
        }
        assert_eq!(recent.entries.len(), 3);
        assert_eq!(recent.refusal(&principal(7)), None, "8, 9, 10 are known");
        assert_eq!(
            recent.refusal(&principal(6)),
            Some((1011, "internal_error")),
            "7 was forgotten: cannot tell"
        );
    }
}
