//! Revoked tokens (by `jti`) and revoked refresh families, each kept only until the time the
//! token or family would have expired anyway.

use std::collections::BTreeMap;

use events::domain::revocation::RevocationEvent;
use events::domain::DomainEvent;
use events::{EventEnvelope, Timestamp};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One revocation: whose token it was and until when it needs remembering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoked {
    pub user_id: Uuid,
    pub expires_at: Timestamp,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocations {
    tokens: BTreeMap<Uuid, Revoked>,
    families: BTreeMap<Uuid, Revoked>,
}

impl Revocations {
    pub fn is_token_revoked(&self, jti: Uuid) -> bool {
        self.tokens.contains_key(&jti)
    }

    pub fn is_family_revoked(&self, family_id: Uuid) -> bool {
        self.families.contains_key(&family_id)
    }

    pub fn token(&self, jti: Uuid) -> Option<&Revoked> {
        self.tokens.get(&jti)
    }

    pub fn family(&self, family_id: Uuid) -> Option<&Revoked> {
        self.families.get(&family_id)
    }

    /// How many revocations are remembered (tokens, families).
    pub fn len(&self) -> (usize, usize) {
        (self.tokens.len(), self.families.len())
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty() && self.families.is_empty()
    }

    /// Folds one event; events of other aggregates change nothing.
    pub fn apply(&mut self, env: &EventEnvelope) {
        let DomainEvent::Revocation(event) = &env.event else {
            return;
        };
        let (map, id, revoked) = match event {
            RevocationEvent::TokenRevoked(e) => {
                (&mut self.tokens, e.jti, (e.user_id, e.expires_at))
            }
            RevocationEvent::FamilyRevoked(e) => {
                (&mut self.families, e.family_id, (e.user_id, e.expires_at))
            }
        };
        let (user_id, expires_at) = revoked;
        // Revoked twice: remember it until the later expiry.
        let expires_at = map
            .get(&id)
            .map_or(expires_at, |r| r.expires_at.max(expires_at));
        map.insert(
            id,
            Revoked {
                user_id,
                expires_at,
            },
        );
    }

    /// Forgets every revocation whose token expired before `now`. A token validator that allows
    /// clock leeway must pass `now - leeway`, or a revoked token could pass within the leeway.
    pub fn prune(&mut self, now: Timestamp) {
        self.tokens.retain(|_, r| r.expires_at >= now);
        self.families.retain(|_, r| r.expires_at >= now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::env;
    use events::domain::revocation::{
        FamilyRevocationReason, TokenFamilyRevoked, TokenRevoked, STREAM,
    };

    fn revocation(position: u64, e: RevocationEvent) -> EventEnvelope {
        env(STREAM, position, position, e.into())
    }

    #[test]
    fn revocations_are_remembered_until_expiry() {
        let user_id = Uuid::from_u128(1);
        let (jti, family) = (Uuid::from_u128(2), Uuid::from_u128(3));
        let mut r = Revocations::default();
        r.apply(&revocation(
            1,
            RevocationEvent::TokenRevoked(TokenRevoked {
                jti,
                user_id,
                expires_at: Timestamp::from_micros(100),
            }),
        ));
        r.apply(&revocation(
            2,
            RevocationEvent::FamilyRevoked(TokenFamilyRevoked {
                family_id: family,
                user_id,
                expires_at: Timestamp::from_micros(200),
                reason: FamilyRevocationReason::RefreshReuse,
            }),
        ));
        assert!(r.is_token_revoked(jti));
        assert!(r.is_family_revoked(family));
        assert!(!r.is_token_revoked(family));
        assert!(!r.is_family_revoked(jti));
        assert_eq!(r.token(jti).map(|t| t.user_id), Some(user_id));

        r.prune(Timestamp::from_micros(100));
        assert_eq!(r.len(), (1, 1), "kept through the instant of expiry");
        r.prune(Timestamp::from_micros(101));
        assert!(!r.is_token_revoked(jti));
        assert!(r.is_family_revoked(family));
        r.prune(Timestamp::from_micros(201));
        assert!(r.is_empty());
    }
}
