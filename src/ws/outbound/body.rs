//! The WebSocket response's body: the queue's frames, several to a chunk, for actix-http to
//! write. It ends after the close frame, when every sending end is gone and the queue is empty,
//! or at the close's deadline.
//!
//! On plain TCP, when the WebSocket was its connection's first request, the body hands its
//! queue to the socket instead ([`super::direct`]) once the upgrade's answer has been written,
//! and from then on only waits for the end. actix-http writes the answer's head after the body's
//! first poll, in the same turn: so the body answers its first poll with nothing, asks to be
//! polled again, and switches at the second.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::web::{Bytes, BytesMut};

use super::direct::Direct;
use super::{Frame, Shared, MAX_CHUNK};
use crate::ws::socket::ConnectionSocket;

pub struct OutboundBody {
    pub(super) shared: Arc<Shared>,
    /// The rest of a frame larger than a chunk, handed on before anything else.
    rest: Bytes,
    /// Dropped with the body (see [`OutboundBody::keeping`]).
    keep: Option<BoxBody>,
    /// The socket to hand the queue to, and whether the first poll has been answered.
    direct: Option<(Weak<ConnectionSocket>, bool)>,
}

impl OutboundBody {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        OutboundBody {
            shared,
            rest: Bytes::new(),
            keep: None,
            direct: None,
        }
    }

    /// Keeps `body` until this body is dropped: actix-ws's own body, whose drop tells the
    /// inbound message stream that the connection is gone.
    pub fn keeping(mut self, body: BoxBody) -> Self {
        self.keep = Some(body);
        self
    }

    /// Writes the frames straight into `socket` once the upgrade's answer is out, if the
    /// connection allows it ([`ConnectionSocket::writable_directly`]).
    pub fn direct_to(mut self, socket: Option<&Arc<ConnectionSocket>>) -> Self {
        if cfg!(target_os = "linux") {
            self.direct = socket
                .filter(|s| s.writable_directly())
                .map(|s| (Arc::downgrade(s), false));
        }
        self
    }

    /// The next slice of `bytes` (which keeps the rest), at most a chunk.
    fn slice(&mut self, mut bytes: Bytes) -> Bytes {
        if bytes.len() > MAX_CHUNK {
            self.rest = bytes.split_off(MAX_CHUNK);
        }
        bytes
    }
}

impl Drop for OutboundBody {
    /// actix-web is done with the connection: nothing more can be written.
    fn drop(&mut self) {
        self.shared.lock().finish();
        self.shared.connection_gone.notify_one();
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
        let shared = this.shared.clone();
        let mut state = shared.lock();
        if state.finished {
            return Poll::Ready(None);
        }
        if state.direct.is_some() {
            state.body = Some(cx.waker().clone());
            return Poll::Pending;
        }
        if let Some((socket, first_answered)) = &mut this.direct {
            if !*first_answered {
                // The answer's head is written after this poll: come back once it is.
                *first_answered = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let socket = socket.upgrade();
            this.direct = None;
            if let Some(socket) = socket {
                state.direct = Some(Direct::new(socket));
                state.body = Some(cx.waker().clone());
                shared.kick(state);
                return Poll::Pending;
            }
        }
        if !this.rest.is_empty() {
            let rest = std::mem::take(&mut this.rest);
            return Poll::Ready(Some(Ok(this.slice(rest))));
        }
        let mut chunk = BytesMut::new();
        let mut messages = false;
        // Control frames (at most 131 bytes) may still follow this much.
        while chunk.len() < MAX_CHUNK - 256 {
            let Some(next) = state.pop() else {
                break;
            };
            let whole = match next {
                Frame::Encoded(bytes) => bytes,
                // Framed into the chunk when it fits there.
                Frame::Text(text) if chunk.len() + text.len() + 10 <= MAX_CHUNK => {
                    messages = true;
                    super::frame::put_text(&text, &mut chunk);
                    continue;
                }
                Frame::Text(text) => super::frame::text(&text),
                Frame::Close(..) => {
                    next.put(&mut chunk);
                    state.finish();
                    break;
                }
                control => {
                    control.put(&mut chunk);
                    continue;
                }
            };
            messages = true;
            if chunk.is_empty() && (whole.len() > MAX_CHUNK || state.frames.is_empty()) {
                // Alone, or too large to share a chunk: handed on as it is (in slices),
                // without a copy.
                drop(state);
                shared.drained.notify_one();
                return Poll::Ready(Some(Ok(this.slice(whole))));
            }
            if chunk.len() + whole.len() > MAX_CHUNK {
                // Next time, before anything else.
                this.rest = whole;
                break;
            }
            chunk.extend_from_slice(&whole);
        }
        // (`rest` is only ever set beside a chunk that is not empty.)
        if chunk.is_empty() {
            if state.closed {
                state.finish();
            } else {
                state.body = Some(cx.waker().clone());
            }
        }
        let finished = state.finished;
        drop(state);
        if messages {
            shared.drained.notify_one();
        }
        if !chunk.is_empty() {
            return Poll::Ready(Some(Ok(chunk.freeze())));
        }
        if finished {
            return Poll::Ready(None);
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::task::{Context, Poll};
    use std::time::Duration;

    use bytestring::ByteString;

    use super::super::{frame, Outbound};
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
