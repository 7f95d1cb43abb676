//! A session's outbound queue: bounded in messages and in bytes, drained into the socket by a
//! writer task. When a client stops reading, the socket's buffers fill, the writer waits, the
//! queue fills, and the next push reports [`Overflow`]: the session is then closed as a slow
//! consumer instead of growing without bound.
//!
//! Pushes are `ByteString`s: a push serialized once is shared (reference-counted) by every
//! session that sends it.
//!
//! A close has a deadline (`close_wait`): a client that still has not taken everything up to the
//! close frame by then is not waited for any longer. The writer is stopped (what is queued is
//! dropped) and the connection itself is reset (see [`super::socket`]).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use actix_ws::{CloseCode, CloseReason};
use bytestring::ByteString;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::socket::ConnectionSocket;

/// One frame on its way out.
pub enum Frame {
    Text(ByteString),
    Ping,
    Pong(actix_web::web::Bytes),
    /// The last frame: closes the socket with a code and a reason.
    Close(u16, &'static str),
}

/// The queue is full (messages or bytes): the client is not reading.
#[derive(Debug, PartialEq, Eq)]
pub struct Overflow;

pub struct Outbound {
    tx: mpsc::Sender<Frame>,
    queued_bytes: Arc<AtomicUsize>,
    max_bytes: usize,
    writer: JoinHandle<()>,
    session: actix_ws::Session,
    close_wait: Duration,
    /// The connection, while it lasts (`None` when it cannot be reached, e.g. over TLS).
    socket: Option<Weak<ConnectionSocket>>,
    /// Set once the close's deadline runs.
    deadline_set: AtomicBool,
    /// Signalled each time the writer hands a text frame to the socket: a resume waiting for
    /// room waits on it.
    drained: Arc<tokio::sync::Notify>,
    max_messages: usize,
}

impl Outbound {
    /// `close_wait`: how long a close frame may wait for room in a socket whose client does not
    /// read (it comes after what the socket holds already): the silence the heartbeat allows,
    /// so that a client that pauses but is alive still learns why it was closed.
    pub fn start(
        session: actix_ws::Session,
        max_messages: usize,
        max_bytes: usize,
        close_wait: Duration,
    ) -> Self {
        let (tx, mut rx) = mpsc::channel::<Frame>(max_messages.max(1));
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        let counter = queued_bytes.clone();
        let drained = Arc::new(tokio::sync::Notify::new());
        let written = drained.clone();
        let mut socket = session.clone();
        let writer = actix_web::rt::spawn(async move {
            while let Some(frame) = rx.recv().await {
                let sent = match frame {
                    Frame::Text(text) => {
                        let len = text.len();
                        let sent = socket.text(text).await;
                        counter.fetch_sub(len, Ordering::Relaxed);
                        written.notify_one();
                        sent
                    }
                    Frame::Ping => socket.ping(b"").await,
                    Frame::Pong(payload) => socket.pong(&payload).await,
                    Frame::Close(code, reason) => {
                        let _ = socket.close(Some(close_reason(code, reason))).await;
                        return;
                    }
                };
                if sent.is_err() {
                    return;
                }
            }
        });
        Outbound {
            tx,
            queued_bytes,
            max_bytes,
            writer,
            session,
            close_wait,
            socket: None,
            deadline_set: AtomicBool::new(false),
            drained,
            max_messages: max_messages.max(1),
        }
    }

    /// The connection to reset if a close does not get through by its deadline.
    pub fn with_socket(mut self, socket: Option<Weak<ConnectionSocket>>) -> Self {
        self.socket = socket;
        self
    }

    /// Queues a text frame, or reports that the queue is full: that the bytes waiting have
    /// reached the bound. A message is taken whatever its own size, so that one larger than the
    /// bound (a big snapshot) can still be sent; a session holds at most the bound plus one
    /// message.
    pub fn text(&self, text: ByteString) -> Result<(), Overflow> {
        let len = text.len();
        if self.queued_bytes.load(Ordering::Relaxed) >= self.max_bytes {
            return Err(Overflow);
        }
        self.queued_bytes.fetch_add(len, Ordering::Relaxed);
        self.tx.try_send(Frame::Text(text)).map_err(|_| {
            self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
            Overflow
        })
    }

    pub fn frame(&self, frame: Frame) -> Result<(), Overflow> {
        self.tx.try_send(frame).map_err(|_| Overflow)
    }

    /// Whether `messages` more text frames of `bytes` in all fit in half the queue: a resume
    /// streams from the log into the queue in batches and waits for room rather than
    /// overflowing it, leaving the other half for live frames (pings, pushes of other topics).
    /// An empty queue takes any batch, however large its messages.
    pub fn has_room(&self, messages: usize, bytes: usize) -> bool {
        let queued_bytes = self.queued_bytes();
        let queued = self.max_messages - self.tx.capacity();
        if queued == 0 && queued_bytes == 0 {
            return true;
        }
        queued + messages <= self.max_messages / 2 && queued_bytes + bytes <= self.max_bytes / 2
    }

    /// Notified when the writer has sent a frame (see [`Outbound::has_room`]).
    pub fn drained(&self) -> Arc<tokio::sync::Notify> {
        self.drained.clone()
    }

    /// Bytes queued and not yet handed to the socket.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes.load(Ordering::Relaxed)
    }

    /// Closes after everything queued so far has been sent, or drops the connection if that
    /// has not happened within `close_wait`.
    pub fn close(&self, code: u16, reason: &'static str) {
        if self.tx.try_send(Frame::Close(code, reason)).is_err() {
            return self.close_now(code, reason);
        }
        self.drop_after_deadline(None);
    }

    /// Drops what is queued and closes at once: for a client that does not read.
    pub fn close_now(&self, code: u16, reason: &'static str) {
        self.writer.abort();
        // The client is known not to read: its connection is reset at the deadline whatever
        // actix-web does meanwhile. Once the last handle below is dropped the response body ends,
        // and actix-web may close the connection with the unsent bytes still in the kernel's
        // buffer (the peer then sees neither them nor a reset); holding the socket keeps it open
        // until it is reset.
        let hold = self.socket.as_ref().and_then(Weak::upgrade);
        let session = self.session.clone();
        let wait = self.close_wait;
        actix_web::rt::spawn(async move {
            let _ =
                tokio::time::timeout(wait, session.close(Some(close_reason(code, reason)))).await;
        });
        self.drop_after_deadline(hold);
    }

    /// Once `close_wait` has passed: stops the writer (dropping what it still holds) and resets
    /// the connection if it is still open, that is if the client has not taken the close, or if
    /// `hold` is given (a client that does not read).
    fn drop_after_deadline(&self, hold: Option<Arc<ConnectionSocket>>) {
        if self.deadline_set.swap(true, Ordering::Relaxed) {
            return;
        }
        let writer = self.writer.abort_handle();
        let socket = self.socket.clone();
        let wait = self.close_wait;
        actix_web::rt::spawn(async move {
            tokio::time::sleep(wait).await;
            writer.abort();
            if let Some(socket) = hold.or_else(|| socket.and_then(|s| s.upgrade())) {
                tracing::info!("a client did not take its close within {wait:?}: connection reset");
                socket.reset();
            }
        });
    }
}

fn close_reason(code: u16, reason: &'static str) -> CloseReason {
    CloseReason {
        code: CloseCode::from(code),
        description: Some(reason.to_owned()),
    }
}
