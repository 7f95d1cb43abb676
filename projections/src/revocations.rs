//! Revoked tokens (by `jti`) and revoked refresh families, each kept only until the time the
//! token or family would have expired anyway.
//!
//! Forgetting is a decision of the read side, never an edit of history: the events stay in the
//! store, and [`Revocations::prune`] only drops in-memory entries whose tokens can no longer be
//! presented (an expired token is refused for its expiry before revocations are looked at). The
//! entries are indexed by expiry, so a prune costs what it removes, not what is kept. The server
//! prunes on a timer (see the projector).

use std::collections::{BTreeMap, BTreeSet};

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

/// Which of the two maps an index entry points into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Token,
    Family,
}

/// What snapshots hold: the two maps. The expiry index is rebuilt when a snapshot is read.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Stored {
    tokens: BTreeMap<Uuid, Revoked>,
    families: BTreeMap<Uuid, Revoked>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Stored", into = "Stored")]
pub struct Revocations {
    tokens: BTreeMap<Uuid, Revoked>,
    families: BTreeMap<Uuid, Revoked>,
    /// Every entry of both maps by (expiry, kind, id), soonest first.
    by_expiry: BTreeSet<(Timestamp, Kind, Uuid)>,
}

impl From<Stored> for Revocations {
    fn from(stored: Stored) -> Self {
        let index = |map: &BTreeMap<Uuid, Revoked>, kind| {
            map.iter()
                .map(|(id, r)| (r.expires_at, kind, *id))
                .collect::<Vec<_>>()
        };
        let mut by_expiry = BTreeSet::new();
        by_expiry.extend(index(&stored.tokens, Kind::Token));
        by_expiry.extend(index(&stored.families, Kind::Family));
        Revocations {
            tokens: stored.tokens,
            families: stored.families,
            by_expiry,
        }
    }
}

impl From<Revocations> for Stored {
    fn from(r: Revocations) -> Self {
        Stored {
            tokens: r.tokens,
            families: r.families,
        }
    }
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

    /// Folds one event; events of other aggregates, and refreshes (which revoke nothing here:
    /// the family's stream is their record), change nothing.
    pub fn apply(&mut self, env: &EventEnvelope) {
        let DomainEvent::Revocation(event) = &env.event else {
            return;
        };
        let (kind, id, user_id, expires_at) = match event {
            RevocationEvent::TokenRevoked(e) => (Kind::Token, e.jti, e.user_id, e.expires_at),
            RevocationEvent::FamilyRevoked(e) => {
                (Kind::Family, e.family_id, e.user_id, e.expires_at)
            }
            RevocationEvent::Refreshed(_) => return,
        };
        let map = match kind {
            Kind::Token => &mut self.tokens,
            Kind::Family => &mut self.families,
        };
        // Revoked twice: remember it until the later expiry.
        let expires_at = match map.get(&id) {
            Some(r) if r.expires_at >= expires_at => r.expires_at,
            Some(r) => {
                self.by_expiry.remove(&(r.expires_at, kind, id));
                expires_at
            }
            None => expires_at,
        };
        map.insert(
            id,
            Revoked {
                user_id,
                expires_at,
            },
        );
        self.by_expiry.insert((expires_at, kind, id));
    }

    /// Forgets every revocation whose token expired before `now`; answers how many. A token
    /// validator that allows clock leeway must pass `now - leeway`, or a revoked token could
    /// pass within the leeway.
    pub fn prune(&mut self, now: Timestamp) -> usize {
        let mut pruned = 0;
        while let Some(&(expires_at, kind, id)) = self.by_expiry.first() {
            if expires_at >= now {
                break;
            }
            self.by_expiry.pop_first();
            match kind {
                Kind::Token => self.tokens.remove(&id),
                Kind::Family => self.families.remove(&id),
            };
            pruned += 1;
        }
        pruned
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

    fn token(position: u64, jti: u128, expires_at: i64) -> EventEnvelope {
        revocation(
            position,
            RevocationEvent::TokenRevoked(TokenRevoked {
                jti: Uuid::from_u128(jti),
                user_id: Uuid::from_u128(1),
                expires_at: Timestamp::from_micros(expires_at),
            }),
        )
    }

    #[test]
    fn a_later_revocation_extends_and_the_index_follows() {
        let mut r = Revocations::default();
        r.apply(&token(1, 7, 100));
        r.apply(&token(2, 7, 300));
        r.apply(&token(3, 7, 200));
        assert_eq!(
            r.token(Uuid::from_u128(7)).map(|t| t.expires_at),
            Some(Timestamp::from_micros(300))
        );
        assert_eq!(r.by_expiry.len(), 1, "one index entry per revocation");
        assert_eq!(r.prune(Timestamp::from_micros(250)), 0);
        assert!(r.is_token_revoked(Uuid::from_u128(7)));
        assert_eq!(r.prune(Timestamp::from_micros(301)), 1);
        assert!(r.is_empty() && r.by_expiry.is_empty());
    }

    #[test]
    fn a_prune_removes_only_what_expired_and_says_how_many() {
        let mut r = Revocations::default();
        for n in 0..1000u64 {
            r.apply(&token(n + 1, u128::from(n) + 10, n as i64));
        }
        assert_eq!(r.prune(Timestamp::from_micros(600)), 600);
        assert_eq!(r.len(), (400, 0));
        assert!(!r.is_token_revoked(Uuid::from_u128(10 + 599)));
        assert!(r.is_token_revoked(Uuid::from_u128(10 + 600)));
        assert_eq!(r.prune(Timestamp::from_micros(600)), 0, "nothing twice");
    }

    #[test]
    fn a_snapshot_keeps_the_maps_and_rebuilds_the_index() {
        let mut r = Revocations::default();
        r.apply(&token(1, 7, 100));
        r.apply(&revocation(
            2,
            RevocationEvent::FamilyRevoked(TokenFamilyRevoked {
                family_id: Uuid::from_u128(8),
                user_id: Uuid::from_u128(1),
                expires_at: Timestamp::from_micros(50),
                reason: FamilyRevocationReason::Logout,
            }),
        ));
        let cfg = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(&r, cfg).unwrap();
        let (mut back, _): (Revocations, usize) =
            bincode::serde::decode_from_slice(&bytes, cfg).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.prune(Timestamp::from_micros(60)), 1);
        assert!(!back.is_family_revoked(Uuid::from_u128(8)));
        assert!(back.is_token_revoked(Uuid::from_u128(7)));
    }
}
