//! The PostgreSQL backend, for several nodes sharing one store (`--store postgres://…`).
//!
//! * [`schema`]: the tables, migrated at start under an advisory lock.
//! * [`writer`]: one writer task per process; concurrent appends share a transaction (group
//!   commit), and a lock on the single head row orders appends across every node, so positions
//!   are gap-free and committed in order.
//! * [`listener`]: `LISTEN/NOTIFY` and a poll keep the committed head current for
//!   subscriptions when other nodes append.
//!
//! The store runs its connections on a small runtime of its own, so it can be called from any
//! executor (actix's per-thread runtimes, a test's runtime) and outlives none of them by
//! accident. Connections are plain TCP or a Unix socket (no TLS in this build).

mod listener;
mod rows;
pub mod schema;
mod url;
mod writer;

use std::sync::{Arc, Once};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};
use tokio_postgres::types::ToSql;
use tokio_postgres::NoTls;

use super::batch::{queue_append, queue_appends, AppendRequest};
use super::{
    catch_up_then_live, validate_append, validate_limit, validate_position, Append, AppendResult,
    EventStore, ExpectedVersion, StoreError, Subscription,
};
use crate::envelope::{EventData, RecordedEvent};
pub use url::DEFAULT_POOL_SIZE;
use writer::Writer;

/// The channel of the notification each commit sends, its payload the new head.
const NOTIFY_CHANNEL: &str = "adjudicator_events";
/// Appends waiting for the writer at most; further callers wait for room.
const QUEUE: usize = 4_096;
/// How long a read waits for a free pooled connection before it fails.
const POOL_WAIT: Duration = Duration::from_secs(30);
/// How long the last handle waits, when dropped, for queued appends to commit.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: Option<tokio::runtime::Runtime>,
    handle: Handle,
    appends: Option<mpsc::Sender<AppendRequest>>,
    /// Answers once the writer has committed everything queued and stopped.
    writer_done: std::sync::Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    pool: Pool,
    config: tokio_postgres::Config,
    head_tx: Arc<watch::Sender<u64>>,
    head: watch::Receiver<u64>,
    listening: Once,
}

impl PostgresStore {
    /// Connects to the database `url` names, migrating its schema (or refusing a newer one).
    /// The URL may carry `pool_size=N`, the read connections kept at most (default
    /// [`DEFAULT_POOL_SIZE`]); the process also keeps one writing and one listening connection.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let target = url::parse(url)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("eventstore-pg")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Unavailable(format!("cannot start a runtime: {e}")))?;
        let handle = runtime.handle().clone();
        match Self::start(target, &handle).await {
            Ok(started) => Ok(started.into_store(runtime, handle)),
            Err(e) => {
                // Dropping a runtime may block, which an async caller must not.
                runtime.shutdown_background();
                Err(e)
            }
        }
    }

    /// Migrates, reads the head, and makes the pool and the writer on the store's runtime.
    async fn start(target: url::Target, handle: &Handle) -> Result<Started, StoreError> {
        let config = target.config.clone();
        let head = handle
            .spawn(async move {
                let (mut client, connection) = config.connect(NoTls).await.map_err(|e| {
                    StoreError::Unavailable(format!("cannot connect to PostgreSQL: {e}"))
                })?;
                let driver = tokio::spawn(connection);
                schema::migrate(&mut client).await?;
                let head: i64 = client
                    .query_one("SELECT position FROM adjudicator.head", &[])
                    .await
                    .map_err(pg_error)?
                    .get(0);
                drop(client);
                let _ = driver.await;
                Ok::<_, StoreError>(head as u64)
            })
            .await
            .map_err(|e| StoreError::Unavailable(format!("connect task failed: {e}")))??;
        let manager = Manager::from_config(
            target.config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(target.pool_size)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .build()
            .map_err(|e| StoreError::Unavailable(format!("cannot make the pool: {e}")))?;
        let (head_tx, head_rx) = watch::channel(head);
        let head_tx = Arc::new(head_tx);
        let (tx, rx) = mpsc::channel(QUEUE);
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let writer = Writer::new(target.config.clone(), head_tx.clone());
        handle.spawn(async move {
            writer.run(rx).await;
            let _ = done_tx.send(());
        });
        Ok(Started {
            appends: tx,
            writer_done: done_rx,
            pool,
            config: target.config,
            head_tx,
            head: head_rx,
        })
    }

    /// Runs `f` with a pooled connection on the store's runtime.
    async fn with_client<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(deadpool_postgres::Object) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T, StoreError>> + Send,
    {
        let pool = self.inner.pool.clone();
        self.inner
            .handle
            .spawn(async move {
                let client = pool.get().await.map_err(pool_error)?;
                f(client).await
            })
            .await
            .map_err(|e| StoreError::Unavailable(format!("read task failed: {e}")))?
    }

    /// Events of `SELECT <columns> FROM adjudicator.events <rest>` with `params`.
    async fn select_events(
        &self,
        rest: &'static str,
        params: Vec<Box<dyn ToSql + Send + Sync>>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.with_client(move |client| async move {
            let sql = format!("SELECT {} FROM adjudicator.events {rest}", rows::COLUMNS);
            let stmt = client.prepare_cached(&sql).await.map_err(pg_error)?;
            let refs: Vec<&(dyn ToSql + Sync)> = params
                .iter()
                .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                .collect();
            client
                .query(&stmt, &refs)
                .await
                .map_err(pg_error)?
                .iter()
                .map(rows::read)
                .collect()
        })
        .await
    }

    /// Starts the listener once, on the first subscription.
    fn listen(&self) {
        self.inner.listening.call_once(|| {
            let config = self.inner.config.clone();
            let pool = self.inner.pool.clone();
            let head = self.inner.head_tx.clone();
            self.inner.handle.spawn(listener::run(config, pool, head));
        });
    }
}

/// What [`PostgresStore::start`] made.
struct Started {
    appends: mpsc::Sender<AppendRequest>,
    writer_done: std::sync::mpsc::Receiver<()>,
    pool: Pool,
    config: tokio_postgres::Config,
    head_tx: Arc<watch::Sender<u64>>,
    head: watch::Receiver<u64>,
}

impl Started {
    fn into_store(self, runtime: tokio::runtime::Runtime, handle: Handle) -> PostgresStore {
        PostgresStore {
            inner: Arc::new(Inner {
                runtime: Some(runtime),
                handle,
                appends: Some(self.appends),
                writer_done: std::sync::Mutex::new(Some(self.writer_done)),
                pool: self.pool,
                config: self.config,
                head_tx: self.head_tx,
                head: self.head,
                listening: Once::new(),
            }),
        }
    }
}

impl Drop for Inner {
    /// The last handle is gone: let the writer commit what is queued, then stop the runtime.
    fn drop(&mut self) {
        self.appends.take();
        if let Some(done) = self.writer_done.get_mut().ok().and_then(Option::take) {
            let _ = done.recv_timeout(CLOSE_WAIT);
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[async_trait]
impl EventStore for PostgresStore {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<EventData>,
    ) -> Result<AppendResult, StoreError> {
        validate_append(stream, &events)?;
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
        let from = validate_position("version", from_version)?;
        self.select_events(
            "WHERE stream = $1 AND version >= $2 ORDER BY version LIMIT $3",
            vec![
                Box::new(stream.to_owned()),
                Box::new(from),
                Box::new(limit as i64),
            ],
        )
        .await
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        validate_limit(limit)?;
        let after = validate_position("position", after)?;
        self.select_events(
            "WHERE position > $1 ORDER BY position LIMIT $2",
            vec![Box::new(after), Box::new(limit as i64)],
        )
        .await
    }

    fn subscribe_all(&self, after: u64) -> Subscription {
        self.listen();
        let store = self.clone();
        catch_up_then_live(after, self.inner.head.clone(), move |after, limit| {
            let store = store.clone();
            async move { store.read_all(after, limit).await }
        })
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        let pool = self.inner.pool.clone();
        let head = self
            .inner
            .handle
            .spawn(async move { read_head(&pool).await })
            .await
            .map_err(|e| StoreError::Unavailable(format!("read task failed: {e}")))??;
        advance(&self.inner.head_tx, head);
        Ok(head)
    }

    async fn append_many(&self, appends: Vec<Append>) -> Vec<Result<AppendResult, StoreError>> {
        match &self.inner.appends {
            Some(queue) => queue_appends(queue, appends).await,
            None => appends.iter().map(|_| Err(StoreError::Closed)).collect(),
        }
    }
}

/// The committed head, read from the database.
async fn read_head(pool: &Pool) -> Result<u64, StoreError> {
    let client = pool.get().await.map_err(pool_error)?;
    let stmt = client
        .prepare_cached("SELECT position FROM adjudicator.head")
        .await
        .map_err(pg_error)?;
    let head: i64 = client.query_one(&stmt, &[]).await.map_err(pg_error)?.get(0);
    Ok(head as u64)
}

/// Moves the watched head forward (never back: notifications and polls may arrive late).
fn advance(head: &watch::Sender<u64>, to: u64) {
    head.send_if_modified(|h| {
        if to > *h {
            *h = to;
            true
        } else {
            false
        }
    });
}

fn pg_error(e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        // The driver's own message is only "db error"; the server's says what went wrong.
        Some(db) => StoreError::Unavailable(format!(
            "PostgreSQL: {} ({})",
            db.message(),
            db.code().code()
        )),
        None => StoreError::Unavailable(format!("PostgreSQL: {e}")),
    }
}

fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    StoreError::Unavailable(format!("PostgreSQL connection pool: {e}"))
}
