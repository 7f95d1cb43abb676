//! `startup`: starts the server command given after `--`, times it from the spawn until
//! `GET /readyz` answers 200 (polled every few milliseconds over a fresh TCP connection), then
//! stops it with SIGTERM and waits for it to exit.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use clap::Args;

use crate::http::Target;
use crate::procfs;
use crate::stats::{self, Table};

#[derive(Debug, Args)]
pub struct StartupArgs {
    /// The server's base URL once it runs.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,

    /// Seconds to wait for ready.
    #[arg(long, default_value_t = 300.0)]
    timeout: f64,

    /// Milliseconds between two polls of `/readyz`.
    #[arg(long, default_value_t = 5)]
    poll_ms: u64,

    /// The server command line, e.g. `-- taskset -c 0 adjudicator serve --data-dir …`.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

/// Whether `/readyz` answers 200 now.
fn ready(target: &Target) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&target.addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!(
        "GET /readyz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        target.authority
    );
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && &head[9..12] == b"200"
}

pub fn run(args: StartupArgs) -> Result<()> {
    let target = Target::parse(&args.url)?;
    if ready(&target) {
        bail!("something already answers on {}", target.base);
    }
    let load = procfs::loadavg();
    let started = Instant::now();
    let mut child = Command::new(&args.command[0])
        .args(&args.command[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {:?}", args.command[0]))?;
    let limit = Duration::from_secs_f64(args.timeout);
    let took = loop {
        if ready(&target) {
            break Some(started.elapsed());
        }
        if let Some(status) = child.try_wait()? {
            bail!("the server exited before it was ready: {status}");
        }
        if started.elapsed() > limit {
            break None;
        }
        std::thread::sleep(Duration::from_millis(args.poll_ms));
    };
    let rss = procfs::rss_kib(&child.id().to_string()).unwrap_or(0);
    // SAFETY: kill with a pid we spawned and have not reaped.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let status = child.wait()?;

    let mut t = Table::new("startup: results");
    t.row("command", args.command.join(" "))
        .row("load average at start (1/5/15 min)", load)
        .row("spawn → /readyz 200", stats::ms(took))
        .row("server VmRSS when ready", format!("{rss} KiB"))
        .row("exit after SIGTERM", status.to_string());
    t.print();
    match took {
        Some(d) => stats::result("startup", &format!("{:.2} s", d.as_secs_f64())),
        None => stats::result("startup", &format!("not ready in {} s", args.timeout)),
    }
    Ok(())
}
