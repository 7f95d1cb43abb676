//! The embedded backend: one SQLite file in WAL mode with `synchronous = FULL`.
//!
//! One thread owns the writing connection and commits appends in batches ([`writer`]); reads run
//! on a small pool of read-only connections on tokio's blocking threads, so they neither block
//! the writer (WAL readers see the last commit) nor an async executor.

mod checkpoint;
mod rows;
mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::Connection;
use tokio::sync::{mpsc, watch, Semaphore};

use super::batch::{queue_append, queue_appends, AppendRequest};
use super::{
    catch_up_then_live, validate_append, validate_limit, validate_position, Append, AppendResult,
    CommitObserver, EventStore, ExpectedVersion, StoreError, Subscription,
};
use crate::envelope::{EventData, RecordedEvent};
use writer::Writer;

/// Takes the store's write lock (`<file>.lock`), held by the writer thread for as long as it
/// runs: one writing process per store, because the writer keeps the head position in memory.
fn lock_for_writing(path: &Path) -> Result<std::fs::File, StoreError> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = PathBuf::from(name);
    let file = private_options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| schema::corrupt(&lock_path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Unavailable(format!(
            "{} is in use by another process (a running server?); stop it, or use the HTTP API",
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(schema::corrupt(&lock_path, e)),
    }
}

/// Options that create a file readable and writable by its owner only (0600): the store holds
/// password hashes. SQLite gives its `-wal` and `-shm` files the mode of the database file.
fn private_options() -> std::fs::OpenOptions {
    #[allow(unused_mut)]
    let mut options = std::fs::OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// Creates the store file empty and private when it does not exist yet, so that SQLite (which
/// would create it with the process's umask) finds it there; an empty file is a new store.
fn create_private_if_missing(path: &Path) -> Result<(), StoreError> {
    match private_options().write(true).create_new(true).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(schema::corrupt(path, e)),
    }
}

/// Creates a directory and its missing parents, the last one private (0700).
fn create_private_dir_all(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    match builder.create(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        other => other,
    }
}

/// The file name of the store inside the data directory.
pub const FILE_NAME: &str = "events.sqlite3";
/// Appends waiting for the writer at most; further callers wait for room.
const QUEUE: usize = 4_096;
/// Read connections open at most.
const READERS: usize = 8;

#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// `None` when opened read-only.
    appends: Option<mpsc::Sender<AppendRequest>>,
    writer: Option<std::thread::JoinHandle<()>>,
    head: watch::Receiver<u64>,
    readers: Mutex<Vec<Connection>>,
    read_permits: Semaphore,
}

impl SqliteStore {
    /// Opens (or creates) the store file at `path`. A file that is damaged or is not an
    /// Adjudicator store is refused with an error naming it; it is never modified.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_observed(path, None)
    }

    /// [`SqliteStore::open`], telling `observer` of every group commit (its batch size and how
    /// long the commit and its fsync took).
    pub fn open_observed(
        path: impl AsRef<Path>,
        observer: Option<Arc<dyn CommitObserver>>,
    ) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let lock = lock_for_writing(&path)?;
        create_private_if_missing(&path)?;
        let conn = schema::open_writer(&path)?;
        let head = writer::read_head(&conn).map_err(|e| schema::corrupt(&path, e))?;
        let (head_tx, head_rx) = watch::channel(head);
        let (tx, rx) = mpsc::channel(QUEUE);
        let (stop_checkpoints, checkpoint_stop) = std::sync::mpsc::channel::<()>();
        let checkpoint_path = path.clone();
        let checkpointer = std::thread::Builder::new()
            .name("eventstore-checkpoint".into())
            .spawn(move || checkpoint::run(checkpoint_path, checkpoint_stop))
            .map_err(|e| StoreError::Unavailable(format!("cannot start checkpoints: {e}")))?;
        let writer = Writer::new(conn, path.clone(), head, head_tx, observer);
        let writer = std::thread::Builder::new()
            .name("eventstore-writer".into())
            .spawn(move || {
                writer.run(rx);
                // The writer is gone: let the checkpointer fold the WAL and stop.
                drop(stop_checkpoints);
                let _ = checkpointer.join();
                // Only now may another process write: every commit of ours is done.
                drop(lock);
            })
            .map_err(|e| StoreError::Unavailable(format!("cannot start the writer: {e}")))?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                appends: Some(tx),
                writer: Some(writer),
                head: head_rx,
                readers: Mutex::new(Vec::new()),
                read_permits: Semaphore::new(READERS),
            }),
        })
    }

    /// Opens an existing store file for reading only, e.g. for an audit while a server runs.
    /// Appends answer `InvalidRequest`; a subscription ends with `Closed` once caught up.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let conn = schema::open_checked_reader(&path)?;
        let head = writer::read_head(&conn).map_err(|e| schema::corrupt(&path, e))?;
        let (_, head_rx) = watch::channel(head);
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                appends: None,
                writer: None,
                head: head_rx,
                readers: Mutex::new(vec![conn]),
                read_permits: Semaphore::new(READERS),
            }),
        })
    }

    /// Opens `<data_dir>/events.sqlite3`, creating the directory (mode 0700) if needed.
    pub fn open_in(data_dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_in_observed(data_dir, None)
    }

    /// [`SqliteStore::open_in`] with a [`CommitObserver`].
    pub fn open_in_observed(
        data_dir: impl AsRef<Path>,
        observer: Option<Arc<dyn CommitObserver>>,
    ) -> Result<Self, StoreError> {
        let dir = data_dir.as_ref();
        create_private_dir_all(dir).map_err(|e| schema::corrupt(dir, e))?;
        Self::open_observed(dir.join(FILE_NAME), observer)
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` on a read connection on a blocking thread.
    async fn with_reader<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let _permit = self
            .inner
            .read_permits
            .acquire()
            .await
            .map_err(|_| StoreError::Closed)?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner.readers.lock().ok().and_then(|mut p| p.pop());
            let conn = match pooled {
                Some(c) => c,
                None => schema::open_reader(&inner.path)?,
            };
            let result = f(&conn)
                .map_err(|e| StoreError::Unavailable(format!("{}: {e}", inner.path.display())));
            if let Ok(mut pool) = inner.readers.lock() {
                pool.push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("read task failed: {e}")))?
    }
}

impl Drop for Inner {
    /// The last handle is gone: let the writer commit what it has and release the file, so the
    /// store can be opened again as soon as this returns.
    fn drop(&mut self) {
        self.appends.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<EventData>,
    ) -> Result<AppendResult, StoreError> {
        validate_append(stream, &events)?;
        let Some(appends) = &self.inner.appends else {
            return Err(StoreError::InvalidRequest(
                "the store was opened read-only".into(),
            ));
        };
        queue_append(appends, stream, expected, events).await
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        validate_limit(limit)?;
        let from_version = validate_position("version", from_version)?;
        let stream = stream.to_owned();
        self.with_reader(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {} FROM events WHERE stream = ?1 AND version >= ?2 \
                 ORDER BY version LIMIT ?3",
                rows::COLUMNS
            ))?;
            let found = stmt
                .query_map(
                    rusqlite::params![stream, from_version, limit as i64],
                    rows::read,
                )?
                .collect();
            found
        })
        .await
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        validate_limit(limit)?;
        let after = validate_position("position", after)?;
        self.with_reader(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {} FROM events WHERE position > ?1 ORDER BY position LIMIT ?2",
                rows::COLUMNS
            ))?;
            let found = stmt
                .query_map(rusqlite::params![after, limit as i64], rows::read)?
                .collect();
            found
        })
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
        if self.inner.appends.is_some() {
            return Ok(*self.inner.head.borrow());
        }
        // Read-only: another process may be writing, so ask the file.
        self.with_reader(writer::read_head).await
    }

    async fn append_many(&self, appends: Vec<Append>) -> Vec<Result<AppendResult, StoreError>> {
        match &self.inner.appends {
            Some(queue) => queue_appends(queue, appends).await,
            None => appends
                .iter()
                .map(|_| {
                    Err(StoreError::InvalidRequest(
                        "the store was opened read-only".into(),
                    ))
                })
                .collect(),
        }
    }
}
