//! `adjudicator serve` as an operator meets it: it starts on a fresh directory, answers health
//! checks, refuses bad settings and damaged stores with a message naming them, and stops cleanly.

mod common;

use common::{run_to_end, Server};

#[tokio::test]
async fn serve_starts_on_a_fresh_directory_and_answers_healthz() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    let response = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), r#"{"status":"ok"}"#);
    assert!(
        data.join("events.sqlite3").is_file(),
        "the embedded store is created in the data directory"
    );
    let status = server.terminate();
    assert!(
        status.success(),
        "SIGTERM stops the server cleanly: {status}"
    );
}

#[test]
fn a_bad_setting_stops_the_start_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (status, stderr) = run_to_end(&["serve", "--data-dir", data, "--claim-lease", "soon"]);
    assert!(!status.success());
    assert!(stderr.contains("--claim-lease"), "{stderr}");
    let (status, stderr) = run_to_end(&["serve", "--data-dir", data, "--listen", "nowhere"]);
    assert!(!status.success());
    assert!(stderr.contains("--listen"), "{stderr}");
}

#[test]
fn a_file_that_is_not_a_store_stops_the_start_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    // A data directory of the owner's alone, as the server requires.
    #[cfg(unix)]
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let store = dir.path().join("events.sqlite3");
    std::fs::write(&store, "not a database, just text ".repeat(100)).unwrap();
    #[cfg(unix)]
    std::fs::set_permissions(&store, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let (status, stderr) = run_to_end(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!status.success());
    assert!(stderr.contains(&store.display().to_string()), "{stderr}");
    assert!(stderr.contains("not a database"), "{stderr}");
}

#[test]
fn help_lists_the_subcommands() {
    let out = std::process::Command::new(common::binary())
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for sub in ["serve", "bench"] {
        assert!(text.contains(sub), "--help lists {sub}: {text}");
    }
}
