//! What the group-committing backends share: the append request a writer queues, and the
//! planning of one batch (each request's expected version checked against the stream heads as
//! the batch leaves them, accepted events numbered and chained).

use std::collections::HashMap;

use tokio::sync::{mpsc, oneshot};

use super::{validate_append, Append, AppendResult, ExpectedVersion, StoreError};
use crate::envelope::{EventData, RecordedEvent};
use crate::hash::{chain_hash, Hash};

pub(crate) struct AppendRequest {
    pub stream: String,
    pub expected: ExpectedVersion,
    pub events: Vec<EventData>,
    pub reply: oneshot::Sender<Result<AppendResult, StoreError>>,
}

/// Queues an append for the writer and waits for its answer.
pub(crate) async fn queue_append(
    appends: &mpsc::Sender<AppendRequest>,
    stream: &str,
    expected: ExpectedVersion,
    events: Vec<EventData>,
) -> Result<AppendResult, StoreError> {
    let (reply, answer) = oneshot::channel();
    let request = AppendRequest {
        stream: stream.to_owned(),
        expected,
        events,
        reply,
    };
    appends
        .send(request)
        .await
        .map_err(|_| StoreError::Closed)?;
    answer.await.map_err(|_| StoreError::Closed)?
}

/// Queues every append in order (each checked by [`validate_append`] first), then waits for
/// all the answers: the writer sees them in this order and commits them in as few batches as
/// its bounds allow.
pub(crate) async fn queue_appends(
    queue: &mpsc::Sender<AppendRequest>,
    appends: Vec<Append>,
) -> Vec<Result<AppendResult, StoreError>> {
    let mut answers = Vec::with_capacity(appends.len());
    for a in appends {
        if let Err(e) = validate_append(&a.stream, &a.events) {
            answers.push(Err(e));
            continue;
        }
        let (reply, answer) = oneshot::channel();
        let request = AppendRequest {
            stream: a.stream,
            expected: a.expected,
            events: a.events,
            reply,
        };
        match queue.send(request).await {
            Ok(()) => answers.push(Ok(answer)),
            Err(_) => answers.push(Err(StoreError::Closed)),
        }
    }
    let mut results = Vec::with_capacity(answers.len());
    for answer in answers {
        results.push(match answer {
            Ok(answer) => answer.await.unwrap_or(Err(StoreError::Closed)),
            Err(e) => Err(e),
        });
    }
    results
}

/// One batch as planned.
pub(crate) struct Planned {
    /// Each request's answer, in order.
    pub results: Vec<Result<AppendResult, StoreError>>,
    /// The version and last hash of every stream the batch wrote, as it leaves them.
    pub heads: HashMap<String, (u64, Hash)>,
    /// The position of the batch's last event (`base` when nothing was accepted).
    pub head: u64,
}

/// Plans a batch after position `base`: `committed_head` tells a stream's version and last hash
/// before the batch, `write` takes each accepted event in order. An error from either stops the
/// plan (the backend then fails the whole batch).
pub(crate) fn plan_batch<E>(
    base: u64,
    requests: Vec<(String, ExpectedVersion, Vec<EventData>)>,
    mut committed_head: impl FnMut(&str) -> Result<(u64, Hash), E>,
    mut write: impl FnMut(RecordedEvent) -> Result<(), E>,
) -> Result<Planned, E> {
    let mut heads: HashMap<String, (u64, Hash)> = HashMap::new();
    let mut results = Vec::with_capacity(requests.len());
    let mut position = base;
    for (stream, expected, events) in requests {
        let (mut version, mut prev) = match heads.get(&stream) {
            Some(head) => *head,
            None => committed_head(&stream)?,
        };
        if !expected.admits(version) {
            results.push(Err(StoreError::Conflict {
                stream,
                expected,
                actual: version,
            }));
            continue;
        }
        let mut positions = Vec::with_capacity(events.len());
        for data in events {
            version += 1;
            position += 1;
            let hash = chain_hash(&prev, &stream, version, &data);
            write(RecordedEvent {
                position,
                stream: stream.clone(),
                version,
                data,
                prev_hash: prev,
                hash,
            })?;
            positions.push(position);
            prev = hash;
        }
        heads.insert(stream, (version, prev));
        results.push(Ok(AppendResult {
            stream_version: version,
            positions,
        }));
    }
    Ok(Planned {
        results,
        heads,
        head: position,
    })
}
