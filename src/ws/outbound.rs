//! A session's outbound queue: bounded in messages and in bytes, drained into the socket by the
//! WebSocket response's body ([`OutboundBody`]). When a client stops reading, the socket's
//! buffers fill, actix-http stops asking the body for more, the queue fills, and the next push
//! reports [`Overflow`]: the session is then closed as a slow consumer instead of growing without
//! bound.
//!
//! The queue has two ends that push: the session actor ([`Outbound`]: its answers, pings, closes)
//! and the registry ([`OutboundQueue`], a clone of the sending end: the fan-out pushes straight
//! into every subscriber's queue, without a hop through the session actor). A push is an update's
//! whole WebSocket frame, encoded once and shared (`Bytes`) by every session that sends it
//! ([`super::frame`]); the body copies everything queued into one chunk, so a burst of pushes is
//! one write.
//!
//! A close has a deadline (`close_wait`): a client that still has not taken everything up to the
//! close frame by then is not waited for any longer. The body ends (what is queued is dropped)
//! and the connection itself is reset (see [`super::socket`]).

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::web::{Bytes, BytesMut};
use bytestring::ByteString;
use tokio::sync::mpsc::{self, error::TrySendError};

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

/// Orders for the body that overtake what is queued.
enum Control {
    /// Drop what is queued, send this close frame, end.
    CloseNow(u16, &'static str),
    /// End at once (the close's deadline passed).
    Stop,
}

/// The queue is full (messages or bytes): the client is not reading.
#[derive(Debug, PartialEq, Eq)]
pub struct Overflow;

/// At most this much goes into one chunk; a larger frame (a big snapshot) is handed on in
/// slices of this size. actix-http copies each chunk into the connection's write buffer (8 KiB
/// to start with) and keeps whatever that buffer grew to, up to 128 KiB, for as long as the
/// connection lasts: a whole 16 KB snapshot in one chunk left every idle session holding a
/// buffer sized for it. The server takes a response's next chunk only while its write buffer
/// holds less than this (`h1_write_buffer_size`), so the buffer holds under two chunks and never
/// grows. (Not one chunk at a time: then every answer's head and body would be two writes.)
pub const MAX_CHUNK: usize = 4 * 1024;

struct Shared {
    queued_bytes: AtomicUsize,
    max_bytes: usize,
    max_messages: usize,
    /// Signalled each time the body takes text frames: a resume waiting for room waits on it.
    drained: Arc<tokio::sync::Notify>,
}

/// The sending end of a session's queue; clones share the bounds.
#[derive(Clone)]
pub struct OutboundQueue {
    tx: mpsc::Sender<Frame>,
    shared: Arc<Shared>,
}

impl OutboundQueue {
    /// Queues a text frame, or reports that the queue is full: that the bytes waiting have
    /// reached the bound. A message is taken whatever its own size, so that one larger than the
    /// bound (a big snapshot) can still be sent; a session holds at most the bound plus one
    /// message. A session whose close frame is queued takes nothing more (and that is no
    /// overflow).
    pub fn text(&self, text: ByteString) -> Result<(), Overflow> {
        let len = text.len();
        self.push(Frame::Text(text), len)
    }

    /// Queues a pre-encoded text frame ([`frame::text`]), as [`OutboundQueue::text`] does.
    pub fn encoded(&self, frame: Bytes) -> Result<(), Overflow> {
        let len = frame.len();
        self.push(Frame::Encoded(frame), len)
    }

    fn push(&self, frame: Frame, len: usize) -> Result<(), Overflow> {
        let queued = &self.shared.queued_bytes;
        if queued.load(Ordering::Relaxed) >= self.shared.max_bytes {
            return Err(Overflow);
        }
        queued.fetch_add(len, Ordering::Relaxed);
        match self.tx.try_send(frame) {
            Ok(()) => Ok(()),
            Err(e) => {
                queued.fetch_sub(len, Ordering::Relaxed);
                match e {
                    TrySendError::Full(_) => Err(Overflow),
                    TrySendError::Closed(_) => Ok(()),
                }
            }
        }
    }

    /// Bytes queued and not yet handed to the socket.
    pub fn queued_bytes(&self) -> usize {
        self.shared.queued_bytes.load(Ordering::Relaxed)
    }
}

/// The session actor's end: the queue, plus closing.
pub struct Outbound {
    queue: OutboundQueue,
    control: mpsc::Sender<Control>,
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
        let (tx, rx) = mpsc::channel::<Frame>(max_messages.max(1));
        let (control, control_rx) = mpsc::channel(2);
        let shared = Arc::new(Shared {
            queued_bytes: AtomicUsize::new(0),
            max_bytes,
            max_messages: max_messages.max(1),
            drained: Arc::new(tokio::sync::Notify::new()),
        });
        let body = OutboundBody {
            rx,
            control: control_rx,
            shared: shared.clone(),
            done: false,
            rest: Bytes::new(),
            keep: None,
        };
        let out = Outbound {
            queue: OutboundQueue { tx, shared },
            control,
            close_wait,
            socket: None,
            deadline_set: AtomicBool::new(false),
        };
        (out, body)
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

    pub fn frame(&self, frame: Frame) -> Result<(), Overflow> {
        self.queue.tx.try_send(frame).map_err(|_| Overflow)
    }

    /// Whether `messages` more text frames of `bytes` in all fit in half the queue: a resume
    /// streams from the log into the queue in batches and waits for room rather than
    /// overflowing it, leaving the other half for live frames (pings, pushes of other topics).
    /// An empty queue takes any batch, however large its messages.
    pub fn has_room(&self, messages: usize, bytes: usize) -> bool {
        let shared = &self.queue.shared;
        let queued_bytes = self.queue.queued_bytes();
        let queued = shared.max_messages - self.queue.tx.capacity();
        if queued == 0 && queued_bytes == 0 {
            return true;
        }
        queued + messages <= shared.max_messages / 2 && queued_bytes + bytes <= shared.max_bytes / 2
    }

    /// Notified when the body has taken text frames (see [`Outbound::has_room`]).
    pub fn drained(&self) -> Arc<tokio::sync::Notify> {
        self.queue.shared.drained.clone()
    }

    /// Bytes queued and not yet handed to the socket.
    pub fn queued_bytes(&self) -> usize {
        self.queue.queued_bytes()
    }

    /// Closes after everything queued so far has been sent, or drops the connection if that
    /// has not happened within `close_wait`.
    pub fn close(&self, code: u16, reason: &'static str) {
        if self.queue.tx.try_send(Frame::Close(code, reason)).is_err() {
            return self.close_now(code, reason);
        }
        self.drop_after_deadline(None);
    }

    /// Drops what is queued and closes at once: for a client that does not read.
    pub fn close_now(&self, code: u16, reason: &'static str) {
        let _ = self.control.try_send(Control::CloseNow(code, reason));
        // The client is known not to read: its connection is reset at the deadline whatever
        // actix-web does meanwhile. Once the body ends, actix-web may close the connection with
        // the unsent bytes still in the kernel's buffer (the peer then sees neither them nor a
        // reset); holding the socket keeps it open until it is reset.
        let hold = self.socket.as_ref().and_then(Weak::upgrade);
        self.drop_after_deadline(hold);
    }

    /// Once `close_wait` has passed: ends the body (dropping what it still holds) and resets
    /// the connection if it is still open, that is if the client has not taken the close, or if
    /// `hold` is given (a client that does not read).
    fn drop_after_deadline(&self, hold: Option<Arc<ConnectionSocket>>) {
        if self.deadline_set.swap(true, Ordering::Relaxed) {
            return;
        }
        let control = self.control.clone();
        let socket = self.socket.clone();
        let wait = self.close_wait;
        actix_web::rt::spawn(async move {
            tokio::time::sleep(wait).await;
            let _ = control.try_send(Control::Stop);
            if let Some(socket) = hold.or_else(|| socket.and_then(|s| s.upgrade())) {
                tracing::info!("a client did not take its close within {wait:?}: connection reset");
                socket.reset();
            }
        });
    }
}

/// The WebSocket response's body: what the session's queue holds, framed, several frames to a
/// chunk. It ends after the close frame, when every sending end is gone, or at the close's
/// deadline.
pub struct OutboundBody {
    rx: mpsc::Receiver<Frame>,
    control: mpsc::Receiver<Control>,
    shared: Arc<Shared>,
    done: bool,
    /// The rest of a frame larger than a chunk, handed on before anything else.
    rest: Bytes,
    /// Dropped with the body (see [`OutboundBody::keeping`]).
    keep: Option<BoxBody>,
}

impl OutboundBody {
    /// Keeps `body` until this body is dropped: actix-ws's own body, whose drop tells the
    /// inbound message stream that the connection is gone.
    pub fn keeping(mut self, body: BoxBody) -> Self {
        self.keep = Some(body);
        self
    }

    /// The next slice of `bytes` (which keeps the rest), at most a chunk.
    fn slice(&mut self, mut bytes: Bytes) -> Bytes {
        if bytes.len() > MAX_CHUNK {
            self.rest = bytes.split_off(MAX_CHUNK);
        }
        bytes
    }

    /// Drops everything queued.
    fn discard(&mut self) {
        self.rx.close();
        while let Ok(frame) = self.rx.try_recv() {
            self.taken(&frame);
        }
    }

    /// Releases a taken frame's bytes from the bound.
    fn taken(&self, frame: &Frame) {
        let len = match frame {
            Frame::Text(text) => text.len(),
            Frame::Encoded(bytes) => bytes.len(),
            _ => return,
        };
        self.shared.queued_bytes.fetch_sub(len, Ordering::Relaxed);
    }
}

impl MessageBody for OutboundBody {
    type Error = Infallible;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Infallible>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if let Poll::Ready(Some(order)) = this.control.poll_recv(cx) {
            this.done = true;
            this.rest.clear();
            this.discard();
            return Poll::Ready(match order {
                Control::CloseNow(code, reason) => {
                    let mut chunk = BytesMut::new();
                    frame::put_close(code, reason, &mut chunk);
                    Some(Ok(chunk.freeze()))
                }
                Control::Stop => None,
            });
        }
        if !this.rest.is_empty() {
            let rest = std::mem::take(&mut this.rest);
            return Poll::Ready(Some(Ok(this.slice(rest))));
        }
        let mut chunk = BytesMut::new();
        let mut texts = false;
        // Control frames (at most 131 bytes) may still follow this much.
        while chunk.len() < MAX_CHUNK - 256 {
            let next = match this.rx.poll_recv(cx) {
                Poll::Ready(Some(next)) => next,
                Poll::Ready(None) => {
                    this.done = true;
                    break;
                }
                Poll::Pending => break,
            };
            this.taken(&next);
            let whole = match next {
                Frame::Encoded(bytes) => bytes,
                // Framed into the chunk when it fits there.
                Frame::Text(text) if chunk.len() + text.len() + 10 <= MAX_CHUNK => {
                    texts = true;
                    frame::put_text(&text, &mut chunk);
                    continue;
                }
                Frame::Text(text) => frame::text(&text),
                Frame::Ping => {
                    frame::put_ping(&mut chunk);
                    continue;
                }
                Frame::Pong(payload) => {
                    frame::put_pong(&payload, &mut chunk);
                    continue;
                }
                Frame::Close(code, reason) => {
                    frame::put_close(code, reason, &mut chunk);
                    this.done = true;
                    this.discard();
                    break;
                }
            };
            texts = true;
            if chunk.is_empty() && (whole.len() > MAX_CHUNK || this.rx.is_empty()) {
                // Alone, or too large to share a chunk: handed on as it is (in slices),
                // without a copy.
                this.shared.drained.notify_one();
                return Poll::Ready(Some(Ok(this.slice(whole))));
            }
            if chunk.len() + whole.len() > MAX_CHUNK {
                // Next time, before anything else.
                this.rest = whole;
                break;
            }
            chunk.extend_from_slice(&whole);
        }
        if texts {
            this.shared.drained.notify_one();
        }
        if !chunk.is_empty() {
            return Poll::Ready(Some(Ok(chunk.freeze())));
        }
        if this.done {
            return Poll::Ready(None);
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything the body hands on now, chunk by chunk.
    fn chunks(body: &mut OutboundBody) -> Vec<Bytes> {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut out = Vec::new();
        while let Poll::Ready(Some(Ok(chunk))) = Pin::new(&mut *body).poll_next(&mut cx) {
            out.push(chunk);
        }
        out
    }

    fn started() -> (Outbound, OutboundBody) {
        Outbound::start(64, 1 << 20, Duration::from_secs(1))
    }

    #[test]
    fn a_large_message_goes_out_in_slices_in_order_with_what_follows() {
        let (out, mut body) = started();
        let big = "x".repeat(3 * MAX_CHUNK + 100);
        out.text(ByteString::from(big.clone())).unwrap();
        out.queue().encoded(frame::text("after")).unwrap();
        let got = chunks(&mut body);
        assert!(got.len() >= 4, "{} chunks", got.len());
        assert!(got.iter().all(|c| c.len() <= MAX_CHUNK));
        let mut expected = frame::text(&big).to_vec();
        expected.extend_from_slice(&frame::text("after"));
        assert_eq!(got.concat(), expected);
        assert_eq!(out.queued_bytes(), 0);
    }

    #[test]
    fn small_frames_share_a_chunk_and_a_large_one_waits_its_turn() {
        let (out, mut body) = started();
        let queue = out.queue();
        let large = frame::text(&"y".repeat(2 * MAX_CHUNK));
        for i in 0..3 {
            queue.encoded(frame::text(&format!("small {i}"))).unwrap();
        }
        queue.encoded(large.clone()).unwrap();
        out.text(ByteString::from("last")).unwrap();
        let got = chunks(&mut body);
        let smalls: Vec<u8> = (0..3)
            .flat_map(|i| frame::text(&format!("small {i}")).to_vec())
            .collect();
        assert_eq!(got[0], smalls, "the three small frames in one chunk");
        assert!(got.iter().all(|c| c.len() <= MAX_CHUNK));
        let mut expected = smalls;
        expected.extend_from_slice(&large);
        expected.extend_from_slice(&frame::text("last"));
        assert_eq!(got.concat(), expected);
    }

    #[test]
    fn many_small_frames_are_cut_into_chunks_of_at_most_the_limit() {
        let (out, mut body) = started();
        let one = frame::text(&"z".repeat(1000));
        for _ in 0..20 {
            out.queue().encoded(one.clone()).unwrap();
        }
        let got = chunks(&mut body);
        assert!(got.len() > 1);
        assert!(got.iter().all(|c| c.len() <= MAX_CHUNK));
        assert_eq!(got.concat(), one.repeat(20));
    }
}
