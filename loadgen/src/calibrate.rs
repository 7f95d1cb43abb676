//! `calibrate`: how many frames per second the receive side handles on one core. A trivial
//! sender in this process (its own thread, pinned to another core) accepts N loopback
//! WebSocket connections, then writes pre-encoded `update` frames to them round-robin as fast
//! as the sockets take them; the receive engine reads them exactly as it reads the server's
//! (frame reader, position finder, arrival tracker). If the figure is far above what a server
//! run delivers, the load generator is not what limits that run.

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use clap::Args;

use crate::engine::{Engine, OpenSpec};
use crate::frame;
use crate::handshake;
use crate::http::Target;
use crate::procfs;
use crate::setup;
use crate::stats::{self, Table};

#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// Loopback connections.
    #[arg(long, default_value_t = 2000)]
    connections: usize,

    /// Seconds measured.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,

    /// Payload bytes per frame (a `queue` update of a short case is about 600).
    #[arg(long, default_value_t = 600)]
    frame_bytes: usize,

    /// Frames the sender hands one socket per write.
    #[arg(long, default_value_t = 4)]
    frames_per_write: usize,

    /// CPU the sender thread is pinned to (the receive thread stays where the process runs).
    #[arg(long)]
    sender_cpu: Option<usize>,
}

/// Distinct positions in the pre-encoded frames.
const POSITIONS: u64 = 64;

/// `frames_per_write` update frames of `bytes` each, at positions `first + 1`, `first + 2`, …
/// (wrapping after 64): the bytes of one write, repeated.
fn frames(bytes: usize, per_write: usize, first: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for k in 0..per_write as u64 {
        let position = (first + k) % POSITIONS + 1;
        let head = format!(
            r#"{{"type":"update","topic":"queue","position":{position},"event":"case_claimed","data":{{"id":"c","excerpt":""#
        );
        let pad = bytes.saturating_sub(head.len() + 3);
        let mut payload = head.into_bytes();
        payload.extend(std::iter::repeat_n(b'x', pad));
        payload.extend_from_slice(b"\"}}");
        frame::encode_server_text(&mut out, &payload);
    }
    out
}

fn pin_this_thread(cpu: usize) -> Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and sched_setaffinity only touch
    // the set we own.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            bail!(
                "sched_setaffinity({cpu}): {}",
                std::io::Error::last_os_error()
            );
        }
    }
    Ok(())
}

/// The built-in sender on its own thread, and the switches that drive it.
struct Sender {
    target: Target,
    go: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    written: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<Result<()>>,
}

impl Sender {
    /// Listens on a loopback port for `n` connections (pinned to `cpu` if given).
    fn start(n: usize, batch: Vec<u8>, cpu: Option<usize>) -> Result<Sender> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let target = Target::parse(&format!("http://{}", listener.local_addr()?))?;
        let go = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(0));
        let (g, s, w) = (go.clone(), stop.clone(), written.clone());
        let thread = std::thread::spawn(move || {
            if let Some(cpu) = cpu {
                pin_this_thread(cpu)?;
            }
            send_loop(listener, n, batch, g, s, w)
        });
        Ok(Sender {
            target,
            go,
            stop,
            written,
            thread,
        })
    }

    fn go(&self) {
        self.go.store(true, Ordering::Relaxed);
    }

    /// Bytes written so far.
    fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Stops the writing and waits for the thread.
    fn stop(self) -> Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("the sender panicked"))?
    }
}

/// The sessions a calibration opens: no token check, ready at the sender's welcome.
fn open_spec(count: usize) -> OpenSpec {
    OpenSpec {
        count,
        concurrency: 100,
        rate: None,
        tokens: Arc::new(vec!["calibrate".into()]),
        subscribe: None,
        close_when_ready: false,
        timeout: Duration::from_secs(30),
    }
}

/// Accepts `n` upgrades, welcomes each, waits for `go`, then writes until `stop`.
fn send_loop(
    listener: TcpListener,
    n: usize,
    batch: Vec<u8>,
    go: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    written: Arc<AtomicU64>,
) -> Result<()> {
    let mut welcome = Vec::new();
    frame::encode_server_text(
        &mut welcome,
        br#"{"type":"welcome","session_id":"calibrate"}"#,
    );
    let mut socks = Vec::with_capacity(n);
    for _ in 0..n {
        let (mut s, _) = listener.accept()?;
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while handshake::head_end(&head).is_none() {
            let got = s.read(&mut buf)?;
            if got == 0 || head.len() > handshake::MAX_HEAD {
                bail!("bad upgrade request");
            }
            head.extend_from_slice(&buf[..got]);
        }
        let mut answer = handshake::answer_for(&head).context("no Sec-WebSocket-Key")?;
        answer.extend_from_slice(&welcome);
        s.write_all(&answer)?;
        s.set_nonblocking(true)?;
        socks.push((s, 0usize));
    }
    while !go.load(Ordering::Relaxed) {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut bytes = 0u64;
    while !stop.load(Ordering::Relaxed) {
        for (s, offset) in socks.iter_mut() {
            match s.write(&batch[*offset..]) {
                Ok(k) => {
                    bytes += k as u64;
                    *offset = (*offset + k) % batch.len();
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => bail!("sender write: {e}"),
            }
        }
        written.store(bytes, Ordering::Relaxed);
    }
    Ok(())
}

pub async fn run(args: CalibrateArgs) -> Result<()> {
    if args.connections == 0 || args.frames_per_write == 0 {
        bail!("--connections and --frames-per-write must be positive");
    }
    let batch = frames(args.frame_bytes, args.frames_per_write, 0);
    let frame_len = batch.len() as f64 / args.frames_per_write as f64;
    let sender = Sender::start(args.connections, batch, args.sender_cpu)?;
    let engine = Engine::start(&sender.target)?;
    let mut t = Table::new("calibrate: settings");
    t.row(
        "sender",
        format!(
            "{} loopback sockets, {} frames of {frame_len:.0} bytes per write, cpu {}",
            args.connections,
            args.frames_per_write,
            args.sender_cpu.map_or("any".into(), |c| c.to_string())
        ),
    );
    setup::settings_rows(&mut t, None);
    t.print();

    let opened = engine.open(open_spec(args.connections)).await;
    if opened.opened < args.connections {
        // The sender may still wait in `accept`: leave its thread to the process's exit.
        sender.stop.store(true, Ordering::Relaxed);
        bail!(
            "only {} connections opened: {}",
            opened.opened,
            opened.failures.summary()
        );
    }
    engine.track(1, POSITIONS as usize).await;
    sender.go();
    // Let the sockets fill before measuring.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (c0, b0, t0) = (engine.counts().await.0, sender.written(), Instant::now());
    let cpu0 = engine.receive_cpu();
    tokio::time::sleep(Duration::from_secs_f64(args.seconds)).await;
    let cpu1 = engine.receive_cpu();
    let (c1, b1, elapsed) = (engine.counts().await.0, sender.written(), t0.elapsed());
    sender.stop()?;

    let secs = elapsed.as_secs_f64();
    let frames = c1.tracked - c0.tracked;
    let rate = frames as f64 / secs;
    let reads = (c1.reads - c0.reads).max(1);
    let cpu = cpu0
        .zip(cpu1)
        .map(|(a, b)| b.saturating_sub(a).as_secs_f64());
    // Frames per second of the receive thread's own CPU time: what one core does when it does
    // nothing else, whatever share of it this (shared) machine gave us.
    let per_cpu_second = cpu.filter(|c| *c > 0.0).map(|c| frames as f64 / c);
    let mut r = Table::new("calibrate: results");
    r.row(
        "frames received (position found and recorded)",
        frames.to_string(),
    )
    .row("per second (wall clock)", format!("{rate:.0}"))
    .row(
        "receive thread CPU; frames per CPU second",
        match (cpu, per_cpu_second) {
            (Some(c), Some(p)) => format!(
                "{c:.2} s of {secs:.2} s ({:.0} %); {p:.0}",
                c / secs * 100.0
            ),
            _ => "n/a".into(),
        },
    )
    .row(
        "frames per read()",
        format!("{:.1}", frames as f64 / reads as f64),
    )
    .row(
        "sender wrote",
        format!("{:.0} frames/s", (b1 - b0) as f64 / frame_len / secs),
    )
    .row(
        "received",
        format!("{:.0} MB/s", (c1.bytes - c0.bytes) as f64 / secs / 1e6),
    )
    .row("load average at end (1/5/15 min)", procfs::loadavg());
    r.print();
    stats::result(
        "calibrate",
        &format!(
            "{} frames per CPU second of the receive thread ({rate:.0}/s wall clock with {:.0} % of a core; {frame_len:.0}-byte frames, {} sockets, {:.1} frames per read)",
            per_cpu_second.map_or("n/a".into(), |p| format!("{p:.0}")),
            cpu.map_or(0.0, |c| c / secs * 100.0),
            args.connections,
            frames as f64 / reads as f64
        ),
    );
    drop(engine);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{FrameReader, Message};
    use crate::scan;

    /// The whole receive path over real loopback sockets: upgrade (with the accept check),
    /// frames split wherever TCP splits them, positions found and counted.
    #[tokio::test]
    async fn the_engine_receives_what_the_sender_writes() {
        let sender = Sender::start(20, frames(300, 4, 0), None).unwrap();
        let engine = Engine::start(&sender.target).unwrap();
        let opened = engine.open(open_spec(20)).await;
        assert_eq!(opened.opened, 20, "{}", opened.failures.summary());
        assert_eq!(opened.to_ready.len(), 20);
        engine.track(1, POSITIONS as usize).await;
        sender.go();
        let deadline = Instant::now() + Duration::from_secs(60);
        while engine.tracked() < 20_000 {
            assert!(
                Instant::now() < deadline,
                "only {} frames",
                engine.tracked()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        sender.stop().unwrap();
        let tracker = engine.take_tracker().await;
        assert_eq!(tracker.outside, 0);
        // Each write carries the same 4 frames, positions 1 to 4.
        let counts: Vec<u32> = (1..=6).map(|p| tracker.slot(p).unwrap().count).collect();
        assert!(counts[..4].iter().all(|&n| n > 0), "{counts:?}");
        assert_eq!(counts[4..], [0, 0]);
        let (counts, _) = engine.counts().await;
        assert_eq!(counts.updates, counts.tracked);
        assert!(counts.reads > 0 && counts.bytes >= counts.updates * 300);
    }

    #[test]
    fn the_calibration_frames_carry_cycling_positions() {
        let batch = frames(600, 3, 63);
        let mut positions = Vec::new();
        FrameReader::default()
            .feed(&batch, |m| {
                if let Message::Data { prefix, len } = m {
                    assert_eq!(len, 600);
                    positions.push(scan::head(prefix).position.unwrap());
                }
            })
            .unwrap();
        assert_eq!(positions, [64, 1, 2]);
    }
}
