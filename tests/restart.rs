//! Kills the server with SIGKILL while cases are being submitted over HTTP, restarts it, and
//! checks that nothing acknowledged was lost and that the read models it rebuilt (from its last
//! snapshot plus the events after it) equal a full replay of the store.

mod common;

use std::process::Command;
use std::time::Duration;

use common::Server;
use serde_json::{json, Value};

async fn admin_token(server: &Server) -> String {
    common::login(server, "admin", &common::admin_password(&server.data_dir)).await
}

fn case_body(n: usize) -> Value {
    json!({
        "subject_ref": format!("RESTART-{n}"),
        "excerpt": "She said she would do it and then she did.",
        "assessment": { "culpability": "purposely", "confidence": 0.8, "rationale": "intent" },
        "priority": "normal",
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_server_restarts_with_every_acknowledged_case_and_consistent_models() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = ["--snapshot-every", "25"];
    let server = Server::start(&data, &args);
    let token = admin_token(&server).await;

    // Four writers submit until 120 cases are acknowledged, then the server is killed while
    // they are still sending.
    let (tx, mut acked) = tokio::sync::mpsc::unbounded_channel();
    let mut writers = Vec::new();
    for w in 0..4 {
        let (url, token, tx) = (server.url("/api/v1/cases"), token.clone(), tx.clone());
        writers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            for i in 0.. {
                let sent = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&case_body(w * 100_000 + i))
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 201 => {
                        let case: Value = r.json().await.unwrap_or_default();
                        if tx
                            .send(case["id"].as_str().unwrap_or_default().to_owned())
                            .is_err()
                        {
                            return;
                        }
                    }
                    _ => return, // the server is gone
                }
            }
        }));
    }
    drop(tx);
    let mut ids = Vec::new();
    while ids.len() < 120 {
        ids.push(acked.recv().await.expect("a writer acknowledged a case"));
    }
    let mut server = server;
    server.child.kill().expect("SIGKILL");
    server.child.wait().unwrap();
    for w in writers {
        w.await.unwrap();
    }
    while let Ok(id) = acked.try_recv() {
        ids.push(id);
    }

    let server = Server::start(&data, &args);
    let token = admin_token(&server).await;
    let client = reqwest::Client::new();
    for id in &ids {
        let r = client
            .get(server.url(&format!("/api/v1/cases/{id}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "acknowledged case {id} survived the crash");
    }
    let stats: Value = client
        .get(server.url("/api/v1/stats"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pending = stats["pending"].as_u64().unwrap() as usize;
    assert!(
        pending >= ids.len(),
        "{pending} pending, {} acknowledged",
        ids.len()
    );
    let status = server.terminate();
    assert!(status.success(), "a clean stop after the restart: {status}");

    // The models the server saved on that clean stop must equal a full replay.
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || {
            Command::new(common::binary())
                .args(["replay", "--data-dir"])
                .arg(&data)
                .output()
                .unwrap()
        }),
    )
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "replay: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("matches the live models"), "{stdout}");
}
