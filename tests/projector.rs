//! The projector actor against a real SQLite store: it folds what was stored before it started
//! and what is appended while it runs, publishes every update in position order, saves
//! snapshots it can restart from, and ignores snapshots that are damaged or belong elsewhere.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use adjudicator::projector::{
    load_models, snapshot_file, Projector, ProjectorConfig, Published, SaveSnapshot, SnapshotFile,
    SnapshotKey, Status, Subscribe, WaitForPosition, WithModels,
};
use events::domain::case::{self, CaseAction, CaseCommand, CaseState};
use events::domain::{Actor as DomainActor, DomainEvent, Role};
use events::store::sqlite::SqliteStore;
use events::{EventData, EventEnvelope, EventStore, ExpectedVersion, Metadata, Timestamp};
use projections::Projections;
use uuid::Uuid;

const DEADLINE: Duration = Duration::from_secs(30);

/// Appends a submitted-then-claimed case; returns its id.
async fn submit_and_claim(store: &dyn EventStore, n: u64) -> Uuid {
    let id = Uuid::now_v7();
    let classifier = DomainActor::new(Uuid::from_u128(1), vec![Role::Classifier]);
    let reviewer = DomainActor::new(Uuid::from_u128(2), vec![Role::Reviewer]);
    let at = Timestamp::now();
    let submit = CaseAction::Submit(common::sample_submission(id, n));
    let mut state = CaseState::default();
    let mut data = Vec::new();
    for (actor, action) in [
        (classifier, submit),
        (
            reviewer,
            CaseAction::Claim {
                lease: Duration::from_secs(600),
            },
        ),
    ] {
        let events = case::decide(&state, CaseCommand { actor, at, action }).unwrap();
        for e in events {
            state = case::evolve(state, &e);
            data.push(EventData::encode(&DomainEvent::Case(e), Metadata::default(), at).unwrap());
        }
    }
    store
        .append(&case::stream_name(id), ExpectedVersion::NoStream, data)
        .await
        .unwrap();
    id
}

/// Every event of the store, decoded and folded from scratch.
async fn full_fold(store: &dyn EventStore) -> Projections {
    let records = store.read_all(0, 10_000).await.unwrap();
    let envs: Vec<_> = records
        .into_iter()
        .map(|r| EventEnvelope::decode(r).unwrap())
        .collect();
    Projections::fold(&envs)
}

/// Collects the positions of everything published to it.
struct Collector(Arc<Mutex<Vec<u64>>>);

impl Actor for Collector {
    type Context = Context<Self>;
}

impl Handler<Published> for Collector {
    type Result = ();
    fn handle(&mut self, msg: Published, _: &mut Context<Self>) {
        assert!(msg.updates.iter().all(|u| u.position == msg.position));
        self.0.lock().unwrap().push(msg.position);
    }
}

async fn wait_for_position(projector: &Addr<Projector>, position: u64) {
    let reached = tokio::time::timeout(DEADLINE, projector.send(WaitForPosition(position)))
        .await
        .expect("the projector caught up in time")
        .unwrap();
    assert!(reached);
    let status = projector.send(Status).await.unwrap();
    assert!(status.position >= position);
    assert!(status.healthy);
}

fn start(
    store: &SqliteStore,
    start: adjudicator::projector::startup::Start,
    config: ProjectorConfig,
) -> Addr<Projector> {
    let store: Arc<dyn EventStore> = Arc::new(store.clone());
    Projector::new(store, start.models, start.anchor, config).start()
}

#[actix_rt::test]
async fn folds_old_and_new_events_and_publishes_them_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in(dir.path()).unwrap();
    for n in 0..5 {
        submit_and_claim(&store, n).await;
    }
    let begin = load_models(&store, &snapshot_in(dir.path(), b"server secret")).await;
    let projector = start(&store, begin, ProjectorConfig::default());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let collector = Collector(seen.clone()).start();
    projector
        .send(Subscribe(collector.recipient()))
        .await
        .unwrap();
    for n in 5..20 {
        submit_and_claim(&store, n).await;
    }
    let head = store.head_position().await.unwrap();
    wait_for_position(&projector, head).await;

    let live = projector
        .send(WithModels::new(|m: &Projections| m.clone()))
        .await
        .unwrap();
    assert_eq!(
        live,
        full_fold(&store).await,
        "incremental equals a full fold"
    );
    assert_eq!(live.stats().in_review, 20);
    let published = seen.lock().unwrap().clone();
    assert!(!published.is_empty());
    assert!(
        published.windows(2).all(|w| w[0] < w[1]),
        "in position order, once each"
    );
    assert_eq!(published.last(), Some(&head));
}

/// The snapshot file of `dir`, keyed by `secret`.
fn snapshot_in(dir: &std::path::Path, secret: &[u8]) -> SnapshotFile {
    SnapshotFile {
        path: dir.join(snapshot_file::FILE_NAME),
        key: SnapshotKey::derive(secret),
    }
}

#[actix_rt::test]
async fn a_saved_snapshot_restarts_to_the_same_models() {
    let dir = tempfile::tempdir().unwrap();
    let path = snapshot_in(dir.path(), b"server secret");
    let store = SqliteStore::open_in(dir.path()).unwrap();
    let config = ProjectorConfig {
        snapshot: Some(path.clone()),
        snapshot_every_events: 7,
        snapshot_interval: Duration::from_secs(3600),
        ..ProjectorConfig::default()
    };
    let projector = start(&store, load_models(&store, &path).await, config.clone());
    for n in 0..10 {
        submit_and_claim(&store, n).await;
    }
    let head = store.head_position().await.unwrap();
    wait_for_position(&projector, head).await;
    projector.send(SaveSnapshot).await.unwrap().unwrap();
    projector.send(SaveSnapshot).await.unwrap().unwrap();

    let snapshot = snapshot_file::read(&path)
        .unwrap()
        .expect("a snapshot on disk");
    assert_eq!(snapshot.position, head);
    for n in 10..13 {
        submit_and_claim(&store, n).await;
    }
    let restart = load_models(&store, &path).await;
    assert!(restart.ignored.is_none(), "{:?}", restart.ignored);
    assert_eq!(restart.models.position(), head, "starts from the snapshot");
    let head = store.head_position().await.unwrap();
    let again = start(&store, restart, config);
    wait_for_position(&again, head).await;
    let live = again
        .send(WithModels::new(|m: &Projections| m.clone()))
        .await
        .unwrap();
    assert_eq!(
        live,
        full_fold(&store).await,
        "snapshot + tail equals a full fold"
    );
}

#[actix_rt::test]
async fn damaged_or_foreign_snapshots_are_reported_and_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let path = snapshot_in(dir.path(), b"server secret");
    let store = SqliteStore::open_in(dir.path().join("a")).unwrap();
    for n in 0..3 {
        submit_and_claim(&store, n).await;
    }
    let models = full_fold(&store).await;
    let last = store.read_all(0, 100).await.unwrap().pop().unwrap();
    let good = snapshot_file::Snapshot {
        position: models.position(),
        anchor: last.hash,
        payload: models.to_snapshot_bytes().unwrap(),
    };
    snapshot_file::write(&path, &good).unwrap();
    assert!(load_models(&store, &path).await.ignored.is_none());

    // Another store with as many events: same position, different history.
    let other = SqliteStore::open_in(dir.path().join("b")).unwrap();
    for n in 0..3 {
        submit_and_claim(&other, n).await;
    }
    let foreign = load_models(&other, &path).await;
    assert!(foreign.ignored.unwrap().contains("does not belong"));
    assert_eq!(foreign.models.position(), 0);

    // A store that ends before the snapshot's position lost events it had, or is an older copy:
    // said as such.
    let shorter = SqliteStore::open_in(dir.path().join("c")).unwrap();
    submit_and_claim(&shorter, 0).await;
    let behind = load_models(&shorter, &path).await;
    let why = behind.ignored.unwrap();
    assert!(
        why.contains("taken at position 6 but the store ends at position 2"),
        "{why}"
    );
    assert_eq!(behind.models.position(), 0);

    let mut bytes = std::fs::read(&path.path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&path.path, &bytes).unwrap();
    let damaged = load_models(&store, &path).await;
    assert!(damaged.ignored.unwrap().contains("does not verify"));
    assert_eq!(damaged.models.position(), 0, "a full replay instead");
}

/// Issue 12 item 4: revocations of tokens that have expired are forgotten on a timer, and only
/// from the read models: the events stay in the store.
#[actix_rt::test]
async fn expired_revocations_are_pruned_on_a_timer() {
    use events::domain::revocation::{self, RevocationEvent, TokenRevoked};
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in(dir.path()).unwrap();
    let begin = load_models(&store, &snapshot_in(dir.path(), b"server secret")).await;
    let config = ProjectorConfig {
        prune_interval: Duration::from_millis(50),
        ..ProjectorConfig::default()
    };
    let projector = start(&store, begin, config);
    let now = Timestamp::now();
    let revoke = |jti: u128, expires_at: Timestamp| {
        let event = RevocationEvent::TokenRevoked(TokenRevoked {
            jti: Uuid::from_u128(jti),
            user_id: Uuid::from_u128(1),
            expires_at,
        });
        EventData::encode(&DomainEvent::Revocation(event), Metadata::default(), now).unwrap()
    };
    // One token expires in 300 ms, the other in an hour.
    let soon = now.plus(Duration::from_millis(300));
    let later = now.plus(Duration::from_secs(3600));
    store
        .append(
            revocation::STREAM,
            ExpectedVersion::Any,
            vec![revoke(1, soon), revoke(2, later)],
        )
        .await
        .unwrap();
    wait_for_position(&projector, 2).await;
    let remembered = || async {
        projector
            .send(WithModels::new(|m: &Projections| {
                let r = m.revocations();
                (
                    r.is_token_revoked(Uuid::from_u128(1)),
                    r.is_token_revoked(Uuid::from_u128(2)),
                )
            }))
            .await
            .unwrap()
    };
    let before = remembered().await;
    assert!(before.1, "the hour-long one is there");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        match remembered().await {
            (false, true) => break,
            (true, true) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the expired revocation was never forgotten"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => panic!("the hour-long revocation went too: {other:?}"),
        }
    }
    assert!(
        Timestamp::now() > soon,
        "forgotten only after its token expired"
    );
    assert_eq!(
        store.read_all(0, 10).await.unwrap().len(),
        2,
        "history is not rewritten"
    );
}

#[actix_rt::test]
async fn a_snapshot_planted_without_the_server_secret_is_refused_and_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in(dir.path().join("store")).unwrap();
    for n in 0..3 {
        submit_and_claim(&store, n).await;
    }
    // Whoever plants it can read the store (so the anchor is right), fold it and write any
    // models they like (a user of their own, a revocation less); what they do not have is the
    // server's secret. With a plain checksum this snapshot would have been loaded.
    let models = full_fold(&store).await;
    let last = store.read_all(0, 100).await.unwrap().pop().unwrap();
    let forged = snapshot_file::Snapshot {
        position: models.position(),
        anchor: last.hash,
        payload: models.to_snapshot_bytes().unwrap(),
    };
    let attacker = snapshot_in(dir.path(), b"a secret the attacker made up");
    snapshot_file::write(&attacker, &forged).unwrap();

    let server = snapshot_in(dir.path(), b"server secret");
    let start = load_models(&store, &server).await;
    let why = start.ignored.expect("the planted snapshot is reported");
    assert!(why.contains("planted"), "{why}");
    assert_eq!(start.models.position(), 0, "a full replay instead");
}

#[actix_rt::test]
async fn an_event_it_cannot_decode_stalls_the_projector_for_good_and_says_which() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in(dir.path()).unwrap();
    submit_and_claim(&store, 0).await;
    let begin = load_models(&store, &snapshot_in(dir.path(), b"server secret")).await;
    let projector = start(&store, begin, ProjectorConfig::default());
    wait_for_position(&projector, 2).await;
    let waiting = projector.send(WaitForPosition(4));

    // A type this build does not know, as a newer node sharing the store might write.
    let mut unknown = events::contract::sample_event(7);
    unknown.event_type = "case_exploded".into();
    store
        .append(
            "case-from-the-future",
            ExpectedVersion::NoStream,
            vec![unknown],
        )
        .await
        .unwrap();
    submit_and_claim(&store, 1).await;

    // The waiter beyond it is told at once rather than left to time out.
    let reached = tokio::time::timeout(DEADLINE, waiting)
        .await
        .expect("answered")
        .unwrap();
    assert!(!reached);
    let status = projector.send(Status).await.unwrap();
    assert_eq!(status.position, 2, "nothing after the bad event is applied");
    assert!(!status.healthy);
    let stalled = status.stalled.expect("stalled");
    assert_eq!(
        (
            stalled.position,
            stalled.stream.as_str(),
            stalled.event_type.as_str()
        ),
        (3, "case-from-the-future", "case_exploded")
    );
    let text = stalled.to_string();
    for part in ["position 3", "case-from-the-future", "case_exploded"] {
        assert!(text.contains(part), "{text}");
    }
    assert_eq!(status.last_error.as_deref(), Some(text.as_str()));
    // It does not retry: later events stay unapplied, later waits answer at once.
    let answered = tokio::time::timeout(Duration::from_secs(5), projector.send(WaitForPosition(5)))
        .await
        .expect("answered at once")
        .unwrap();
    assert!(!answered);
    assert!(projector.send(WaitForPosition(2)).await.unwrap());
    let head = projector
        .send(WithModels::new(|m: &Projections| m.log_head()))
        .await
        .unwrap();
    assert_eq!(head.position, 2);
}
