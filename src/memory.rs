//! Giving freed heap memory back to the operating system.
//!
//! glibc's allocator keeps what the program frees for reuse and returns to the system only the
//! top of each heap. After thousands of WebSocket sessions end, their memory stays resident,
//! scattered among what lives on, and a server whose sessions come and go crept up round after
//! round (`loadgen/run.sh churn`: +17 % over 8 rounds of 3,000 sessions, all of it free memory:
//! one `malloc_trim` took the process from 281 MB to 165 MB). So the registry releases freed
//! memory once many sessions have ended ([`ReleasePolicy`]).

/// Returns the heap's free pages to the operating system (glibc; elsewhere, nothing). It walks
/// the heap, milliseconds on a large one: call it on a blocking thread, not an actor's.
pub fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: takes only a padding size; glibc takes its arenas' locks itself.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// When to release: once a count (open sessions) has fallen to an eighth of its high-water mark
/// since the last release, and by at least `min_drop`: when most of a wave of sessions is gone,
/// not after every one.
#[derive(Debug)]
pub struct ReleasePolicy {
    high_water: usize,
    min_drop: usize,
}

impl ReleasePolicy {
    pub fn new(min_drop: usize) -> Self {
        ReleasePolicy {
            high_water: 0,
            min_drop,
        }
    }

    /// The count is now `count`; true if a release is due now. The high-water mark then starts
    /// again from `count`.
    pub fn changed(&mut self, count: usize) -> bool {
        self.high_water = self.high_water.max(count);
        let dropped = self.high_water - count;
        if dropped < self.min_drop || count * 8 > self.high_water {
            return false;
        }
        self.high_water = count;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_is_due_once_seven_eighths_of_the_high_water_mark_are_gone() {
        let mut policy = ReleasePolicy::new(100);
        assert!(
            (1..=3000).all(|n| !policy.changed(n)),
            "growing: nothing due"
        );
        let due: Vec<usize> = (0..3000).rev().filter(|&n| policy.changed(n)).collect();
        // 3000 / 8, then an eighth of that (the mark starts again at each release).
        assert_eq!(due, [375, 46]);
        assert!((1..=99).all(|n| !policy.changed(n)));
        assert!(!policy.changed(0), "fewer than `min_drop` ever open since");
    }

    #[test]
    fn a_few_sessions_coming_and_going_never_release() {
        let mut policy = ReleasePolicy::new(256);
        for _ in 0..100 {
            assert!(!policy.changed(200));
            assert!(!policy.changed(0));
        }
    }
}
