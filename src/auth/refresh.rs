//! What it means when a refresh token's family has moved on by the time the token is used: the
//! refresh handler appends to the family's stream at the token's generation, and a conflict
//! there means the token was used already. This module decides, from the family's events,
//! between a *retry* and a *reuse*. Pure: no I/O, no clock.
//!
//! * A **retry** is the same client presenting the token again because the answer to its first
//!   use was lost (the connection dropped, or a 503 came after the rotation was recorded). It is
//!   answered the very pair the first use was given, if it comes at least [`RACE_WINDOW`] and at
//!   most [`GRACE_WINDOW`] after that first use, and nothing else happened to the family since.
//! * A **reuse** is everything else: the token presented after the grace window, or after the
//!   new pair was itself refreshed, or *at the same time* as its first use (less than
//!   [`RACE_WINDOW`] apart: two holders of one token racing, on one node or on two). A reuse
//!   revokes the family.
//!
//! The trade-off: within the grace window, whoever presents the old token gets the pair its
//! first use got, so a thief who replays a stolen token in those seconds is not caught then.
//! The pair is the same one, not a second one, so the family does not fork: the next refresh by
//! either holder makes the other's a reuse, and the family is revoked then. A client that
//! retries must wait at least [`RACE_WINDOW`] (the `Retry-After` of a 503 says so).

use std::time::Duration;

use events::domain::revocation::{RevocationEvent, TokenRefreshed};
use events::Timestamp;

use super::claims::Claims;

/// Two uses of one token closer together than this are two holders racing, not a retry.
pub const RACE_WINDOW: Duration = Duration::from_secs(1);

/// How long after a refresh its token may be presented again as a retry.
pub const GRACE_WINDOW: Duration = Duration::from_secs(10);

/// What a refresh token whose family moved on means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// The token's own refresh, whose answer was lost: answer its pair again.
    Retry(TokenRefreshed),
    /// A used token presented again: revoke the family.
    Reuse,
    /// The family was revoked after a reuse already: refuse, and record nothing more.
    AlreadyRevoked,
}

/// Judges `presented`, which arrived at `arrived`, given the family stream's event right after
/// the token's generation (`next`), its last event (`last`) and its version (`head`).
pub fn judge(
    presented: &Claims,
    arrived: Timestamp,
    next: Option<&RevocationEvent>,
    last: Option<&RevocationEvent>,
    head: u64,
) -> Judgement {
    if matches!(last, Some(RevocationEvent::FamilyRevoked(_))) {
        return Judgement::AlreadyRevoked;
    }
    let Some(RevocationEvent::Refreshed(used)) = next else {
        return Judgement::Reuse;
    };
    let nothing_since = head == presented.gen.saturating_add(1);
    let age = arrived.as_micros() - used.issued_at.as_micros();
    let in_grace = micros(RACE_WINDOW) <= age && age <= micros(GRACE_WINDOW);
    if used.used_jti == presented.jti && nothing_since && in_grace {
        Judgement::Retry(used.clone())
    } else {
        Judgement::Reuse
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use events::domain::revocation::{FamilyRevocationReason, TokenFamilyRevoked};
    use events::domain::Role;
    use uuid::Uuid;

    use super::*;
    use crate::auth::claims::TokenType;

    const T0: i64 = 1_800_000_000_000_000;

    fn presented(gen: u64) -> Claims {
        Claims {
            sub: Uuid::from_u128(1),
            jti: Uuid::from_u128(0x01d),
            iat: 0,
            iat_us: 0,
            nbf: 0,
            exp: i64::MAX / 2_000_000,
            iss: "adjudicator".into(),
            aud: "adjudicator".into(),
            typ: TokenType::Refresh,
            roles: vec![Role::Reviewer],
            fam: Uuid::from_u128(0xfa),
            gen,
            cv: 1,
        }
    }

    fn refreshed(used: u128) -> RevocationEvent {
        RevocationEvent::Refreshed(TokenRefreshed {
            family_id: Uuid::from_u128(0xfa),
            user_id: Uuid::from_u128(1),
            used_jti: Uuid::from_u128(used),
            access_jti: Uuid::from_u128(0xacce),
            refresh_jti: Uuid::from_u128(0x4e1f),
            issued_at: Timestamp::from_micros(T0),
            credential_version: 1,
        })
    }

    fn revoked() -> RevocationEvent {
        RevocationEvent::FamilyRevoked(TokenFamilyRevoked {
            family_id: Uuid::from_u128(0xfa),
            user_id: Uuid::from_u128(1),
            expires_at: Timestamp::from_micros(T0),
            reason: FamilyRevocationReason::RefreshReuse,
        })
    }

    fn after(ms: i64) -> Timestamp {
        Timestamp::from_micros(T0 + ms * 1000)
    }

    fn judge_at(ms: i64, gen: u64, next: &RevocationEvent, head: u64) -> Judgement {
        judge(&presented(gen), after(ms), Some(next), Some(next), head)
    }

    #[test]
    fn a_retry_within_the_grace_window_gets_the_same_pair() {
        let next = refreshed(0x01d);
        for ms in [1_000, 4_000, 10_000] {
            let RevocationEvent::Refreshed(e) = &next else {
                unreachable!()
            };
            assert_eq!(
                judge_at(ms, 3, &next, 4),
                Judgement::Retry(e.clone()),
                "{ms} ms"
            );
        }
    }

    #[test]
    fn two_uses_at_once_are_a_reuse() {
        let next = refreshed(0x01d);
        for ms in [-500, 0, 999] {
            assert_eq!(judge_at(ms, 3, &next, 4), Judgement::Reuse, "{ms} ms");
        }
    }

    #[test]
    fn after_the_grace_window_it_is_a_reuse() {
        assert_eq!(judge_at(10_001, 3, &refreshed(0x01d), 4), Judgement::Reuse);
    }

    #[test]
    fn once_the_new_pair_was_refreshed_the_old_token_is_a_reuse() {
        assert_eq!(judge_at(2_000, 3, &refreshed(0x01d), 5), Judgement::Reuse);
    }

    #[test]
    fn another_tokens_refresh_or_nothing_at_all_is_a_reuse() {
        assert_eq!(judge_at(2_000, 3, &refreshed(0xbad), 4), Judgement::Reuse);
        assert_eq!(
            judge(
                &presented(7),
                after(2_000),
                None,
                Some(&refreshed(0x01d)),
                4
            ),
            Judgement::Reuse,
            "a generation the stream never reached"
        );
    }

    #[test]
    fn a_family_revoked_already_records_nothing_more() {
        let next = refreshed(0x01d);
        assert_eq!(
            judge(
                &presented(3),
                after(2_000),
                Some(&next),
                Some(&revoked()),
                5
            ),
            Judgement::AlreadyRevoked
        );
    }
}
