//! Follows the log for events appended by other processes (other nodes on the same server)
//! with a live subscription, and hands them to the writer in order.
//!
//! When the subscription drops it resubscribes after the last event it handed on, after a
//! pause; the writer's periodic catch-up read covers anything that would still slip through.

use std::time::Duration;

use tokio::sync::mpsc;

use super::log::Log;
use super::record;
use crate::envelope::RecordedEvent;
use crate::store::StoreError;

/// The pause before resubscribing after the subscription failed.
const RESUBSCRIBE_DELAY: Duration = Duration::from_secs(1);

/// Runs until the writer stops listening, or the log holds something that is not an event of
/// the store (which it reports, then stops).
pub(super) async fn run(
    log: Log,
    mut after: u64,
    events: mpsc::Sender<Result<RecordedEvent, StoreError>>,
) {
    loop {
        let (generation, mut subscription) = log.subscribe(after).await;
        loop {
            let next = tokio::select! {
                next = subscription.next() => next,
                () = events.closed() => return,
            };
            match next {
                Ok(resolved) => match record::decode(log.stream(), resolved.get_original_event()) {
                    Ok(event) => {
                        after = event.position;
                        if events.send(Ok(event)).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = events.send(Err(e)).await;
                        return;
                    }
                },
                Err(e) => {
                    let e = log.error(generation, e);
                    tracing::warn!(
                        stream = log.stream(),
                        "KurrentDB subscription dropped, resubscribing: {e}"
                    );
                    break;
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(RESUBSCRIBE_DELAY) => {}
            () = events.closed() => return,
        }
    }
}
