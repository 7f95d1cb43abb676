//! Reading the whole store in pages, with the next page fetched while the current one is used.

use std::sync::Arc;

use events::{EventEnvelope, EventStore, RecordedEvent, StoreError};
use tokio::sync::mpsc;

const PAGE: usize = 10_000;

/// Pages of every event after `after`, read ahead by a background task. The receiver yields
/// `Err` once if the store fails, then ends.
pub fn read_ahead(
    store: Arc<dyn EventStore>,
    after: u64,
) -> mpsc::Receiver<Result<Vec<RecordedEvent>, StoreError>> {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut after = after;
        loop {
            match store.read_all(after, PAGE).await {
                Ok(page) if page.is_empty() => break,
                Ok(page) => {
                    after = page.last().map_or(after, |e| e.position);
                    if tx.send(Ok(page)).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    break;
                }
            }
        }
    });
    rx
}

/// Like [`read_ahead`], with the events decoded on the reading side too, so that a fold on
/// the receiving side has only folding left to do.
pub fn decode_ahead(
    store: Arc<dyn EventStore>,
    after: u64,
) -> mpsc::Receiver<anyhow::Result<Vec<EventEnvelope>>> {
    let (tx, rx) = mpsc::channel(4);
    let mut pages = read_ahead(store, after);
    tokio::spawn(async move {
        while let Some(page) = pages.recv().await {
            let decoded = page.map_err(anyhow::Error::from).and_then(|page| {
                // The error names the event's position, stream and type, as `serve` does.
                page.into_iter()
                    .map(|record| EventEnvelope::decode(record).map_err(anyhow::Error::from))
                    .collect::<anyhow::Result<Vec<_>>>()
            });
            let failed = decoded.is_err();
            if tx.send(decoded).await.is_err() || failed {
                break;
            }
        }
    });
    rx
}
