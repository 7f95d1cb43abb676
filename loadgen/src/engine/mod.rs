//! The receive engine: one thread that holds every WebSocket session of the load generator on one
//! `epoll` (mio) loop, reads each socket into one shared buffer, and records each update's
//! arrival by position (`tracker`), without a per-message allocation. The scenarios drive it
//! from the async side through commands (open sessions, subscribe them all at once, close them
//! all, hand over the receipts) and watch its progress through two atomics.
//!
//! | file | what |
//! | --- | --- |
//! | `mod.rs` | the handle, the commands and their reports |
//! | `worker.rs` | the thread's loop and the jobs (open, subscribe, close) |
//! | `conn.rs` | one session: upgrade, frames, what each message means |

mod conn;
mod worker;

use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::sync::oneshot;

pub use conn::Counts;

use crate::http::Target;
use crate::stats::Tally;
use crate::tracker::Tracker;

/// How a batch of sessions is opened.
#[derive(Clone, Debug)]
pub struct OpenSpec {
    pub count: usize,
    /// Sessions being opened at once (ignored when `rate` is given).
    pub concurrency: usize,
    /// Start this many connects per second on a fixed schedule instead (open loop).
    pub rate: Option<f64>,
    /// Access tokens, used round-robin.
    pub tokens: Arc<Vec<String>>,
    /// A `subscribe` to send after `welcome`; the session is ready at its `snapshot`.
    pub subscribe: Option<String>,
    /// Close each session as soon as it is ready (connect-rate measurements).
    pub close_when_ready: bool,
    /// How long a session may take from the connect to ready.
    pub timeout: Duration,
}

/// How an open went.
#[derive(Debug, Default)]
pub struct OpenReport {
    pub opened: usize,
    pub failures: Tally,
    /// Per session: connect start → welcome (or → snapshot when subscribing).
    pub to_ready: Vec<Duration>,
    /// How late, against the schedule, the latest connect started (rate mode).
    pub max_lag: Duration,
    pub elapsed: Duration,
}

/// How a `subscribe_all` went.
#[derive(Debug, Default)]
pub struct SubscribeReport {
    pub sent: usize,
    /// Per session: its subscribe written → its snapshot's last byte read.
    pub to_snapshot: Vec<Duration>,
    /// First subscribe written → last snapshot read.
    pub all_delivered: Option<Duration>,
    pub failures: Tally,
}

/// How a `close_all` went.
#[derive(Debug, Default)]
pub struct CloseReport {
    pub closed: usize,
    /// Sessions that had not ended by the deadline and were dropped.
    pub dropped: usize,
    pub elapsed: Duration,
}

enum Command {
    Open(OpenSpec, oneshot::Sender<OpenReport>),
    SubscribeAll(String, Duration, oneshot::Sender<SubscribeReport>),
    CloseAll(Duration, oneshot::Sender<CloseReport>),
    Track(u64, usize, oneshot::Sender<()>),
    TakeTracker(oneshot::Sender<Tracker>),
    Counts(oneshot::Sender<(Counts, Tally)>),
    Stop,
}

/// What the engine publishes as it goes.
#[derive(Default)]
struct Shared {
    tracked: AtomicU64,
    live: AtomicUsize,
    /// The receive thread's id, for its CPU time.
    tid: AtomicI32,
}

/// The handle to the engine's thread; dropping it stops the thread and closes every socket.
pub struct Engine {
    commands: mpsc::Sender<Command>,
    waker: Arc<mio::Waker>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Engine {
    pub fn start(target: &Target) -> Result<Engine> {
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Shared::default());
        let (worker, waker) = worker::Worker::new(target, rx, shared.clone())?;
        let thread = std::thread::Builder::new()
            .name("receive".into())
            .spawn(move || worker.run())
            .context("starting the receive thread")?;
        Ok(Engine {
            commands: tx,
            waker,
            shared,
            thread: Some(thread),
        })
    }

    fn send(&self, c: Command) {
        // The worker only goes away with the handle, so a send cannot fail before `Drop`.
        let _ = self.commands.send(c);
        let _ = self.waker.wake();
    }

    async fn ask<T: Default>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> T {
        let (tx, rx) = oneshot::channel();
        self.send(make(tx));
        rx.await.unwrap_or_default()
    }

    pub async fn open(&self, spec: OpenSpec) -> OpenReport {
        self.ask(|tx| Command::Open(spec, tx)).await
    }

    /// Writes `subscribe` to every ready session at once; done when each has its snapshot.
    pub async fn subscribe_all(&self, subscribe: String, timeout: Duration) -> SubscribeReport {
        self.ask(|tx| Command::SubscribeAll(subscribe, timeout, tx))
            .await
    }

    pub async fn close_all(&self, timeout: Duration) -> CloseReport {
        self.ask(|tx| Command::CloseAll(timeout, tx)).await
    }

    /// Starts recording updates for positions `base .. base + capacity` (the old receipts go).
    pub async fn track(&self, base: u64, capacity: usize) {
        self.ask(|tx| Command::Track(base, capacity, tx)).await
    }

    pub async fn take_tracker(&self) -> Tracker {
        self.ask(Command::TakeTracker).await
    }

    /// The counters, and the sessions lost (ended by the server or the network) by reason.
    pub async fn counts(&self) -> (Counts, Tally) {
        self.ask(Command::Counts).await
    }

    /// Tracked updates received so far.
    pub fn tracked(&self) -> u64 {
        self.shared.tracked.load(Ordering::Relaxed)
    }

    /// CPU time the receive thread has used so far: over a run, how busy the load generator's
    /// receiving was (near the run's length means the load generator may be what limits it).
    pub fn receive_cpu(&self) -> Option<Duration> {
        crate::procfs::thread_cpu_time(self.shared.tid.load(Ordering::Relaxed)).ok()
    }

    /// How long the receive thread has been runnable but waiting for a CPU, so far.
    pub fn receive_waited(&self) -> Option<Duration> {
        crate::procfs::thread_run_delay(self.shared.tid.load(Ordering::Relaxed))
    }

    /// Sessions ready and not ended.
    pub fn live(&self) -> usize {
        self.shared.live.load(Ordering::Relaxed)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.send(Command::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
