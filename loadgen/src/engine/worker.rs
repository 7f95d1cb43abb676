//! The receive thread: a mio loop over every session, one shared 64 KiB read buffer, and the
//! jobs the handle asks for (open a batch, subscribe all, close all), each answered when done or
//! at its deadline. A read shorter than the buffer means the socket is drained (nginx's rule for
//! edge-triggered reads), which saves the extra `read` that would only say "would block".

use std::io::{ErrorKind, Read as _};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use anyhow::{Context as _, Result};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use tokio::sync::oneshot;

use super::conn::{Conn, Counts, Phase, Sink, ERROR, SNAPSHOT, WELCOMED};
use super::{CloseReport, Command, OpenReport, OpenSpec, Shared, SubscribeReport};
use crate::http::Target;
use crate::stats::Tally;
use crate::tracker::{now_ns, Tracker};

const WAKER: Token = Token(usize::MAX);
const READ_BUFFER: usize = 64 * 1024;

struct OpenJob {
    spec: OpenSpec,
    to_start: usize,
    in_flight: usize,
    started_ns: u64,
    /// Rate mode: when the next connect is due.
    next_ns: u64,
    next_token: usize,
    report: OpenReport,
    reply: oneshot::Sender<OpenReport>,
}

struct SubscribeJob {
    pending: usize,
    first_ns: u64,
    last_ns: u64,
    deadline_ns: u64,
    report: SubscribeReport,
    reply: oneshot::Sender<SubscribeReport>,
}

struct CloseJob {
    pending: usize,
    started_ns: u64,
    deadline_ns: u64,
    report: CloseReport,
    reply: oneshot::Sender<CloseReport>,
}

pub struct Worker {
    poll: Poll,
    commands: mpsc::Receiver<Command>,
    buf: Vec<u8>,
    st: State,
}

/// Everything but the poll and the buffer, so that reads can lend both to it.
struct State {
    shared: Arc<Shared>,
    registry: Registry,
    addr: std::net::SocketAddr,
    authority: String,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    live: usize,
    tracker: Tracker,
    counts: Counts,
    lost: Tally,
    rng: u64,
    open: Option<OpenJob>,
    subscribe: Option<SubscribeJob>,
    close: Option<CloseJob>,
    stopping: bool,
    /// When the open job's deadlines were last checked (a scan of every session).
    scanned_ns: u64,
}

impl Worker {
    pub fn new(
        target: &Target,
        commands: mpsc::Receiver<Command>,
        shared: Arc<Shared>,
    ) -> Result<(Worker, Arc<Waker>)> {
        let poll = Poll::new().context("epoll")?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let registry = poll.registry().try_clone()?;
        let seed = now_ns() ^ (u64::from(std::process::id()) << 32) | 1;
        let st = State {
            shared,
            registry,
            addr: target.addr,
            authority: target.authority.clone(),
            conns: Vec::new(),
            free: Vec::new(),
            live: 0,
            tracker: Tracker::default(),
            counts: Counts::default(),
            lost: Tally::default(),
            rng: seed,
            open: None,
            subscribe: None,
            close: None,
            stopping: false,
            scanned_ns: 0,
        };
        Ok((
            Worker {
                poll,
                commands,
                buf: vec![0; READ_BUFFER],
                st,
            },
            waker,
        ))
    }

    pub fn run(mut self) {
        // SAFETY: gettid has no preconditions.
        self.st
            .shared
            .tid
            .store(unsafe { libc::gettid() }, Ordering::Relaxed);
        let mut events = Events::with_capacity(1024);
        while !self.st.stopping {
            let timeout = self.st.timeout();
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != ErrorKind::Interrupted {
                    eprintln!("receive loop: poll failed: {e}");
                    return;
                }
            }
            for ev in events.iter() {
                match ev.token() {
                    WAKER => self.commands(),
                    Token(i) => self.st.on_event(i, &mut self.buf),
                }
            }
            self.st.progress();
            self.st.publish();
        }
    }

    fn commands(&mut self) {
        while let Ok(c) = self.commands.try_recv() {
            let st = &mut self.st;
            match c {
                Command::Open(spec, reply) => st.start_open(spec, reply),
                Command::SubscribeAll(text, timeout, reply) => {
                    st.subscribe_all(&text, timeout, reply)
                }
                Command::CloseAll(timeout, reply) => st.close_all(timeout, reply),
                Command::Track(base, capacity, reply) => {
                    st.tracker = Tracker::new(base, capacity);
                    let _ = reply.send(());
                }
                Command::TakeTracker(reply) => {
                    st.publish();
                    let _ = reply.send(std::mem::take(&mut st.tracker));
                }
                Command::Counts(reply) => {
                    st.publish();
                    let _ = reply.send((st.counts.clone(), st.lost.clone()));
                }
                Command::Stop => st.stopping = true,
            }
        }
    }
}

impl State {
    /// Makes the counters the handle reads current (before every reply, so that what a reply
    /// reports and what the handle reads agree).
    fn publish(&self) {
        self.shared
            .tracked
            .store(self.counts.tracked, Ordering::Relaxed);
        self.shared.live.store(self.live, Ordering::Relaxed);
    }

    fn mask(&mut self) -> [u8; 4] {
        // xorshift64: masks need not be secret here, only present.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng as u32).to_ne_bytes()
    }

    fn nonce(&mut self) -> [u8; 16] {
        let mut n = [0; 16];
        for chunk in n.chunks_mut(4) {
            chunk.copy_from_slice(&self.mask());
        }
        n
    }

    /// How long the loop may sleep: until the next paced connect, or a short tick while a job
    /// has a deadline to watch; forever when idle.
    fn timeout(&self) -> Option<Duration> {
        if let Some(job) = &self.open {
            if job.spec.rate.is_some() && job.to_start > 0 {
                return Some(Duration::from_nanos(job.next_ns.saturating_sub(now_ns())));
            }
        }
        let busy = self.open.is_some() || self.subscribe.is_some() || self.close.is_some();
        busy.then_some(Duration::from_millis(20))
    }

    fn on_event(&mut self, i: usize, buf: &mut [u8]) {
        let mask = self.mask();
        let Some(conn) = self.conns.get_mut(i).and_then(Option::as_mut) else {
            return;
        };
        if conn.st.phase == Phase::Connecting {
            // Writable once connected; a failed connect may show as readable or an error:
            // `connected` looks at the socket either way.
            conn.connected();
        }
        if conn.st.ended.is_none() && conn.st.phase != Phase::Connecting {
            let mut sink = Sink {
                tracker: &mut self.tracker,
                counts: &mut self.counts,
                mask,
            };
            loop {
                match conn.st.sock.read(buf) {
                    Ok(0) => {
                        conn.st.end(if conn.st.phase == Phase::Closing {
                            "closed"
                        } else {
                            "end of stream"
                        });
                        break;
                    }
                    Ok(n) => {
                        let now = now_ns();
                        sink.counts.reads += 1;
                        conn.on_bytes(&buf[..n], now, &mut sink);
                        if n < buf.len() || conn.st.ended.is_some() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => {
                        conn.st.end(format!("read: {}", e.kind()));
                        break;
                    }
                }
            }
        }
        self.settle(i);
    }

    /// Acts on what a connection's last reads said: ready, failed, snapshot, ended.
    fn settle(&mut self, i: usize) {
        let mask = self.mask();
        let Some(conn) = self.conns[i].as_mut() else {
            return;
        };
        let events = std::mem::take(&mut conn.st.events);
        if conn.st.opening && conn.st.ended.is_none() {
            let subscribe = self.open.as_ref().and_then(|j| j.spec.subscribe.clone());
            if events & ERROR != 0 {
                let code = conn.st.error.clone().unwrap_or_default();
                conn.st.end(format!("error {code}"));
            } else if let (true, Some(text), 0) =
                (events & WELCOMED != 0, &subscribe, conn.st.subscribed_ns)
            {
                // Sent once, right after the welcome; the session is ready at its snapshot.
                if conn.send_text(text, mask) {
                    conn.st.subscribed_ns = now_ns();
                }
            }
            let ready_at = match subscribe {
                Some(_) if events & SNAPSHOT != 0 => Some(conn.st.snapshot_ns),
                None if events & WELCOMED != 0 => Some(conn.st.welcomed_ns),
                _ => None,
            };
            if let (Some(at), None) = (ready_at, &conn.st.ended) {
                conn.st.opening = false;
                self.live += 1;
                let close = self.open.as_ref().is_some_and(|j| j.spec.close_when_ready);
                if let Some(job) = self.open.as_mut() {
                    job.in_flight -= 1;
                    job.report.opened += 1;
                    job.report
                        .to_ready
                        .push(Duration::from_nanos(at.saturating_sub(conn.st.started_ns)));
                }
                if close {
                    self.conns[i].as_mut().expect("present").close(mask);
                }
            }
        }
        let conn = self.conns[i].as_mut().expect("present");
        if conn.st.awaiting_snapshot && events & SNAPSHOT != 0 {
            conn.st.awaiting_snapshot = false;
            let (sent, at) = (conn.st.subscribed_ns, conn.st.snapshot_ns);
            if let Some(job) = self.subscribe.as_mut() {
                job.pending -= 1;
                job.last_ns = job.last_ns.max(at);
                job.report
                    .to_snapshot
                    .push(Duration::from_nanos(at.saturating_sub(sent)));
            }
        }
        if self.conns[i].as_ref().is_some_and(|c| c.st.ended.is_some()) {
            self.remove(i);
        }
    }

    /// Drops an ended connection and accounts for it in whatever job it was part of.
    fn remove(&mut self, i: usize) {
        let Some(mut conn) = self.conns[i].take() else {
            return;
        };
        let _ = self.registry.deregister(&mut conn.st.sock);
        self.free.push(i);
        let reason = conn.st.ended.take().unwrap_or_default();
        if conn.st.opening {
            if let Some(job) = self.open.as_mut() {
                job.in_flight -= 1;
                job.report.failures.add(reason);
            }
            return;
        }
        self.live -= 1;
        if conn.st.awaiting_snapshot {
            if let Some(job) = self.subscribe.as_mut() {
                job.pending -= 1;
                job.report.failures.add(reason.clone());
            }
        }
        match (conn.st.phase, self.close.as_mut()) {
            (Phase::Closing, Some(job)) => {
                job.pending -= 1;
                job.report.closed += 1;
            }
            (Phase::Closing, None) => {} // closed when ready (connect-rate runs)
            _ => self.lost.add(reason),
        }
    }

    /// Removes the sessions that a write just ended.
    fn remove_ended(&mut self) {
        for i in 0..self.conns.len() {
            if self.conns[i].as_ref().is_some_and(|c| c.st.ended.is_some()) {
                self.remove(i);
            }
        }
    }

    fn start_open(&mut self, spec: OpenSpec, reply: oneshot::Sender<OpenReport>) {
        let now = now_ns();
        self.open = Some(OpenJob {
            to_start: spec.count,
            in_flight: 0,
            started_ns: now,
            next_ns: now,
            next_token: 0,
            spec,
            report: OpenReport::default(),
            reply,
        });
    }

    fn connect_one(&mut self) {
        let Some(job) = self.open.as_mut() else {
            return;
        };
        job.to_start -= 1;
        job.in_flight += 1;
        let tokens = job.spec.tokens.clone();
        let token = &tokens[job.next_token % tokens.len().max(1)];
        job.next_token += 1;
        let sock = match TcpStream::connect(self.addr) {
            Ok(s) => s,
            Err(e) => {
                job.in_flight -= 1;
                job.report
                    .failures
                    .add(format!("tcp connect: {}", e.kind()));
                return;
            }
        };
        let i = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        let nonce = self.nonce();
        // JWTs are base64url and dots: nothing to escape in a query string.
        let path = format!("/api/v1/ws?token={token}");
        let mut conn = Conn::new(sock, &self.authority, &path, nonce, now_ns());
        if let Err(e) = self.registry.register(
            &mut conn.st.sock,
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            conn.st.end(format!("register: {}", e.kind()));
        }
        self.conns[i] = Some(conn);
        self.settle(i);
    }

    /// Starts due connects, enforces deadlines and answers finished jobs.
    fn progress(&mut self) {
        let now = now_ns();
        if let Some(job) = self.open.as_mut() {
            match job.spec.rate {
                Some(rate) => {
                    let period = (1e9 / rate.max(1e-3)) as u64;
                    while self
                        .open
                        .as_ref()
                        .is_some_and(|j| j.to_start > 0 && j.next_ns <= now)
                    {
                        let job = self.open.as_mut().expect("open job");
                        job.report.max_lag = job
                            .report
                            .max_lag
                            .max(Duration::from_nanos(now - job.next_ns));
                        job.next_ns += period;
                        self.connect_one();
                    }
                }
                None => {
                    while self
                        .open
                        .as_ref()
                        .is_some_and(|j| j.to_start > 0 && j.in_flight < j.spec.concurrency.max(1))
                    {
                        self.connect_one();
                    }
                }
            }
            let limit = self
                .open
                .as_ref()
                .map_or(u64::MAX, |j| j.spec.timeout.as_nanos() as u64);
            let waiting = if self
                .open
                .as_ref()
                .is_some_and(|j| j.spec.subscribe.is_some())
            {
                "snapshot"
            } else {
                "welcome"
            };
            if now.saturating_sub(self.scanned_ns) > 20_000_000 {
                self.scanned_ns = now;
                for i in 0..self.conns.len() {
                    if let Some(c) = self.conns[i].as_mut() {
                        if c.st.opening && now.saturating_sub(c.st.started_ns) > limit {
                            c.st.end(format!("no {waiting} in time"));
                            self.settle(i);
                        }
                    }
                }
            }
            if self
                .open
                .as_ref()
                .is_some_and(|j| j.to_start == 0 && j.in_flight == 0)
            {
                let job = self.open.take().expect("open job");
                let mut report = job.report;
                report.elapsed = Duration::from_nanos(now_ns() - job.started_ns);
                self.publish();
                let _ = job.reply.send(report);
            }
        }
        if let Some(job) = self.subscribe.as_ref() {
            if job.pending == 0 || now >= job.deadline_ns {
                let job = self.subscribe.take().expect("subscribe job");
                let mut report = job.report;
                if job.pending == 0 && report.to_snapshot.len() == report.sent {
                    report.all_delivered = Some(Duration::from_nanos(job.last_ns - job.first_ns));
                } else if job.pending > 0 {
                    report.failures.add("no snapshot by the deadline");
                    for c in self.conns.iter_mut().flatten() {
                        c.st.awaiting_snapshot = false;
                    }
                }
                self.publish();
                let _ = job.reply.send(report);
            }
        }
        if let Some(job) = self.close.as_ref() {
            if job.pending == 0 || now >= job.deadline_ns {
                let mut job = self.close.take().expect("close job");
                for i in 0..self.conns.len() {
                    if let Some(mut c) = self.conns[i].take() {
                        let _ = self.registry.deregister(&mut c.st.sock);
                        self.free.push(i);
                        job.report.dropped += 1;
                        if !c.st.opening {
                            self.live -= 1;
                        }
                    }
                }
                job.report.elapsed = Duration::from_nanos(now_ns() - job.started_ns);
                self.publish();
                let _ = job.reply.send(job.report);
            }
        }
    }

    fn subscribe_all(
        &mut self,
        text: &str,
        timeout: Duration,
        reply: oneshot::Sender<SubscribeReport>,
    ) {
        let first_ns = now_ns();
        let mut job = SubscribeJob {
            pending: 0,
            first_ns,
            last_ns: first_ns,
            deadline_ns: first_ns + timeout.as_nanos() as u64,
            report: SubscribeReport::default(),
            reply,
        };
        for i in 0..self.conns.len() {
            let mask = self.mask();
            let Some(c) = self.conns[i].as_mut() else {
                continue;
            };
            if c.st.opening || c.st.phase != Phase::Open {
                continue;
            }
            if c.send_text(text, mask) {
                c.st.subscribed_ns = now_ns();
                c.st.awaiting_snapshot = true;
                job.pending += 1;
                job.report.sent += 1;
            }
        }
        self.subscribe = Some(job);
        self.remove_ended();
    }

    fn close_all(&mut self, timeout: Duration, reply: oneshot::Sender<CloseReport>) {
        let now = now_ns();
        let mut job = CloseJob {
            pending: 0,
            started_ns: now,
            deadline_ns: now + timeout.as_nanos() as u64,
            report: CloseReport::default(),
            reply,
        };
        for i in 0..self.conns.len() {
            let mask = self.mask();
            if let Some(c) = self.conns[i].as_mut() {
                if c.st.phase != Phase::Closing {
                    c.close(mask);
                }
                job.pending += 1;
            }
        }
        self.close = Some(job);
        self.remove_ended();
    }
}
