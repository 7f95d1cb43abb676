//! A real Prometheus for the monitoring tests: finding Debian's `prometheus` and `promtool`
//! (a test fails without them when `CI` is set, and says loudly that it skipped otherwise),
//! running a private Prometheus (own directory, free port, killed when dropped), its HTTP API,
//! and the metric names a PromQL expression reads.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// `monitoring/<path>` of this repository.
pub fn monitoring(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("monitoring")
        .join(path)
}

/// The program `name` on the `PATH` (or in `/usr/bin`). Without it: a failure when `CI` is set
/// (CI installs Debian's `prometheus` package, which brings both programs), else a loud
/// SKIPPED line and `None`.
pub fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{name} is missing and CI is set: install Debian's prometheus package \
             (bash .ci/install-test-deps)"
        );
        eprintln!(
            "\n=== SKIPPED: {name} is not installed (Debian's prometheus package; \
             bash .ci/install-test-deps installs it). The monitoring test did not run. ===\n"
        );
    }
    found
}

/// Runs `promtool <args>`; fails the test, with its output, unless it succeeds.
pub fn promtool(promtool: &Path, args: &[&str]) -> String {
    let out = Command::new(promtool)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

/// A free TCP port on 127.0.0.1 (free when asked; Prometheus binds it right after).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A private Prometheus, killed when dropped.
pub struct Prometheus {
    child: Child,
    pub url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts `prometheus` scraping `target` (`host:port`) as job `adjudicator` every second,
    /// evaluating the shipped `monitoring/prometheus/alerts.yml` every second, and waits until
    /// it is ready.
    pub async fn start(binary: &Path, target: &str) -> Prometheus {
        let dir = tempfile::tempdir().expect("a directory for Prometheus");
        let rules = monitoring("prometheus/alerts.yml");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n  - {rules:?}\n\
                 scrape_configs:\n  - job_name: adjudicator\n    metrics_path: /metrics\n    \
                 static_configs:\n      - targets: [{target:?}]\n",
                rules = rules.display().to_string(),
            ),
        )
        .expect("write the Prometheus configuration");
        let port = free_port();
        let log = dir.path().join("prometheus.log");
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("a log file"))
            .spawn()
            .expect("start prometheus");
        let mut prometheus = Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
            _dir: dir,
        };
        prometheus.wait_ready().await;
        prometheus
    }

    /// What Prometheus logged, for a failure message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let http = super::client();
        loop {
            if let Some(status) = self.child.try_wait().expect("poll prometheus") {
                panic!("prometheus exited ({status}):\n{}", self.log());
            }
            let ready = http
                .get(format!("{}/-/ready", self.url))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready within 60 s:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `GET /api/v1/<path>` with `query`; asserts `status: success` and returns `data`.
    pub async fn api(&self, path: &str, query: &[(&str, String)]) -> Value {
        let url = reqwest::Url::parse_with_params(&format!("{}/api/v1/{path}", self.url), query)
            .expect("a Prometheus API URL");
        let response = super::client()
            .get(url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("Prometheus /api/v1/{path}: {e}"));
        let body: Value = response.json().await.expect("a JSON answer");
        assert_eq!(
            body["status"], "success",
            "/api/v1/{path} {query:?}: {body}"
        );
        body["data"].clone()
    }

    /// An instant query's result vector.
    pub async fn query(&self, promql: &str) -> Vec<Value> {
        let data = self.api("query", &[("query", promql.to_owned())]).await;
        data["result"].as_array().cloned().unwrap_or_default()
    }

    /// The first value of an instant query, if it has one.
    pub async fn value(&self, promql: &str) -> Option<f64> {
        let result = self.query(promql).await;
        result.first()?["value"][1].as_str()?.parse().ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The values of a query result (vector or matrix), as numbers.
pub fn values(result: &[Value]) -> Vec<f64> {
    let sample = |v: &Value| v[1].as_str().and_then(|s| s.parse::<f64>().ok());
    result
        .iter()
        .flat_map(|series| {
            let points: Vec<f64> = match series["values"].as_array() {
                Some(points) => points.iter().filter_map(sample).collect(),
                None => sample(&series["value"]).into_iter().collect(),
            };
            points
        })
        .collect()
}

/// The metric names a PromQL expression reads: identifiers outside label matchers, strings
/// and range brackets that are neither functions, aggregations, keywords nor grouping labels.
pub fn metric_names(promql: &str) -> BTreeSet<String> {
    const AGGREGATIONS: &[&str] = &[
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ];
    const GROUPING: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    const KEYWORDS: &[&str] = &[
        "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan",
    ];
    let chars: Vec<char> = promql.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let mut skip_group = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                while i < chars.len() && chars[i] != close {
                    i += 1;
                }
                i += 1;
            }
            '(' if skip_group => {
                while i < chars.len() && chars[i] != ')' {
                    i += 1;
                }
                skip_group = false;
                i += 1;
            }
            c if c.is_ascii_digit() || c == '.' => {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let next = chars[i..].iter().find(|c| !c.is_whitespace());
                if GROUPING.contains(&word.as_str()) {
                    skip_group = true;
                } else if next != Some(&'(')
                    && !AGGREGATIONS.contains(&word.as_str())
                    && !KEYWORDS.contains(&word.to_ascii_lowercase().as_str())
                {
                    names.insert(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}
