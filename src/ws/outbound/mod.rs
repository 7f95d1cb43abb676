//! A session's outbound queue: bounded in messages and in bytes, and written to its client by
//! one of two consumers:
//!
//! - straight into the socket ([`direct`]), on plain TCP once the upgrade's answer is out: the
//!   sender that finds the socket idle writes what is queued itself, in one vectored `send`, so
//!   a fan-out's pushes go out back to back from the registry's thread, with no task woken and
//!   no HTTP dispatcher polled per subscriber; a task waits for room only once a socket is full;
//! - the WebSocket response's body ([`OutboundBody`]), which actix-http writes: under TLS, for a
//!   WebSocket that was not its connection's first request, and until the upgrade's answer is
//!   written.
//!
//! When a client stops reading, the socket's buffers fill, the queue fills, and the next push
//! reports [`Overflow`]: the session is then closed as a slow consumer instead of growing without
//! bound.
//!
//! The queue has two ends that push: the session actor ([`Outbound`]: its answers, pings, closes)
//! and the registry ([`OutboundQueue`], a clone of the sending end: the fan-out pushes straight
//! into every subscriber's queue, without a hop through the session actor). A push is an update's
//! whole WebSocket frame, encoded once and shared (`Bytes`) by every session that sends it
//! ([`super::frame`]).
//!
//! A close has a deadline (`close_wait`): a client that still has not taken everything up to the
//! close frame by then is not waited for any longer. What is queued is dropped, the body ends,
//! and the connection itself is reset (see [`super::socket`]).
//!
//! The queue's lock is held to queue and to take frames, never across a write.

mod body;
mod direct;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::Waker;
use std::time::Duration;

use actix_web::web::{Bytes, BytesMut};
use bytestring::ByteString;

pub use body::OutboundBody;

use super::frame;
use super::socket::ConnectionSocket;

/// One frame on its way out.
pub enum Frame {
    /// A text message, framed when it is written.
    Text(ByteString),
    /// A whole text frame, encoded once for many sessions ([`frame::text`]).
    Encoded(Bytes),
    Ping,
    Pong(Bytes),
    /// The last frame: closes the socket with a code and a reason.
    Close(u16, &'static str),
}

impl Frame {
    /// The bytes it counts against the queue's bound: a message's; control frames count none.
    fn counted(&self) -> usize {
        match self {
            Frame::Text(text) => text.len(),
            Frame::Encoded(bytes) => bytes.len(),
            _ => 0,
        }
    }

    fn is_message(&self) -> bool {
        matches!(self, Frame::Text(_) | Frame::Encoded(_))
    }

    /// Appends the whole frame to `out`.
    fn put(&self, out: &mut BytesMut) {
        match self {
            Frame::Text(text) => frame::put_text(text, out),
            Frame::Encoded(bytes) => out.extend_from_slice(bytes),
            Frame::Ping => frame::put_ping(out),
            Frame::Pong(payload) => frame::put_pong(payload, out),
            Frame::Close(code, reason) => frame::put_close(*code, reason, out),
        }
    }

    /// The whole frame, as it goes on the wire.
    fn encode(self) -> Bytes {
        match self {
            Frame::Encoded(bytes) => bytes,
            other => {
                let mut out = BytesMut::new();
                other.put(&mut out);
                out.freeze()
            }
        }
    }
}

/// The queue is full (messages or bytes): the client is not reading.
#[derive(Debug, PartialEq, Eq)]
pub struct Overflow;

/// At most this much goes into one chunk of the body; a larger frame (a big snapshot) is handed
/// on in slices of this size. actix-http copies each chunk into the connection's write buffer
/// (8 KiB to start with) and keeps whatever that buffer grew to for as long as the connection
/// lasts: a whole 16 KB snapshot in one chunk left every idle session holding a buffer sized for
/// it. The server takes a response's next chunk only while its write buffer holds less than this
/// (`h1_write_buffer_size`), so the buffer holds under two chunks and never grows. (Not one chunk
/// at a time: then every answer's head and body would be two writes.)
pub const MAX_CHUNK: usize = 4 * 1024;

/// What the queue holds, and where its frames go.
struct State {
    frames: VecDeque<Frame>,
    /// What `frames` counts against the bound ([`Frame::counted`]).
    bytes: usize,
    /// Nothing more is taken: a close frame is queued, or every sending end is gone. What is
    /// queued still goes out.
    closed: bool,
    /// Over: nothing more is written, and the body ends.
    finished: bool,
    /// The body's waker, while it waits.
    body: Option<Waker>,
    /// Set once frames go straight into the socket.
    direct: Option<direct::Direct>,
    /// Frames were queued without being written ([`OutboundQueue::encoded_deferred`]): a
    /// [`OutboundQueue::flush`] is owed.
    deferred: bool,
}

impl State {
    fn pop(&mut self) -> Option<Frame> {
        let frame = self.frames.pop_front()?;
        self.bytes -= frame.counted();
        Some(frame)
    }

    fn wake_body(&mut self) {
        if let Some(waker) = self.body.take() {
            waker.wake();
        }
    }

    /// Ends the stream now: what is queued is dropped, the socket let go of, the body woken.
    fn finish(&mut self) {
        self.finished = true;
        self.frames.clear();
        self.bytes = 0;
        if let Some(direct) = self.direct.take() {
            direct.end();
        }
        self.wake_body();
    }
}

struct Shared {
    state: Mutex<State>,
    max_bytes: usize,
    max_messages: usize,
    /// Signalled each time messages are taken: a resume waiting for room waits on it.
    drained: Arc<tokio::sync::Notify>,
    /// Sending ends alive ([`OutboundQueue`]); when none is left, the queue closes.
    senders: AtomicUsize,
    /// Signalled when actix-web is done with the connection (the body is dropped): a close's
    /// deadline has nothing left to wait for.
    connection_gone: tokio::sync::Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding it; if something did, the queue is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a frame. A message is refused once the bytes queued have reached the bound
    /// (`bounded`); any frame once the queue holds its most messages.
    fn push(self: &Arc<Self>, frame: Frame, bounded: bool) -> Result<(), Overflow> {
        let mut state = self.lock();
        if self.queue(&mut state, frame, bounded)? {
            self.kick(state);
        }
        Ok(())
    }

    /// Adds `frame` to `state`; false if it was not taken (the stream is closing: no overflow).
    fn queue(&self, state: &mut State, frame: Frame, bounded: bool) -> Result<bool, Overflow> {
        if state.closed || state.finished {
            return Ok(false);
        }
        if state.frames.len() >= self.max_messages || (bounded && state.bytes >= self.max_bytes) {
            return Err(Overflow);
        }
        if matches!(frame, Frame::Close(..)) {
            state.closed = true;
        }
        state.bytes += frame.counted();
        state.frames.push_back(frame);
        Ok(true)
    }

    /// Has the consumer take what is queued: writes it now if the socket is idle, or wakes the
    /// body.
    fn kick(self: &Arc<Self>, mut state: MutexGuard<'_, State>) {
        state.deferred = false;
        match &mut state.direct {
            Some(direct) => {
                if direct.claim() {
                    drop(state);
                    direct::write_out(self);
                }
            }
            None => state.wake_body(),
        }
    }
}

/// The sending end of a session's queue; clones share the bounds. The queue closes when the
/// last one is dropped: what it holds still goes out, then the stream ends.
pub struct OutboundQueue {
    shared: Arc<Shared>,
}

impl Clone for OutboundQueue {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        OutboundQueue {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for OutboundQueue {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            let mut state = self.shared.lock();
            state.closed = true;
            self.shared.kick(state);
        }
    }
}

impl OutboundQueue {
    /// Queues a text frame, or reports that the queue is full: that the bytes waiting have
    /// reached the bound. A message is taken whatever its own size, so that one larger than the
    /// bound (a big snapshot) can still be sent; a session holds at most the bound plus one
    /// message. A session whose close frame is queued takes nothing more (and that is no
    /// overflow).
    pub fn text(&self, text: ByteString) -> Result<(), Overflow> {
        self.shared.push(Frame::Text(text), true)
    }

    /// Queues a pre-encoded text frame ([`frame::text`]), as [`OutboundQueue::text`] does.
    pub fn encoded(&self, frame: Bytes) -> Result<(), Overflow> {
        self.shared.push(Frame::Encoded(frame), true)
    }

    /// Queues a pre-encoded text frame without writing it yet: a fan-out queues into every
    /// subscriber first and writes afterwards ([`OutboundQueue::flush`]), so that when updates
    /// come faster than they are written, each socket takes several in one write. True if this
    /// queue owed no flush before: the caller keeps it to flush it.
    pub fn encoded_deferred(&self, frame: Bytes) -> Result<bool, Overflow> {
        let mut state = self.shared.lock();
        if !self.shared.queue(&mut state, Frame::Encoded(frame), true)? {
            return Ok(false);
        }
        let first = !state.deferred;
        state.deferred = true;
        Ok(first)
    }

    /// Writes (or hands to the body) what [`OutboundQueue::encoded_deferred`] queued.
    pub fn flush(&self) {
        let state = self.shared.lock();
        if state.deferred {
            self.shared.kick(state);
        }
    }

    /// Bytes queued and not yet taken for the socket.
    pub fn queued_bytes(&self) -> usize {
        self.shared.lock().bytes
    }
}

/// The session actor's end: the queue, plus closing.
pub struct Outbound {
    queue: OutboundQueue,
    close_wait: Duration,
    /// The connection, while it lasts (`None` when it cannot be reached).
    socket: Option<Weak<ConnectionSocket>>,
    /// Set once the close's deadline runs.
    deadline_set: AtomicBool,
}

impl Outbound {
    /// A queue and the response body that drains it. `close_wait`: how long a close frame may
    /// wait for room in a socket whose client does not read (it comes after what the socket
    /// holds already): the silence the heartbeat allows, so that a client that pauses but is
    /// alive still learns why it was closed.
    pub fn start(
        max_messages: usize,
        max_bytes: usize,
        close_wait: Duration,
    ) -> (Self, OutboundBody) {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                frames: VecDeque::new(),
                bytes: 0,
                closed: false,
                finished: false,
                body: None,
                direct: None,
                deferred: false,
            }),
            max_bytes,
            max_messages: max_messages.max(1),
            drained: Arc::new(tokio::sync::Notify::new()),
            senders: AtomicUsize::new(1),
            connection_gone: tokio::sync::Notify::new(),
        });
        let out = Outbound {
            queue: OutboundQueue {
                shared: shared.clone(),
            },
            close_wait,
            socket: None,
            deadline_set: AtomicBool::new(false),
        };
        (out, OutboundBody::new(shared))
    }

    /// The connection to reset if a close does not get through by its deadline.
    pub fn with_socket(mut self, socket: Option<Weak<ConnectionSocket>>) -> Self {
        self.socket = socket;
        self
    }

    /// A sending end for the registry's pushes.
    pub fn queue(&self) -> OutboundQueue {
        self.queue.clone()
    }

    /// See [`OutboundQueue::text`].
    pub fn text(&self, text: ByteString) -> Result<(), Overflow> {
        self.queue.text(text)
    }

    /// Queues a control frame (not held to the byte bound).
    pub fn frame(&self, frame: Frame) -> Result<(), Overflow> {
        self.queue.shared.push(frame, false)
    }

    /// Whether `messages` more text frames of `bytes` in all fit in half the queue: a resume
    /// streams from the log into the queue in batches and waits for room rather than
    /// overflowing it, leaving the other half for live frames (pings, pushes of other topics).
    /// An empty queue takes any batch, however large its messages.
    pub fn has_room(&self, messages: usize, bytes: usize) -> bool {
        let shared = &self.queue.shared;
        let state = shared.lock();
        let queued = state.frames.len();
        if queued == 0 && state.bytes == 0 {
            return true;
        }
        queued + messages <= shared.max_messages / 2 && state.bytes + bytes <= shared.max_bytes / 2
    }

    /// Notified when messages have been taken (see [`Outbound::has_room`]).
    pub fn drained(&self) -> Arc<tokio::sync::Notify> {
        self.queue.shared.drained.clone()
    }

    /// Bytes queued and not yet taken for the socket.
    pub fn queued_bytes(&self) -> usize {
        self.queue.queued_bytes()
    }

    /// Closes after everything queued so far has been sent, or drops the connection if that
    /// has not happened within `close_wait`.
    pub fn close(&self, code: u16, reason: &'static str) {
        if self.frame(Frame::Close(code, reason)).is_err() {
            return self.close_now(code, reason);
        }
        self.drop_after_deadline(None);
    }

    /// Drops what is queued and closes at once: for a client that does not read. (A frame
    /// already partly written is finished first, so the close frame is still a frame.)
    pub fn close_now(&self, code: u16, reason: &'static str) {
        let shared = &self.queue.shared;
        let mut state = shared.lock();
        if !state.finished {
            state.frames.clear();
            state.bytes = 0;
            state.frames.push_back(Frame::Close(code, reason));
            state.closed = true;
            shared.kick(state);
        } else {
            drop(state);
        }
        // The client is known not to read: its connection is reset at the deadline whatever
        // actix-web does meanwhile. Once the body ends, actix-web may close the connection with
        // the unsent bytes still in the kernel's buffer (the peer then sees neither them nor a
        // reset); holding the socket keeps it open until it is reset.
        let hold = self.socket.as_ref().and_then(Weak::upgrade);
        self.drop_after_deadline(hold);
    }

    /// Once `close_wait` has passed: ends the stream (dropping what it still holds) and resets
    /// the connection if it is still open, that is if the client has not taken the close, or if
    /// `hold` is given (a client that does not read).
    fn drop_after_deadline(&self, hold: Option<Arc<ConnectionSocket>>) {
        if self.deadline_set.swap(true, Ordering::Relaxed) {
            return;
        }
        let shared = self.queue.shared.clone();
        let socket = self.socket.clone();
        let wait = self.close_wait;
        actix_web::rt::spawn(async move {
            // Ends as soon as the connection does (unless the socket is held to be reset),
            // rather than keep the queue and this task for `close_wait` after every close:
            // sessions that come and go by the thousand made that memory add up.
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shared.connection_gone.notified(), if hold.is_none() => return,
            }
            shared.lock().finish();
            drop(shared);
            if let Some(socket) = hold.or_else(|| socket.and_then(|s| s.upgrade())) {
                tracing::info!("a client did not take its close within {wait:?}: connection reset");
                socket.reset();
            }
        });
    }
}
