//! The limits on logging in, as one pure state machine (no clock: every call takes `now`).
//!
//! Four sliding windows:
//!
//! * **per client IP** (`--login-failures-per-ip`): one address guessing at many accounts;
//! * **per username and IP together** (`--login-failures-per-user`): one address guessing at one
//!   account. Keyed by the pair, so strangers failing for `admin` from their addresses do not
//!   lock `admin` out of theirs;
//! * **per username from unknown addresses** (`--login-failures-per-user-global`, slower): many
//!   addresses guessing at one account. It counts, and applies to, only addresses the user has
//!   not logged in from lately, so that a distributed attack can close the account to new
//!   addresses for a while but never to where its rightful user usually logs in from;
//! * **known-good addresses**: each (username, IP) that logged in successfully, remembered for a
//!   while (the refresh token lifetime), at most [`crate::auth::limiter::DEFAULT_MAX_KEYS`].
//!
//! An attempt is counted *before* the password is checked ([`LoginLimiter::begin`]), so that N
//! guesses sent at once cannot all pass a check made before any of them failed; a success
//! takes it back ([`LoginLimiter::succeeded`]), as does an attempt that never reached the check
//! ([`LoginLimiter::abandon`]).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::limiter::{RetryAfter, SlidingWindow};

/// The limits, from the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimitSettings {
    pub per_ip: u32,
    pub per_user_and_ip: u32,
    pub per_user_global: u32,
    pub window: Duration,
    /// How long a successful login makes its address known good for that user.
    pub known_good_for: Duration,
}

/// The limiter; see the module's documentation. Not synchronized: wrap it in a mutex.
#[derive(Debug, Clone)]
pub struct LoginLimiter {
    per_ip: SlidingWindow,
    per_user_and_ip: SlidingWindow,
    per_user_global: SlidingWindow,
    known_good: SlidingWindow,
}

/// One counted attempt, to be settled by [`LoginLimiter::succeeded`] or
/// [`LoginLimiter::abandon`] (or left counted: a failure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginAttempt {
    ip: String,
    user_and_ip: String,
    /// The username, if the attempt counts towards its global limit (an unknown address).
    user_global: Option<String>,
    at: Instant,
}

impl LoginLimiter {
    pub fn new(s: LoginLimitSettings) -> Self {
        LoginLimiter {
            per_ip: SlidingWindow::new(s.per_ip, s.window),
            per_user_and_ip: SlidingWindow::new(s.per_user_and_ip, s.window),
            per_user_global: SlidingWindow::new(s.per_user_global, s.window),
            known_good: SlidingWindow::new(1, s.known_good_for),
        }
    }

    /// Counts an attempt of `username` from `ip` at `now`, or refuses it with the longest wait
    /// among the limits it is over (and counts nothing).
    pub fn begin(
        &mut self,
        username: &str,
        ip: IpAddr,
        now: Instant,
    ) -> Result<LoginAttempt, RetryAfter> {
        let ip_key = ip.to_string();
        // The address comes first and has no space: the key cannot be ambiguous.
        let user_and_ip = format!("{ip_key} {username}");
        let known_good = self.known_good.attempts(&user_and_ip, now) > 0;
        let user_global = (!known_good).then(|| username.to_owned());
        let mut checks = vec![
            self.per_ip.check(&ip_key, now),
            self.per_user_and_ip.check(&user_and_ip, now),
        ];
        if let Some(user) = &user_global {
            checks.push(self.per_user_global.check(user, now));
        }
        if let Some(wait) = checks
            .into_iter()
            .filter_map(Result::err)
            .map(|r| r.0)
            .max()
        {
            return Err(RetryAfter(wait));
        }
        self.per_ip.record(&ip_key, now);
        self.per_user_and_ip.record(&user_and_ip, now);
        if let Some(user) = &user_global {
            self.per_user_global.record(user, now);
        }
        Ok(LoginAttempt {
            ip: ip_key,
            user_and_ip,
            user_global,
            at: now,
        })
    }

    /// The attempt was the right password: it is no failure, the pair's earlier failures are
    /// forgotten, and the address is known good for this user from now on.
    pub fn succeeded(&mut self, attempt: &LoginAttempt, now: Instant) {
        self.per_ip.forget(&attempt.ip, attempt.at);
        if let Some(user) = &attempt.user_global {
            self.per_user_global.forget(user, attempt.at);
        }
        self.per_user_and_ip.reset(&attempt.user_and_ip);
        self.known_good.reset(&attempt.user_and_ip);
        self.known_good.record(&attempt.user_and_ip, now);
    }

    /// The attempt never reached the password check (the server was busy): take it back.
    pub fn abandon(&mut self, attempt: &LoginAttempt) {
        self.per_ip.forget(&attempt.ip, attempt.at);
        self.per_user_and_ip
            .forget(&attempt.user_and_ip, attempt.at);
        if let Some(user) = &attempt.user_global {
            self.per_user_global.forget(user, attempt.at);
        }
    }

    /// Keys tracked by each window (per IP, per user and IP, per user, known good).
    pub fn tracked(&self) -> [usize; 4] {
        [
            self.per_ip.len(),
            self.per_user_and_ip.len(),
            self.per_user_global.len(),
            self.known_good.len(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn limiter() -> LoginLimiter {
        LoginLimiter::new(LoginLimitSettings {
            per_ip: 20,
            per_user_and_ip: 3,
            per_user_global: 6,
            window: 15 * MINUTE,
            known_good_for: 7 * 24 * 60 * MINUTE,
        })
    }

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([198, 51, 100, n])
    }

    #[test]
    fn attempts_are_counted_before_the_check_so_a_burst_cannot_pass_together() {
        let t0 = Instant::now();
        let mut l = limiter();
        // Ten guesses "at once": none has failed yet, but each was counted as it began.
        let allowed = (0..10)
            .filter(|_| l.begin("ada", ip(1), t0).is_ok())
            .count();
        assert_eq!(allowed, 3);
    }

    #[test]
    fn a_success_takes_its_attempt_back_and_clears_the_pair() {
        let t0 = Instant::now();
        let mut l = limiter();
        for _ in 0..2 {
            l.begin("ada", ip(1), t0).expect("allowed");
        }
        let good = l.begin("ada", ip(1), t0).expect("allowed");
        l.succeeded(&good, t0);
        // The pair starts afresh; the IP keeps only the two failures.
        for _ in 0..3 {
            l.begin("ada", ip(1), t0).expect("allowed again");
        }
        assert!(l.begin("ada", ip(1), t0).is_err());
        assert_eq!(l.per_ip.attempts(&ip(1).to_string(), t0), 5);
    }

    #[test]
    fn strangers_cannot_lock_the_user_out_of_another_address() {
        let t0 = Instant::now();
        let mut l = limiter();
        for _ in 0..3 {
            l.begin("admin", ip(66), t0).expect("allowed");
        }
        let refused = l
            .begin("admin", ip(66), t0)
            .expect_err("the stranger is locked");
        assert!(refused.0 > Duration::ZERO);
        let rightful = l
            .begin("admin", ip(1), t0)
            .expect("the rightful user is not");
        l.succeeded(&rightful, t0);
    }

    #[test]
    fn many_addresses_close_the_account_to_new_ones_but_not_to_known_good_ones() {
        let t0 = Instant::now();
        let mut l = limiter();
        let home = l.begin("admin", ip(1), t0).expect("allowed");
        l.succeeded(&home, t0);
        // Six strangers, one failure each: the global limit for unknown addresses is reached.
        for n in 10..16 {
            l.begin("admin", ip(n), t0).expect("allowed");
        }
        assert!(l.begin("admin", ip(99), t0).is_err(), "a new address waits");
        let again = l
            .begin("admin", ip(1), t0)
            .expect("the known-good address is let in");
        assert_eq!(again.user_global, None, "and does not count towards it");
        // The window slides: the account opens again.
        assert!(l.begin("admin", ip(99), t0 + 15 * MINUTE).is_ok());
    }

    #[test]
    fn a_refused_attempt_counts_nowhere_and_an_abandoned_one_is_taken_back() {
        let t0 = Instant::now();
        let mut l = limiter();
        for _ in 0..3 {
            l.begin("ada", ip(1), t0).expect("allowed");
        }
        for _ in 0..5 {
            assert!(l.begin("ada", ip(1), t0).is_err());
        }
        assert_eq!(
            l.per_ip.attempts(&ip(1).to_string(), t0),
            3,
            "refusals not counted"
        );
        let mut l = limiter();
        let busy = l.begin("bob", ip(2), t0).expect("allowed");
        l.abandon(&busy);
        assert_eq!(l.tracked(), [0, 0, 0, 0]);
    }
}
