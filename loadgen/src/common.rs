//! What the three measurements share: the server's address, logins and JSON calls over HTTP,
//! opening an authenticated WebSocket session, percentiles, `/proc` readings and the printed
//! tables.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{client_async_with_config, WebSocketStream};

/// One open WebSocket session.
pub type Ws = WebSocketStream<TcpStream>;

/// The server under test: `http://host:port`, resolved once.
#[derive(Clone, Debug)]
pub struct Target {
    /// `http://host:port`, no trailing slash.
    pub base: String,
    /// `host:port` as written, for the WebSocket URL (and so the `Host` header).
    pub authority: String,
    /// The address every TCP connection goes to.
    pub addr: SocketAddr,
}

impl Target {
    pub fn parse(url: &str) -> Result<Self> {
        let u = reqwest::Url::parse(url).with_context(|| format!("--url {url:?}"))?;
        if u.scheme() != "http" {
            bail!("--url must be http:// (this load generator speaks no TLS)");
        }
        let host = u.host_str().ok_or_else(|| anyhow!("--url has no host"))?;
        let port = u.port_or_known_default().unwrap_or(80);
        let authority = format!("{host}:{port}");
        let addr = authority
            .to_socket_addrs()
            .with_context(|| format!("resolving {authority}"))?
            .next()
            .ok_or_else(|| anyhow!("{authority} resolves to no address"))?;
        Ok(Target {
            base: format!("http://{authority}"),
            authority,
            addr,
        })
    }

    fn ws_url(&self, token: &str) -> String {
        // JWTs are base64url and dots: nothing to escape in a query string.
        format!("ws://{}/api/v1/ws?token={token}", self.authority)
    }
}

/// `name` or `name:password`; a bare name means the demo password `<name>-demo`.
#[derive(Clone, Debug)]
pub struct Credential {
    pub username: String,
    pub password: String,
}

impl std::str::FromStr for Credential {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (username, password) = match s.split_once(':') {
            Some((u, p)) => (u.to_owned(), p.to_owned()),
            None => (s.to_owned(), format!("{s}-demo")),
        };
        if username.is_empty() {
            return Err("empty username".into());
        }
        Ok(Credential { username, password })
    }
}

impl std::fmt::Display for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.username)
    }
}

pub fn http_client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?)
}

/// `POST /api/v1/auth/login` → the access token.
pub async fn login(client: &reqwest::Client, target: &Target, who: &Credential) -> Result<String> {
    let body = post_json(
        client,
        &format!("{}/api/v1/auth/login", target.base),
        None,
        &json!({"username": who.username, "password": who.password}),
    )
    .await
    .with_context(|| format!("login as {}", who.username))?;
    body["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("login as {}: no access_token in {body}", who.username))
}

/// One access token per credential.
pub async fn login_all(
    client: &reqwest::Client,
    target: &Target,
    who: &[Credential],
) -> Result<Vec<String>> {
    let mut tokens = Vec::with_capacity(who.len());
    for c in who {
        tokens.push(login(client, target, c).await?);
    }
    if tokens.is_empty() {
        bail!("--users names nobody");
    }
    Ok(tokens)
}

/// POSTs JSON (with a bearer token if given); a non-2xx answer is an error quoting the body.
pub async fn post_json(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: &Value,
) -> Result<Value> {
    let mut req = client.post(url).json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.with_context(|| format!("POST {url}"))?;
    let status = resp.status();
    let text = resp.text().await?;
    if !status.is_success() {
        bail!("POST {url}: {status}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("POST {url}: answer is not JSON"))
}

/// Small buffers: the default 128 KiB read buffer per socket would make the load generator,
/// not the server, the thing that runs out of memory at 10,000 sessions.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0)
}

/// Opens a session: TCP connect, upgrade, and reading until `welcome`. Returns the socket and
/// the time from the start of the TCP connect to the receipt of `welcome`. Errors are short
/// reasons, tallied by the callers.
pub async fn open_session(
    target: &Target,
    token: &str,
    limit: Duration,
) -> Result<(Ws, Duration), String> {
    let started = Instant::now();
    let attempt = async {
        let tcp = TcpStream::connect(target.addr)
            .await
            .map_err(|e| format!("tcp connect: {}", e.kind()))?;
        let _ = tcp.set_nodelay(true);
        let (mut ws, _) = client_async_with_config(target.ws_url(token), tcp, Some(ws_config()))
            .await
            .map_err(|e| format!("upgrade: {}", ws_error(&e)))?;
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    let at = started.elapsed();
                    let v: Value = serde_json::from_str(&text)
                        .map_err(|_| "a non-JSON message before welcome".to_owned())?;
                    match v["type"].as_str() {
                        Some("welcome") => return Ok((ws, at)),
                        Some("error") => {
                            return Err(format!("error {}", v["code"].as_str().unwrap_or("?")))
                        }
                        _ => continue,
                    }
                }
                Some(Ok(Message::Close(frame))) => return Err(close_reason(frame)),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(format!("read: {}", ws_error(&e))),
                None => return Err("end of stream before welcome".into()),
            }
        }
    };
    match tokio::time::timeout(limit, attempt).await {
        Ok(result) => result,
        Err(_) => Err(format!("no welcome within {limit:?}")),
    }
}

pub fn close_reason(frame: Option<tokio_tungstenite::tungstenite::protocol::CloseFrame>) -> String {
    match frame {
        Some(f) => format!("closed {} {}", u16::from(f.code), f.reason),
        None => "closed without a code".into(),
    }
}

pub fn ws_error(e: &WsError) -> String {
    match e {
        WsError::Http(resp) => format!("HTTP {}", resp.status()),
        WsError::Io(io) => format!("io {}", io.kind()),
        other => other.to_string(),
    }
}

/// Counts of failures by reason.
#[derive(Default)]
pub struct Tally(BTreeMap<String, usize>);

impl Tally {
    pub fn add(&mut self, reason: String) {
        *self.0.entry(reason).or_default() += 1;
    }

    pub fn total(&self) -> usize {
        self.0.values().sum()
    }

    /// Rows for the results table, one per reason.
    pub fn rows(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .map(|(reason, n)| (format!("  failed: {reason}"), n.to_string()))
            .collect()
    }
}

/// Sorted latencies; percentiles by nearest rank.
pub struct Latencies(Vec<Duration>);

impl Latencies {
    pub fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Latencies(samples)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The nearest-rank percentile `p` (0 < p ≤ 100).
    pub fn pct(&self, p: f64) -> Option<Duration> {
        if self.0.is_empty() {
            return None;
        }
        let rank = ((p / 100.0) * self.0.len() as f64).ceil() as usize;
        Some(self.0[rank.clamp(1, self.0.len()) - 1])
    }

    pub fn max(&self) -> Option<Duration> {
        self.0.last().copied()
    }

    pub fn mean(&self) -> Option<Duration> {
        if self.0.is_empty() {
            return None;
        }
        Some(self.0.iter().sum::<Duration>() / self.0.len() as u32)
    }

    /// Rows `label p50`, … in milliseconds.
    pub fn rows(&self, label: &str, percentiles: &[f64]) -> Vec<(String, String)> {
        let mut rows: Vec<(String, String)> = percentiles
            .iter()
            .map(|p| (format!("{label} p{p}"), ms(self.pct(*p))))
            .collect();
        rows.push((format!("{label} max"), ms(self.max())));
        rows.push((format!("{label} mean"), ms(self.mean())));
        rows
    }
}

pub fn ms(d: Option<Duration>) -> String {
    match d {
        Some(d) => format!("{:.3} ms", d.as_secs_f64() * 1e3),
        None => "n/a".into(),
    }
}

/// `PASS` or `MISS` against a target, or `n/a`.
pub fn verdict(measured: Option<f64>, target: f64) -> String {
    match measured {
        Some(m) if m < target => "PASS".into(),
        Some(_) => "MISS".into(),
        None => "n/a".into(),
    }
}

/// The 1, 5 and 15 minute load averages.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// `VmRSS` of a process (`"self"` for this one) in KiB.
pub fn vm_rss_kib(pid: &str) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow!("no VmRSS line in {path}"))
}

/// Raises this process's soft limit on open files to the hard limit; returns (soft, hard).
pub fn raise_nofile_limit() -> (libc::rlim_t, libc::rlim_t) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own; setrlimit only reads it.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return (0, 0);
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
    }
    (lim.rlim_cur, lim.rlim_max)
}

/// Prints a titled two-column table.
pub fn print_table(title: &str, rows: &[(String, String)]) {
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    println!("{title}");
    println!("{}", "-".repeat(title.chars().count().max(width + 20)));
    for (k, v) in rows {
        println!("  {k:<width$}  {v}");
    }
    println!();
}

/// The settings rows every subcommand starts with.
pub fn common_settings(target: &Target, users: &[Credential]) -> Vec<(String, String)> {
    let (soft, hard) = raise_nofile_limit();
    vec![
        (
            "command line".into(),
            std::env::args().collect::<Vec<_>>().join(" "),
        ),
        (
            "server".into(),
            format!("{} ({})", target.base, target.addr),
        ),
        (
            "users (one token each, reused)".into(),
            users
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
        ),
        (
            "loadgen open-file limit (soft/hard)".into(),
            format!("{soft}/{hard}"),
        ),
        (
            "cpus".into(),
            std::thread::available_parallelism()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "?".into()),
        ),
        ("load average at start (1/5/15 min)".into(), loadavg()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let l = Latencies::new((1..=100).rev().map(Duration::from_millis).collect());
        assert_eq!(l.pct(50.0), Some(Duration::from_millis(50)));
        assert_eq!(l.pct(99.0), Some(Duration::from_millis(99)));
        assert_eq!(l.pct(100.0), Some(Duration::from_millis(100)));
        assert_eq!(l.max(), Some(Duration::from_millis(100)));
        let few = Latencies::new(vec![Duration::from_millis(3), Duration::from_millis(1)]);
        assert_eq!(few.pct(1.0), Some(Duration::from_millis(1)));
        assert_eq!(few.pct(99.0), Some(Duration::from_millis(3)));
        assert_eq!(Latencies::new(Vec::new()).pct(50.0), None);
    }

    #[test]
    fn credentials_default_to_the_demo_password() {
        let c: Credential = "reviewer".parse().unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("reviewer", "reviewer-demo")
        );
        let c: Credential = "ops:a:long:secret".parse().unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("ops", "a:long:secret")
        );
        assert!("".parse::<Credential>().is_err());
    }

    #[test]
    fn only_plain_http_targets() {
        let t = Target::parse("http://127.0.0.1:18080/").unwrap();
        assert_eq!(t.base, "http://127.0.0.1:18080");
        assert_eq!(
            t.ws_url("a.b.c"),
            "ws://127.0.0.1:18080/api/v1/ws?token=a.b.c"
        );
        assert!(Target::parse("https://127.0.0.1:1").is_err());
    }

    #[test]
    fn verdicts() {
        assert_eq!(verdict(Some(4.9), 5.0), "PASS");
        assert_eq!(verdict(Some(5.0), 5.0), "MISS");
        assert_eq!(verdict(None, 5.0), "n/a");
    }
}
