//! Acknowledged means on disk: the crash-writer runs under `strace`, and every acknowledgement it
//! prints must come after the write-ahead log was synced (`fsync`/`fdatasync`) by the thread that
//! wrote the transaction's last frame, after that frame. SIGKILL tests cannot show this (the page
//! cache survives them, so they would pass with `synchronous = OFF`); a trace of the system calls
//! can: with `synchronous = NORMAL` or `OFF` no sync of the WAL comes between a commit and its
//! acknowledgement, and this test fails.
//!
//! It needs `strace` (installed by `.ci/install-test-deps`). Without it the test fails when `CI`
//! is set, and otherwise says loudly that it skipped.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Acknowledgements to check.
const ACKS: usize = 200;

fn have_strace() -> bool {
    Command::new("strace")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One system call of interest, as the trace shows it.
#[derive(Debug, Clone)]
enum Call {
    /// A write to the WAL (a frame, or its header).
    WalWrite,
    /// An `fsync` or `fdatasync` of the WAL.
    WalSync,
    /// An acknowledgement printed on standard output.
    Ack,
}

/// A call with the thread that made it, the line where it started and the line where it
/// returned.
#[derive(Debug)]
struct Traced {
    call: Call,
    thread: u32,
    started: usize,
    returned: usize,
}

fn classify(name: &str, args: &str) -> Option<Call> {
    // The first argument, a descriptor shown with its path by `-y`: `5</dir/events.sqlite3-wal>`.
    let fd = args.find('>').map_or(args, |end| &args[..=end]);
    let on_wal = fd.ends_with("-wal>");
    match name {
        "write" | "pwrite64" | "pwritev" | "pwritev2" if on_wal => Some(Call::WalWrite),
        "fsync" | "fdatasync" if on_wal => Some(Call::WalSync),
        "write" if args.starts_with("1<") && args.contains("\"ack ") => Some(Call::Ack),
        _ => None,
    }
}

/// Parses `strace -f -y -o` output: `<tid> name(args) = result`, or a call split across lines by
/// another thread's (`<unfinished ...>`, then `<... name resumed>`).
fn parse(trace: &str) -> Vec<Traced> {
    let mut calls = Vec::new();
    let mut pending: HashMap<u32, (Call, usize)> = HashMap::new();
    for (line_no, line) in trace.lines().enumerate() {
        let Some((tid, rest)) = line.split_once(' ') else {
            continue;
        };
        let Ok(thread) = tid.parse::<u32>() else {
            continue;
        };
        let rest = rest.trim_start();
        if rest.starts_with("<... ") {
            if let Some((call, started)) = pending.remove(&thread) {
                calls.push(Traced {
                    call,
                    thread,
                    started,
                    returned: line_no,
                });
            }
            continue;
        }
        let Some((name, args)) = rest.split_once('(') else {
            continue;
        };
        let Some(call) = classify(name, args) else {
            continue;
        };
        if rest.ends_with("<unfinished ...>") {
            pending.insert(thread, (call, line_no));
        } else {
            calls.push(Traced {
                call,
                thread,
                started: line_no,
                returned: line_no,
            });
        }
    }
    calls.sort_by_key(|c| c.started);
    calls
}

/// Checks that before each acknowledgement (by the time its `write` started) the last WAL write
/// was followed by a completed WAL sync on the writing thread. Returns how many were checked.
fn check(calls: &[Traced]) -> Result<usize, String> {
    let mut acks = 0;
    let mut last_ack = 0;
    for ack in calls.iter().filter(|c| matches!(c.call, Call::Ack)) {
        let before = |c: &&Traced| c.started < ack.started;
        let last_write = calls
            .iter()
            .filter(before)
            .rfind(|c| matches!(c.call, Call::WalWrite))
            .ok_or_else(|| format!("ack at trace line {}: no WAL write before it", ack.started))?;
        if last_write.started < last_ack {
            return Err(format!(
                "ack at trace line {}: nothing was written to the WAL since the previous ack",
                ack.started
            ));
        }
        let synced = calls.iter().filter(before).any(|c| {
            matches!(c.call, Call::WalSync)
                && c.thread == last_write.thread
                && c.started > last_write.returned
                && c.returned < ack.started
        });
        if !synced {
            return Err(format!(
                "ack at trace line {}: the WAL write at line {} was not synced before it",
                ack.started, last_write.started
            ));
        }
        last_ack = ack.started;
        acks += 1;
    }
    Ok(acks)
}

/// Runs the crash-writer (one writer task, so that each append is acknowledged before the next
/// starts) under strace until it has acknowledged `ACKS` appends; returns the trace.
fn trace_writer(dir: &Path) -> String {
    let trace = dir.join("trace");
    let mut child = Command::new("strace")
        .args(["-f", "-y", "-s", "64", "-o"])
        .arg(&trace)
        .args([
            "-e",
            "trace=write,pwrite64,pwritev,pwritev2,fsync,fdatasync",
        ])
        .arg(env!("CARGO_BIN_EXE_store-crash-writer"))
        .arg(dir.join("events.sqlite3"))
        .arg("1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start strace");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    for n in 0..ACKS {
        match lines.next() {
            Some(Ok(line)) => assert!(line.starts_with("ack "), "{line:?}"),
            _ => {
                let _ = child.kill();
                let out = child.wait_with_output().expect("reap");
                panic!(
                    "the traced writer stopped after {n} acknowledgements: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
    // Closing the pipe ends the writer: its next acknowledgement fails to print.
    drop(lines);
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the traced writer did not stop once its output was closed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::read_to_string(&trace).expect("read the trace")
}

#[test]
fn every_acknowledged_append_was_synced_to_the_wal_first() {
    if !have_strace() {
        assert!(
            std::env::var_os("CI").is_none(),
            "strace is missing and CI is set: run .ci/install-test-deps"
        );
        eprintln!("SKIPPED every_acknowledged_append_was_synced_to_the_wal_first: no strace");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let trace = trace_writer(dir.path());
    let calls = parse(&trace);
    let syncs = calls
        .iter()
        .filter(|c| matches!(c.call, Call::WalSync))
        .count();
    let checked = check(&calls).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        checked >= ACKS,
        "only {checked} acknowledgements in the trace"
    );
    assert!(
        syncs >= ACKS,
        "{syncs} syncs of the WAL for {checked} appends"
    );
}

#[test]
fn the_check_refuses_an_ack_without_a_sync_in_between() {
    let synced = "\
7 pwrite64(5</d/events.sqlite3-wal>, \"x\", 1, 0) = 1
7 fsync(5</d/events.sqlite3-wal>) = 0
6 write(1<pipe:[1]>, \"ack s 1 1 id\\n\", 12) = 12
7 pwrite64(5</d/events.sqlite3-wal>, \"x\", 1, 0 <unfinished ...>
6 write(2<pipe:[2]>, \"noise\", 5) = 5
7 <... pwrite64 resumed>) = 1
7 fdatasync(5</d/events.sqlite3-wal> <unfinished ...>
6 write(1<pipe:[1]>, \"unrelated\", 9) = 9
7 <... fdatasync resumed>) = 0
6 write(1<pipe:[1]>, \"ack s 2 2 id\\n\", 12) = 12
";
    assert_eq!(check(&parse(synced)), Ok(2));
    let unsynced = "\
7 pwrite64(5</d/events.sqlite3-wal>, \"x\", 1, 0) = 1
7 fsync(5</d/events.sqlite3-wal>) = 0
6 write(1<pipe:[1]>, \"ack s 1 1 id\\n\", 12) = 12
7 pwrite64(5</d/events.sqlite3-wal>, \"x\", 1, 0) = 1
6 write(1<pipe:[1]>, \"ack s 2 2 id\\n\", 12) = 12
7 fsync(5</d/events.sqlite3-wal>) = 0
";
    assert!(check(&parse(unsynced)).is_err());
    let synced_elsewhere = "\
7 pwrite64(5</d/events.sqlite3-wal>, \"x\", 1, 0) = 1
8 fsync(9</d/events.sqlite3-wal>) = 0
6 write(1<pipe:[1]>, \"ack s 1 1 id\\n\", 12) = 12
";
    assert!(check(&parse(synced_elsewhere)).is_err());
    let sync_still_running = "\
7 pwrite64(5</d/events.sqlite3-wal>, \"x\", 1, 0) = 1
7 fsync(5</d/events.sqlite3-wal> <unfinished ...>
6 write(1<pipe:[1]>, \"ack s 1 1 id\\n\", 12) = 12
7 <... fsync resumed>) = 0
";
    assert!(check(&parse(sync_still_running)).is_err());
}
