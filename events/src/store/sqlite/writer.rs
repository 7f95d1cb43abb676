//! The single writer thread and its group commit.
//!
//! Appends from every task queue up in one channel. The writer takes whatever is waiting (up to a
//! bound), checks each request's expected version against the stream heads as the batch leaves
//! them, writes every accepted event inside one transaction, and commits once: one fsync for the
//! whole batch. Only then does it answer the callers and advance the head that subscribers watch.
//! A failed commit answers every caller of the batch with the error and writes nothing.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension};
use tokio::sync::{mpsc, watch};

use super::rows;
use crate::envelope::EventData;
use crate::hash::{Hash, GENESIS};
use crate::store::batch::{plan_batch, AppendRequest};
use crate::store::{AppendResult, CommitObserver, CommitStats, ExpectedVersion, StoreError};

/// Requests the writer takes into one transaction at most.
const MAX_BATCH_REQUESTS: usize = 512;
/// Events the writer takes into one transaction at most (a request is never split).
const MAX_BATCH_EVENTS: usize = 8_192;

/// Stream heads the writer remembers at most between batches (it forgets them all when full,
/// and looks them up again as needed).
const MAX_CACHED_HEADS: usize = 100_000;

pub(super) struct Writer {
    conn: Connection,
    path: PathBuf,
    head: u64,
    head_tx: watch::Sender<u64>,
    /// The version and last hash of recently written streams, as committed.
    heads: HashMap<String, (u64, Hash)>,
    /// Told of each commit's batch size and duration.
    observer: Option<Arc<dyn CommitObserver>>,
}

impl Writer {
    pub fn new(
        conn: Connection,
        path: PathBuf,
        head: u64,
        head_tx: watch::Sender<u64>,
        observer: Option<Arc<dyn CommitObserver>>,
    ) -> Self {
        Writer {
            conn,
            path,
            head,
            head_tx,
            heads: HashMap::new(),
            observer,
        }
    }

    /// Runs until every sender is gone.
    pub fn run(mut self, mut rx: mpsc::Receiver<AppendRequest>) {
        while let Some(first) = rx.blocking_recv() {
            let mut batch = vec![first];
            let mut events = batch[0].events.len();
            while batch.len() < MAX_BATCH_REQUESTS && events < MAX_BATCH_EVENTS {
                match rx.try_recv() {
                    Ok(req) => {
                        events += req.events.len();
                        batch.push(req);
                    }
                    Err(_) => break,
                }
            }
            self.commit_batch(batch);
        }
    }

    fn commit_batch(&mut self, batch: Vec<AppendRequest>) {
        let appends = batch.len();
        let mut replies = Vec::with_capacity(batch.len());
        let mut requests = Vec::with_capacity(batch.len());
        for req in batch {
            replies.push(req.reply);
            requests.push((req.stream, req.expected, req.events));
        }
        match self.write(requests) {
            Ok((results, head, commit)) => {
                if let Some(observer) = &self.observer {
                    observer.committed(CommitStats {
                        appends,
                        events: (head - self.head) as usize,
                        commit,
                    });
                }
                self.head = head;
                self.head_tx.send_replace(head);
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                let err = StoreError::Unavailable(format!("{}: {e}", self.path.display()));
                for reply in replies {
                    let _ = reply.send(Err(err.clone()));
                }
            }
        }
    }

    /// Writes the batch in one transaction. Returns each request's answer, the new head and how
    /// long the commit (the WAL write and its fsync) took.
    #[allow(clippy::type_complexity)]
    fn write(
        &mut self,
        requests: Vec<(String, ExpectedVersion, Vec<EventData>)>,
    ) -> rusqlite::Result<(Vec<Result<AppendResult, StoreError>>, u64, Duration)> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let planned = {
            let mut insert = tx.prepare_cached(rows::INSERT)?;
            let mut last = tx.prepare_cached(
                "SELECT version, hash FROM events WHERE stream = ?1 ORDER BY version DESC LIMIT 1",
            )?;
            let cached = &self.heads;
            plan_batch(
                self.head,
                requests,
                |stream| match cached.get(stream) {
                    Some(head) => Ok(*head),
                    None => last
                        .query_row([stream], |r| {
                            Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Hash>(1)?))
                        })
                        .optional()
                        .map(|found| found.unwrap_or((0, GENESIS))),
                },
                |recorded| rows::insert(&mut insert, &recorded),
            )?
        };
        let committing = Instant::now();
        tx.commit()?;
        let commit = committing.elapsed();
        // The batch's heads join the cache only now that it is committed.
        if self.heads.len() + planned.heads.len() > MAX_CACHED_HEADS {
            self.heads.clear();
        }
        self.heads.extend(planned.heads);
        Ok((planned.results, planned.head, commit))
    }
}

/// The position of the last event in the file.
pub(super) fn read_head(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("SELECT COALESCE(MAX(position), 0) FROM events", [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|p| p as u64)
}
