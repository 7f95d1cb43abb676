//! The data directory and its secrets are private (issue 12, item 10): created 0700 and 0600,
//! refused when open to others (and never chmodded), and a snapshot planted without the server's
//! secret is refused, not trusted.
#![cfg(unix)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use adjudicator::projector::snapshot_file::{self, SnapshotFile};
use adjudicator::projector::SnapshotKey;
use common::{admin_password, jwt_secret, login, run_to_end, Server};

fn mode(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// `serve` on `data` with `extra` flags, run to its end (it is expected to refuse).
fn refused(data: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let (status, stderr) = run_to_end(&args);
    assert!(!status.success(), "the start should be refused: {stderr}");
    stderr
}

#[tokio::test]
async fn a_new_data_dir_and_every_file_in_it_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("var").join("data");
    let server = Server::start(&data, &[]);
    login(&server, "admin", &admin_password(&data)).await;
    assert!(server.terminate().success());

    assert_eq!(mode(&data), 0o700, "the data directory");
    for name in [
        "events.sqlite3",
        "events.sqlite3.lock",
        "jwt-secret",
        "admin-password",
        "projections.snapshot",
    ] {
        assert_eq!(mode(&data.join(name)), 0o600, "{name}");
    }
    for name in ["events.sqlite3-wal", "events.sqlite3-shm"] {
        if data.join(name).exists() {
            assert_eq!(mode(&data.join(name)), 0o600, "{name}");
        }
    }
}

#[test]
fn an_existing_data_dir_open_to_others_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    for open in [0o755, 0o1777] {
        let shared = dir.path().join(format!("shared-{open:o}"));
        fs::create_dir(&shared).unwrap();
        set_mode(&shared, open);
        let stderr = refused(&shared, &[]);
        assert!(stderr.contains(&shared.display().to_string()), "{stderr}");
        assert!(stderr.contains("open to other users"), "{stderr}");
        assert!(stderr.contains("chmod 700"), "{stderr}");
        assert_eq!(mode(&shared), open, "never chmodded");
        assert!(!shared.join("events.sqlite3").exists(), "nothing written");
    }
}

#[tokio::test]
async fn a_secret_file_open_to_others_stops_the_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    assert!(server.terminate().success());

    for name in [
        "jwt-secret",
        "admin-password",
        "events.sqlite3",
        "projections.snapshot",
    ] {
        let path = data.join(name);
        set_mode(&path, 0o644);
        let stderr = refused(&data, &[]);
        assert!(stderr.contains(&path.display().to_string()), "{stderr}");
        assert!(stderr.contains("chmod 600"), "{stderr}");
        set_mode(&path, 0o600);
    }

    // A secret file named by the flag is checked too.
    let given = dir.path().join("given-secret");
    fs::write(&given, "s".repeat(48)).unwrap();
    set_mode(&given, 0o640);
    let stderr = refused(&data, &["--jwt-secret-file", given.to_str().unwrap()]);
    assert!(stderr.contains("--jwt-secret-file"), "{stderr}");
    assert!(stderr.contains(&given.display().to_string()), "{stderr}");
    set_mode(&given, 0o600);
    let server = Server::start(&data, &["--jwt-secret-file", given.to_str().unwrap()]);
    assert!(server.terminate().success());
}

#[tokio::test]
async fn a_snapshot_written_without_the_server_secret_is_ignored_and_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--demo"]);
    login(&server, "reviewer", "reviewer-demo").await;
    assert!(server.terminate().success());

    // The genuine snapshot verifies with the key of the server's secret…
    let genuine = SnapshotFile {
        path: data.join(snapshot_file::FILE_NAME),
        key: SnapshotKey::derive(&jwt_secret(&data)),
    };
    let snapshot = snapshot_file::read(&genuine)
        .expect("the server's own snapshot verifies")
        .expect("a snapshot was saved at shutdown");
    // …and one written back under any other key (whoever planted it cannot read the secret)
    // is refused at the next start, which replays the log instead.
    let planted = SnapshotFile {
        path: genuine.path.clone(),
        key: SnapshotKey::derive(b"a key the planter made up"),
    };
    snapshot_file::write(&planted, &snapshot).unwrap();
    let server = Server::start(&data, &[]);
    let warning = server
        .startup_log
        .iter()
        .find(|l| l.contains("snapshot ignored"))
        .unwrap_or_else(|| panic!("no warning: {:#?}", server.startup_log));
    assert!(warning.contains("planted"), "{warning}");
    let loaded = server
        .startup_log
        .iter()
        .find(|l| l.contains("read models loaded"))
        .expect("the models were loaded");
    assert!(
        loaded.contains("position=0") || loaded.contains("\"position\":0"),
        "a full replay: {loaded}"
    );
    login(&server, "reviewer", "reviewer-demo").await;
}
