//! Frames written straight into a session's socket, on plain TCP, bypassing actix-http's
//! dispatcher once the upgrade's answer is out (`body.rs` decides when; ADR 0017 says why).
//!
//! Whoever queues a frame while the socket is idle takes the right to write ([`Direct::claim`]),
//! takes what is queued and writes it with one vectored, non-blocking `send`, outside the queue's
//! lock; meanwhile other senders only queue, and the writer takes what they queued before it lets
//! go. So a fan-out writes each subscriber's frame from the registry's own thread, back to back.
//! A short write leaves the rest in [`Direct::unsent`] and marks the socket full; then a task of
//! the session's (started at its first short write) waits until the socket has room and writes
//! on. A failed write (the client is gone) ends the stream.
//!
//! The descriptor written to is the connection's duplicate ([`ConnectionSocket`]), held here
//! only while the stream lasts: it is let go of when the stream ends, so it cannot outlive the
//! connection and be written after its number was reused.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;

use actix_web::web::Bytes;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::Notify;

use super::Shared;
use crate::ws::socket::ConnectionSocket;

/// At most this many frames, or about this many bytes, go into one `send`.
const MAX_FRAMES_PER_WRITE: usize = 64;
const MAX_BYTES_PER_WRITE: usize = 256 * 1024;

pub(super) struct Direct {
    socket: Arc<ConnectionSocket>,
    /// Someone is writing, outside the lock: others only queue.
    writing: bool,
    /// The socket was full: only the waiting task writes, once it has room.
    blocked: bool,
    /// What a short write left of the frames it took: written before anything queued.
    unsent: VecDeque<Bytes>,
    /// Wakes the task that waits for room; it is started at the first short write.
    waiter: Option<Arc<Notify>>,
}

impl Direct {
    pub(super) fn new(socket: Arc<ConnectionSocket>) -> Self {
        Direct {
            socket,
            writing: false,
            blocked: false,
            unsent: VecDeque::new(),
            waiter: None,
        }
    }

    /// Takes the right to write, unless somebody has it or the socket is full. Whoever takes
    /// it calls [`write_out`].
    pub(super) fn claim(&mut self) -> bool {
        if self.writing || self.blocked {
            return false;
        }
        self.writing = true;
        true
    }

    /// The stream is over: the socket is let go of, and the waiting task, if any, ends.
    pub(super) fn end(self) {
        if let Some(waiter) = self.waiter {
            waiter.notify_one();
        }
    }
}

/// Writes what is queued until the queue is empty or the socket is full; called by the holder
/// of the right to write, which it gives back.
pub(super) fn write_out(shared: &Arc<Shared>) {
    let mut batch: Vec<Bytes> = Vec::new();
    loop {
        let mut messages = false;
        let (socket, size) = {
            let mut state = shared.lock();
            let state = &mut *state;
            if state.finished {
                return;
            }
            let Some(direct) = state.direct.as_mut() else {
                return;
            };
            batch.extend(direct.unsent.drain(..));
            let mut size: usize = batch.iter().map(Bytes::len).sum();
            while batch.len() < MAX_FRAMES_PER_WRITE && size < MAX_BYTES_PER_WRITE {
                let Some(frame) = state.frames.pop_front() else {
                    break;
                };
                state.bytes -= frame.counted();
                messages |= frame.is_message();
                let bytes = frame.encode();
                size += bytes.len();
                batch.push(bytes);
            }
            if batch.is_empty() {
                direct.writing = false;
                if state.closed {
                    // Everything up to the close frame (or the last push) is out.
                    state.finish();
                }
                return;
            }
            (direct.socket.clone(), size)
        };
        if messages {
            shared.drained.notify_one();
        }
        match send(&socket, &batch) {
            Ok(n) if n == size => batch.clear(),
            Ok(n) => return wait_for_room(shared, unsent_after(batch, n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return wait_for_room(shared, batch.into())
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::debug!("a WebSocket write failed, the stream ends: {e}");
                return shared.lock().finish();
            }
        }
    }
}

/// One non-blocking `send` of the whole batch, without raising SIGPIPE on a closed socket.
fn send(socket: &ConnectionSocket, batch: &[Bytes]) -> io::Result<usize> {
    let fd = socket.fd();
    let socket = socket2::SockRef::from(&fd);
    let flags = libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT;
    if let [one] = batch {
        return socket.send_with_flags(one, flags);
    }
    let mut slices = [IoSlice::new(&[]); MAX_FRAMES_PER_WRITE];
    for (slice, bytes) in slices.iter_mut().zip(batch) {
        *slice = IoSlice::new(bytes);
    }
    socket.send_vectored_with_flags(&slices[..batch.len()], flags)
}

/// What is left of `batch` after its first `written` bytes.
fn unsent_after(batch: Vec<Bytes>, mut written: usize) -> VecDeque<Bytes> {
    let mut rest = VecDeque::with_capacity(batch.len());
    for bytes in batch {
        if written >= bytes.len() {
            written -= bytes.len();
        } else {
            rest.push_back(bytes.slice(written..));
            written = 0;
        }
    }
    rest
}

/// The socket is full: keeps `unsent`, gives back the right to write, and has the session's
/// waiting task write on once there is room.
fn wait_for_room(shared: &Arc<Shared>, unsent: VecDeque<Bytes>) {
    let mut state = shared.lock();
    if state.finished {
        return;
    }
    let Some(direct) = state.direct.as_mut() else {
        return;
    };
    direct.unsent = unsent;
    direct.writing = false;
    direct.blocked = true;
    let waiter = match &direct.waiter {
        Some(waiter) => waiter.clone(),
        None => {
            let waiter = Arc::new(Notify::new());
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    let task = waiting(shared.clone(), waiter.clone(), direct.socket.clone());
                    runtime.spawn(task);
                }
                Err(_) => {
                    tracing::warn!("no runtime to wait for room in a full socket: stream ended");
                    return state.finish();
                }
            }
            direct.waiter = Some(waiter.clone());
            waiter
        }
    };
    drop(state);
    waiter.notify_one();
}

/// The descriptor, for the reactor.
struct Watched(Arc<ConnectionSocket>);

impl AsRawFd for Watched {
    fn as_raw_fd(&self) -> RawFd {
        self.0.fd().as_raw_fd()
    }
}

/// A session's task that writes on whenever its socket was full and has room again; it ends
/// with the stream.
async fn waiting(shared: Arc<Shared>, waiter: Arc<Notify>, socket: Arc<ConnectionSocket>) {
    // SAFETY: `Watched` owns (a reference to) the descriptor, which stays open and the same for
    // as long as the `AsyncFd` lives.
    let registered =
        unsafe { AsyncFd::register_with_interest(Watched(socket), Interest::WRITABLE) };
    let watched = match registered {
        Ok(watched) => watched,
        Err(e) => {
            tracing::warn!("cannot wait for room in a WebSocket's socket, stream ended: {e}");
            return shared.lock().finish();
        }
    };
    loop {
        let blocked = {
            let state = shared.lock();
            if state.finished {
                return;
            }
            matches!(&state.direct, Some(direct) if direct.blocked)
        };
        if !blocked {
            waiter.notified().await;
            continue;
        }
        let mut ready = tokio::select! {
            ready = watched.writable() => match ready {
                Ok(ready) => ready,
                Err(_) => return shared.lock().finish(),
            },
            // The stream ended meanwhile (or more to do: the loop looks).
            _ = waiter.notified() => continue,
        };
        {
            let mut state = shared.lock();
            let Some(direct) = state.direct.as_mut() else {
                return;
            };
            direct.blocked = false;
            direct.writing = true;
        }
        write_out(&shared);
        let still_full = matches!(&shared.lock().direct, Some(direct) if direct.blocked);
        if still_full {
            ready.clear_ready();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::OwnedFd;
    use std::time::Duration;

    use bytestring::ByteString;

    use super::super::{frame, Outbound, OutboundBody};
    use super::*;

    /// A loopback connection: the server's end as a session's socket, and the client's end.
    fn connection() -> (Arc<ConnectionSocket>, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        (
            Arc::new(ConnectionSocket::new(OwnedFd::from(server), true)),
            client,
        )
    }

    /// A queue already writing straight into `socket`.
    fn direct(socket: &Arc<ConnectionSocket>, max_bytes: usize) -> (Outbound, OutboundBody) {
        let (out, body) = Outbound::start(100_000, max_bytes, Duration::from_secs(5));
        body.shared.lock().direct = Some(Direct::new(socket.clone()));
        (out, body)
    }

    fn read_exactly(client: &mut TcpStream, len: usize) -> Vec<u8> {
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut got = vec![0; len];
        client.read_exact(&mut got).unwrap();
        got
    }

    #[test]
    fn frames_are_written_as_they_are_queued_in_order() {
        let (socket, mut client) = connection();
        let (out, body) = direct(&socket, 1 << 20);
        let mut expected = Vec::new();
        for i in 0..50 {
            let push = frame::text(&format!("update {i}"));
            expected.extend_from_slice(&push);
            out.queue().encoded(push).unwrap();
        }
        out.text(ByteString::from("answer")).unwrap();
        expected.extend_from_slice(&frame::text("answer"));
        assert_eq!(
            out.queued_bytes(),
            0,
            "nothing waits while the socket has room"
        );
        assert_eq!(read_exactly(&mut client, expected.len()), expected);
        assert!(!body.shared.lock().finished);
    }

    #[test]
    fn deferred_frames_wait_for_the_flush_and_go_out_together() {
        let (socket, mut client) = connection();
        let (out, _body) = direct(&socket, 1 << 20);
        let queue = out.queue();
        let frames: Vec<Bytes> = (0..3).map(|i| frame::text(&format!("u{i}"))).collect();
        assert_eq!(queue.encoded_deferred(frames[0].clone()), Ok(true));
        assert_eq!(
            queue.encoded_deferred(frames[1].clone()),
            Ok(false),
            "a flush is owed already"
        );
        assert_eq!(queue.encoded_deferred(frames[2].clone()), Ok(false));
        client.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 64];
        let nothing = client.read(&mut buf).unwrap_err();
        assert_eq!(
            nothing.kind(),
            io::ErrorKind::WouldBlock,
            "nothing written yet"
        );
        client.set_nonblocking(false).unwrap();
        queue.flush();
        assert_eq!(
            read_exactly(&mut client, frames.concat().len()),
            frames.concat()
        );
        assert_eq!(queue.encoded_deferred(frame::text("next")), Ok(true));
    }

    #[actix_rt::test]
    async fn a_close_ends_the_stream_once_it_is_written() {
        let (socket, mut client) = connection();
        let (out, body) = direct(&socket, 1 << 20);
        out.queue().encoded(frame::text("last update")).unwrap();
        out.close(1000, "normal");
        let mut expected = frame::text("last update").to_vec();
        let mut close = actix_web::web::BytesMut::new();
        frame::put_close(1000, "normal", &mut close);
        expected.extend_from_slice(&close);
        assert_eq!(read_exactly(&mut client, expected.len()), expected);
        let state = body.shared.lock();
        assert!(state.finished, "the body ends after the close frame");
        assert!(state.direct.is_none(), "the socket is let go of");
    }

    #[actix_rt::test]
    async fn a_full_socket_keeps_the_rest_and_writes_it_in_order_once_the_client_reads() {
        let (socket, client) = connection();
        socket2::SockRef::from(&socket.fd())
            .set_send_buffer_size(16 * 1024)
            .unwrap();
        let (out, body) = direct(&socket, 64 << 20);
        let mut expected = Vec::new();
        // Far more than the socket and the client's buffers hold, with one large frame among
        // small ones.
        for i in 0..2_000 {
            let push = if i == 1_000 {
                frame::text(&"s".repeat(3 << 20))
            } else {
                frame::text(&format!("update {i} {}", "x".repeat(1_000)))
            };
            expected.extend_from_slice(&push);
            out.queue().encoded(push).unwrap();
        }
        assert!(
            out.queued_bytes() > 0,
            "the socket filled and the rest waits in the queue"
        );
        assert!(matches!(&body.shared.lock().direct, Some(d) if d.blocked));
        let len = expected.len();
        let reader = std::thread::spawn(move || {
            let mut client = client;
            read_exactly(&mut client, len)
        });
        let got = tokio::task::spawn_blocking(move || reader.join().unwrap())
            .await
            .unwrap();
        assert!(got == expected, "every byte, in order");
        assert_eq!(out.queued_bytes(), 0);
    }

    #[actix_rt::test]
    async fn a_queue_bound_still_holds_when_the_socket_is_full() {
        let (socket, _client) = connection();
        socket2::SockRef::from(&socket.fd())
            .set_send_buffer_size(16 * 1024)
            .unwrap();
        let (out, _body) = direct(&socket, 256 * 1024);
        let push = frame::text(&"y".repeat(4_000));
        let accepted = (0..10_000)
            .take_while(|_| out.queue().encoded(push.clone()).is_ok())
            .count();
        assert!(
            accepted < 10_000,
            "the client does not read: the queue overflows"
        );
        assert!(out.queued_bytes() >= 256 * 1024);
    }

    #[test]
    fn a_write_to_a_client_that_is_gone_ends_the_stream() {
        let (socket, client) = connection();
        let (out, body) = direct(&socket, 1 << 20);
        // A reset, on loopback delivered before `drop` returns: the next write fails.
        socket2::SockRef::from(&client)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(client);
        let _ = out.queue().encoded(frame::text("to nobody"));
        let state = body.shared.lock();
        assert!(state.finished);
        assert!(state.direct.is_none());
    }

    #[test]
    fn a_short_write_leaves_what_follows_the_written_bytes() {
        let batch = vec![Bytes::from_static(b"abc"), Bytes::from_static(b"defg")];
        let rest: Vec<Bytes> = unsent_after(batch.clone(), 4).into();
        assert_eq!(rest, vec![Bytes::from_static(b"efg")]);
        let rest: Vec<Bytes> = unsent_after(batch, 2).into();
        assert_eq!(
            rest,
            vec![Bytes::from_static(b"c"), Bytes::from_static(b"defg")]
        );
    }
}
