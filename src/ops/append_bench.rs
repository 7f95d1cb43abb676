//! `adjudicator bench append`: durable appends per second and the latency of one append, with
//! several numbers of concurrent writers, against a fresh SQLite store or the PostgreSQL
//! database `--store` names.
//!
//! Each writer appends one event at a time to its own stream and waits for the acknowledgement
//! (which means the event is on disk) before the next; the store's group commit is what lets
//! many writers share one fsync.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use events::contract::sample_event;
use events::store::postgres::PostgresStore;
use events::store::sqlite::SqliteStore;
use events::{EventStore, ExpectedVersion};

use crate::cli::BenchAppendArgs;
use crate::config::StoreUrl;

/// One row of the report.
pub struct AppendFigures {
    pub writers: usize,
    pub events: usize,
    pub per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

pub async fn append(args: BenchAppendArgs) -> anyhow::Result<()> {
    match &args.store {
        Some(url) => match StoreUrl::parse(url) {
            Ok(StoreUrl::Postgres(url)) => append_postgres(&url, &args).await,
            Ok(StoreUrl::Sqlite) => append_sqlite(&args).await,
            Ok(other) => {
                anyhow::bail!("--store {other}: the benchmark measures sqlite or postgres")
            }
            Err(e) => anyhow::bail!("invalid value for --store: {e}"),
        },
        None => append_sqlite(&args).await,
    }
}

/// One fresh store per run, in a temporary directory unless `--data-dir` is given.
async fn append_sqlite(args: &BenchAppendArgs) -> anyhow::Result<()> {
    let (dir, remove_after) = match &args.data_dir {
        Some(d) => (d.clone(), false),
        None => (scratch_dir()?, true),
    };
    println!("event store append benchmark: {}", dir.display());
    print_header();
    for &writers in &args.writers {
        let run_dir = dir.join(format!("writers-{writers}"));
        let store: Arc<dyn EventStore> =
            Arc::new(SqliteStore::open_in(&run_dir).context("open the store")?);
        print_row(&run(&store, writers, args.duration, args.payload_bytes).await?);
    }
    if remove_after {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

/// Every run in the one database; each writer appends to a stream of its own.
async fn append_postgres(url: &str, args: &BenchAppendArgs) -> anyhow::Result<()> {
    let store: Arc<dyn EventStore> = Arc::new(
        PostgresStore::connect(url)
            .await
            .context("cannot open the event store")?,
    );
    println!("event store append benchmark: PostgreSQL");
    print_header();
    for &writers in &args.writers {
        print_row(&run(&store, writers, args.duration, args.payload_bytes).await?);
    }
    Ok(())
}

fn print_header() {
    println!(
        "{:>8} {:>10} {:>12} {:>10} {:>10} {:>10}",
        "writers", "events", "events/s", "p50", "p99", "max"
    );
}

fn print_row(f: &AppendFigures) {
    println!(
        "{:>8} {:>10} {:>12.0} {:>10} {:>10} {:>10}",
        f.writers,
        f.events,
        f.per_second,
        micros(f.p50),
        micros(f.p99),
        micros(f.max)
    );
}

/// Appends from `writers` concurrent tasks for `duration`.
pub async fn run(
    store: &Arc<dyn EventStore>,
    writers: usize,
    duration: Duration,
    payload_bytes: usize,
) -> anyhow::Result<AppendFigures> {
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::with_capacity(writers);
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let stream = format!("bench-{writers}-{w}-{}", uuid::Uuid::now_v7().simple());
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let mut event = sample_event(latencies.len() as u64);
                event.payload = vec![0x5a; payload_bytes];
                let t = Instant::now();
                store
                    .append(&stream, ExpectedVersion::Any, vec![event])
                    .await?;
                latencies.push(t.elapsed());
            }
            Ok::<_, events::StoreError>(latencies)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.context("writer task")??);
    }
    let elapsed = start.elapsed();
    all.sort_unstable();
    let pick = |q: f64| {
        all.get(((all.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    Ok(AppendFigures {
        writers,
        events: all.len(),
        per_second: all.len() as f64 / elapsed.as_secs_f64(),
        p50: pick(0.50),
        p99: pick(0.99),
        max: all.last().copied().unwrap_or_default(),
    })
}

fn micros(d: Duration) -> String {
    if d >= Duration::from_millis(10) {
        format!("{:.1}ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{}µs", d.as_micros())
    }
}

fn scratch_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("adjudicator-bench-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    Ok(dir)
}
