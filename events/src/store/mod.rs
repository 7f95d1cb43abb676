//! The event store: an append-only log of streams, read back by stream or globally in position
//! order, with a live subscription to everything after a position.
//!
//! Contract (checked for every backend by [`crate::contract`]):
//! * `append` is atomic: all of its events or none. It returns only once the events are durable.
//! * Versions within a stream and positions across the store start at 1 and grow by one for each
//!   event, without gaps.
//! * `subscribe_all` delivers every event after the given position exactly once, in position
//!   order, first those already stored and then those appended later, with nothing skipped in
//!   between, however writers interleave.

mod batch;
#[cfg(feature = "kurrentdb")]
pub mod kurrentdb;
mod observer;
pub mod postgres;
pub mod sqlite;
mod subscription;

use async_trait::async_trait;
use futures_core::Stream;
use std::pin::Pin;

pub use observer::{CommitObserver, CommitStats};

use crate::envelope::{EventData, RecordedEvent};
pub use subscription::catch_up_then_live;

/// What the writer believes the stream's version is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Append whatever the version is.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream's version must be exactly this (0 means it has no events, as `NoStream`).
    Exact(u64),
}

impl ExpectedVersion {
    pub fn admits(self, actual: u64) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual == 0,
            ExpectedVersion::Exact(v) => actual == v,
        }
    }
}

/// A successful append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendResult {
    /// The stream's version after the append.
    pub stream_version: u64,
    /// The global positions given to the events, in order.
    pub positions: Vec<u64>,
}

/// The most events one append may carry.
pub const MAX_EVENTS_PER_APPEND: usize = 1_000;
/// The most events one read may return.
pub const MAX_READ_LIMIT: usize = 10_000;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// Optimistic concurrency: another writer got there first. Nothing was written.
    #[error("version conflict on {stream}: expected {expected:?}, actual version {actual}")]
    Conflict {
        stream: String,
        expected: ExpectedVersion,
        actual: u64,
    },
    /// The request itself is unacceptable (empty append, bad stream name, limit out of range).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The store file or database is damaged or is not an event store.
    #[error("{path}: {problem}")]
    Corrupt { path: String, problem: String },
    /// The backend failed: disk, network, database. Whether an append landed is unknown only if
    /// the failure came after the commit was sent; callers retry with `Exact` to find out.
    #[error("event store unavailable: {0}")]
    Unavailable(String),
    /// The store was shut down.
    #[error("event store is closed")]
    Closed,
}

/// Every event after a position, live. Ends after yielding an error; the subscriber resubscribes
/// from the last position it saw.
pub type Subscription = Pin<Box<dyn Stream<Item = Result<RecordedEvent, StoreError>> + Send>>;

#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<EventData>,
    ) -> Result<AppendResult, StoreError>;

    /// Events of one stream with `version >= from_version`, at most `limit`, in version order.
    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Events with `position > after`, at most `limit`, in position order.
    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError>;

    fn subscribe_all(&self, after: u64) -> Subscription;

    /// The position of the last event (0 for an empty store).
    async fn head_position(&self) -> Result<u64, StoreError>;

    /// Several appends, applied in the order given, each on its own terms (a conflict in one
    /// leaves the others to succeed or fail alone); answers in the same order. For bulk work
    /// such as `store copy`: a backend that commits in groups queues them all at once, so they
    /// share commits and keep their order. This default appends one after the other.
    async fn append_many(&self, appends: Vec<Append>) -> Vec<Result<AppendResult, StoreError>> {
        let mut results = Vec::with_capacity(appends.len());
        for a in appends {
            results.push(self.append(&a.stream, a.expected, a.events).await);
        }
        results
    }
}

/// One append of [`EventStore::append_many`].
#[derive(Clone, Debug)]
pub struct Append {
    pub stream: String,
    pub expected: ExpectedVersion,
    pub events: Vec<EventData>,
}

/// Checks what every backend refuses before touching storage.
pub fn validate_append(stream: &str, events: &[EventData]) -> Result<(), StoreError> {
    if stream.is_empty() || stream.len() > 512 {
        return Err(StoreError::InvalidRequest(
            "a stream name is 1 to 512 bytes".into(),
        ));
    }
    if events.is_empty() {
        return Err(StoreError::InvalidRequest("nothing to append".into()));
    }
    if events.len() > MAX_EVENTS_PER_APPEND {
        return Err(StoreError::InvalidRequest(format!(
            "at most {MAX_EVENTS_PER_APPEND} events per append"
        )));
    }
    Ok(())
}

/// The largest position (and stream version) a store holds or reads from: SQL backends keep
/// them as signed 64-bit integers.
pub const MAX_POSITION: u64 = i64::MAX as u64;

/// Refuses a position or version above [`MAX_POSITION`], which a cast to SQL's signed integer
/// would wrap to a negative number (and so read from the start).
pub fn validate_position(what: &str, n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| {
        StoreError::InvalidRequest(format!("{what} {n} is above the largest, {MAX_POSITION}"))
    })
}

pub fn validate_limit(limit: usize) -> Result<(), StoreError> {
    if limit == 0 || limit > MAX_READ_LIMIT {
        return Err(StoreError::InvalidRequest(format!(
            "a read limit is 1 to {MAX_READ_LIMIT}"
        )));
    }
    Ok(())
}
