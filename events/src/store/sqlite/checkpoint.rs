//! WAL checkpoints on their own thread.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses the threshold, which puts a
//! pause of many milliseconds (copying pages and an fsync of the main file) in the path of one
//! unlucky batch of appends. Instead the writer's connection has automatic checkpoints off, and
//! this thread runs a passive checkpoint (which never blocks the writer) twice a second, and a
//! final truncating one when the store closes.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

const INTERVAL: Duration = Duration::from_millis(500);

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
        if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE);") {
            tracing::warn!(path = %path.display(), "WAL checkpoint failed: {e}");
        }
    }
    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
        tracing::warn!(path = %path.display(), "final WAL checkpoint failed: {e}");
    }
}
