//! The queue page on a large store, in a real headless Chromium against the real binary: with
//! the 14,700 undecided cases of `adjudicator bench generate --events 200000`, the queue is
//! usable within a second of signing in, and the page holds a window of the queue (the first
//! cases in the server's order, with the total), not all of it.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::browser::*;
use common::seed::*;
use common::*;
use serde_json::json;

/// Signing in to a queue shown within this.
const USABLE_BOUND_MS: f64 = 1_000.0;

/// The most cases a `queue` subscription may ask for (the protocol's queue window).
const MAX_WINDOW: u64 = 1_000;

/// Stamps in the page (`window.e2eUsable`) when `#queue-list` first shows a case, counted from
/// `window.e2eClicked`.
const WATCH_FIRST_CASES: &str = r#"
    window.e2eUsable = null;
    new MutationObserver(() => {
        if (window.e2eUsable === null && window.e2eClicked
            && document.querySelector('#queue-list > [data-case-id]')) {
            window.e2eUsable = Date.now();
        }
    }).observe(document.documentElement, {childList: true, subtree: true});
    document.querySelector('#signin-submit').addEventListener('click',
        () => { window.e2eClicked = Date.now(); }, {capture: true});
    return true;"#;

/// A data directory in memory where there is one (the store is written with an fsync per batch;
/// on a disk that is most of the generation's time), else in the usual temporary place.
fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let builder = tempfile::Builder::new().prefix("adjudicator-e2e-").clone();
    if shm.is_dir() {
        if let Ok(dir) = builder.tempdir_in(shm) {
            return dir;
        }
    }
    builder.tempdir().expect("a data directory")
}

/// `adjudicator user add`, with the password on standard input.
fn add_user(data_dir: &str, username: &str, password: &str, role: &str) {
    let mut child = Command::new(binary())
        .args(["user", "add", "--data-dir", data_dir])
        .args(["--username", username, "--role", role])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run adjudicator user add");
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "{password}").expect("write the password");
    drop(stdin);
    let out = child.wait_with_output().expect("user add ends");
    assert!(
        out.status.success(),
        "user add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_14700_undecided_cases_the_queue_is_usable_within_a_second_of_sign_in() {
    if !available("with_14700_undecided_cases_the_queue_is_usable_within_a_second_of_sign_in") {
        return;
    }
    let dir = scratch_dir();
    let data = dir.path().join("data");
    let data_arg = data.to_str().expect("a UTF-8 path");
    let (status, log) = run_to_end(&[
        "bench",
        "generate",
        "--data-dir",
        data_arg,
        "--events",
        "200000",
    ]);
    assert!(status.success(), "bench generate: {log}");
    let password = "a-reviewer-of-many-cases";
    add_user(data_arg, "many", password, "reviewer");
    let server = Server::start(&data, &[]);
    let token = login(&server, "many", password).await;
    let stats = assert_json(get(&server, "/api/v1/stats", Some(&token)).await, 200).await;
    let undecided: u64 = ["pending", "in_review", "escalated"]
        .iter()
        .map(|s| stats[*s].as_u64().expect("a count"))
        .sum();
    assert!(undecided >= 14_000, "the generated queue: {stats}");

    let browser = Browser::launch(&server).await;
    browser.open("/").await;
    browser.wait_for("#signin-form").await;
    browser.js(WATCH_FIRST_CASES, vec![]).await;
    browser.submit_sign_in("many", password).await;
    let usable = browser
        .wait_js(
            "the first cases in #queue-list",
            "return window.e2eUsable && window.e2eUsable - window.e2eClicked;",
            vec![],
        )
        .await
        .as_f64()
        .expect("milliseconds");
    browser.wait_connected().await;

    // A window of the queue: its first cases in the server's order, and the total.
    let expected = queue_ids(&server, &token).await;
    let shown: Vec<String> = serde_json::from_value(
        browser
            .wait_js(
                "the window to settle",
                "const ids = [...document.querySelectorAll('#queue-list > [data-case-id]')]
                     .map(e => e.dataset.caseId);
                 return ids.length > 0 ? ids : null;",
                vec![],
            )
            .await,
    )
    .expect("ids");
    assert!(
        shown.len() as u64 <= MAX_WINDOW,
        "the page holds {} cases, not a window",
        shown.len()
    );
    let n = shown.len().min(expected.len());
    assert_eq!(shown[..n], expected[..n], "the first cases, in order");
    browser
        .wait_js(
            &format!("#queue-total to show {undecided}"),
            "const digits = document.querySelector('#queue-total').textContent
                 .replace(/[^0-9]/g, '');
             return digits.endsWith(arguments[0]);",
            vec![json!(undecided.to_string())],
        )
        .await;
    eprintln!(
        "{undecided} undecided cases: sign-in → first cases shown in {usable:.0} ms; \
         the page holds {}",
        shown.len()
    );
    assert!(
        usable <= USABLE_BOUND_MS,
        "the queue took {usable:.0} ms to show after signing in"
    );
}
