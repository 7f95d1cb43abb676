//! `--demo` is no back door (issue 12, item 9): it is refused on a store that holds real data
//! and beyond loopback; a store it fills is marked as a demo store (an event auditors see), and
//! every start of a demo store, with the flag or without, warns loudly; no password is ever
//! logged, neither a demo user's nor the first admin's.

mod common;

use common::{admin_password, assert_json, demo_password, get, login, run_to_end, Server};

const DEMO_USERS: [&str; 4] = ["reviewer", "senior", "auditor", "classifier"];

/// Asserts that no startup line holds a password the server knows of.
fn assert_no_password_logged(server: &Server) {
    let admin = admin_password(&server.data_dir);
    for line in &server.startup_log {
        assert!(
            !line.contains(&admin),
            "the admin password is logged: {line}"
        );
        for user in DEMO_USERS {
            assert!(
                !line.contains(&demo_password(user)),
                "a demo password is logged: {line}"
            );
        }
    }
}

/// The `demo_store_marked` events of the history, as the audit API shows them to an auditor.
async fn demo_marks(server: &Server) -> Vec<serde_json::Value> {
    let auditor = login(server, "auditor", &demo_password("auditor")).await;
    let path = "/api/v1/audit/events?type=demo_store_marked";
    let page = assert_json(get(server, path, Some(&auditor)).await, 200).await;
    page["events"].as_array().expect("events").clone()
}

fn warns_of_a_demo_store(server: &Server) -> bool {
    server.startup_log.iter().any(|l| l.contains("DEMO STORE"))
}

#[tokio::test]
async fn demo_marks_a_new_store_warns_at_every_start_and_logs_no_password() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--demo"]);
    assert!(warns_of_a_demo_store(&server), "{:#?}", server.startup_log);
    assert_no_password_logged(&server);
    let admin_file = data.join("admin-password").display().to_string();
    assert!(
        server.startup_log.iter().any(|l| l.contains(&admin_file)),
        "the admin password's file is named: {:#?}",
        server.startup_log
    );

    // The mark is an event of the history, which auditors see.
    let marks = demo_marks(&server).await;
    assert_eq!(marks.len(), 1, "{marks:?}");
    assert_eq!(marks[0]["stream"], "system");
    assert_eq!(marks[0]["position"], 1, "marked before anything else");
    assert!(server.terminate().success());

    // Without the flag the demo users are still there: the warning still comes.
    let server = Server::start(&data, &[]);
    assert!(warns_of_a_demo_store(&server), "{:#?}", server.startup_log);
    login(&server, "reviewer", &demo_password("reviewer")).await;
    assert!(server.terminate().success());

    // With the flag again, nothing is added twice.
    let server = Server::start(&data, &["--demo"]);
    assert!(warns_of_a_demo_store(&server));
    assert_no_password_logged(&server);
    assert_eq!(demo_marks(&server).await.len(), 1);
}

#[tokio::test]
async fn demo_is_refused_on_a_store_with_real_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    assert!(!warns_of_a_demo_store(&server));
    assert_no_password_logged(&server);
    assert!(server.terminate().success());

    let (status, stderr) = run_to_end(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data.to_str().unwrap(),
        "--demo",
    ]);
    assert!(!status.success());
    assert!(stderr.contains("--demo is refused"), "{stderr}");
    assert!(stderr.contains("not a demo store"), "{stderr}");

    // Nothing was added: the demo users do not exist.
    let server = Server::start(&data, &[]);
    let refused = common::post(
        &server,
        "/api/v1/auth/login",
        None,
        &serde_json::json!({"username": "reviewer", "password": demo_password("reviewer")}),
    )
    .await;
    common::assert_problem(refused, 401, "invalid_credentials").await;
    let admin = login(&server, "admin", &admin_password(&data)).await;
    assert_eq!(common::me(&server, &admin).await["username"], "admin");
}

#[test]
fn demo_and_demo_stores_are_refused_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap();
    let (status, stderr) = run_to_end(&[
        "serve",
        "--listen",
        "0.0.0.0:0",
        "--data-dir",
        data_arg,
        "--demo",
    ]);
    assert!(!status.success());
    assert!(
        stderr.contains("--demo is refused on --listen 0.0.0.0:0"),
        "{stderr}"
    );
    assert!(
        !data.join("events.sqlite3").exists(),
        "refused before anything"
    );

    // A demo store made on loopback…
    let server = Server::start(&data, &["--demo"]);
    drop(server);
    // …is not served on another address, even without the flag.
    let (status, stderr) = run_to_end(&["serve", "--listen", "0.0.0.0:0", "--data-dir", data_arg]);
    assert!(!status.success());
    assert!(stderr.contains("this is a demo store"), "{stderr}");
    assert!(stderr.contains("loopback"), "{stderr}");
}

/// `bench generate --demo` makes a store `serve --demo` takes (the load generator's stores);
/// without the flag a generated store is real data, and `--demo` refuses it as before.
#[tokio::test]
async fn bench_generate_demo_makes_a_store_serve_demo_takes() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let demo_arg = demo.to_str().expect("a UTF-8 path");
    let generate = |data: &str, demo: bool| {
        let mut args = vec!["bench", "generate", "--data-dir", data, "--events", "300"];
        if demo {
            args.push("--demo");
        }
        run_to_end(&args)
    };
    let (status, log) = generate(demo_arg, true);
    assert!(status.success(), "bench generate --demo: {log}");
    // Again on the same store: it is a demo store now, and takes more.
    let (status, log) = generate(demo_arg, true);
    assert!(status.success(), "bench generate --demo, again: {log}");

    let server = Server::start(&demo, &["--demo"]);
    assert!(warns_of_a_demo_store(&server));
    let marks = demo_marks(&server).await;
    assert_eq!(marks.len(), 1, "{marks:?}");
    assert_eq!(
        marks[0]["position"], 1,
        "marked before the generated events"
    );
    let reviewer = login(&server, "reviewer", &demo_password("reviewer")).await;
    let stats = assert_json(get(&server, "/api/v1/stats", Some(&reviewer)).await, 200).await;
    let cases = ["pending", "in_review", "escalated", "decided"]
        .iter()
        .map(|s| stats[*s].as_u64().expect("a count"))
        .sum::<u64>();
    assert!(cases >= 60, "the generated cases are served: {stats}");
    assert!(server.terminate().success());

    // A store generated without the flag holds real data: --demo is refused on it, and so is
    // generating into it with --demo.
    let real = dir.path().join("real");
    let real_arg = real.to_str().expect("a UTF-8 path");
    let (status, log) = generate(real_arg, false);
    assert!(status.success(), "bench generate: {log}");
    let (status, log) = generate(real_arg, true);
    assert!(!status.success());
    assert!(log.contains("not a demo store"), "{log}");
    let (status, log) = run_to_end(&[
        "serve",
        "--demo",
        "--data-dir",
        real_arg,
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(!status.success());
    assert!(log.contains("not a demo store"), "{log}");
}
