//! The SQLite backend: the shared contract, plus what only a file-backed store can show
//! (tampering with the file, refusing damaged or foreign files, reopening).

use events::contract::sample_event;
use events::hash::{verify_links, GENESIS};
use events::store::sqlite::SqliteStore;
use events::{EventStore, ExpectedVersion, StoreError};
use tempfile::TempDir;

async fn fresh() -> (SqliteStore, TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open_in(dir.path()).expect("open a new store");
    (store, dir)
}

events::event_store_contract!(fresh());

#[tokio::test(flavor = "multi_thread")]
async fn an_edited_record_breaks_the_chain_at_that_version() {
    let (store, dir) = fresh().await;
    let batch = (0..5).map(sample_event).collect();
    store
        .append("case-x", ExpectedVersion::NoStream, batch)
        .await
        .unwrap();
    let path = store.path().to_path_buf();
    drop(store);

    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE events SET payload = x'00' WHERE stream = 'case-x' AND version = 3",
        [],
    )
    .unwrap();
    drop(conn);

    let store = SqliteStore::open(&path).unwrap();
    let events = store.read_stream("case-x", 1, 100).await.unwrap();
    let broken = verify_links(GENESIS, &events).unwrap_err();
    assert_eq!(broken.stream, "case-x");
    assert_eq!(broken.version, 3);
    drop(dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn events_survive_reopening_and_positions_continue() {
    let (store, dir) = fresh().await;
    store
        .append("s", ExpectedVersion::NoStream, vec![sample_event(1)])
        .await
        .unwrap();
    drop(store);
    let store = SqliteStore::open_in(dir.path()).unwrap();
    assert_eq!(store.head_position().await.unwrap(), 1);
    let r = store
        .append("s", ExpectedVersion::Exact(1), vec![sample_event(2)])
        .await
        .unwrap();
    assert_eq!((r.stream_version, r.positions), (2, vec![2]));
}

fn open_error(path: &std::path::Path) -> String {
    match SqliteStore::open(path) {
        Err(e @ StoreError::Corrupt { .. }) => e.to_string(),
        Err(other) => panic!("expected a corrupt-store error, got {other}"),
        Ok(_) => panic!("{} should have been refused", path.display()),
    }
}

#[test]
fn a_file_that_is_not_a_store_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.sqlite3");
    let junk = b"these are my holiday notes, not a database ".repeat(200);
    std::fs::write(&path, &junk).unwrap();
    let message = open_error(&path);
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("not a database"), "{message}");
    assert_eq!(std::fs::read(&path).unwrap(), junk, "the file is untouched");
}

#[test]
fn another_programs_sqlite_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.sqlite3");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    drop(conn);
    let message = open_error(&path);
    assert!(
        message.contains("not an Adjudicator event store"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_store_is_refused_with_the_file_named() {
    let (store, dir) = fresh().await;
    for n in 0..200 {
        let batch = (0..10).map(|i| sample_event(n * 10 + i)).collect();
        store
            .append(&format!("s-{n}"), ExpectedVersion::Any, batch)
            .await
            .unwrap();
    }
    let path = store.path().to_path_buf();
    drop(store);
    // Let the WAL be folded into the main file, then scribble over the middle of it.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    drop(conn);
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 64 * 1024, "the store spans many pages");
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 8192] {
        *b = 0xA5;
    }
    std::fs::write(&path, &bytes).unwrap();
    let message = open_error(&path);
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "the file is untouched"
    );
    drop(dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_store_reads_what_a_writer_appends_and_refuses_to_append() {
    let (writer, dir) = fresh().await;
    writer
        .append("s", ExpectedVersion::NoStream, vec![sample_event(1)])
        .await
        .unwrap();
    let reader = SqliteStore::open_read_only(writer.path()).unwrap();
    assert_eq!(reader.head_position().await.unwrap(), 1);
    writer
        .append("s", ExpectedVersion::Exact(1), vec![sample_event(2)])
        .await
        .unwrap();
    assert_eq!(reader.head_position().await.unwrap(), 2);
    assert_eq!(reader.read_all(0, 10).await.unwrap().len(), 2);
    let refused = reader
        .append("s", ExpectedVersion::Any, vec![sample_event(3)])
        .await;
    assert!(matches!(refused, Err(StoreError::InvalidRequest(_))));
    let missing = SqliteStore::open_read_only(dir.path().join("nothing.sqlite3"));
    assert!(matches!(missing, Err(StoreError::Corrupt { .. })));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_writer_on_the_same_file_is_refused_until_the_first_closes() {
    let (first, dir) = fresh().await;
    let path = first.path().to_path_buf();
    match SqliteStore::open(&path) {
        Err(StoreError::Unavailable(why)) => assert!(why.contains("in use"), "{why}"),
        Err(other) => panic!("expected Unavailable, got {other}"),
        Ok(_) => panic!("a second writer must be refused"),
    }
    assert!(
        SqliteStore::open_read_only(&path).is_ok(),
        "readers are welcome"
    );
    drop(first);
    let reopened = SqliteStore::open(&path).expect("dropping the first store releases the lock");
    drop(reopened);
    drop(dir);
}

/// Records every commit the writer reports.
#[derive(Default)]
struct Commits(std::sync::Mutex<Vec<events::store::CommitStats>>);

impl events::store::CommitObserver for Commits {
    fn committed(&self, stats: events::store::CommitStats) {
        self.0.lock().unwrap().push(stats);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_observer_sees_every_commit_with_its_batch_size() {
    let dir = tempfile::tempdir().unwrap();
    let commits = std::sync::Arc::new(Commits::default());
    let store = SqliteStore::open_in_observed(dir.path(), Some(commits.clone())).unwrap();
    // 64 appends of 2 events at once: the writer groups some of them into one commit.
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let batch = vec![sample_event(1), sample_event(2)];
                store
                    .append(&format!("s-{i}"), ExpectedVersion::NoStream, batch)
                    .await
                    .unwrap();
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    // A conflict is part of its batch too, and writes nothing.
    let conflict = store
        .append("s-0", ExpectedVersion::NoStream, vec![sample_event(3)])
        .await;
    assert!(matches!(conflict, Err(StoreError::Conflict { .. })));
    let seen = commits.0.lock().unwrap().clone();
    assert_eq!(
        seen.iter().map(|c| c.appends).sum::<usize>(),
        65,
        "{seen:?}"
    );
    assert_eq!(
        seen.iter().map(|c| c.events).sum::<usize>(),
        128,
        "{seen:?}"
    );
    assert!(seen.iter().all(|c| c.appends >= 1), "{seen:?}");
    assert_eq!(seen.last().map(|c| c.events), Some(0), "{seen:?}");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn the_store_its_lock_and_its_logs_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let store = SqliteStore::open_in(&data).expect("open a new store");
    store
        .append("s", ExpectedVersion::NoStream, vec![sample_event(1)])
        .await
        .expect("append");
    let mode = |name: &str| {
        std::fs::metadata(data.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(""), 0o700, "the directory");
    for name in [
        "events.sqlite3",
        "events.sqlite3-wal",
        "events.sqlite3-shm",
        "events.sqlite3.lock",
    ] {
        assert_eq!(mode(name), 0o600, "{name}");
    }
}
