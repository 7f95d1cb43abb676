//! Catch-up-then-live subscriptions, shared by every backend whose positions are committed in
//! order: read pages after the last delivered position until a page comes back empty, then wait
//! until the head moves past it, and read again.
//!
//! The head is watched through a `tokio::sync::watch` that the backend advances only after a
//! commit. Waiting checks the current value first, so a commit that lands between the empty read
//! and the wait is never missed.

use std::collections::VecDeque;
use std::future::Future;

use futures_util::stream;
use tokio::sync::watch;

use super::{StoreError, Subscription};
use crate::envelope::RecordedEvent;

const PAGE: usize = 512;

struct State<F> {
    after: u64,
    buffer: VecDeque<RecordedEvent>,
    head: watch::Receiver<u64>,
    read: F,
    done: bool,
}

/// Builds a subscription from a page reader (`read(after, limit)`) and the committed head.
pub fn catch_up_then_live<F, Fut>(after: u64, head: watch::Receiver<u64>, read: F) -> Subscription
where
    F: Fn(u64, usize) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send + 'static,
{
    let state = State {
        after,
        buffer: VecDeque::new(),
        head,
        read,
        done: false,
    };
    Box::pin(stream::unfold(state, |mut s| async move {
        if s.done {
            return None;
        }
        loop {
            if let Some(event) = s.buffer.pop_front() {
                s.after = event.position;
                return Some((Ok(event), s));
            }
            match (s.read)(s.after, PAGE).await {
                Ok(page) if !page.is_empty() => {
                    // Drop anything not strictly after the last delivered event, so a
                    // backend that returns an overlapping page cannot cause a duplicate.
                    let after = s.after;
                    s.buffer
                        .extend(page.into_iter().filter(|e| e.position > after));
                }
                Ok(_) => {
                    let after = s.after;
                    if s.head.wait_for(|h| *h > after).await.is_err() {
                        s.done = true;
                        return Some((Err(StoreError::Closed), s));
                    }
                }
                Err(e) => {
                    s.done = true;
                    return Some((Err(e), s));
                }
            }
        }
    }))
}
