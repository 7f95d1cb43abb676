//! Opening a store file: creating it when new, and refusing one that is damaged, belongs to
//! another program, or was written by a newer version, with a message naming the file.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::store::StoreError;

/// `PRAGMA application_id` of an Adjudicator store: "ADJU".
pub const APPLICATION_ID: i32 = 0x4144_4A55;
/// `PRAGMA user_version`: the layout of the tables below.
pub const LAYOUT_VERSION: i32 = 1;

const CREATE: &str = "
CREATE TABLE events (
    position        INTEGER PRIMARY KEY,
    stream          TEXT    NOT NULL,
    version         INTEGER NOT NULL,
    id              BLOB    NOT NULL,
    event_type      TEXT    NOT NULL,
    schema_version  INTEGER NOT NULL,
    codec           INTEGER NOT NULL,
    recorded_at     INTEGER NOT NULL,
    user_id         BLOB,
    correlation_id  BLOB    NOT NULL,
    causation_id    BLOB,
    payload         BLOB    NOT NULL,
    prev_hash       BLOB    NOT NULL,
    hash            BLOB    NOT NULL,
    UNIQUE (stream, version)
);
";

pub(super) fn corrupt(path: &Path, problem: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        path: path.display().to_string(),
        problem: problem.to_string(),
    }
}

/// Opens the writer's connection, creating and initialising the file if it does not exist.
pub(super) fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    let is_new = match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => return Err(corrupt(path, "is not a regular file")),
        Ok(m) => m.len() == 0,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => return Err(corrupt(path, e)),
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| corrupt(path, e))?;
    if is_new {
        initialise(&conn).map_err(|e| corrupt(path, e))?;
    } else {
        // Checked through a memory-mapped reader, which reads the whole file twice as fast;
        // the writer itself does better without the map.
        let checker = open_reader(path)?;
        check_identity(path, &checker)?;
        check_integrity(path, &checker)?;
    }
    configure(path, &conn)?;
    Ok(conn)
}

/// Opens an existing store for reading only, with the same checks as [`open_writer`]; a
/// missing file is an error rather than a new store.
pub(super) fn open_checked_reader(path: &Path) -> Result<Connection, StoreError> {
    if !path.is_file() {
        return Err(corrupt(path, "no event store here"));
    }
    let conn = open_reader(path)?;
    check_identity(path, &conn)?;
    check_integrity(path, &conn)?;
    Ok(conn)
}

/// Opens a read-only connection to an existing store.
pub(super) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| corrupt(path, e))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| corrupt(path, e))?;
    map_memory(path, &conn)?;
    Ok(conn)
}

/// Reads through a memory map rather than one `pread` per page: the integrity check at open
/// and full reads (replays) take half the time. Writes still go through the WAL.
fn map_memory(path: &Path, conn: &Connection) -> Result<(), StoreError> {
    conn.query_row("PRAGMA mmap_size = 2147418112", [], |_| Ok(()))
        .map_err(|e| corrupt(path, e))
}

fn initialise(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(&format!(
        "PRAGMA page_size = 1024;
         PRAGMA application_id = {APPLICATION_ID};
         PRAGMA user_version = {LAYOUT_VERSION};
         BEGIN; {CREATE} COMMIT;"
    ))
}

fn check_identity(path: &Path, conn: &Connection) -> Result<(), StoreError> {
    // The first read of a file that is not SQLite fails here with "file is not a database".
    let app_id: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(|e| corrupt(path, format!("cannot read the store: {e}")))?;
    if app_id != APPLICATION_ID {
        return Err(corrupt(
            path,
            format!("is an SQLite database but not an Adjudicator event store (application_id {app_id:#x})"),
        ));
    }
    let layout: i32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| corrupt(path, e))?;
    if layout > LAYOUT_VERSION {
        return Err(corrupt(
            path,
            format!("was written by a newer Adjudicator (layout {layout}, this build reads up to {LAYOUT_VERSION})"),
        ));
    }
    Ok(())
}

/// A full page-level check of the file. It reads every page once, which is the price of refusing
/// to serve (and append to) a damaged history.
fn check_integrity(path: &Path, conn: &Connection) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare("PRAGMA quick_check")
        .map_err(|e| corrupt(path, e))?;
    let problems: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| corrupt(path, format!("integrity check failed: {e}")))?;
    if problems.len() != 1 || problems[0] != "ok" {
        let shown: Vec<_> = problems.into_iter().take(3).collect();
        return Err(corrupt(path, format!("is damaged: {}", shown.join("; "))));
    }
    Ok(())
}

fn configure(path: &Path, conn: &Connection) -> Result<(), StoreError> {
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(|e| corrupt(path, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(corrupt(path, format!("cannot switch to WAL mode ({mode})")));
    }
    // FULL: the WAL is fsynced at every commit, so an acknowledged append survives power loss.
    // Checkpoints run on their own thread (see `checkpoint`), not inside a commit.
    conn.execute_batch(
        "PRAGMA synchronous = FULL; PRAGMA foreign_keys = OFF; PRAGMA wal_autocheckpoint = 0;",
    )
    .map_err(|e| corrupt(path, e))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| corrupt(path, e))?;
    Ok(())
}
