//! The writer task of one process and its group commit.
//!
//! Appends from every task of the process queue up in one channel. The writer takes whatever is
//! waiting (up to a bound) into one transaction on its own connection:
//!
//! 1. `SELECT … FROM head FOR UPDATE` locks the single head row. Every appending transaction of
//!    every node takes this lock first and holds it until it commits, so appends are serialized
//!    across the cluster and the positions a transaction gives out follow the last committed
//!    one: gap-free, and committed in position order (a reader never sees position `n + 1`
//!    before `n`).
//! 2. It reads the heads of the batch's streams (from its cache when no other node wrote since
//!    its last commit), checks each request's expected version against the heads as the batch
//!    leaves them, and chains the accepted events.
//! 3. It inserts every accepted event in one statement, moves the head, queues a `NOTIFY` with
//!    the new head for the other nodes, and commits: one WAL flush for the whole batch. Only
//!    then does it answer the callers and advance the head that local subscribers watch.
//!
//! That is the *locked* path. While no other node appends, a shorter one does the same in one
//! round trip: the writer knows the head its last commit left and the heads of the streams it
//! writes, so it plans the batch first and sends `BEGIN`, one statement that moves the head
//! (waiting for the same row lock) only if it is still where the writer left it and inserts the
//! events, the `NOTIFY` and `COMMIT` together. If another node appended in between, that
//! statement fails (`AJ001`), the transaction rolls back, the writer forgets its cached heads,
//! and the batch goes the locked way.
//!
//! A failure answers every caller of the batch with the error and drops the connection (a new
//! one is made for the next batch); whatever was not committed is rolled back by the server.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, NoTls, Statement};

use super::rows::{self, Columns};
use super::{advance, pg_error, NOTIFY_CHANNEL};
use crate::envelope::EventData;
use crate::hash::{Hash, GENESIS};
use crate::store::batch::{plan_batch, AppendRequest, Planned};
use crate::store::{AppendResult, ExpectedVersion, StoreError};

/// Requests the writer takes into one transaction at most.
const MAX_BATCH_REQUESTS: usize = 512;
/// Events the writer takes into one transaction at most (a request is never split).
const MAX_BATCH_EVENTS: usize = 8_192;
/// How long the writer waits, at most, for the rest of a batch that came back small (see `run`).
const GATHER: Duration = Duration::from_millis(1);
/// Stream heads the writer remembers at most between batches.
const MAX_CACHED_HEADS: usize = 100_000;

/// The error `adjudicator.expect_head` raises when another node appended.
const HEAD_MOVED: &str = "AJ001";

/// The writer's connection and its prepared statements.
struct Connection {
    client: Client,
    lock_head: Statement,
    stream_heads: Statement,
    insert: Statement,
    set_head: Statement,
    notify: Statement,
    /// Moves the head by `$15` if it is at `$16`, and inserts the events (`$1`–`$14`).
    move_and_insert: Statement,
}

impl Connection {
    async fn open(config: &Config) -> Result<Self, tokio_postgres::Error> {
        let mut config = config.clone();
        config.application_name("adjudicator writer");
        let (client, connection) = config.connect(NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!("PostgreSQL writer connection closed: {e}");
            }
        });
        let notify = format!("SELECT pg_notify('{NOTIFY_CHANNEL}', $1)");
        // Every inserted row joins the CTE's one row, so the head is moved (and checked) before
        // any row goes in: a CTE nothing depends on may run after the main statement.
        let move_and_insert = format!(
            "WITH moved AS (UPDATE adjudicator.head SET position = position + $15 \
             RETURNING adjudicator.expect_head(position - $15, $16)) {}",
            rows::insert_sql(Some("moved"))
        );
        let insert = rows::insert_sql(None);
        let (lock_head, stream_heads, insert, set_head, notify, move_and_insert) = tokio::try_join!(
            client.prepare("SELECT position FROM adjudicator.head FOR UPDATE"),
            client.prepare(
                "SELECT s.stream, e.version, e.hash FROM unnest($1::text[]) AS s(stream) \
                 CROSS JOIN LATERAL (SELECT version, hash FROM adjudicator.events \
                 WHERE stream = s.stream ORDER BY version DESC LIMIT 1) AS e"
            ),
            client.prepare(&insert),
            client.prepare("UPDATE adjudicator.head SET position = $1"),
            client.prepare(&notify),
            client.prepare(&move_and_insert),
        )?;
        Ok(Connection {
            client,
            lock_head,
            stream_heads,
            insert,
            set_head,
            notify,
            move_and_insert,
        })
    }
}

pub struct Writer {
    config: Config,
    connection: Option<Connection>,
    /// The head as this writer's last commit left it (`None` after a failure); when the head
    /// differs, another node has written since, and the cached stream heads may be stale.
    last_head: Option<u64>,
    /// The version and last hash of recently written streams, as committed.
    heads: HashMap<String, (u64, Hash)>,
    head_tx: Arc<watch::Sender<u64>>,
}

impl Writer {
    pub fn new(config: Config, head_tx: Arc<watch::Sender<u64>>) -> Self {
        Writer {
            config,
            connection: None,
            last_head: None,
            heads: HashMap::new(),
            head_tx,
        }
    }

    /// Runs until every sender is gone and the queue is empty.
    pub async fn run(mut self, mut rx: mpsc::Receiver<AppendRequest>) {
        let mut last_size = 0;
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            let mut events = batch[0].events.len();
            let mut take = |req: AppendRequest, batch: &mut Vec<AppendRequest>| {
                events += req.events.len();
                batch.push(req);
                batch.len() < MAX_BATCH_REQUESTS && events < MAX_BATCH_EVENTS
            };
            let mut room = true;
            while room {
                match rx.try_recv() {
                    Ok(req) => room = take(req, &mut batch),
                    Err(_) => break,
                }
            }
            // Only one transaction is in flight at a time, and the callers the last commit
            // answered send their next appends a moment after it: when far fewer are waiting
            // than the last batch held, give them that moment, or they would split into two
            // half-size batches (and half the throughput) for good.
            if room && batch.len() * 2 <= last_size {
                let deadline = tokio::time::Instant::now() + GATHER;
                while room && batch.len() < last_size {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(req)) => room = take(req, &mut batch),
                        _ => break,
                    }
                }
            }
            last_size = batch.len();
            self.commit_batch(batch).await;
        }
    }

    async fn commit_batch(&mut self, batch: Vec<AppendRequest>) {
        let mut replies = Vec::with_capacity(batch.len());
        let mut requests = Vec::with_capacity(batch.len());
        for req in batch {
            replies.push(req.reply);
            requests.push((req.stream, req.expected, req.events));
        }
        match self.write(requests).await {
            Ok(results) => {
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                // The connection may be in any state: start again from a new one, and trust
                // no cached head.
                self.connection = None;
                self.heads.clear();
                self.last_head = None;
                tracing::warn!("PostgreSQL append failed: {e}");
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }

    async fn write(
        &mut self,
        requests: Vec<(String, ExpectedVersion, Vec<EventData>)>,
    ) -> Result<Vec<Result<AppendResult, StoreError>>, StoreError> {
        if self.connection.is_none() {
            self.connection = Some(Connection::open(&self.config).await.map_err(pg_error)?);
        }
        if let Some(base) = self.last_head {
            match self.write_fast(base, requests.clone()).await? {
                Some(results) => return Ok(results),
                None => {
                    self.heads.clear();
                    self.last_head = None;
                }
            }
        }
        self.write_locked(requests).await
    }

    /// The heads of the batch's streams that are not cached, as committed now.
    async fn lookup_heads(
        &self,
        requests: &[(String, ExpectedVersion, Vec<EventData>)],
    ) -> Result<HashMap<String, (u64, Hash)>, StoreError> {
        let Some(c) = &self.connection else {
            return Err(StoreError::Closed);
        };
        let missing: Vec<&str> = {
            let mut seen = std::collections::HashSet::new();
            requests
                .iter()
                .map(|(s, _, _)| s.as_str())
                .filter(|s| !self.heads.contains_key(*s) && seen.insert(*s))
                .collect()
        };
        let mut found = HashMap::new();
        if missing.is_empty() {
            return Ok(found);
        }
        for row in c
            .client
            .query(&c.stream_heads, &[&missing])
            .await
            .map_err(pg_error)?
        {
            let stream: String = row.get(0);
            let version: i64 = row.get(1);
            let hash: &[u8] = row.get(2);
            let hash: Hash = hash.try_into().map_err(|_| StoreError::Corrupt {
                path: "adjudicator.events".into(),
                problem: format!("the last hash of {stream} is not 32 bytes"),
            })?;
            found.insert(stream, (version as u64, hash));
        }
        Ok(found)
    }

    /// Plans the batch after `base` with the cached heads (and `found` for the others).
    fn plan(
        &self,
        base: u64,
        requests: Vec<(String, ExpectedVersion, Vec<EventData>)>,
        found: &HashMap<String, (u64, Hash)>,
    ) -> Result<(Planned, Columns), StoreError> {
        let mut columns = Columns::default();
        let planned = plan_batch(
            base,
            requests,
            |stream| {
                Ok::<_, StoreError>(
                    self.heads
                        .get(stream)
                        .or_else(|| found.get(stream))
                        .copied()
                        .unwrap_or((0, GENESIS)),
                )
            },
            |recorded| {
                columns.push(recorded);
                Ok(())
            },
        )?;
        Ok((planned, columns))
    }

    /// The one-round-trip path, assuming the head is still at `base`. `None` when another node
    /// appended since (nothing was written).
    async fn write_fast(
        &mut self,
        base: u64,
        requests: Vec<(String, ExpectedVersion, Vec<EventData>)>,
    ) -> Result<Option<Vec<Result<AppendResult, StoreError>>>, StoreError> {
        let found = self.lookup_heads(&requests).await?;
        let (plan, columns) = self.plan(base, requests, &found)?;
        if columns.is_empty() {
            // Every request conflicted with the heads as known: the locked path confirms.
            return Ok(None);
        }
        let Some(c) = &self.connection else {
            return Err(StoreError::Closed);
        };
        let mut params: Vec<&(dyn ToSql + Sync)> = columns.params().to_vec();
        let added = (plan.head - base) as i64;
        let expected = base as i64;
        params.push(&added);
        params.push(&expected);
        let notice = plan.head.to_string();
        let notice_param: [&(dyn ToSql + Sync); 1] = [&notice];
        let (begun, inserted, notified, committed) = tokio::join!(
            c.client.batch_execute("BEGIN"),
            c.client.execute(&c.move_and_insert, &params),
            c.client.execute(&c.notify, &notice_param),
            c.client.batch_execute("COMMIT"),
        );
        begun.map_err(pg_error)?;
        if let Err(e) = inserted {
            if e.code().map(|c| c.code()) == Some(HEAD_MOVED) {
                // The COMMIT was a rollback; make sure before going on.
                committed.map_err(pg_error)?;
                return Ok(None);
            }
            return Err(pg_error(e));
        }
        notified.map_err(pg_error)?;
        committed.map_err(pg_error)?;
        Ok(Some(self.committed(plan)))
    }

    /// The locked path: lock the head first, then read what is not cached, plan and write.
    async fn write_locked(
        &mut self,
        requests: Vec<(String, ExpectedVersion, Vec<EventData>)>,
    ) -> Result<Vec<Result<AppendResult, StoreError>>, StoreError> {
        let Some(c) = &self.connection else {
            return Err(StoreError::Closed);
        };
        let (begun, locked) = tokio::join!(
            c.client.batch_execute("BEGIN"),
            c.client.query_one(&c.lock_head, &[])
        );
        begun.map_err(pg_error)?;
        let base: i64 = locked.map_err(pg_error)?.get(0);
        let base = base as u64;
        if Some(base) != self.last_head {
            self.heads.clear();
        }
        let found = self.lookup_heads(&requests).await?;
        let (plan, columns) = self.plan(base, requests, &found)?;
        let Some(c) = &self.connection else {
            return Err(StoreError::Closed);
        };
        if columns.is_empty() {
            // Every request conflicted: nothing to write, release the lock.
            c.client.batch_execute("ROLLBACK").await.map_err(pg_error)?;
            self.last_head = Some(base);
            return Ok(plan.results);
        }
        let head = plan.head as i64;
        let notice = plan.head.to_string();
        let params = columns.params();
        let head_param: [&(dyn ToSql + Sync); 1] = [&head];
        let notice_param: [&(dyn ToSql + Sync); 1] = [&notice];
        let (inserted, moved, notified, committed) = tokio::join!(
            c.client.execute(&c.insert, &params),
            c.client.execute(&c.set_head, &head_param),
            c.client.execute(&c.notify, &notice_param),
            c.client.batch_execute("COMMIT"),
        );
        // An error in an earlier statement turns the COMMIT into a rollback; report the first.
        inserted.map_err(pg_error)?;
        moved.map_err(pg_error)?;
        notified.map_err(pg_error)?;
        committed.map_err(pg_error)?;
        Ok(self.committed(plan))
    }

    /// Takes in a committed batch: the head it left, its stream heads; answers its results.
    fn committed(&mut self, plan: Planned) -> Vec<Result<AppendResult, StoreError>> {
        self.last_head = Some(plan.head);
        if self.heads.len() + plan.heads.len() > MAX_CACHED_HEADS {
            self.heads.clear();
        }
        self.heads.extend(plan.heads);
        advance(&self.head_tx, plan.head);
        plan.results
    }
}
