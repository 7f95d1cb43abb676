//! No silent stalls, against the real binary: a record this build cannot decode stops `serve` at
//! start with a message naming its position, stream and type (instead of waiting forever without
//! listening), `adjudicator replay` names the same, and a running server that meets one says it
//! is not ready, and why, without naming a file or a secret.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use events::store::sqlite::{SqliteStore, FILE_NAME};
use events::{EventStore, ExpectedVersion};
use serde_json::{json, Value};

const STREAM: &str = "case-0190aaaa-0000-7000-8000-000000000001";
const TYPE: &str = "case_exploded";

/// An event of a type this build does not know, appended as a newer build would.
async fn append_unknown(data: &Path) -> u64 {
    let store = SqliteStore::open_in(data).unwrap();
    let mut unknown = events::contract::sample_event(1);
    unknown.event_type = TYPE.into();
    let appended = store
        .append(STREAM, ExpectedVersion::NoStream, vec![unknown])
        .await
        .unwrap();
    appended.positions[0]
}

fn assert_names_the_event(text: &str, position: u64) {
    for part in [&format!("position {position}"), STREAM, TYPE] {
        assert!(text.contains(part), "{part:?} is not named in: {text}");
    }
}

#[tokio::test]
async fn serve_stops_at_start_naming_the_event_and_replay_names_it_too() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    // Once it answers, its signal handler is in place too.
    assert_eq!(get(&server, "/healthz", None).await.status(), 200);
    assert!(server.terminate().success());
    let position = append_unknown(&data).await;

    let mut child = Command::new(binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve neither stopped nor listened: it waits forever");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(!stderr.contains("listening on"), "{stderr}");
    assert!(stderr.contains("cannot start"), "{stderr}");
    assert_names_the_event(&stderr, position);

    let (status, stderr) = run_to_end(&["replay", "--data-dir", data.to_str().unwrap()]);
    assert!(!status.success(), "{stderr}");
    assert_names_the_event(&stderr, position);
}

#[tokio::test]
async fn a_running_server_that_meets_one_is_not_ready_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start_demo(&data, &[]);
    let classifier = login(&server, "classifier", &demo_password("classifier")).await;
    let ready = get(&server, "/readyz", None).await;
    assert_eq!(ready.status(), 200);
    let head = assert_json(ready, 200).await["checks"]["head_position"]
        .as_u64()
        .unwrap();

    // Another writer puts a record this build cannot read right after the next event (as a
    // newer node sharing the store would); the server's own next append fills the gap.
    let db = rusqlite::Connection::open(data.join(FILE_NAME)).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    let bad = head + 2;
    db.execute(
        "INSERT INTO events (position, stream, version, id, event_type, schema_version, codec, \
         recorded_at, user_id, correlation_id, causation_id, payload, prev_hash, hash) \
         VALUES (?1, ?2, 1, ?3, ?4, 1, 1, 0, NULL, ?3, NULL, x'00', ?5, ?5)",
        rusqlite::params![
            bad as i64,
            STREAM,
            uuid::Uuid::now_v7().as_bytes().to_vec(),
            TYPE,
            vec![0u8; 32]
        ],
    )
    .unwrap();
    drop(db);
    let body = json!({"subject_ref": "STALL-1", "excerpt": "It was done on purpose.",
                      "assessment": {"culpability": "purposely", "confidence": 0.9}});
    let case = assert_json(
        post(&server, "/api/v1/cases", Some(&classifier), &body).await,
        201,
    )
    .await;
    assert_eq!(case["position"], head + 1);

    let s = &server;
    let checks: Value = eventually(
        "/readyz to answer 503",
        Duration::from_secs(30),
        || async move {
            let r = get(s, "/readyz", None).await;
            (r.status() == 503).then_some(())?;
            let body: Value = r.json().await.ok()?;
            Some(body)
        },
    )
    .await;
    assert_eq!(checks["ready"], false, "{checks}");
    assert_eq!(checks["checks"]["projections"], "stalled", "{checks}");
    assert_eq!(
        checks["checks"]["projection_position"],
        head + 1,
        "{checks}"
    );
    let reason = checks["checks"]["reason"].as_str().expect("a reason");
    assert_names_the_event(reason, bad);
    assert!(
        !reason.contains(dir.path().to_str().unwrap()) && !reason.contains(FILE_NAME),
        "no path in {reason}"
    );
    // The log says why too.
    let logged = eventually("the log line", Duration::from_secs(10), || async {
        server
            .log
            .try_iter()
            .find(|l| l.contains("projector stopped"))
    })
    .await;
    assert_names_the_event(&logged, bad);
}
