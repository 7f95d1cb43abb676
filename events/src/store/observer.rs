//! A backend's report of each commit to whoever watches it (the runtime's metrics), without this
//! crate knowing how the figures are recorded.

use std::time::Duration;

/// One commit of a backend: a group of appends written together and made durable at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitStats {
    /// Appends (calls to `append`) the commit carried, conflicts included: the group commit's
    /// batch size.
    pub appends: usize,
    /// Events it wrote.
    pub events: usize,
    /// How long the commit itself took: writing the log and its fsync.
    pub commit: Duration,
}

/// Told of every successful commit, on the writer's own thread: it must be quick and must not
/// block (record a figure, nothing more).
pub trait CommitObserver: Send + Sync + 'static {
    fn committed(&self, stats: CommitStats);
}
