//! The runtime on PostgreSQL (a private server, see `events::pg_test_cluster`): `serve` serves
//! the API end to end from the database, the operator tools work on it, and `store copy` moves
//! an SQLite history into it, after which `audit verify` and `replay` agree on both sides.

mod common;

use std::path::Path;
use std::process::Output;

use common::ws::*;
use common::*;
use events::pg_test_cluster::fresh_database;
use serde_json::json;

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    run_with_input(args, stdin)
}

fn text(out: &Output) -> String {
    output_text(out)
}

/// Runs and asserts success; returns standard output.
fn succeed(args: &[&str], stdin: Option<&str>) -> String {
    let out = run(args, stdin);
    assert!(out.status.success(), "adjudicator {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The line of `output` that starts with `prefix`.
fn line<'a>(output: &'a str, prefix: &str) -> &'a str {
    output
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{output}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_on_postgres_serves_the_api_end_to_end() {
    let Some(db) = fresh_database("a_server_on_postgres_serves_the_api_end_to_end").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = start_demo(&dir.path().join("node-1"), &["--store", &db.url]);
    let reviewer = login(&server, "reviewer", &demo_password("reviewer")).await;
    let classifier = login(&server, "classifier", &demo_password("classifier")).await;
    let (mut ws, _) = open(&server, &reviewer).await;
    ws.subscribe("q", &["queue"], None).await;
    ws.recv_type("snapshot").await;

    let case = assert_json(
        post(
            &server,
            "/api/v1/cases",
            Some(&classifier),
            &json!({
                "subject_ref": "pg-1",
                "excerpt": "He knew the bridge would fall.",
                "assessment": {"culpability": "knowingly", "confidence": 0.9,
                               "rationale": "Aware of the near-certain result."},
                "priority": "high",
            }),
        )
        .await,
        201,
    )
    .await;
    let id = case["id"].as_str().unwrap().to_owned();
    let claimed = client()
        .post(server.url(&format!("/api/v1/cases/{id}/claim")))
        .bearer_auth(&reviewer)
        .send()
        .await
        .unwrap();
    assert_json(claimed, 200).await;
    let decided = assert_json(
        post(
            &server,
            &format!("/api/v1/cases/{id}/decision"),
            Some(&reviewer),
            &json!({"decision": "confirm", "notes": "Agreed."}),
        )
        .await,
        200,
    )
    .await;

    let mut seen = Vec::new();
    loop {
        let update = ws.recv_type("update").await;
        assert_eq!(update["data"]["id"], id.as_str(), "{update}");
        seen.push(update["event"].as_str().unwrap().to_owned());
        if update["event"] == "case_decided" {
            assert_eq!(update["data"], decided, "{update}");
            assert_eq!(update["position"], decided["position"], "{update}");
            break;
        }
    }
    assert_eq!(seen, ["case_submitted", "case_claimed", "case_decided"]);
    assert!(server.terminate().success());

    // A new node with an empty data directory finds the whole history in the database.
    let node = start_demo(&dir.path().join("node-2"), &["--store", &db.url]);
    let auditor = login(&node, "auditor", &demo_password("auditor")).await;
    let found = assert_json(
        get(&node, &format!("/api/v1/cases/{id}"), Some(&auditor)).await,
        200,
    )
    .await;
    assert_eq!(found, decided);
    assert!(node.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_tools_work_on_postgres() {
    let Some(db) = fresh_database("the_operator_tools_work_on_postgres").await else {
        return;
    };
    let store = ["--store", db.url.as_str()];
    let with = |args: &[&'static str]| -> Vec<&str> {
        args.iter().copied().chain(store.iter().copied()).collect()
    };
    let added = succeed(
        &with(&["user", "add", "--username", "alice", "--role", "reviewer"]),
        Some("correct horse battery\n"),
    );
    assert!(added.contains("added alice"), "{added}");
    let taken = run(
        &with(&["user", "add", "--username", "alice", "--role", "reviewer"]),
        Some("correct horse battery\n"),
    );
    assert!(!taken.status.success(), "a taken username is refused");
    let listing = succeed(&with(&["user", "list"]), None);
    assert!(listing.contains("alice"), "{listing}");

    let generated = succeed(&with(&["bench", "generate", "--events", "300"]), None);
    assert!(generated.contains("generated"), "{generated}");
    let verified = succeed(&with(&["audit", "verify"]), None);
    assert!(verified.contains("ok: true"), "{verified}");
    let export = succeed(&with(&["audit", "export"]), None);
    let head: usize = line(&verified, "streams checked")
        .split("events checked: ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .expect("events checked");
    assert_eq!(export.lines().count(), head, "one line per event");
    let replayed = succeed(&with(&["replay"]), None);
    assert!(
        replayed.contains(&format!("replayed {head} events")),
        "{replayed}"
    );

    let bench = succeed(
        &with(&["bench", "append", "--writers", "1,4", "--duration", "1s"]),
        None,
    );
    let rows: Vec<&str> = bench
        .lines()
        .filter(|l| l.trim_start().starts_with(['1', '4']))
        .collect();
    assert_eq!(rows.len(), 2, "{bench}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_copy_moves_sqlite_to_postgres_and_both_sides_agree() {
    let Some(db) = fresh_database("store_copy_moves_sqlite_to_postgres_and_both_sides_agree").await
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap();
    // A history with users, cases in every state, and tokens: a demo server's, plus more.
    let server = start_demo(&data, &[]);
    login(&server, "reviewer", &demo_password("reviewer")).await;
    assert!(server.terminate().success());
    succeed(
        &[
            "bench",
            "generate",
            "--events",
            "2000",
            "--data-dir",
            data_arg,
        ],
        None,
    );

    let from = format!("sqlite:{data_arg}");
    let copied = succeed(&["store", "copy", "--from", &from, "--to", &db.url], None);
    assert!(copied.contains("every source chain verified"), "{copied}");
    assert!(copied.contains("equals the source's"), "{copied}");

    let sqlite = ["--data-dir", data_arg];
    let postgres = ["--store", db.url.as_str()];
    let on = |side: &[&str], args: &[&str]| -> String {
        let all: Vec<&str> = args.iter().chain(side).copied().collect();
        succeed(&all, None)
    };
    let verify_sqlite = on(&sqlite, &["audit", "verify"]);
    let verify_postgres = on(&postgres, &["audit", "verify"]);
    assert!(verify_sqlite.contains("ok: true"), "{verify_sqlite}");
    for prefix in ["streams checked", "log digest"] {
        assert_eq!(
            line(&verify_sqlite, prefix),
            line(&verify_postgres, prefix),
            "audit verify on both sides"
        );
    }
    let replay_sqlite = on(&sqlite, &["replay"]);
    let replay_postgres = on(&postgres, &["replay"]);
    assert_eq!(
        line(&replay_sqlite, "read models"),
        line(&replay_postgres, "read models"),
        "replay on both sides"
    );
    let events = |s: &str| line(s, "replayed").split(" in ").next().unwrap().to_owned();
    assert_eq!(events(&replay_sqlite), events(&replay_postgres));

    // A second copy into the now non-empty database is refused, and changes nothing.
    let again = run(&["store", "copy", "--from", &from, "--to", &db.url], None);
    assert!(!again.status.success());
    assert!(
        text(&again).contains("only into an empty store"),
        "{}",
        text(&again)
    );
    let after = on(&postgres, &["audit", "verify"]);
    assert_eq!(
        line(&after, "log digest"),
        line(&verify_postgres, "log digest")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_copy_stops_at_a_broken_chain() {
    let Some(db) = fresh_database("store_copy_stops_at_a_broken_chain").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap();
    succeed(
        &[
            "bench",
            "generate",
            "--events",
            "200",
            "--data-dir",
            data_arg,
        ],
        None,
    );
    let (stream, version) = edit_one_record(&data.join("events.sqlite3"));
    let out = run(
        &["store", "copy", "--from", data_arg, "--to", &db.url],
        None,
    );
    assert!(!out.status.success());
    let message = text(&out);
    assert!(
        message.contains(&format!(
            "the source does not verify: {stream} at version {version} (position 50)"
        )),
        "{message}"
    );
}

/// Changes the payload of the 50th event of the file; returns its stream and version.
fn edit_one_record(path: &Path) -> (String, i64) {
    let conn = rusqlite::Connection::open(path).expect("open the store file");
    let (stream, version): (String, i64) = conn
        .query_row(
            "SELECT stream, version FROM events WHERE position = 50",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("event 50");
    conn.execute("UPDATE events SET payload = x'00' WHERE position = 50", [])
        .expect("edit");
    (stream, version)
}
