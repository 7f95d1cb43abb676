//! WAL checkpoints on their own thread.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses the threshold, which puts a
//! pause of many milliseconds (copying pages and an fsync of the main file) in the path of one
//! unlucky batch of appends. Instead the writer's connection has automatic checkpoints off, and
//! this thread runs a passive checkpoint (which never blocks the writer) twice a second, truncates
//! the log when it grows past 32 MiB, and runs a final truncating checkpoint when the store closes.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

const INTERVAL: Duration = Duration::from_millis(500);
/// WAL frames (pages of 1 KiB) beyond which the log is truncated: 32 MiB.
const MAX_WAL_FRAMES: i64 = 32 * 1024;

/// Runs a checkpoint; returns the number of frames in the log.
fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<i64> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| r.get(1))
}

/// Runs until `stop` is dropped.
pub(super) fn run(path: PathBuf, stop: Receiver<()>) {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = match Connection::open_with_flags(&path, flags) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(path = %path.display(), "WAL checkpoints disabled: {e}");
            return;
        }
    };
    let _ = conn.busy_timeout(Duration::from_secs(5));
    while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(INTERVAL) {
        match checkpoint(&conn, "PASSIVE") {
            // Under a steady stream of appends a passive checkpoint never gets to reset the
            // log, which then grows without end; past the limit, truncate it (this waits for
            // the writer's current commit, then the log starts over).
            Ok(frames) if frames > MAX_WAL_FRAMES => {
                if let Err(e) = checkpoint(&conn, "TRUNCATE") {
                    tracing::warn!(path = %path.display(), "WAL truncation failed: {e}");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(path = %path.display(), "WAL checkpoint failed: {e}"),
        }
    }
    if let Err(e) = checkpoint(&conn, "TRUNCATE") {
        tracing::warn!(path = %path.display(), "final WAL checkpoint failed: {e}");
    }
}
