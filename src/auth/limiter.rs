//! A sliding-window limiter keyed by text: at most `limit` attempts per key within any span of
//! `window`. Used per client IP and per username for failed logins (count only failures:
//! [`SlidingWindow::check`] before, [`SlidingWindow::record`] after a failure,
//! [`SlidingWindow::reset`] after a success), and per IP for WebSocket connect attempts (count
//! every attempt: [`SlidingWindow::hit`]).
//!
//! Pure: every call takes `now`, so tests need no clock; not synchronized: wrap it in a mutex.
//!
//! Memory is bounded. A key keeps at most `limit` instants (the older ones cannot matter), and
//! at most `max_keys` keys are kept (default [`DEFAULT_MAX_KEYS`]). Keys whose attempts have all
//! left the window are dropped as calls go (a sweep every so many calls, amortized O(1)); when
//! the map is full of live keys anyway, the least recently active tenth is dropped, so that a
//! flood of new keys (many IPs, many usernames) costs bounded memory and time. The price is that
//! such a flood can make the limiter forget an old key's attempts early.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use thiserror::Error;

/// Keys kept at most unless [`SlidingWindow::with_max_keys`] says otherwise.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// Calls between two sweeps of expired keys when the map is small; with more keys, a sweep waits
/// for as many calls as there are keys, which keeps its cost amortized O(1).
const MIN_CALLS_BETWEEN_SWEEPS: usize = 1024;

/// Refused: no attempt is allowed for this long. For a `Retry-After` header use
/// [`RetryAfter::seconds`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("too many attempts; retry in {} s", self.seconds())]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    /// The wait in whole seconds, rounded up, at least 1.
    pub fn seconds(&self) -> u64 {
        let secs = self.0.as_secs() + u64::from(self.0.subsec_nanos() > 0);
        secs.max(1)
    }
}

/// The limiter; see the module's documentation.
#[derive(Debug, Clone)]
pub struct SlidingWindow {
    limit: usize,
    window: Duration,
    max_keys: usize,
    /// Per key, its most recent attempts, oldest first, at most `limit` of them.
    entries: HashMap<String, VecDeque<Instant>>,
    calls_since_sweep: usize,
}

impl SlidingWindow {
    /// At most `limit` attempts per key within any `window` (a `limit` of 0 is taken as 1).
    pub fn new(limit: u32, window: Duration) -> Self {
        SlidingWindow {
            limit: usize::try_from(limit.max(1)).unwrap_or(usize::MAX),
            window,
            max_keys: DEFAULT_MAX_KEYS,
            entries: HashMap::new(),
            calls_since_sweep: 0,
        }
    }

    /// Keeps at most `max_keys` keys (at least 1).
    pub fn with_max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys.max(1);
        self
    }

    /// The attempts allowed per window.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The window.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// How many keys are tracked (some may have expired since the last sweep).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `t` is still inside the window that ends at `now`.
    fn in_window(&self, t: Instant, now: Instant) -> bool {
        now.saturating_duration_since(t) < self.window
    }

    /// The attempts of `key` within the window ending at `now`.
    pub fn attempts(&self, key: &str, now: Instant) -> usize {
        self.entries.get(key).map_or(0, |times| {
            times.iter().filter(|t| self.in_window(**t, now)).count()
        })
    }

    /// Whether one more attempt of `key` would be allowed at `now`, without recording one.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), RetryAfter> {
        let Some(times) = self.entries.get(key) else {
            return Ok(());
        };
        if times.len() < self.limit {
            return Ok(());
        }
        // `times` holds exactly the last `limit` attempts: the oldest of them decides.
        match times.front() {
            Some(&oldest) if self.in_window(oldest, now) => {
                let free_at = oldest + self.window;
                Err(RetryAfter(free_at.saturating_duration_since(now)))
            }
            _ => Ok(()),
        }
    }

    /// Records an attempt of `key` at `now`, allowed or not.
    pub fn record(&mut self, key: &str, now: Instant) {
        self.maybe_sweep(now);
        if let Some(times) = self.entries.get_mut(key) {
            times.push_back(now);
            while times.len() > self.limit {
                times.pop_front();
            }
            return;
        }
        if self.entries.len() >= self.max_keys {
            self.make_room(now);
        }
        let mut times = VecDeque::with_capacity(self.limit.min(16));
        times.push_back(now);
        self.entries.insert(key.to_owned(), times);
    }

    /// Records an attempt of `key` at `now` if one is allowed, else says how long to wait (and
    /// records nothing: a refused attempt does not push the wait further).
    pub fn hit(&mut self, key: &str, now: Instant) -> Result<(), RetryAfter> {
        self.check(key, now)?;
        self.record(key, now);
        Ok(())
    }

    /// Takes back one attempt of `key` recorded at `at` (the most recent such), e.g. an attempt
    /// counted before a password check that then succeeded. Nothing if it is not there any more.
    pub fn forget(&mut self, key: &str, at: Instant) {
        let Some(times) = self.entries.get_mut(key) else {
            return;
        };
        if let Some(i) = times.iter().rposition(|&t| t == at) {
            times.remove(i);
        }
        if times.is_empty() {
            self.entries.remove(key);
        }
    }

    /// Forgets `key`'s attempts, e.g. after a successful login.
    pub fn reset(&mut self, key: &str) {
        self.entries.remove(key);
    }

    /// Drops every key whose attempts have all left the window ending at `now`.
    pub fn prune(&mut self, now: Instant) {
        let window = self.window;
        self.entries.retain(|_, times| {
            times
                .back()
                .is_some_and(|&t| now.saturating_duration_since(t) < window)
        });
        self.calls_since_sweep = 0;
    }

    fn maybe_sweep(&mut self, now: Instant) {
        self.calls_since_sweep += 1;
        if self.calls_since_sweep >= self.entries.len().max(MIN_CALLS_BETWEEN_SWEEPS) {
            self.prune(now);
        }
    }

    /// Called when a new key finds the map full: drops expired keys, and if that is not enough,
    /// the least recently active keys, down to nine tenths of the bound.
    fn make_room(&mut self, now: Instant) {
        self.prune(now);
        if self.entries.len() < self.max_keys {
            return;
        }
        let keep = self.max_keys - (self.max_keys / 10).max(1);
        let drop = self.entries.len() - keep;
        let mut by_activity: Vec<(Instant, &String)> = self
            .entries
            .iter()
            .filter_map(|(key, times)| times.back().map(|&t| (t, key)))
            .collect();
        if drop < by_activity.len() {
            by_activity.select_nth_unstable_by_key(drop, |(t, _)| *t);
        }
        let victims: Vec<String> = by_activity
            .into_iter()
            .take(drop)
            .map(|(_, key)| key.clone())
            .collect();
        for key in victims {
            self.entries.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn allows_the_limit_then_says_how_long_to_wait() {
        let t0 = Instant::now();
        let mut limiter = SlidingWindow::new(3, MINUTE);
        assert!(limiter.hit("ip", t0).is_ok());
        assert!(limiter.hit("ip", t0 + secs(10)).is_ok());
        assert!(limiter.hit("ip", t0 + secs(20)).is_ok());
        let refused = limiter.hit("ip", t0 + secs(30)).expect_err("fourth");
        assert_eq!(refused, RetryAfter(secs(30)));
        assert_eq!(refused.seconds(), 30);
        // Refused attempts are not recorded: the wait does not grow.
        assert_eq!(limiter.hit("ip", t0 + secs(45)), Err(RetryAfter(secs(15))));
        assert_eq!(limiter.attempts("ip", t0 + secs(45)), 3);
        // The window slides: the first attempt leaves it at t0 + 60s.
        assert!(limiter.hit("ip", t0 + secs(60)).is_ok());
        assert_eq!(limiter.hit("ip", t0 + secs(61)), Err(RetryAfter(secs(9))));
        assert!(
            limiter.hit("other ip", t0 + secs(61)).is_ok(),
            "keys are apart"
        );
    }

    #[test]
    fn counting_only_failures() {
        let t0 = Instant::now();
        let mut per_user = SlidingWindow::new(2, MINUTE);
        for _ in 0..5 {
            assert!(per_user.check("ada", t0).is_ok(), "checks record nothing");
        }
        per_user.record("ada", t0);
        assert!(per_user.check("ada", t0 + secs(1)).is_ok());
        per_user.record("ada", t0 + secs(1));
        assert_eq!(
            per_user.check("ada", t0 + secs(2)),
            Err(RetryAfter(secs(58)))
        );
        per_user.reset("ada");
        assert!(
            per_user.check("ada", t0 + secs(2)).is_ok(),
            "a success forgets"
        );
        assert!(per_user.is_empty());
    }

    #[test]
    fn an_attempt_counted_ahead_can_be_taken_back() {
        let t0 = Instant::now();
        let mut limiter = SlidingWindow::new(2, MINUTE);
        limiter.record("ip", t0);
        limiter.record("ip", t0 + secs(1));
        assert!(limiter.check("ip", t0 + secs(2)).is_err());
        limiter.forget("ip", t0 + secs(1));
        assert_eq!(limiter.attempts("ip", t0 + secs(2)), 1);
        assert!(limiter.check("ip", t0 + secs(2)).is_ok());
        limiter.forget("ip", t0 + secs(9));
        assert_eq!(
            limiter.attempts("ip", t0 + secs(2)),
            1,
            "not there: nothing"
        );
        limiter.forget("ip", t0);
        assert!(limiter.is_empty(), "an empty key is dropped");
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(RetryAfter(Duration::from_millis(1500)).seconds(), 2);
        assert_eq!(RetryAfter(Duration::ZERO).seconds(), 1);
        assert_eq!(RetryAfter(secs(7)).seconds(), 7);
        assert_eq!(
            RetryAfter(secs(7)).to_string(),
            "too many attempts; retry in 7 s"
        );
    }

    #[test]
    fn a_key_keeps_at_most_limit_instants() {
        let t0 = Instant::now();
        let mut limiter = SlidingWindow::new(3, MINUTE);
        for n in 0..100 {
            limiter.record("ip", t0 + Duration::from_millis(n));
        }
        assert_eq!(limiter.entries.get("ip").map(VecDeque::len), Some(3));
        assert_eq!(
            limiter.check("ip", t0 + secs(1)),
            Err(RetryAfter(Duration::from_millis(59_097)))
        );
    }

    #[test]
    fn expired_keys_are_pruned() {
        let t0 = Instant::now();
        let mut limiter = SlidingWindow::new(5, secs(1));
        for n in 0..50 {
            limiter.record(&format!("old-{n}"), t0);
        }
        limiter.record("fresh", t0 + Duration::from_millis(1500));
        limiter.prune(t0 + secs(2));
        assert_eq!(limiter.len(), 1);
        assert_eq!(limiter.attempts("fresh", t0 + secs(2)), 1);
    }

    #[test]
    fn expired_keys_are_swept_as_calls_go() {
        let t0 = Instant::now();
        let mut limiter = SlidingWindow::new(5, secs(1));
        for n in 0..500 {
            limiter.record(&format!("old-{n}"), t0);
        }
        // Calls on one live key only; the sweep drops the 500 expired ones along the way.
        for n in 0..MIN_CALLS_BETWEEN_SWEEPS as u64 {
            limiter.record("live", t0 + secs(5) + Duration::from_micros(n));
        }
        assert_eq!(limiter.len(), 1);
    }

    #[test]
    fn the_number_of_keys_is_bounded_and_the_active_ones_stay() {
        let t0 = Instant::now();
        let mut limiter = SlidingWindow::new(5, MINUTE).with_max_keys(100);
        for n in 0..10_000u64 {
            let now = t0 + Duration::from_millis(n);
            limiter.record(&format!("ip-{n}"), now);
            // One key keeps failing: it must survive the flood.
            if n % 50 == 0 {
                limiter.record("attacker", now);
            }
            assert!(limiter.len() <= 100, "{} keys after {n}", limiter.len());
        }
        let end = t0 + Duration::from_millis(10_000);
        assert!(limiter.check("attacker", end).is_err(), "still limited");
        assert_eq!(
            limiter.attempts("ip-9999", end),
            1,
            "the newest key is kept"
        );
        assert_eq!(
            limiter.attempts("ip-0", end),
            0,
            "the oldest keys went first"
        );
    }

    #[test]
    fn a_bound_of_one_key_works() {
        let t0 = Instant::now();
        let mut limiter = SlidingWindow::new(1, MINUTE).with_max_keys(0);
        limiter.record("a", t0);
        limiter.record("b", t0 + secs(1));
        assert_eq!(limiter.len(), 1);
        assert!(limiter.check("b", t0 + secs(1)).is_err());
        assert!(limiter.check("a", t0 + secs(1)).is_ok(), "forgotten");
    }

    #[test]
    fn a_zero_limit_is_one() {
        let t0 = Instant::now();
        let mut limiter = SlidingWindow::new(0, MINUTE);
        assert_eq!(limiter.limit(), 1);
        assert!(limiter.hit("k", t0).is_ok());
        assert!(limiter.hit("k", t0).is_err());
        assert_eq!(limiter.window(), MINUTE);
    }
}
