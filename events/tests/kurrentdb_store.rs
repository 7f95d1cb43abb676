//! The KurrentDB backend (`--features kurrentdb`): the shared contract, and what only a log
//! shared over the network can show (a second process on the same log, reopening, refusing a
//! stream that is not a log), against the server `ADJUDICATOR_TEST_KURRENTDB_URL` names, e.g.
//! `kurrentdb://localhost:2113?tls=false` for the official container started with `--insecure`.
//! Every test uses a log stream of its own, so one server serves any number of runs.
//!
//! Without that variable (no KurrentDB server can be installed on the CI machines) the tests
//! that need a server say on standard error, uncaptured, that they did NOT run against KurrentDB,
//! and pass: that is no evidence that the backend works (docs/deployment.md#kurrentdb says how to
//! run them). Without the feature, one test says that the backend was not even built.

use std::io::Write;
use std::sync::Once;

/// Writes straight to standard error, past the test harness's capture, once per run.
fn say_once(once: &'static Once, message: &str) {
    once.call_once(|| {
        let _ = writeln!(std::io::stderr(), "\n*** {message}\n");
    });
}

#[cfg(not(feature = "kurrentdb"))]
#[test]
fn kurrentdb_backend_not_built() {
    static ONCE: Once = Once::new();
    say_once(
        &ONCE,
        "KurrentDB backend NOT built (cargo feature `kurrentdb` off): its contract suite did NOT \
         run. Build with `--features kurrentdb` and set ADJUDICATOR_TEST_KURRENTDB_URL.",
    );
}

#[cfg(feature = "kurrentdb")]
mod kurrentdb {
    use std::time::{Duration, Instant};

    use events::contract::sample_event;
    use events::hash::{verify_links, GENESIS};
    use events::store::kurrentdb::KurrentDbStore;
    use events::{EventStore, ExpectedVersion, StoreError};
    use futures_util::StreamExt;
    use uuid::Uuid;

    use super::say_once;

    const URL_VAR: &str = "ADJUDICATOR_TEST_KURRENTDB_URL";
    /// How long a second process may take to see what the first appended.
    const DEADLINE: Duration = Duration::from_secs(30);

    /// The server's URL, or `None` after saying loudly that these tests do not run.
    fn server_url() -> Option<String> {
        static ONCE: std::sync::Once = std::sync::Once::new();
        match std::env::var(URL_VAR) {
            Ok(url) if !url.trim().is_empty() => Some(url),
            _ => {
                say_once(
                    &ONCE,
                    &format!(
                        "{URL_VAR} is not set: the KurrentDB contract suite did NOT run against \
                         KurrentDB (the tests that need a server pass without testing anything; see \
                         docs/deployment.md#kurrentdb)"
                    ),
                );
                None
            }
        }
    }

    /// `url` with a log stream nobody has used yet.
    fn with_new_log(url: &str) -> String {
        let separator = if url.contains('?') { '&' } else { '?' };
        format!(
            "{url}{separator}logStream=adjudicator-test-{}",
            Uuid::now_v7().simple()
        )
    }

    async fn connect(url: &str) -> KurrentDbStore {
        KurrentDbStore::connect(url)
            .await
            .unwrap_or_else(|e| panic!("{URL_VAR} is set, but the store cannot be opened: {e}"))
    }

    async fn fresh() -> Option<(KurrentDbStore, ())> {
        let url = server_url()?;
        Some((connect(&with_new_log(&url)).await, ()))
    }

    events::event_store_contract!(fresh());

    /// Polls `check` until it holds, failing after [`DEADLINE`].
    async fn eventually<F, Fut>(what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let started = Instant::now();
        while !check().await {
            assert!(
                started.elapsed() < DEADLINE,
                "{what}: not within {DEADLINE:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Two stores on one log stand for two nodes: each checks versions against the log's end,
    /// follows the other's appends, and positions stay gap-free across both.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_processes_share_one_log() {
        let Some(url) = server_url() else { return };
        let url = with_new_log(&url);
        let (a, b) = (connect(&url).await, connect(&url).await);
        a.append(
            "s",
            ExpectedVersion::NoStream,
            vec![sample_event(1), sample_event(2)],
        )
        .await
        .expect("a appends");
        let from_b = b
            .append("s", ExpectedVersion::Exact(2), vec![sample_event(3)])
            .await
            .expect("b judges Exact(2) against the log's end, not its own stale view");
        assert_eq!((from_b.stream_version, from_b.positions), (3, vec![3]));
        match a
            .append("s", ExpectedVersion::Exact(2), vec![sample_event(4)])
            .await
        {
            Err(StoreError::Conflict { actual, .. }) => assert_eq!(actual, 3),
            other => panic!("a must see b's append as a conflict, got {other:?}"),
        }
        eventually("a follows b's append", || async {
            a.read_stream("s", 1, 100).await.expect("read").len() == 3
        })
        .await;

        // Both race for version 4: exactly one wins.
        let (ra, rb) = tokio::join!(
            a.append("s", ExpectedVersion::Exact(3), vec![sample_event(5)]),
            b.append("s", ExpectedVersion::Exact(3), vec![sample_event(6)]),
        );
        assert!(
            ra.is_ok() != rb.is_ok(),
            "exactly one wins: {ra:?} / {rb:?}"
        );
        for lost in [ra, rb].into_iter().filter_map(Result::err) {
            assert!(
                matches!(lost, StoreError::Conflict { actual: 4, .. }),
                "{lost:?}"
            );
        }

        // Many appends from both at once: every position once, in order, on both sides.
        let mut writers = Vec::new();
        for (w, store) in [a.clone(), b.clone(), a.clone(), b.clone()]
            .into_iter()
            .enumerate()
        {
            writers.push(tokio::spawn(async move {
                for i in 0..50 {
                    store
                        .append(
                            &format!("w-{w}"),
                            ExpectedVersion::Any,
                            vec![sample_event(i)],
                        )
                        .await
                        .expect("any append");
                }
            }));
        }
        let mut live = a.subscribe_all(0);
        for w in writers {
            w.await.expect("writer");
        }
        let head = b.head_position().await.expect("head");
        assert_eq!(head, 204);
        assert_eq!(a.head_position().await.expect("head"), head);
        for store in [&a, &b] {
            let all = store.read_all(0, 1_000).await.expect("read all");
            let positions: Vec<u64> = all.iter().map(|e| e.position).collect();
            assert_eq!(positions, (1..=head).collect::<Vec<_>>());
        }
        let mut seen = Vec::new();
        while seen.len() < head as usize {
            let e = tokio::time::timeout(DEADLINE, live.next())
                .await
                .expect("a's subscription delivers b's events too")
                .expect("open")
                .expect("no error");
            seen.push(e.position);
        }
        assert_eq!(seen, (1..=head).collect::<Vec<_>>());
        eventually("b follows a's appends", || async {
            b.read_stream("w-0", 1, 100).await.expect("read").len() == 50
        })
        .await;
    }

    /// A reopened store reads the log back, checks every chain, and continues them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn reopening_reads_the_log_back() {
        let Some(url) = server_url() else { return };
        let url = with_new_log(&url);
        let first = connect(&url).await;
        first
            .append(
                "case-1",
                ExpectedVersion::NoStream,
                (0..5).map(sample_event).collect(),
            )
            .await
            .expect("append");
        first
            .append("case-2", ExpectedVersion::NoStream, vec![sample_event(9)])
            .await
            .expect("append");
        let before = first.read_stream("case-1", 1, 100).await.expect("read");
        drop(first);

        let again = connect(&url).await;
        assert_eq!(again.head_position().await.expect("head"), 6);
        assert_eq!(
            again.read_stream("case-1", 1, 100).await.expect("read"),
            before
        );
        let next = again
            .append("case-1", ExpectedVersion::Exact(5), vec![sample_event(10)])
            .await
            .expect("the table knows version 5");
        assert_eq!((next.stream_version, next.positions), (6, vec![7]));
        let events = again.read_stream("case-1", 1, 100).await.expect("read");
        verify_links(GENESIS, &events).expect("one unbroken chain across both processes");
    }

    /// A stream that does not start with the log's marker is never used as a store.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_stream_that_is_not_a_log_is_refused() {
        let Some(url) = server_url() else { return };
        let name = format!("not-a-log-{}", Uuid::now_v7().simple());
        let settings = url
            .parse::<kurrentdb::ClientSettings>()
            .expect("the URL parses");
        let client = kurrentdb::Client::new(settings).expect("client");
        let foreign =
            kurrentdb::EventData::json("OrderPlaced", &serde_json::json!({"n": 1})).expect("json");
        client
            .append_to_stream(name.as_str(), &Default::default(), foreign)
            .await
            .expect("write a foreign event");
        let separator = if url.contains('?') { '&' } else { '?' };
        match KurrentDbStore::connect(&format!("{url}{separator}logStream={name}")).await {
            Err(StoreError::Corrupt { problem, .. }) => {
                assert!(problem.contains("not an Adjudicator log"), "{problem}")
            }
            Err(other) => panic!("expected a refusal of the stream, got {other}"),
            Ok(_) => panic!("a foreign stream was opened as a store"),
        }
    }

    /// A tool that only reads never creates a log: a missing one is reported.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn opening_an_existing_log_never_creates_one() {
        let Some(url) = server_url() else { return };
        let url = with_new_log(&url);
        let missing = KurrentDbStore::open_existing(&url).expect("the URL parses");
        match missing.ready().await {
            Err(StoreError::Unavailable(why)) => {
                assert!(why.contains("no Adjudicator log"), "{why}")
            }
            other => panic!("expected the missing log to be reported, got {other:?}"),
        }
        drop(connect(&url).await);
        let existing = KurrentDbStore::open_existing(&url).expect("the URL parses");
        existing.ready().await.expect("the log exists now");
        assert_eq!(existing.head_position().await.expect("head"), 0);
    }

    /// Needs no server: a server that cannot be reached is reported, promptly and by every call.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unreachable_server_is_reported() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("address").port()
            // Closed again here: nothing listens on the port.
        };
        let url = format!("kurrentdb://admin:s3cret@127.0.0.1:{port}?tls=false");
        let store = KurrentDbStore::open(&url).expect("the URL parses");
        let ready = tokio::time::timeout(DEADLINE, store.ready())
            .await
            .expect("the failure is reported in time");
        match ready {
            Err(StoreError::Unavailable(why)) => {
                assert!(why.contains("KurrentDB"), "{why}");
                assert!(!why.contains("s3cret"), "{why}");
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
        let append = store
            .append("s", ExpectedVersion::Any, vec![sample_event(1)])
            .await;
        assert!(
            matches!(append, Err(StoreError::Unavailable(_))),
            "{append:?}"
        );
        assert!(matches!(
            store.head_position().await,
            Err(StoreError::Unavailable(_))
        ));
        // Dropping the last handle inside a runtime must not panic.
        drop(store);
    }

    /// Needs no server: opening and dropping a store works outside any runtime (the store runs
    /// its own), as a synchronous caller would.
    #[test]
    fn a_store_needs_no_runtime_of_the_caller() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let store = KurrentDbStore::open(&format!("kurrentdb://127.0.0.1:{port}?tls=false"))
            .expect("the URL parses");
        assert_eq!(
            store.log_stream(),
            events::store::kurrentdb::DEFAULT_LOG_STREAM
        );
        drop(store);
    }

    /// Needs no server: a URL that does not parse is refused at once, without its password.
    #[test]
    fn a_bad_url_is_refused_without_its_password() {
        for url in [
            "esdb://admin:s3cret@host:notaport",
            "esdb://h?logStream=$all",
        ] {
            match KurrentDbStore::open(url) {
                Err(StoreError::InvalidRequest(why)) => {
                    assert!(!why.contains("s3cret"), "{why}")
                }
                Err(other) => panic!("{url}: expected InvalidRequest, got {other}"),
                Ok(_) => panic!("{url} was accepted"),
            }
        }
    }
}
