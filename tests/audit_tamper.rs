//! Tampering with the SQLite file directly, as someone with access to the data directory could,
//! and catching it with the real binary: `audit head` before, `audit verify --expect` after.
//!
//! The log is three cases decided in three rounds, interleaved (positions 1-3 submit A, B, C;
//! 4-6 claim them; 7-9 decide them), with the auditor's head recorded after each round, as
//! heads recorded daily would be. Each edit is detected, naming the first bad position: exactly
//! when the file itself shows it (a gap, a version out of order); through a head that no longer
//! holds, as the first position after the last head that still does (the first position that
//! may be bad: a single commitment cannot say which of the events after it changed).

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use events::domain::case::{self, CaseAction, CaseCommand, CaseState};
use events::domain::{Actor, Decision, DomainEvent, Role};
use events::hash::{chain_hash, Hash};
use events::store::sqlite::{SqliteStore, FILE_NAME};
use events::{EventData, EventStore, ExpectedVersion, Metadata, RecordedEvent, Timestamp};
use rusqlite::params;
use uuid::Uuid;

fn cli(args: &[&str], data: &Path) -> Output {
    Command::new(common::binary())
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .expect("run adjudicator")
}

fn output(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `audit head`: the head it printed.
fn head(data: &Path) -> String {
    let out = cli(&["audit", "head"], data);
    assert!(out.status.success(), "audit head: {}", output(&out));
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        text.parse::<events::commitment::LogHead>().is_ok(),
        "`audit head` prints <position>:<commitment>: {text:?}"
    );
    text
}

/// `audit verify --expect …`; answers whether it passed and what it printed.
fn verify(data: &Path, heads: &[&String]) -> (bool, String) {
    let mut args = vec!["audit", "verify"];
    for h in heads {
        args.extend(["--expect", h.as_str()]);
    }
    let out = cli(&args, data);
    (out.status.success(), output(&out))
}

/// Asserts a failed verification whose first bad position is `first`.
fn assert_first_bad(result: (bool, String), first: u64) -> String {
    let (passed, text) = result;
    assert!(!passed, "the tampering went unnoticed: {text}");
    assert!(
        text.contains(&format!("the first at position {first}\n")),
        "the first bad position should be {first}: {text}"
    );
    assert!(
        text.contains(&format!("at position {first}: "))
            || text.contains(&format!("(position {first}): ")),
        "{text}"
    );
    text
}

const ROUNDS: usize = 3;
const CASES: usize = 3;

/// Appends the three rounds; returns the head after each.
async fn build(data: &Path) -> Vec<String> {
    std::fs::create_dir_all(data).unwrap();
    let classifier = Actor::new(Uuid::from_u128(1), vec![Role::Classifier]);
    let reviewer = Actor::new(Uuid::from_u128(2), vec![Role::Reviewer]);
    let ids: Vec<Uuid> = (0..CASES).map(|_| Uuid::now_v7()).collect();
    let mut states = vec![CaseState::default(); CASES];
    let mut heads = Vec::new();
    // One writer for the whole build: `audit head` reads beside it, as beside a live server.
    let store = SqliteStore::open_in(data).expect("open the store");
    for round in 0..ROUNDS {
        for (n, id) in ids.iter().enumerate() {
            let (actor, action) = match round {
                0 => (
                    classifier.clone(),
                    CaseAction::Submit(common::sample_submission(*id, n as u64)),
                ),
                1 => (
                    reviewer.clone(),
                    CaseAction::Claim {
                        lease: Duration::from_secs(600),
                    },
                ),
                _ => (
                    reviewer.clone(),
                    CaseAction::Decide {
                        decision: Decision::Confirm,
                        final_culpability: None,
                        notes: Some("Agreed.".into()),
                    },
                ),
            };
            let at = Timestamp::now();
            let command = CaseCommand { actor, at, action };
            let events = case::decide(&states[n], command).expect("a valid command");
            let mut data = Vec::new();
            for e in events {
                states[n] = case::evolve(states[n].clone(), &e);
                let event = DomainEvent::Case(e);
                data.push(EventData::encode(&event, Metadata::default(), at).unwrap());
            }
            store
                .append(
                    &case::stream_name(*id),
                    ExpectedVersion::Exact(round as u64),
                    data,
                )
                .await
                .expect("append");
        }
        heads.push(head(data));
    }
    heads
}

fn open(data: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(data.join(FILE_NAME)).expect("open the file with SQLite")
}

/// The stored event at `position`.
fn event_at(db: &rusqlite::Connection, position: u64) -> RecordedEvent {
    db.query_row(
        "SELECT stream, version, id, event_type, schema_version, codec, recorded_at, user_id, \
         correlation_id, causation_id, payload, prev_hash, hash FROM events WHERE position = ?1",
        [position as i64],
        |r| {
            let uuid = |i| r.get::<_, [u8; 16]>(i).map(Uuid::from_bytes);
            let maybe = |i| {
                r.get::<_, Option<[u8; 16]>>(i)
                    .map(|b| b.map(Uuid::from_bytes))
            };
            Ok(RecordedEvent {
                position,
                stream: r.get(0)?,
                version: r.get::<_, i64>(1)? as u64,
                data: EventData {
                    id: uuid(2)?,
                    event_type: r.get(3)?,
                    schema_version: r.get(4)?,
                    codec: r.get(5)?,
                    recorded_at: Timestamp::from_micros(r.get(6)?),
                    metadata: Metadata {
                        user_id: maybe(7)?,
                        correlation_id: uuid(8)?,
                        causation_id: maybe(9)?,
                    },
                    payload: r.get(10)?,
                },
                prev_hash: r.get(11)?,
                hash: r.get(12)?,
            })
        },
    )
    .expect("the event")
}

fn set_links(db: &rusqlite::Connection, position: u64, prev: &Hash, hash: &Hash) {
    db.execute(
        "UPDATE events SET prev_hash = ?1, hash = ?2 WHERE position = ?3",
        params![prev.as_slice(), hash.as_slice(), position as i64],
    )
    .unwrap();
}

#[tokio::test]
async fn deleting_a_case_s_final_decision_is_caught_by_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let heads = build(&data).await;
    assert_eq!(heads.len(), ROUNDS);
    assert!(heads[2].starts_with("9:"), "{heads:?}");
    let (passed, text) = verify(&data, &[&heads[0], &heads[1], &heads[2]]);
    assert!(passed, "the intact log verifies against its heads: {text}");
    assert!(text.contains(&format!("head: {}", heads[2])), "{text}");

    // The last case's decision is the log's last event: nothing in the file shows it went.
    let db = open(&data);
    let last = event_at(&db, 9);
    assert_eq!(
        (last.data.event_type.as_str(), last.version),
        ("case_decided", 3)
    );
    db.execute("DELETE FROM events WHERE position = 9", [])
        .unwrap();
    drop(db);
    let (passed, text) = verify(&data, &[]);
    assert!(
        passed,
        "without a head, a removed tail looks intact: {text}"
    );
    // The heads of rounds 1 and 2 hold: the removal is after position 6.
    let text = assert_first_bad(verify(&data, &[&heads[0], &heads[1], &heads[2]]), 7);
    assert!(
        text.contains("the log ends at position 8, short of position 9"),
        "{text}"
    );
    // With the last head alone, it may be anywhere.
    assert_first_bad(verify(&data, &[&heads[2]]), 1);
    // The heads before the deletion still hold.
    let (passed, text) = verify(&data, &[&heads[0], &heads[1]]);
    assert!(passed, "{text}");
}

#[tokio::test]
async fn deleting_an_event_in_the_middle_is_caught_by_the_file_alone() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let heads = build(&data).await;
    // B's claim, at position 5.
    let db = open(&data);
    db.execute("DELETE FROM events WHERE position = 5", [])
        .unwrap();
    drop(db);
    let text = assert_first_bad(verify(&data, &[]), 5);
    assert!(text.contains("position 5 is missing"), "{text}");
    assert!(
        text.contains("version 3 follows version 1"),
        "B's decision now follows its submission: {text}"
    );
    // A head that fails can only say the change lies after the last head that holds: the
    // first position that may be bad is then 4, and the gap is still named at 5.
    let text = assert_first_bad(verify(&data, &[&heads[0], &heads[2]]), 4);
    assert!(
        text.contains("BROKEN log at position 5: position 5 is missing"),
        "{text}"
    );
    // `audit head` refuses to commit to a damaged log.
    let out = cli(&["audit", "head"], &data);
    assert!(!out.status.success(), "{}", output(&out));
    assert!(output(&out).contains("position 5 is missing"));
}

#[tokio::test]
async fn an_edit_with_its_stream_rehashed_is_caught_after_the_last_head_that_holds() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let heads = build(&data).await;
    // A's claim (position 4) now names another reviewer; A's chain is recomputed from there
    // (its decision at position 7 too), so every chain holds again.
    let db = open(&data);
    let mut claim = event_at(&db, 4);
    let decoded = claim.data.decode().unwrap();
    let DomainEvent::Case(case::CaseEvent::Claimed(mut claimed)) = decoded else {
        panic!("position 4 is a claim: {decoded:?}");
    };
    claimed.reviewer_id = Uuid::from_u128(666);
    let forged = EventData::encode(
        &DomainEvent::Case(case::CaseEvent::Claimed(claimed)),
        claim.data.metadata,
        claim.data.recorded_at,
    )
    .unwrap();
    claim.data.payload = forged.payload;
    db.execute(
        "UPDATE events SET payload = ?1 WHERE position = 4",
        params![claim.data.payload],
    )
    .unwrap();
    let first = event_at(&db, 1);
    assert_eq!(first.stream, claim.stream);
    let mut prev = first.hash;
    for position in [4, 7] {
        let e = event_at(&db, position);
        assert_eq!(e.stream, claim.stream);
        let hash = chain_hash(&prev, &e.stream, e.version, &e.data);
        set_links(&db, position, &prev, &hash);
        prev = hash;
    }
    drop(db);
    let (passed, text) = verify(&data, &[]);
    assert!(passed, "the chains alone cannot tell: {text}");
    let text = assert_first_bad(verify(&data, &[&heads[0], &heads[1], &heads[2]]), 4);
    assert!(text.contains("from 4 to 6"), "{text}");
    assert!(text.contains("(the head at 3 holds)"), "{text}");
    // With only the latest head, the change is somewhere in the whole log.
    let text = assert_first_bad(verify(&data, &[&heads[2]]), 1);
    assert!(text.contains("from 1 to 9"), "{text}");
}

#[tokio::test]
async fn reordering_is_caught_by_versions_within_a_stream_and_by_heads_across_streams() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let heads = build(&data).await;
    let swap = |a: i64, b: i64| {
        let db = open(&data);
        db.execute_batch(&format!(
            "UPDATE events SET position = -1 WHERE position = {a};
             UPDATE events SET position = {a} WHERE position = {b};
             UPDATE events SET position = {b} WHERE position = -1;"
        ))
        .unwrap();
    };
    // B's claim and C's claim (positions 5 and 6): each stream still reads in order.
    swap(5, 6);
    let (passed, text) = verify(&data, &[]);
    assert!(passed, "the file alone cannot tell: {text}");
    let text = assert_first_bad(verify(&data, &[&heads[0], &heads[1], &heads[2]]), 4);
    assert!(text.contains("from 4 to 6"), "{text}");
    swap(5, 6);
    let (passed, text) = verify(&data, &[&heads[0], &heads[1], &heads[2]]);
    assert!(passed, "swapped back, the log is what it was: {text}");

    // A's claim and A's decision (positions 4 and 7): the decision now comes first.
    swap(4, 7);
    let text = assert_first_bad(verify(&data, &[]), 4);
    assert!(text.contains("version 3 follows version 1"), "{text}");
    assert_first_bad(verify(&data, &[&heads[2]]), 1);
}

#[test]
fn a_malformed_expected_head_is_refused_with_its_format() {
    let dir = tempfile::tempdir().unwrap();
    let out = cli(&["audit", "verify", "--expect", "nine:abc"], dir.path());
    assert!(!out.status.success());
    assert!(
        output(&out).contains("<position>:<64 hex digits>"),
        "{}",
        output(&out)
    );
}
