//! The command-line tools against a real store: `user add` (password from standard input) and
//! `user list`, `audit verify` (and its failure on an edited record), `audit export`.

mod common;

use std::path::Path;
use std::process::Output;

use common::Server;
use serde_json::Value;

fn run(args: &[&str], data: &Path, stdin: Option<&str>) -> Output {
    let data = data.to_str().expect("a UTF-8 path");
    let all: Vec<&str> = args.iter().copied().chain(["--data-dir", data]).collect();
    common::run_with_input(&all, stdin)
}

fn text(out: &Output) -> String {
    common::output_text(out)
}

#[test]
fn users_audits_and_exports_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A first start creates the store and the first admin.
    let server = Server::start(&data, &[]);
    // While the server holds the store, `user add` is refused with a clear message.
    let busy = run(
        &["user", "add", "--username", "alice", "--role", "reviewer"],
        &data,
        Some("correct horse battery\n"),
    );
    assert!(!busy.status.success());
    assert!(
        text(&busy).contains("in use by another process"),
        "{}",
        text(&busy)
    );
    assert!(server.terminate().success());

    let added = run(
        &[
            "user",
            "add",
            "--username",
            "alice",
            "--role",
            "reviewer",
            "--role",
            "auditor",
        ],
        &data,
        Some("correct horse battery\n"),
    );
    assert!(added.status.success(), "{}", text(&added));
    assert!(text(&added).contains("added alice"));
    let again = run(
        &["user", "add", "--username", "alice", "--role", "reviewer"],
        &data,
        Some("correct horse battery\n"),
    );
    assert!(!again.status.success(), "a taken username is refused");
    let short = run(
        &["user", "add", "--username", "bob", "--role", "reviewer"],
        &data,
        Some("short\n"),
    );
    assert!(!short.status.success());
    assert!(text(&short).contains("password"), "{}", text(&short));

    let list = run(&["user", "list"], &data, None);
    assert!(list.status.success(), "{}", text(&list));
    let listing = String::from_utf8_lossy(&list.stdout);
    assert!(
        listing.contains("admin") && listing.contains("alice"),
        "{listing}"
    );
    assert!(listing.contains("reviewer,auditor"), "{listing}");
    assert!(!listing.contains("bob"));

    // The new user can log in over HTTP.
    let server = Server::start(&data, &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let status = runtime.block_on(async {
        reqwest::Client::new()
            .post(server.url("/api/v1/auth/login"))
            .json(&serde_json::json!({"username": "alice", "password": "correct horse battery"}))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200);
    assert!(server.terminate().success());

    let verify = run(&["audit", "verify"], &data, None);
    assert!(verify.status.success(), "{}", text(&verify));
    assert!(text(&verify).contains("ok: true"), "{}", text(&verify));

    let export = run(&["audit", "export", "--after", "0"], &data, None);
    assert!(export.status.success(), "{}", text(&export));
    let lines: Vec<Value> = String::from_utf8_lossy(&export.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert!(lines.len() >= 2, "the admin and alice were registered");
    for (i, e) in lines.iter().enumerate() {
        assert_eq!(e["position"], i as u64 + 1);
        for key in [
            "stream",
            "version",
            "id",
            "type",
            "recorded_at",
            "data",
            "hash",
            "prev_hash",
        ] {
            assert!(e.get(key).is_some(), "{key} in {e}");
        }
    }
    assert!(!String::from_utf8_lossy(&export.stdout).contains("argon2"));
    let tail = run(&["audit", "export", "--after", "1"], &data, None);
    assert_eq!(
        String::from_utf8_lossy(&tail.stdout).lines().count(),
        lines.len() - 1
    );

    // Edit one stored record behind the server's back: the chain names it.
    let alice_stream = lines
        .iter()
        .find(|e| e["type"] == "user_registered" && e["data"]["username"] == "alice")
        .map(|e| e["stream"].as_str().unwrap().to_owned())
        .expect("alice's registration");
    let conn = rusqlite::Connection::open(data.join("events.sqlite3")).unwrap();
    conn.execute(
        "UPDATE events SET payload = x'00' WHERE stream = ?1 AND version = 1",
        [&alice_stream],
    )
    .unwrap();
    drop(conn);
    let broken = run(&["audit", "verify"], &data, None);
    assert!(!broken.status.success());
    let said = text(&broken);
    assert!(
        said.contains(&format!("BROKEN {alice_stream} at version 1")),
        "{said}"
    );
}
