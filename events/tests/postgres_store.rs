//! The PostgreSQL backend on a private server (see `events::pg_test_cluster`): the shared
//! contract, plus what only a shared database can show: positions committed in order under many
//! writers on many connections, nodes seeing each other's appends, migrations run once, and a
//! newer schema refused.

use events::pg_test_cluster::{fresh_database, TestDatabase};
use events::store::postgres::PostgresStore;

async fn fresh() -> Option<(PostgresStore, TestDatabase)> {
    let db = fresh_database("postgres contract").await?;
    let store = PostgresStore::connect(&db.url)
        .await
        .expect("connect to a new database");
    Some((store, db))
}

events::event_store_contract!(fresh());

use std::collections::HashSet;
use std::time::Duration;

use events::contract::sample_event;
use events::hash::{verify_links, GENESIS};
use events::store::postgres::schema;
use events::{EventStore, ExpectedVersion, StoreError};
use futures_util::StreamExt;

/// How long a check waits for something that should happen much sooner.
const DEADLINE: Duration = Duration::from_secs(60);

/// A plain client on the test database, for what the store itself never does.
async fn raw_client(db: &TestDatabase) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
}

/// Many writers on many connections (one writing connection per store, eight stores) append
/// while readers on other connections tail the log. A reader must never see a position before
/// every lower one: each page it reads starts right after the last position it saw and has no
/// holes. A subscriber must see every position once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn positions_are_committed_in_order_under_many_writers() {
    const STORES: usize = 8;
    const WRITERS_PER_STORE: usize = 6;
    const APPENDS_PER_WRITER: usize = 40;
    let Some(db) = fresh_database("positions_are_committed_in_order_under_many_writers").await
    else {
        return;
    };
    let mut stores = Vec::new();
    for _ in 0..STORES + 2 {
        stores.push(PostgresStore::connect(&db.url).await.expect("connect"));
    }
    let total = (STORES * WRITERS_PER_STORE * APPENDS_PER_WRITER * 2) as u64;

    let mut readers = Vec::new();
    for reader in stores.split_off(STORES) {
        readers.push(tokio::spawn(async move {
            let mut after = 0u64;
            let mut pages = 0u64;
            while after < total {
                let page = reader.read_all(after, 97).await.expect("read_all");
                for (i, e) in page.iter().enumerate() {
                    assert_eq!(
                        e.position,
                        after + 1 + i as u64,
                        "a reader at {after} saw a hole"
                    );
                }
                after += page.len() as u64;
                pages += 1;
                tokio::task::yield_now().await;
            }
            pages
        }));
    }
    let subscriber = {
        let store = stores[0].clone();
        tokio::spawn(async move {
            let mut sub = store.subscribe_all(0);
            for expected in 1..=total {
                let e = tokio::time::timeout(DEADLINE, sub.next())
                    .await
                    .expect("the subscription delivered in time")
                    .expect("the subscription goes on")
                    .expect("no error");
                assert_eq!(e.position, expected);
            }
        })
    };
    let mut writers = Vec::new();
    for (s, store) in stores.iter().enumerate() {
        for w in 0..WRITERS_PER_STORE {
            let store = store.clone();
            writers.push(tokio::spawn(async move {
                let stream = format!("w-{s}-{w}");
                let mut positions = Vec::new();
                for n in 0..APPENDS_PER_WRITER {
                    let batch = vec![sample_event(2 * n as u64), sample_event(2 * n as u64 + 1)];
                    let r = store
                        .append(&stream, ExpectedVersion::Exact(2 * n as u64), batch)
                        .await
                        .expect("append");
                    positions.extend(r.positions);
                }
                positions
            }));
        }
    }
    let mut given = HashSet::new();
    for w in writers {
        for p in w.await.expect("writer") {
            assert!(given.insert(p), "position {p} given twice");
        }
    }
    assert_eq!(
        given,
        (1..=total).collect::<HashSet<_>>(),
        "positions are 1..={total}"
    );
    for r in readers {
        let pages = r.await.expect("a reader saw no hole");
        assert!(pages > 0);
    }
    subscriber
        .await
        .expect("the subscriber saw every position in order");
    assert_eq!(stores[1].head_position().await.expect("head"), total);
}

/// Two stores on one database stand for two nodes: each sees the other's appends live, version
/// conflicts hold across them (a node's cached stream head is not trusted after another node
/// wrote), and the chain continues across nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_see_each_others_appends_and_conflicts() {
    let Some(db) = fresh_database("nodes_see_each_others_appends_and_conflicts").await else {
        return;
    };
    let a = PostgresStore::connect(&db.url).await.expect("node a");
    let b = PostgresStore::connect(&db.url).await.expect("node b");
    let mut on_a = a.subscribe_all(0);

    a.append("case-1", ExpectedVersion::NoStream, vec![sample_event(1)])
        .await
        .expect("a appends");
    b.append("case-1", ExpectedVersion::Exact(1), vec![sample_event(2)])
        .await
        .expect("b appends after a");
    let stale = a
        .append("case-1", ExpectedVersion::Exact(1), vec![sample_event(3)])
        .await;
    assert_eq!(
        stale,
        Err(StoreError::Conflict {
            stream: "case-1".into(),
            expected: ExpectedVersion::Exact(1),
            actual: 2
        })
    );
    a.append("case-1", ExpectedVersion::Exact(2), vec![sample_event(4)])
        .await
        .expect("a appends at the version b left");

    for expected in 1..=3 {
        let e = next(&mut on_a).await;
        assert_eq!((e.position, e.version), (expected, expected));
    }
    let history = b.read_stream("case-1", 1, 10).await.expect("read");
    assert_eq!(history.len(), 3);
    verify_links(GENESIS, &history).expect("one chain across both nodes");
}

async fn next(sub: &mut events::Subscription) -> events::RecordedEvent {
    tokio::time::timeout(DEADLINE, sub.next())
        .await
        .expect("delivered in time")
        .expect("goes on")
        .expect("no error")
}

/// Notifications wake other nodes; when the listening connection is lost, the poll (and the
/// reconnection) still bring the event: delayed, never lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_listening_connection_delays_but_loses_nothing() {
    let Some(db) = fresh_database("a_lost_listening_connection_delays_but_loses_nothing").await
    else {
        return;
    };
    let reader = PostgresStore::connect(&db.url).await.expect("reader node");
    let writer = PostgresStore::connect(&db.url).await.expect("writer node");
    let mut sub = reader.subscribe_all(0);
    writer
        .append("s", ExpectedVersion::Any, vec![sample_event(1)])
        .await
        .expect("append");
    assert_eq!(next(&mut sub).await.position, 1);

    let admin = raw_client(&db).await;
    let killed: i64 = admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = 'adjudicator listener'",
            &[],
        )
        .await
        .expect("terminate the listener")
        .get(0);
    assert_eq!(killed, 1, "the reader node had one listening connection");
    writer
        .append("s", ExpectedVersion::Any, vec![sample_event(2)])
        .await
        .expect("append");
    assert_eq!(next(&mut sub).await.position, 2);
}

/// Nodes starting together migrate once; a schema migrated by a newer build is refused with
/// a message that says so, and left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrations_run_once_and_a_newer_schema_is_refused() {
    let Some(db) = fresh_database("migrations_run_once_and_a_newer_schema_is_refused").await else {
        return;
    };
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let url = db.url.clone();
            tokio::spawn(async move { PostgresStore::connect(&url).await })
        })
        .collect();
    for s in starts {
        s.await.expect("task").expect("every node starts");
    }
    let admin = raw_client(&db).await;
    let applied: Vec<i32> = admin
        .query(
            "SELECT version FROM adjudicator.migrations ORDER BY version",
            &[],
        )
        .await
        .expect("migrations")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(applied, (1..=schema::LATEST).collect::<Vec<_>>());

    admin
        .execute(
            "INSERT INTO adjudicator.migrations (version, description) VALUES ($1, 'future')",
            &[&(schema::LATEST + 1)],
        )
        .await
        .expect("pretend a newer build migrated");
    let refused = PostgresStore::connect(&db.url)
        .await
        .err()
        .expect("a newer schema is refused");
    let message = refused.to_string();
    assert!(
        message.contains("newer Adjudicator")
            && message.contains(&format!("{}", schema::LATEST + 1)),
        "{message}"
    );
}

/// An unreachable server is an error naming the problem, not a hang, and never shows the
/// password.
#[tokio::test]
async fn an_unreachable_server_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("no-postgres-{}", std::process::id()));
    let url = format!(
        "postgres://adj:s3cret@{}/adj?connect_timeout=5",
        dir.display().to_string().replace('/', "%2F")
    );
    let e = PostgresStore::connect(&url)
        .await
        .err()
        .expect("no server there");
    let message = e.to_string();
    assert!(
        message.contains("cannot connect to PostgreSQL"),
        "{message}"
    );
    assert!(!message.contains("s3cret"), "{message}");
}

/// This build has no TLS: a URL that demands it is refused, never silently served in clear.
#[tokio::test]
async fn a_url_that_requires_tls_is_refused() {
    let Some(db) = fresh_database("a_url_that_requires_tls_is_refused").await else {
        return;
    };
    let url = format!("{}?sslmode=require", db.url);
    let e = PostgresStore::connect(&url)
        .await
        .err()
        .expect("no TLS in this build");
    assert!(e.to_string().contains("cannot connect"), "{e}");
}
