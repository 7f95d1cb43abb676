//! Helpers shared by the integration tests: run the real `adjudicator` binary on a free port
//! of 127.0.0.1 and talk to it over real sockets.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a server may take to start listening.
const START_DEADLINE: Duration = Duration::from_secs(30);

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_adjudicator")
}

/// A running `adjudicator serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub base_url: String,
    pub data_dir: PathBuf,
    /// Log lines the server printed after it started listening.
    pub log: mpsc::Receiver<String>,
}

impl Server {
    /// Starts the server with `args` after `serve --listen 127.0.0.1:0 --data-dir <dir>`, and
    /// waits for the "listening on" line.
    pub fn start(data_dir: &Path, args: &[&str]) -> Server {
        let mut child = Command::new(binary())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(args)
            .env("ADJUDICATOR_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start adjudicator");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let base_url = loop {
            let line = rx
                .recv_timeout(START_DEADLINE)
                .expect("the server printed its address in time");
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.trim().to_owned();
            }
        };
        Server {
            child,
            base_url,
            data_dir: data_dir.to_path_buf(),
            log: rx,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        self.child.wait().expect("wait for the server")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `adjudicator <args>` to completion; returns its status and what it printed on stderr.
pub fn run_to_end(args: &[&str]) -> (ExitStatus, String) {
    let out = Command::new(binary())
        .args(args)
        .output()
        .expect("run adjudicator");
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
