//! The KurrentDB / EventStoreDB backend (cargo feature `kurrentdb`), on the official `kurrentdb`
//! gRPC client.
//!
//! The whole store is one KurrentDB stream, the *log* (`adjudicator-log`, or what the URL's
//! `logStream` parameter names). Its first event (revision 0) marks it as an Adjudicator log; the
//! event at revision `p` is the event at global position `p`. A KurrentDB stream's revisions are
//! gap-free and become visible in order, and an append to one stream is atomic, so positions are
//! gap-free and in commit order, and an append of several events is all or nothing. Each event's
//! stream, version and hash-chain link travel in its metadata ([`record`]).
//!
//! Stream versions are checked by this process against a table of every stream, built by
//! reading the log at start and kept current by following it ([`table`], [`tail`]); the server
//! guarantees that nobody appended in between, because every append names the log revision the
//! check was made at ([`writer`]). The ADR `docs/adr/*-kurrentdb-backend.md` gives the reasons, the
//! guarantees and what differs from the other backends.
//!
//! All of the client's work runs on a small runtime of the store's own (two threads), whatever
//! runtime the caller uses, so a connection never depends on a caller's executor staying alive.

mod log;
mod record;
mod settings;
mod table;
mod tail;
mod writer;

use std::future::Future;
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt};
use tokio::sync::{mpsc, watch};

use super::batch::{queue_append, AppendRequest};
use super::{
    catch_up_then_live, validate_append, validate_limit, validate_position, AppendResult,
    EventStore, ExpectedVersion, StoreError, Subscription,
};
use crate::envelope::{EventData, RecordedEvent};
use log::Log;
pub use settings::DEFAULT_LOG_STREAM;
use table::Table;
use writer::{State, Writer};

/// Appends waiting for the writer at most; further callers wait for room.
const QUEUE: usize = 4_096;
/// Reads of the log one `read_stream` runs at once.
const PARALLEL_READS: usize = 8;

/// An event store kept in a KurrentDB (or EventStoreDB 20.6 and later) stream.
#[derive(Clone)]
pub struct KurrentDbStore {
    inner: Arc<Inner>,
}

struct Inner {
    log: Log,
    table: Arc<RwLock<Table>>,
    head: watch::Receiver<u64>,
    state: watch::Receiver<State>,
    /// `None` only while dropping.
    appends: Option<mpsc::Sender<AppendRequest>>,
    /// `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
}

impl KurrentDbStore {
    /// Opens the store the URL names (KurrentDB's connection string, plus `logStream`) and returns at
    /// once: connecting, creating the log if needed, and reading it happen in the background,
    /// and every call waits for them. If they fail, every call answers with the reason.
    /// Only a URL that does not parse is refused here. Needs no tokio runtime.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        Self::start(url, true)
    }

    /// [`KurrentDbStore::open`] a store that must exist already: when the server has no such
    /// log, every call fails instead of creating one (for tools that only read).
    pub fn open_existing(url: &str) -> Result<Self, StoreError> {
        Self::start(url, false)
    }

    fn start(url: &str, create: bool) -> Result<Self, StoreError> {
        let settings = settings::parse(url)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("kurrentdb")
            .enable_all()
            .build()
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot start the KurrentDB runtime: {e}"))
            })?;
        let handle = runtime.handle().clone();
        let log = match Log::new(settings.client, handle.clone(), &settings.log_stream) {
            Ok(log) => log,
            Err(e) => {
                // Dropping a runtime blocks, which panics inside a caller's runtime.
                runtime.shutdown_background();
                return Err(e);
            }
        };
        let table = Arc::new(RwLock::new(Table::default()));
        let (head_tx, head) = watch::channel(0);
        let (state_tx, state) = watch::channel(State::Starting);
        let (appends, requests) = mpsc::channel(QUEUE);
        let writer = Writer::new(log.clone(), table.clone(), head_tx, state_tx, create);
        runtime.spawn(writer.run(requests));
        Ok(KurrentDbStore {
            inner: Arc::new(Inner {
                log,
                table,
                head,
                state,
                appends: Some(appends),
                runtime: Some(runtime),
                handle,
            }),
        })
    }

    /// [`KurrentDbStore::open`], then waits until the store is ready, or fails with the reason
    /// it cannot be used.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let store = Self::open(url)?;
        store.ready().await?;
        Ok(store)
    }

    /// The name of the KurrentDB stream that holds the store.
    pub fn log_stream(&self) -> &str {
        self.inner.log.stream()
    }

    /// Waits until the log has been opened and read.
    pub async fn ready(&self) -> Result<(), StoreError> {
        let mut state = self.inner.state.clone();
        let settled = state
            .wait_for(|s| !matches!(s, State::Starting))
            .await
            .map(|s| s.clone());
        match settled {
            Ok(State::Failed(e)) => Err(e),
            Ok(_) => Ok(()),
            Err(_) => Err(StoreError::Closed),
        }
    }

    /// Runs `work` on the store's runtime.
    async fn on_runtime<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        self.inner
            .handle
            .spawn(work)
            .await
            .map_err(|e| StoreError::Unavailable(format!("KurrentDB task failed: {e}")))?
    }

    /// Reads `len` events from `position` on, which must be versions `from_version ..` of
    /// `stream` (anything else means the table and the log disagree).
    async fn read_piece(
        &self,
        stream: &str,
        from_version: u64,
        position: u64,
        len: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let log = self.inner.log.clone();
        let events = self
            .on_runtime(async move { log.read(position, len as usize).await })
            .await?;
        let expected = (from_version..).zip(position..position + len);
        let matches = events.len() as u64 == len
            && events
                .iter()
                .zip(expected)
                .all(|(e, (v, p))| e.stream == stream && e.version == v && e.position == p);
        if !matches {
            return Err(self.inner.log.corrupt(format!(
                "positions {position} to {} do not hold versions {from_version} to {} of {stream}",
                position + len - 1,
                from_version + len - 1
            )));
        }
        Ok(events)
    }
}

impl Drop for Inner {
    /// The last handle is gone: stop the writer, the tail and the client's connection.
    fn drop(&mut self) {
        self.appends.take();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[async_trait]
impl EventStore for KurrentDbStore {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<EventData>,
    ) -> Result<AppendResult, StoreError> {
        validate_append(stream, &events)?;
        if let Some(e) = events.iter().find(|e| e.event_type.starts_with('$')) {
            return Err(StoreError::InvalidRequest(format!(
                "event type {:?}: KurrentDB reserves types that start with `$`",
                e.event_type
            )));
        }
        let appends = self.inner.appends.as_ref().ok_or(StoreError::Closed)?;
        queue_append(appends, stream, expected, events).await
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        validate_limit(limit)?;
        // The same bounds as the SQL backends, so the contract is one (and `after + 1` below
        // cannot overflow).
        validate_position("version", from_version)?;
        self.ready().await?;
        let pieces = self
            .inner
            .table
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .pieces(stream, from_version, limit);
        let mut version = from_version.max(1);
        let reads = pieces.into_iter().map(|piece| {
            let first_version = version;
            version += piece.len;
            self.read_piece(stream, first_version, piece.position, piece.len)
        });
        let pages: Vec<Vec<RecordedEvent>> = futures_util::stream::iter(reads)
            .buffered(PARALLEL_READS)
            .try_collect()
            .await?;
        Ok(pages.into_iter().flatten().collect())
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        validate_limit(limit)?;
        validate_position("position", after)?;
        self.ready().await?;
        let log = self.inner.log.clone();
        self.on_runtime(async move { log.read(after + 1, limit).await })
            .await
    }

    fn subscribe_all(&self, after: u64) -> Subscription {
        let store = self.clone();
        catch_up_then_live(after, self.inner.head.clone(), move |after, limit| {
            let store = store.clone();
            async move { store.read_all(after, limit).await }
        })
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        self.ready().await?;
        let log = self.inner.log.clone();
        self.on_runtime(async move { log.head().await }).await
    }
}
