//! Opening the event store that `--store` names, wrapped in [`InstrumentedStore`] so that every
//! append is counted and timed, and with [`CommitMetrics`] watching its group commits.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use events::store::postgres::PostgresStore;
use events::store::sqlite::SqliteStore;
use events::store::{Append, CommitObserver, CommitStats};
use events::{
    AppendResult, EventData, EventStore, ExpectedVersion, RecordedEvent, StoreError, Subscription,
};

use crate::config::{Settings, StoreUrl};
use crate::metrics::metrics;

pub mod kurrentdb;

/// Why the store could not be opened; each message names the file or URL at fault.
#[derive(Debug, thiserror::Error)]
pub enum OpenStoreError {
    #[error("cannot open the event store: {0}")]
    Store(#[from] StoreError),
    #[error("--store {0}: this build has no {1} backend yet; use `sqlite`")]
    Unsupported(String, &'static str),
    #[error(
        "--store {0}: this build has no KurrentDB backend; build with \
         `cargo build --release --features kurrentdb`, or use `sqlite`"
    )]
    NotBuilt(String),
}

/// Opens the configured backend, instrumented.
pub async fn open(settings: &Settings) -> Result<Arc<dyn EventStore>, OpenStoreError> {
    let inner: Arc<dyn EventStore> = match &settings.store {
        StoreUrl::Sqlite => Arc::new(SqliteStore::open_in_observed(
            &settings.data_dir,
            Some(Arc::new(CommitMetrics)),
        )?),
        url @ StoreUrl::EventStoreDb(_) => kurrentdb::open(url, true)?,
        StoreUrl::Postgres(url) => Arc::new(PostgresStore::connect(url).await?),
    };
    Ok(Arc::new(InstrumentedStore::new(inner)))
}

/// Records each group commit's batch size and duration (`eventstore_group_commit_batch_size`,
/// `eventstore_fsync_duration_seconds`).
pub struct CommitMetrics;

impl CommitObserver for CommitMetrics {
    fn committed(&self, stats: CommitStats) {
        metrics().group_commit(stats.appends, stats.commit.as_secs_f64());
    }
}

/// An [`EventStore`] that records `eventstore_appends_total`,
/// `eventstore_append_duration_seconds` and `eventstore_head_position` around another one.
pub struct InstrumentedStore {
    inner: Arc<dyn EventStore>,
}

impl InstrumentedStore {
    pub fn new(inner: Arc<dyn EventStore>) -> Self {
        InstrumentedStore { inner }
    }
}

#[async_trait]
impl EventStore for InstrumentedStore {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<EventData>,
    ) -> Result<AppendResult, StoreError> {
        let started = Instant::now();
        let result = self.inner.append(stream, expected, events).await;
        let seconds = started.elapsed().as_secs_f64();
        let m = metrics();
        match &result {
            Ok(done) => {
                m.append(done.positions.len() as u64, seconds);
                if let Some(&head) = done.positions.iter().max() {
                    m.set_head_position(head);
                }
            }
            Err(_) => m.append(0, seconds),
        }
        result
    }

    async fn append_many(&self, appends: Vec<Append>) -> Vec<Result<AppendResult, StoreError>> {
        let started = Instant::now();
        let results = self.inner.append_many(appends).await;
        let seconds = started.elapsed().as_secs_f64();
        let m = metrics();
        let appended = results
            .iter()
            .flatten()
            .map(|done| done.positions.len() as u64)
            .sum();
        m.append(appended, seconds);
        if let Some(head) = results
            .iter()
            .flatten()
            .flat_map(|d| d.positions.last())
            .max()
        {
            m.set_head_position(*head);
        }
        results
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_stream(stream, from_version, limit).await
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_all(after, limit).await
    }

    fn subscribe_all(&self, after: u64) -> Subscription {
        self.inner.subscribe_all(after)
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        let head = self.inner.head_position().await?;
        metrics().set_head_position(head);
        Ok(head)
    }
}
