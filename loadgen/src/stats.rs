//! Summaries and printing: nearest-rank percentiles, failures counted by reason, the titled
//! two-column tables every scenario prints, and the one `RESULT` line per figure that
//! `loadgen/run.sh` collects into the target table.

use std::collections::BTreeMap;
use std::time::Duration;

/// Counts of failures by reason.
#[derive(Default, Clone, Debug)]
pub struct Tally(BTreeMap<String, usize>);

impl Tally {
    pub fn add(&mut self, reason: impl Into<String>) {
        *self.0.entry(reason.into()).or_default() += 1;
    }

    pub fn total(&self) -> usize {
        self.0.values().sum()
    }

    /// `reason ×n, …`, or `none`.
    pub fn summary(&self) -> String {
        if self.0.is_empty() {
            return "none".into();
        }
        self.0
            .iter()
            .map(|(r, n)| format!("{r} ×{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Sorted latencies; percentiles by nearest rank.
pub struct Latencies(Vec<Duration>);

impl Latencies {
    pub fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Latencies(samples)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The nearest-rank percentile `p` (0 < p ≤ 100).
    pub fn pct(&self, p: f64) -> Option<Duration> {
        if self.0.is_empty() {
            return None;
        }
        let rank = ((p / 100.0) * self.0.len() as f64).ceil() as usize;
        Some(self.0[rank.clamp(1, self.0.len()) - 1])
    }

    pub fn max(&self) -> Option<Duration> {
        self.0.last().copied()
    }

    /// `p50 a / p99 b / max c ms (n)`.
    pub fn summary(&self) -> String {
        format!(
            "p50 {} / p99 {} / max {} ({} samples)",
            ms(self.pct(50.0)),
            ms(self.pct(99.0)),
            ms(self.max()),
            self.len()
        )
    }
}

pub fn ms(d: Option<Duration>) -> String {
    match d {
        Some(d) => format!("{:.2} ms", d.as_secs_f64() * 1e3),
        None => "n/a".into(),
    }
}

/// A titled two-column table.
#[derive(Default)]
pub struct Table {
    title: String,
    rows: Vec<(String, String)>,
}

impl Table {
    pub fn new(title: impl Into<String>) -> Self {
        Table {
            title: title.into(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.rows.push((key.into(), value.into()));
        self
    }

    pub fn print(&self) {
        let width = self
            .rows
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        println!("{}", self.title);
        println!("{}", "-".repeat(self.title.chars().count().max(width + 20)));
        for (k, v) in &self.rows {
            println!("  {k:<width$}  {v}");
        }
        println!();
    }
}

/// One figure for the target table: `RESULT <row> <text>` (the row's key has no spaces).
pub fn result(row: &str, text: &str) {
    println!("RESULT {row} {text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let l = Latencies::new((1..=100).rev().map(Duration::from_millis).collect());
        assert_eq!(l.pct(50.0), Some(Duration::from_millis(50)));
        assert_eq!(l.pct(99.0), Some(Duration::from_millis(99)));
        assert_eq!(l.pct(100.0), Some(Duration::from_millis(100)));
        assert_eq!(l.max(), Some(Duration::from_millis(100)));
        let few = Latencies::new(vec![Duration::from_millis(3), Duration::from_millis(1)]);
        assert_eq!(few.pct(1.0), Some(Duration::from_millis(1)));
        assert_eq!(few.pct(99.0), Some(Duration::from_millis(3)));
        assert_eq!(Latencies::new(Vec::new()).pct(50.0), None);
    }

    #[test]
    fn tallies_summarise_by_reason() {
        let mut t = Tally::default();
        assert_eq!(t.summary(), "none");
        t.add("HTTP 429");
        t.add("HTTP 429");
        t.add("closed 1013");
        assert_eq!(t.total(), 3);
        assert_eq!(t.summary(), "HTTP 429 ×2, closed 1013 ×1");
    }
}
