//! One WebSocket session of the engine: the upgrade, then the server's frames, each classified by
//! its first bytes and timestamped with the instant its read returned. What the engine must act
//! on (welcome, snapshot, an error, the end) is left in flags for it to pick up.

use std::io::Write as _;

use mio::net::TcpStream;

use crate::frame::{self, FrameReader, Message};
use crate::handshake;
use crate::scan::{self, Kind};
use crate::stats::Tally;
use crate::tracker::Tracker;

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Connecting,
    Upgrading,
    Open,
    /// A close frame has been sent; waiting for the server's reply or the end of the stream.
    Closing,
}

pub const WELCOMED: u8 = 1;
pub const SNAPSHOT: u8 = 2;
pub const ERROR: u8 = 4;

/// Counters of everything received, shared by all connections.
#[derive(Default, Clone, Debug)]
pub struct Counts {
    pub messages: u64,
    pub updates: u64,
    /// Updates whose position the tracker covers.
    pub tracked: u64,
    pub snapshots: u64,
    pub snapshot_bytes: u64,
    pub bytes: u64,
    pub reads: u64,
    /// `error` messages received after a session was open, by code.
    pub errors: Tally,
}

/// What the engine lends a connection while it reads.
pub struct Sink<'a> {
    pub tracker: &'a mut Tracker,
    pub counts: &'a mut Counts,
    pub mask: [u8; 4],
}

/// A connection's state apart from its frame reader.
pub struct State {
    pub sock: TcpStream,
    pub phase: Phase,
    /// The upgrade request until it is written, then the upgrade answer until it is complete.
    head: Vec<u8>,
    accept: String,
    pub started_ns: u64,
    pub welcomed_ns: u64,
    pub subscribed_ns: u64,
    pub snapshot_ns: u64,
    /// `WELCOMED`, `SNAPSHOT`, `ERROR`: what happened since the engine last looked.
    pub events: u8,
    /// The code of the last `error` message.
    pub error: Option<String>,
    /// Why the connection is over, once it is.
    pub ended: Option<String>,
    /// Whether it belongs to the open job under way (not yet ready).
    pub opening: bool,
    /// Whether it waits for the snapshot of a `subscribe_all`.
    pub awaiting_snapshot: bool,
}

pub struct Conn {
    reader: FrameReader,
    pub st: State,
}

impl Conn {
    pub fn new(sock: TcpStream, authority: &str, path: &str, nonce: [u8; 16], now: u64) -> Self {
        let (request, accept) = handshake::request(authority, path, nonce);
        Conn {
            reader: FrameReader::default(),
            st: State {
                sock,
                phase: Phase::Connecting,
                head: request,
                accept,
                started_ns: now,
                welcomed_ns: 0,
                subscribed_ns: 0,
                snapshot_ns: 0,
                events: 0,
                error: None,
                ended: None,
                opening: true,
                awaiting_snapshot: false,
            },
        }
    }

    /// The TCP connect finished (or failed): send the upgrade request.
    pub fn connected(&mut self) {
        let st = &mut self.st;
        match st.sock.take_error() {
            Ok(None) => {}
            Ok(Some(e)) | Err(e) => return st.end(format!("tcp connect: {}", e.kind())),
        }
        match st.sock.peer_addr() {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotConnected => return,
            Err(e) => return st.end(format!("tcp connect: {}", e.kind())),
        }
        let _ = st.sock.set_nodelay(true);
        let request = std::mem::take(&mut st.head);
        if st.write_all(&request) {
            st.phase = Phase::Upgrading;
        }
    }

    /// Bytes just read, at `now`.
    pub fn on_bytes(&mut self, mut bytes: &[u8], now: u64, sink: &mut Sink<'_>) {
        let st = &mut self.st;
        if st.phase == Phase::Upgrading {
            let before = st.head.len();
            st.head.extend_from_slice(bytes);
            let Some(end) = handshake::head_end(&st.head) else {
                if st.head.len() > handshake::MAX_HEAD {
                    st.end("upgrade answer too long");
                }
                return;
            };
            if let Err(reason) = handshake::check_answer(&st.head[..end], &st.accept) {
                return st.end(format!("upgrade: {reason}"));
            }
            bytes = &bytes[end - before..];
            st.head = Vec::new();
            st.accept = String::new();
            st.phase = Phase::Open;
        }
        let fed = self
            .reader
            .feed(bytes, |m| on_message(st, m, now, &mut *sink));
        if let Err(e) = fed {
            st.end(format!("protocol: {e}"));
        }
    }

    /// Sends a text message (masked with `mask`); false (and the connection ended) if the
    /// socket would not take it whole.
    pub fn send_text(&mut self, text: &str, mask: [u8; 4]) -> bool {
        let mut out = Vec::with_capacity(text.len() + 14);
        frame::encode_client(&mut out, frame::OP_TEXT, text.as_bytes(), mask);
        self.st.write_all(&out)
    }

    /// Starts the closing handshake (1000).
    pub fn close(&mut self, mask: [u8; 4]) {
        let mut out = Vec::with_capacity(8);
        frame::encode_client(&mut out, frame::OP_CLOSE, &1000u16.to_be_bytes(), mask);
        if self.st.write_all(&out) {
            self.st.phase = Phase::Closing;
        }
    }
}

impl State {
    pub fn end(&mut self, reason: impl Into<String>) {
        if self.ended.is_none() {
            self.ended = Some(reason.into());
        }
    }

    /// Writes a small frame or request whole; a socket that will not take it ends the session
    /// (these are a few hundred bytes on a socket this side barely writes to).
    fn write_all(&mut self, bytes: &[u8]) -> bool {
        match self.sock.write(bytes) {
            Ok(n) if n == bytes.len() => true,
            Ok(_) => {
                self.end("short write");
                false
            }
            Err(e) => {
                self.end(format!("write: {}", e.kind()));
                false
            }
        }
    }
}

fn on_message(st: &mut State, m: Message<'_>, now: u64, sink: &mut Sink<'_>) {
    match m {
        Message::Data { prefix, len } => {
            sink.counts.messages += 1;
            sink.counts.bytes += len;
            let head = scan::head(prefix);
            match head.kind {
                Kind::Update => {
                    sink.counts.updates += 1;
                    if let Some(p) = head.position {
                        if sink.tracker.record(p, now) {
                            sink.counts.tracked += 1;
                        }
                    }
                }
                Kind::Snapshot => {
                    sink.counts.snapshots += 1;
                    sink.counts.snapshot_bytes += len;
                    st.snapshot_ns = now;
                    st.events |= SNAPSHOT;
                }
                Kind::Welcome => {
                    st.welcomed_ns = now;
                    st.events |= WELCOMED;
                }
                Kind::Error => {
                    let code = head
                        .code
                        .map_or("?".into(), |c| String::from_utf8_lossy(c).into_owned());
                    if !st.opening {
                        sink.counts.errors.add(code.clone());
                    }
                    st.error = Some(code);
                    st.events |= ERROR;
                }
                Kind::Subscribed | Kind::Other => {}
            }
        }
        Message::Ping(payload) => {
            let mut out = Vec::with_capacity(payload.len() + 6);
            frame::encode_client(&mut out, frame::OP_PONG, payload, sink.mask);
            st.write_all(&out);
        }
        Message::Pong => {}
        Message::Close(code) => {
            if st.phase != Phase::Closing {
                let mut out = Vec::with_capacity(8);
                let echo = code.map(u16::to_be_bytes);
                frame::encode_client(
                    &mut out,
                    frame::OP_CLOSE,
                    echo.as_ref().map_or(&[][..], |c| &c[..]),
                    sink.mask,
                );
                st.write_all(&out);
            }
            let reason = match code {
                Some(c) => format!("closed {c}"),
                None => "closed".into(),
            };
            st.end(reason);
        }
    }
}
