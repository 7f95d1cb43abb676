//! The contract every [`EventStore`] backend passes, written once.
//!
//! A backend's test file runs the whole suite with one line:
//!
//! ```text
//! events::event_store_contract!(async { (MyStore::fresh().await, guard) });
//! ```
//!
//! where the expression yields a fresh, empty store and anything that must live as long as the
//! test (a temporary directory, a database handle), or `None` when the backend's server cannot
//! be had here and the test says so itself (see [`Fixture`]). Each check is also a public
//! function, so a backend can run one on its own.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures_util::StreamExt;
use uuid::Uuid;

use crate::envelope::{EventData, Metadata, RecordedEvent};
use crate::hash::{verify_links, GENESIS};
use crate::store::{EventStore, ExpectedVersion, StoreError, MAX_POSITION};
use crate::Timestamp;

/// How long a check waits for a subscription to deliver before it fails.
const DEADLINE: Duration = Duration::from_secs(60);

/// A small opaque event; the store never looks inside a payload.
pub fn sample_event(n: u64) -> EventData {
    EventData {
        id: Uuid::now_v7(),
        event_type: "contract_test".into(),
        schema_version: 1,
        codec: 1,
        payload: n.to_be_bytes().repeat(4),
        recorded_at: Timestamp::now(),
        metadata: Metadata::for_request(Some(Uuid::from_u128(u128::from(n)))),
    }
}

fn events(n: u64) -> Vec<EventData> {
    (0..n).map(sample_event).collect()
}

/// Generates one `#[tokio::test]` per check for the backend made by `$make`.
#[macro_export]
macro_rules! event_store_contract {
    ($make:expr) => {
        $crate::event_store_contract!(@tests $make;
            expected_no_stream, expected_exact, expected_any, conflict_changes_nothing,
            concurrent_writers_one_wins_each_round, concurrent_any_writers_lose_nothing,
            read_stream_pages, read_all_pages, append_rejects_bad_requests,
            subscribe_from_start_while_writing, subscribe_from_middle, subscribe_from_head,
            chains_verify, append_many_keeps_order);
    };
    (@tests $make:expr; $($name:ident),+) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let Some((store, _guard)) = $crate::contract::Fixture::into_parts($make.await)
                else {
                    return;
                };
                $crate::contract::$name(store).await;
            }
        )+
    };
}

/// What a backend's `$make` yields: a store and its guard, or `None` when the test was skipped
/// (the maker prints why; it must fail instead where skipping is not allowed, e.g. in CI).
pub trait Fixture {
    type Store: EventStore;
    type Guard;
    fn into_parts(self) -> Option<(Self::Store, Self::Guard)>;
}

impl<S: EventStore, G> Fixture for (S, G) {
    type Store = S;
    type Guard = G;
    fn into_parts(self) -> Option<(S, G)> {
        Some(self)
    }
}

impl<S: EventStore, G> Fixture for Option<(S, G)> {
    type Store = S;
    type Guard = G;
    fn into_parts(self) -> Option<(S, G)> {
        self
    }
}

pub async fn expected_no_stream<S: EventStore>(store: S) {
    let r = store
        .append("s-1", ExpectedVersion::NoStream, events(2))
        .await
        .expect("first append to a new stream");
    assert_eq!(r.stream_version, 2);
    assert_eq!(r.positions, vec![1, 2]);
    let again = store
        .append("s-1", ExpectedVersion::NoStream, events(1))
        .await;
    assert_conflict(again, "s-1", 2);
}

pub async fn expected_exact<S: EventStore>(store: S) {
    store
        .append("s-1", ExpectedVersion::Exact(0), events(1))
        .await
        .expect("Exact(0) on an empty stream");
    let r = store
        .append("s-1", ExpectedVersion::Exact(1), events(3))
        .await
        .expect("Exact(current)");
    assert_eq!(r.stream_version, 4);
    assert_eq!(r.positions, vec![2, 3, 4]);
    assert_conflict(
        store
            .append("s-1", ExpectedVersion::Exact(1), events(1))
            .await,
        "s-1",
        4,
    );
    assert_conflict(
        store
            .append("s-1", ExpectedVersion::Exact(9), events(1))
            .await,
        "s-1",
        4,
    );
}

pub async fn expected_any<S: EventStore>(store: S) {
    for round in 1..=3u64 {
        let r = store
            .append("s-1", ExpectedVersion::Any, events(1))
            .await
            .expect("Any always appends");
        assert_eq!(r.stream_version, round);
    }
    let other = store
        .append("s-2", ExpectedVersion::Any, events(1))
        .await
        .expect("Any on a new stream");
    assert_eq!(other.stream_version, 1);
    assert_eq!(other.positions, vec![4]);
    assert_eq!(store.head_position().await.expect("head"), 4);
}

pub async fn conflict_changes_nothing<S: EventStore>(store: S) {
    store
        .append("s-1", ExpectedVersion::NoStream, events(1))
        .await
        .expect("append");
    assert_conflict(
        store
            .append("s-1", ExpectedVersion::Exact(0), events(5))
            .await,
        "s-1",
        1,
    );
    assert_eq!(store.head_position().await.expect("head"), 1);
    assert_eq!(store.read_all(0, 100).await.expect("read").len(), 1);
    let next = store
        .append("s-2", ExpectedVersion::Any, events(1))
        .await
        .expect("append after a conflict");
    assert_eq!(
        next.positions,
        vec![2],
        "a conflict must not use up positions"
    );
}

/// 16 writers race for each of 20 versions of one stream: exactly one wins each round.
pub async fn concurrent_writers_one_wins_each_round<S: EventStore + Clone>(store: S) {
    const WRITERS: u64 = 16;
    const ROUNDS: u64 = 20;
    let mut winners = Vec::new();
    for round in 0..ROUNDS {
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let store = store.clone();
            let event = sample_event(round * 100 + w);
            let id = event.id;
            tasks.push(tokio::spawn(async move {
                let r = store
                    .append("contested", ExpectedVersion::Exact(round), vec![event])
                    .await;
                (id, r)
            }));
        }
        let mut won = Vec::new();
        for t in tasks {
            let (id, r) = t.await.expect("writer task");
            match r {
                Ok(r) => {
                    assert_eq!(r.stream_version, round + 1);
                    won.push(id);
                }
                Err(e) => assert_conflict::<()>(Err(e), "contested", round + 1),
            }
        }
        assert_eq!(won.len(), 1, "round {round}: exactly one writer wins");
        winners.extend(won);
    }
    let stored = store.read_stream("contested", 1, 1000).await.expect("read");
    let ids: Vec<Uuid> = stored.iter().map(|e| e.data.id).collect();
    assert_eq!(
        ids, winners,
        "the stream holds the winners, in order, once each"
    );
    let versions: Vec<u64> = stored.iter().map(|e| e.version).collect();
    assert_eq!(versions, (1..=ROUNDS).collect::<Vec<_>>());
}

/// 16 writers append 25 events each with `Any`: none is lost or duplicated.
pub async fn concurrent_any_writers_lose_nothing<S: EventStore + Clone>(store: S) {
    let mut tasks = Vec::new();
    for w in 0..16u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..25 {
                let e = sample_event(w * 1000 + i);
                ids.push(e.id);
                store
                    .append("shared", ExpectedVersion::Any, vec![e])
                    .await
                    .expect("Any append");
            }
            ids
        }));
    }
    let mut sent = HashSet::new();
    for t in tasks {
        sent.extend(t.await.expect("writer task"));
    }
    let stored = store.read_stream("shared", 1, 1000).await.expect("read");
    assert_eq!(stored.len(), 400);
    let got: HashSet<Uuid> = stored.iter().map(|e| e.data.id).collect();
    assert_eq!(got, sent);
    let versions: Vec<u64> = stored.iter().map(|e| e.version).collect();
    assert_eq!(versions, (1..=400).collect::<Vec<_>>());
    let all = store.read_all(0, 1000).await.expect("read all");
    let positions: Vec<u64> = all.iter().map(|e| e.position).collect();
    assert_eq!(positions, (1..=400).collect::<Vec<_>>());
}

pub async fn read_stream_pages<S: EventStore>(store: S) {
    let sent = events(25);
    store
        .append("paged", ExpectedVersion::NoStream, sent.clone())
        .await
        .expect("append");
    store
        .append("other", ExpectedVersion::NoStream, events(3))
        .await
        .expect("append");
    let mut got = Vec::new();
    let mut from = 1;
    loop {
        let page = store.read_stream("paged", from, 10).await.expect("read");
        assert!(page.len() <= 10);
        let Some(last) = page.last() else { break };
        from = last.version + 1;
        got.extend(page);
    }
    assert_eq!(got.len(), 25);
    assert!(got.iter().all(|e| e.stream == "paged"));
    for (i, (recorded, sent)) in got.iter().zip(&sent).enumerate() {
        assert_eq!(recorded.version, i as u64 + 1);
        assert_eq!(
            &recorded.data, sent,
            "an event reads back exactly as written"
        );
    }
    assert!(store
        .read_stream("missing", 1, 10)
        .await
        .expect("read")
        .is_empty());
    assert!(store
        .read_stream("paged", 26, 10)
        .await
        .expect("read")
        .is_empty());
}

pub async fn read_all_pages<S: EventStore>(store: S) {
    for s in 0..5 {
        store
            .append(&format!("s-{s}"), ExpectedVersion::NoStream, events(7))
            .await
            .expect("append");
    }
    let mut after = 0;
    let mut positions = Vec::new();
    loop {
        let page = store.read_all(after, 8).await.expect("read");
        let Some(last) = page.last() else { break };
        after = last.position;
        positions.extend(page.iter().map(|e| e.position));
    }
    assert_eq!(positions, (1..=35).collect::<Vec<_>>());
    assert_eq!(store.read_all(30, 100).await.expect("read").len(), 5);
    assert_eq!(store.head_position().await.expect("head"), 35);
}

pub async fn append_rejects_bad_requests<S: EventStore>(store: S) {
    let empty = store.append("s", ExpectedVersion::Any, vec![]).await;
    assert!(
        matches!(empty, Err(StoreError::InvalidRequest(_))),
        "{empty:?}"
    );
    let nameless = store.append("", ExpectedVersion::Any, events(1)).await;
    assert!(matches!(nameless, Err(StoreError::InvalidRequest(_))));
    let zero = store.read_all(0, 0).await;
    assert!(matches!(zero, Err(StoreError::InvalidRequest(_))));
    // Positions and versions are signed 64-bit numbers in SQL: a larger one must be refused,
    // not wrapped to a negative number that reads the log from its start.
    store
        .append("s", ExpectedVersion::NoStream, events(2))
        .await
        .expect("append");
    for beyond in [MAX_POSITION + 1, u64::MAX] {
        let all = store.read_all(beyond, 10).await;
        assert!(
            matches!(all, Err(StoreError::InvalidRequest(_))),
            "read_all({beyond}): {all:?}"
        );
        let stream = store.read_stream("s", beyond, 10).await;
        assert!(
            matches!(stream, Err(StoreError::InvalidRequest(_))),
            "read_stream({beyond}): {stream:?}"
        );
    }
    assert!(store
        .read_all(MAX_POSITION, 10)
        .await
        .expect("the largest position is a valid cursor")
        .is_empty());
    assert_eq!(store.head_position().await.expect("head"), 2);
}

/// Appends `total` events from 4 concurrent writers over several streams, in small batches.
async fn write_in_background<S: EventStore + Clone>(
    store: S,
    total: u64,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut writers = Vec::new();
        for w in 0..4u64 {
            let store = store.clone();
            writers.push(tokio::spawn(async move {
                let mut n = 0;
                while n < total / 4 {
                    let batch = 1 + (n % 3);
                    let batch = batch.min(total / 4 - n);
                    store
                        .append(
                            &format!("w-{w}-{}", n % 5),
                            ExpectedVersion::Any,
                            events(batch),
                        )
                        .await
                        .expect("background append");
                    n += batch;
                    tokio::task::yield_now().await;
                }
            }));
        }
        for w in writers {
            w.await.expect("writer");
        }
    })
}

/// Reads a subscription until `count` events arrived; checks order and uniqueness.
async fn collect<S: EventStore>(store: &S, after: u64, count: usize) -> Vec<RecordedEvent> {
    let mut sub = store.subscribe_all(after);
    let mut got: Vec<RecordedEvent> = Vec::with_capacity(count);
    let read = async {
        while got.len() < count {
            let e = sub
                .next()
                .await
                .expect("the subscription ended early")
                .expect("subscription error");
            let expected = got.last().map_or(after + 1, |l| l.position + 1);
            assert_eq!(
                e.position, expected,
                "positions arrive in order, without gaps"
            );
            got.push(e);
        }
    };
    tokio::time::timeout(DEADLINE, read)
        .await
        .expect("the subscription delivered everything in time");
    got
}

pub async fn subscribe_from_start_while_writing<S: EventStore + Clone>(store: S) {
    store
        .append("early", ExpectedVersion::Any, events(50))
        .await
        .expect("append");
    let writer = write_in_background(store.clone(), 2_000).await;
    let got = collect(&store, 0, 2_050).await;
    writer.await.expect("writer");
    let ids: HashSet<Uuid> = got.iter().map(|e| e.data.id).collect();
    assert_eq!(ids.len(), 2_050, "no event delivered twice");
    let stored = store.read_all(0, 10_000).await.expect("read");
    assert_eq!(
        stored, got,
        "the subscription delivers exactly what is stored"
    );
}

pub async fn subscribe_from_middle<S: EventStore + Clone>(store: S) {
    store
        .append("early", ExpectedVersion::Any, events(100))
        .await
        .expect("append");
    let writer = write_in_background(store.clone(), 400).await;
    let got = collect(&store, 60, 440).await;
    writer.await.expect("writer");
    assert_eq!(got.first().map(|e| e.position), Some(61));
    assert_eq!(got.last().map(|e| e.position), Some(500));
}

pub async fn subscribe_from_head<S: EventStore + Clone>(store: S) {
    store
        .append("early", ExpectedVersion::Any, events(10))
        .await
        .expect("append");
    let head = store.head_position().await.expect("head");
    let mut sub = store.subscribe_all(head);
    let writer = write_in_background(store.clone(), 200).await;
    let mut got = Vec::new();
    while got.len() < 200 {
        let e = tokio::time::timeout(DEADLINE, sub.next())
            .await
            .expect("live events arrive in time")
            .expect("subscription open")
            .expect("subscription error");
        got.push(e.position);
    }
    writer.await.expect("writer");
    assert_eq!(got, (head + 1..=head + 200).collect::<Vec<_>>());
}

pub async fn chains_verify<S: EventStore + Clone>(store: S) {
    let writer = write_in_background(store.clone(), 300).await;
    writer.await.expect("writer");
    let all = store.read_all(0, 10_000).await.expect("read");
    // The whole log: positions 1..head without a gap, and its head commitment.
    let mut log = crate::verify::ChainVerifier::new();
    all.iter().for_each(|e| log.check(e));
    let summary = log.summary();
    assert!(summary.ok, "{:?}", summary.failures);
    let head = store.head_position().await.expect("head");
    assert_eq!(summary.head.position, head);
    let mut streams: HashMap<String, Vec<RecordedEvent>> = HashMap::new();
    for e in all {
        streams.entry(e.stream.clone()).or_default().push(e);
    }
    assert!(streams.len() > 1);
    for (name, events) in streams {
        assert_eq!(events[0].prev_hash, GENESIS);
        verify_links(GENESIS, &events).unwrap_or_else(|b| panic!("{name}: {b}"));
        let read = store.read_stream(&name, 1, 10_000).await.expect("read");
        assert_eq!(read, events);
    }
}

fn assert_conflict<T: std::fmt::Debug>(r: Result<T, StoreError>, stream: &str, actual: u64) {
    match r {
        Err(StoreError::Conflict {
            stream: s,
            actual: a,
            ..
        }) => {
            assert_eq!(s, stream);
            assert_eq!(a, actual, "the conflict names the actual version");
        }
        other => panic!("expected a conflict on {stream}, got {other:?}"),
    }
}

/// `append_many` applies its appends in the order given, each on its own terms.
pub async fn append_many_keeps_order<S: EventStore>(store: S) {
    store
        .append("b", ExpectedVersion::NoStream, events(1))
        .await
        .expect("first append");
    let append = |stream: &str, expected, n| crate::store::Append {
        stream: stream.into(),
        expected,
        events: events(n),
    };
    let results = store
        .append_many(vec![
            append("a", ExpectedVersion::NoStream, 2),
            append("b", ExpectedVersion::NoStream, 1),
            append("c", ExpectedVersion::Exact(0), 1),
            append("a", ExpectedVersion::Exact(2), 3),
            append("", ExpectedVersion::Any, 1),
        ])
        .await;
    assert_eq!(results.len(), 5);
    let positions: Vec<_> = results
        .iter()
        .map(|r| r.as_ref().map(|d| d.positions.clone()))
        .collect();
    assert_eq!(positions[0], Ok(vec![2, 3]));
    assert_conflict(results[1].clone(), "b", 1);
    assert_eq!(positions[2], Ok(vec![4]));
    assert_eq!(positions[3], Ok(vec![5, 6, 7]));
    assert!(matches!(results[4], Err(StoreError::InvalidRequest(_))));
    assert_eq!(store.head_position().await.expect("head"), 7);
}
