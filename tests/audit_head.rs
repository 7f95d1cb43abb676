//! `GET /api/v1/audit/head` and `adjudicator audit head` against the real binary: the server's
//! running commitment is the documented fold of the log, moves with every event, agrees with
//! the command line, and survives a restart (it is part of the read models' snapshot).

mod common;

use std::process::Command;

use common::*;
use serde_json::{json, Value};

async fn served_head(server: &Server, token: &str) -> Value {
    let head = assert_json(get(server, "/api/v1/audit/head", Some(token)).await, 200).await;
    let keys: Vec<&String> = head.as_object().expect("an object").keys().collect();
    assert_eq!(keys, ["commitment", "position"], "{head}");
    head
}

fn cli_head(data: &std::path::Path) -> String {
    let out = Command::new(binary())
        .args(["audit", "head", "--data-dir"])
        .arg(data)
        .output()
        .expect("run adjudicator");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test]
async fn the_head_is_the_fold_of_the_log_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start_demo(&data, &[]);
    let auditor = login(&server, "auditor", &demo_password("auditor")).await;
    let classifier = login(&server, "classifier", &demo_password("classifier")).await;

    let before = served_head(&server, &auditor).await;
    assert_eq!(before, head_of(&every_audit_event(&server, &auditor).await));
    let body = json!({"subject_ref": "HEAD-1", "excerpt": "It was done on purpose.",
                      "assessment": {"culpability": "purposely", "confidence": 0.9}});
    let case = assert_json(
        post(&server, "/api/v1/cases", Some(&classifier), &body).await,
        201,
    )
    .await;
    let after = served_head(&server, &auditor).await;
    assert_eq!(after["position"], case["position"], "{after} {case}");
    assert_ne!(after["commitment"], before["commitment"]);
    let log = every_audit_event(&server, &auditor).await;
    assert_eq!(after, head_of(&log));

    // Reviewers and classifiers do not read it; without a token nobody does.
    let reviewer = login(&server, "reviewer", &demo_password("reviewer")).await;
    for token in [&reviewer, &classifier] {
        let r = get(&server, "/api/v1/audit/head", Some(token)).await;
        assert_problem(r, 403, "forbidden").await;
    }
    let r = get(&server, "/api/v1/audit/head", None).await;
    assert_problem(r, 401, "token_missing").await;

    assert!(server.terminate().success());
    let printed = cli_head(&data);
    assert_eq!(
        printed,
        format!(
            "{}:{}",
            after["position"],
            after["commitment"].as_str().unwrap()
        ),
        "the command line folds the same log to the same head"
    );
    assert!(data.join("projections.snapshot").exists());

    // Restarted from its snapshot, the server answers the same head at once.
    let server = Server::start(&data, &[]);
    let auditor = login(&server, "auditor", &demo_password("auditor")).await;
    let restarted = served_head(&server, &auditor).await;
    let log_now = every_audit_event(&server, &auditor).await;
    // Logging in appends nothing to the log; the head moves only with new events.
    assert_eq!(restarted, head_of(&log_now));
    assert_eq!(restarted, after);
}
