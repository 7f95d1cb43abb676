//! What every scenario against a real server starts with: the common flags, the logins, the
//! receive engine, a batch of `queue` subscribers, and the settings rows of its report (where the
//! server and the load generator may run, the load average).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::Args;

use crate::engine::{Engine, OpenReport, OpenSpec};
use crate::http::{Api, Credential, Target};
use crate::procfs;
use crate::stats::Table;

/// The `subscribe` every subscriber sends: the `queue` with its default window.
pub const SUBSCRIBE_QUEUE: &str = r#"{"type":"subscribe","id":1,"topics":["queue"]}"#;

/// Flags every scenario against a server takes.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// The server's base URL (plain HTTP).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,

    /// Process id of the server, for its CPU time and memory (`/proc/<pid>`).
    #[arg(long)]
    pub pid: Option<u32>,

    /// Users whose tokens the sessions use, round-robin: `name` (password `<name>-demo`) or
    /// `name:password`, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "reviewer,senior,auditor,classifier"
    )]
    pub users: Vec<Credential>,

    /// Who submits cases.
    #[arg(long, default_value = "classifier")]
    pub classifier: Credential,

    /// Who claims and decides them.
    #[arg(long, default_value = "reviewer")]
    pub reviewer: Credential,

    /// Seconds a session may take from its connect to ready (welcome, or snapshot).
    #[arg(long, default_value_t = 30.0)]
    pub open_timeout: f64,

    /// Sessions being opened at once.
    #[arg(long, default_value_t = 100)]
    pub open_concurrency: usize,
}

/// A logged-in load generator with its engine.
pub struct Ctx {
    pub api: Api,
    pub engine: Engine,
    pub tokens: Arc<Vec<String>>,
    pub classifier: String,
    pub reviewer: String,
    pub common: Common,
}

impl Ctx {
    pub async fn new(common: Common) -> Result<Ctx> {
        let target = Target::parse(&common.url)?;
        let api = Api::new(target.clone())?;
        let tokens = Arc::new(api.login_all(&common.users).await?);
        let classifier = api.login(&common.classifier).await?;
        let reviewer = api.login(&common.reviewer).await?;
        let engine = Engine::start(&target)?;
        Ok(Ctx {
            api,
            engine,
            tokens,
            classifier,
            reviewer,
            common,
        })
    }

    pub fn pid(&self) -> Result<u32> {
        match self.common.pid {
            Some(p) => Ok(p),
            None => bail!("this measurement reads the server's /proc: give --pid"),
        }
    }

    /// Opens `count` sessions; with `subscribe`, each is ready once it has its snapshot.
    pub async fn open(&self, count: usize, subscribe: Option<&str>) -> OpenReport {
        self.engine
            .open(OpenSpec {
                count,
                concurrency: self.common.open_concurrency,
                rate: None,
                tokens: self.tokens.clone(),
                subscribe: subscribe.map(str::to_owned),
                close_when_ready: false,
                timeout: Duration::from_secs_f64(self.common.open_timeout),
            })
            .await
    }

    /// Opens `count` `queue` subscribers and fails unless every one has its snapshot.
    pub async fn subscribers(&self, count: usize) -> Result<OpenReport> {
        let report = self.open(count, Some(SUBSCRIBE_QUEUE)).await;
        if report.opened < count {
            bail!(
                "only {} of {count} subscribers got their snapshot; failures: {}",
                report.opened,
                report.failures.summary()
            );
        }
        Ok(report)
    }

    /// The table's first rows: the command line, where each side may run, the load average.
    pub fn settings(&self, title: &str) -> Table {
        let mut t = Table::new(title);
        t.row(
            "command line",
            std::env::args().collect::<Vec<_>>().join(" "),
        );
        t.row("server", &self.api.target.base);
        settings_rows(&mut t, self.common.pid);
        t
    }
}

/// Rows any report starts with (also for scenarios without a `Ctx`).
pub fn settings_rows(t: &mut Table, server_pid: Option<u32>) {
    if let Some(pid) = server_pid {
        t.row(
            "server pid (cpus allowed)",
            format!("{pid} ({})", procfs::cpus_allowed(&pid.to_string())),
        );
    }
    let (soft, hard) = procfs::raise_nofile_limit();
    t.row(
        "loadgen cpus allowed; open-file limit",
        format!("{}; {soft}/{hard}", procfs::cpus_allowed("self")),
    );
    t.row("load average at start (1/5/15 min)", procfs::loadavg());
}
