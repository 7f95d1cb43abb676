//! The one task per process that appends, and keeps the table current.
//!
//! Appends from every caller queue in one channel. The writer takes what is waiting (up to 256
//! requests and about 768 KiB, below KurrentDB's default limit of 1 MiB per append), checks each
//! request's expected version against the table as the batch leaves it, and appends the events of
//! every admitted request to the log in one atomic append that names the log revision the table
//! stands at. If another process appended in the meantime, the server refuses the append and
//! writes nothing; the writer reads what the others appended and checks the batch again. A
//! conflict is reported only once the table has been brought up to the log's end, never against
//! what this process happened to have seen last.
//!
//! Between batches the writer applies what the tail brings from other processes, and reads from
//! the log's end once a second as a safety net.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::MissedTickBehavior;

use super::log::{AppendError, Log};
use super::table::{append_result, ApplyError, Planned, Table};
use super::{record, tail};
use crate::envelope::RecordedEvent;
use crate::store::batch::AppendRequest;
use crate::store::StoreError;

/// Requests one append carries at most.
const MAX_BATCH_REQUESTS: usize = 256;
/// Estimated bytes one append carries at most when it holds several requests (a single request
/// is never split, whatever its size).
const MAX_BATCH_BYTES: usize = 768 * 1024;
/// Appends tried for one batch before its callers are told the log is too contended.
const MAX_ATTEMPTS: u32 = 64;
/// How often the writer reads the log's end even without news from the tail.
const POLL: Duration = Duration::from_secs(1);
/// Events read per request when catching up.
const PAGE: usize = 1_024;
/// Events from the tail waiting for the writer at most.
const TAIL_QUEUE: usize = 1_024;

/// Whether the store can be used.
#[derive(Clone, Debug)]
pub(super) enum State {
    /// Connecting, and reading the log into the table.
    Starting,
    Ready,
    /// The log could not be opened, or holds something this build cannot follow.
    Failed(StoreError),
}

pub(super) struct Writer {
    log: Log,
    table: Arc<RwLock<Table>>,
    head: watch::Sender<u64>,
    state: watch::Sender<State>,
    /// A request taken from the queue that did not fit the last batch.
    carried: Option<AppendRequest>,
    /// Whether to create the log when there is none.
    create: bool,
}

/// Errors after which the writer stops: the log is not what this build can follow.
fn is_fatal(e: &StoreError) -> bool {
    matches!(e, StoreError::Corrupt { .. })
}

impl Writer {
    pub fn new(
        log: Log,
        table: Arc<RwLock<Table>>,
        head: watch::Sender<u64>,
        state: watch::Sender<State>,
        create: bool,
    ) -> Self {
        Writer {
            log,
            table,
            head,
            state,
            carried: None,
            create,
        }
    }

    /// Opens the log, then appends and follows until every sender of `requests` is gone.
    pub async fn run(mut self, mut requests: mpsc::Receiver<AppendRequest>) {
        if let Err(e) = self.start().await {
            return self.fail(e, requests).await;
        }
        self.state.send_replace(State::Ready);
        let (tail_tx, mut tail_rx) = mpsc::channel(TAIL_QUEUE);
        tokio::spawn(tail::run(self.log.clone(), self.head_position(), tail_tx));
        let mut tail_open = true;
        let mut poll = tokio::time::interval(POLL);
        poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let outcome = match self.carried.take() {
                Some(first) => self.commit_from(first, &mut requests).await,
                None => tokio::select! {
                    request = requests.recv() => match request {
                        Some(first) => self.commit_from(first, &mut requests).await,
                        None => return,
                    },
                    tailed = tail_rx.recv(), if tail_open => match tailed {
                        Some(Ok(event)) => self.follow(&event).await,
                        Some(Err(e)) => Err(e),
                        None => {
                            tail_open = false;
                            tracing::warn!(stream = self.log.stream(), "KurrentDB tail stopped");
                            Ok(())
                        }
                    },
                    _ = poll.tick() => self.catch_up_or_warn().await,
                },
            };
            if let Err(fatal) = outcome {
                return self.fail(fatal, requests).await;
            }
        }
    }

    /// Creates the log if it does not exist (and that is wanted), checks its marker, and reads
    /// it into the table.
    async fn start(&mut self) -> Result<(), StoreError> {
        if self.create && self.log.create().await? {
            tracing::info!(stream = self.log.stream(), "created the KurrentDB log");
        }
        if !self.log.check().await? {
            return Err(StoreError::Unavailable(format!(
                "there is no Adjudicator log named {} on this KurrentDB server (a server creates \
                 it when it first starts; or check logStream in --store)",
                self.log.stream()
            )));
        }
        self.catch_up().await
    }

    /// Answers every request with `e` from now on.
    async fn fail(self, e: StoreError, mut requests: mpsc::Receiver<AppendRequest>) {
        tracing::error!(
            stream = self.log.stream(),
            "the KurrentDB event store stopped: {e}"
        );
        self.state.send_replace(State::Failed(e.clone()));
        // Subscriptions waiting for the head end with `Closed`.
        drop(self.head);
        if let Some(request) = self.carried {
            let _ = request.reply.send(Err(e.clone()));
        }
        while let Some(request) = requests.recv().await {
            let _ = request.reply.send(Err(e.clone()));
        }
    }

    fn head_position(&self) -> u64 {
        self.table
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .head()
    }

    /// Adds events in position order and publishes the new head.
    fn apply<'a>(
        &self,
        events: impl IntoIterator<Item = &'a RecordedEvent>,
    ) -> Result<(), ApplyError> {
        let mut table = self.table.write().unwrap_or_else(PoisonError::into_inner);
        let mut result = Ok(());
        for event in events {
            if let Err(e) = table.apply(event) {
                result = Err(e);
                break;
            }
        }
        let head = table.head();
        drop(table);
        self.head.send_if_modified(|h| {
            let moved = *h != head;
            *h = head;
            moved
        });
        result
    }

    /// Reads the log from the head to its end into the table.
    async fn catch_up(&mut self) -> Result<(), StoreError> {
        loop {
            let page = self.log.read(self.head_position() + 1, PAGE).await?;
            let full = page.len() == PAGE;
            // Reading the log in order cannot skip a position unless the log lost events.
            self.apply(&page)
                .map_err(|e| self.log.corrupt(format!("{e}")))?;
            if !full {
                return Ok(());
            }
        }
    }

    /// [`Writer::catch_up`], where a failure to reach the server is only worth a warning.
    async fn catch_up_or_warn(&mut self) -> Result<(), StoreError> {
        match self.catch_up().await {
            Err(e) if !is_fatal(&e) => {
                tracing::warn!(
                    stream = self.log.stream(),
                    "cannot read the KurrentDB log: {e}"
                );
                Ok(())
            }
            other => other,
        }
    }

    /// An event another process appended, from the tail.
    async fn follow(&mut self, event: &RecordedEvent) -> Result<(), StoreError> {
        match self.apply([event]) {
            Ok(()) => Ok(()),
            Err(ApplyError::Gap { .. }) => self.catch_up_or_warn().await,
            Err(e) => Err(self.log.corrupt(format!("{e}"))),
        }
    }

    async fn commit_from(
        &mut self,
        first: AppendRequest,
        requests: &mut mpsc::Receiver<AppendRequest>,
    ) -> Result<(), StoreError> {
        let batch = self.gather(first, requests);
        self.commit(batch).await
    }

    /// `first` and whatever else is waiting, within the bounds of one append.
    fn gather(
        &mut self,
        first: AppendRequest,
        requests: &mut mpsc::Receiver<AppendRequest>,
    ) -> Vec<AppendRequest> {
        let size = |r: &AppendRequest| r.events.iter().map(record::encoded_size).sum::<usize>();
        let mut bytes = size(&first);
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH_REQUESTS {
            let Ok(next) = requests.try_recv() else { break };
            let next_bytes = size(&next);
            if bytes + next_bytes > MAX_BATCH_BYTES {
                self.carried = Some(next);
                break;
            }
            bytes += next_bytes;
            batch.push(next);
        }
        batch
    }

    /// Appends the admitted requests of `batch` and answers every caller.
    async fn commit(&mut self, batch: Vec<AppendRequest>) -> Result<(), StoreError> {
        let mut fresh = false;
        for _ in 0..MAX_ATTEMPTS {
            let (last, planned) = {
                let table = self.table.read().unwrap_or_else(PoisonError::into_inner);
                let requests = batch
                    .iter()
                    .map(|r| (r.stream.as_str(), r.expected, r.events.as_slice()));
                (table.head(), table.plan(requests))
            };
            let conflicted = planned
                .iter()
                .any(|p| matches!(p, Err(StoreError::Conflict { .. })));
            if conflicted && !fresh {
                if let Err(e) = self.catch_up().await {
                    return refuse(batch, e);
                }
                fresh = true;
                continue;
            }
            let placed: Vec<&RecordedEvent> = planned.iter().flatten().flatten().collect();
            if placed.is_empty() {
                answer(batch, planned);
                return Ok(());
            }
            let data = placed.iter().map(|e| record::to_event_data(e)).collect();
            match self.log.append(last, data).await {
                Ok(()) => {
                    let applied = self.apply(placed);
                    answer(batch, planned);
                    // The events are in the log; if this process cannot follow them, it stops.
                    return applied.map_err(|e| self.log.corrupt(format!("{e}")));
                }
                Err(AppendError::Moved) => {
                    if let Err(e) = self.catch_up().await {
                        return refuse(batch, e);
                    }
                    fresh = true;
                }
                Err(AppendError::Failed(e)) => {
                    answer_failed(batch, planned, &e);
                    return Ok(());
                }
            }
        }
        refuse(
            batch,
            StoreError::Unavailable(format!(
                "the KurrentDB log {} kept moving: {MAX_ATTEMPTS} appends in a row found that \
                 other processes had appended first",
                self.log.stream()
            )),
        )
    }
}

/// Answers each request of the batch with its plan: its positions, or its conflict.
fn answer(batch: Vec<AppendRequest>, planned: Vec<Planned>) {
    for (request, planned) in batch.into_iter().zip(planned) {
        let _ = request
            .reply
            .send(planned.map(|events| append_result(&events)));
    }
}

/// The append failed: conflicts stay conflicts, the others learn why it failed.
fn answer_failed(batch: Vec<AppendRequest>, planned: Vec<Planned>, e: &StoreError) {
    for (request, planned) in batch.into_iter().zip(planned) {
        let answer = planned.and_then(|_| Err(e.clone()));
        let _ = request.reply.send(answer);
    }
}

/// Answers the whole batch with `e`; a fatal `e` stops the writer.
fn refuse(batch: Vec<AppendRequest>, e: StoreError) -> Result<(), StoreError> {
    for request in batch {
        let _ = request.reply.send(Err(e.clone()));
    }
    match is_fatal(&e) {
        true => Err(e),
        false => Ok(()),
    }
}
