//! Open-loop submission: the i-th request starts at `start + i / rate` on its own task, whatever
//! the answers to earlier ones are doing, so the offered rate does not fall when the server
//! slows (many requests are then in flight at once, up to a cap). Each request's send instant
//! and answer instant are kept with its result.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::stats::{Latencies, Tally};
use crate::tracker::now_ns;

/// One request: when it was sent, when it was answered, and the position it produced.
pub struct Sent {
    pub sent_ns: u64,
    pub answered_ns: u64,
    pub result: Result<u64, String>,
}

/// All requests of a run.
pub struct Run {
    pub sent: Vec<Sent>,
    /// Requests not sent because `max_in_flight` were still unanswered.
    pub skipped: usize,
    /// How late, against the schedule, the latest request started.
    pub max_lag: Duration,
    /// First send → last send.
    pub span: Duration,
}

impl Run {
    /// `(sent_ns, position)` of the requests that succeeded.
    pub fn positions(&self) -> Vec<(u64, u64)> {
        self.sent
            .iter()
            .filter_map(|s| s.result.as_ref().ok().map(|&p| (s.sent_ns, p)))
            .collect()
    }

    /// Send → answer of the requests that succeeded.
    pub fn answer_latencies(&self) -> Latencies {
        Latencies::new(
            self.sent
                .iter()
                .filter(|s| s.result.is_ok())
                .map(|s| Duration::from_nanos(s.answered_ns - s.sent_ns))
                .collect(),
        )
    }

    pub fn failures(&self) -> Tally {
        let mut t = Tally::default();
        for s in &self.sent {
            if let Err(e) = &s.result {
                t.add(e.clone());
            }
        }
        t
    }

    /// Requests actually sent per second.
    pub fn achieved_rate(&self) -> f64 {
        let n = self.sent.len();
        if n < 2 {
            return 0.0;
        }
        (n - 1) as f64 / self.span.as_secs_f64().max(1e-9)
    }
}

/// Sends `count` requests at `rate` per second; `make(i)` builds the i-th.
pub async fn run<F, Fut>(rate: f64, count: usize, max_in_flight: usize, mut make: F) -> Run
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<u64>> + Send + 'static,
{
    let mut tasks = JoinSet::new();
    let mut sent = Vec::with_capacity(count);
    let (mut skipped, mut max_lag) = (0, Duration::ZERO);
    let start = tokio::time::Instant::now();
    let period = Duration::from_secs_f64(1.0 / rate.max(1e-6));
    let (mut first, mut last) = (None, None);
    for i in 0..count {
        let due = start + period.mul_f64(i as f64);
        loop {
            tokio::select! {
                biased;
                _ = tokio::time::sleep_until(due) => break,
                Some(done) = tasks.join_next() => sent.push(done.expect("a request task panicked")),
            }
        }
        max_lag = max_lag.max(tokio::time::Instant::now().saturating_duration_since(due));
        if tasks.len() >= max_in_flight {
            skipped += 1;
            continue;
        }
        let request = make(i);
        let now = tokio::time::Instant::now();
        first.get_or_insert(now);
        last = Some(now);
        tasks.spawn(async move {
            let sent_ns = now_ns();
            let result = request.await.map_err(|e| format!("{e:#}"));
            Sent {
                sent_ns,
                answered_ns: now_ns(),
                result,
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        sent.push(done.expect("a request task panicked"));
    }
    sent.sort_by_key(|s| s.sent_ns);
    Run {
        sent,
        skipped,
        max_lag,
        span: match (first, last) {
            (Some(f), Some(l)) => l - f,
            _ => Duration::ZERO,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real time (tokio's paused clock would need its `test-util` feature, which would change
    // tokio's build for every crate of the workspace's tests); the bounds are wide.

    #[tokio::test]
    async fn slow_answers_do_not_slow_the_schedule() {
        // Every answer takes 2 s; at 100/s, 20 requests all start within well under 2 s (a
        // closed loop would take 40 s).
        let run = run(100.0, 20, 1000, |i| async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            Ok(i as u64)
        })
        .await;
        assert_eq!(run.sent.len(), 20);
        assert_eq!(run.skipped, 0);
        assert!(run.span < Duration::from_millis(1500), "{:?}", run.span);
        assert_eq!(run.positions().len(), 20);
        assert_eq!(run.failures().total(), 0);
    }

    #[tokio::test]
    async fn the_in_flight_cap_skips_rather_than_waits() {
        // 5 in flight at most, each answered after 3 s: the other 15, due within 0.2 s, are
        // skipped.
        let run = run(100.0, 20, 5, |_| async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            anyhow::bail!("HTTP 503")
        })
        .await;
        assert_eq!(run.sent.len(), 5);
        assert_eq!(run.skipped, 15);
        assert_eq!(run.failures().summary(), "HTTP 503 ×5");
    }
}
