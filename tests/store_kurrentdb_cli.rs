//! `--store kurrentdb://…` and `esdb://…` from the command line, on the real binary: a build
//! without the `kurrentdb` feature refuses them and says how to get the backend; a build with it
//! reports a server it cannot reach and exits. Neither shows the URL's password.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs the binary to its end, killing it after a minute (a hang fails the test).
fn run(args: &[&str], data_dir: &std::path::Path) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_adjudicator"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run adjudicator");
    let started = Instant::now();
    while child.try_wait().expect("poll the child").is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("adjudicator {args:?} did not exit within a minute");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("collect the output")
}

/// A loopback port that nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

#[test]
fn a_kurrentdb_store_is_opened_or_refused_clearly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = closed_port();
    for url in [
        format!("kurrentdb://admin:s3cret@127.0.0.1:{port}?tls=false"),
        format!("esdb://admin:s3cret@127.0.0.1:{port}?tls=false"),
    ] {
        for args in [
            vec!["serve", "--listen", "127.0.0.1:0", "--store", url.as_str()],
            vec!["user", "list", "--store", url.as_str()],
        ] {
            let out = run(&args, &dir.path().join("data"));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{args:?} must fail: {stderr}");
            assert!(
                !stderr.contains("s3cret"),
                "{args:?} shows the password: {stderr}"
            );
            if cfg!(feature = "kurrentdb") {
                assert!(
                    stderr.contains("KurrentDB") && stderr.contains("unavailable"),
                    "{args:?}: the unreachable server is named: {stderr}"
                );
            } else {
                assert!(
                    stderr.contains("--features kurrentdb"),
                    "{args:?}: says how to build the backend: {stderr}"
                );
            }
        }
    }
}
