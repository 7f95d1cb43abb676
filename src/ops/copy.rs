//! `adjudicator store copy --from <store> --to <store>`: moves a whole history into an empty
//! store, e.g. from SQLite to PostgreSQL.
//!
//! Every source event's hash chain is verified before it is copied, and the copy stops at the
//! first break. Events are appended stream run by stream run with the exact expected version,
//! a chunk of runs at a time through `append_many` (which keeps their order and lets the target
//! commit them together), and each must land at the position it had in the source (so
//! snapshots, `since` positions and audit references stay valid). At the end the target is read back: its chains are
//! verified, and its log digest (position, stream, version and hash of every event) must equal
//! the source's.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use events::store::{Append, MAX_EVENTS_PER_APPEND};
use events::verify::ChainVerifier;
use events::{EventData, EventStore, ExpectedVersion, RecordedEvent};

use super::args::{CopyArgs, StoreArgs};
use super::digest::LogDigest;
use super::{open_store, pages};
use crate::config::StoreUrl;

/// Progress is printed after every this many events.
const PROGRESS_EVERY: u64 = 100_000;
/// Runs (and events) handed to the target at once, about.
const CHUNK_RUNS: usize = 512;
const CHUNK_EVENTS: usize = 4_096;

pub async fn copy(args: CopyArgs) -> anyhow::Result<()> {
    let source = open_store(&location(&args.from)?, false)
        .await
        .context("--from")?;
    let target = open_store(&location(&args.to)?, true)
        .await
        .context("--to")?;
    let target_head = target.head_position().await.context("--to")?;
    if target_head != 0 {
        anyhow::bail!(
            "--to {}: the target holds {target_head} events; store copy writes only into an \
             empty store",
            shown(&args.to)
        );
    }
    let source_head = source.head_position().await.context("--from")?;
    println!(
        "copying {source_head} events from {} to {}",
        shown(&args.from),
        shown(&args.to)
    );
    let started = Instant::now();
    let copied = copy_all(source, target.clone()).await?;
    let copy_seconds = started.elapsed().as_secs_f64();
    println!(
        "copied {} events in {} streams in {copy_seconds:.1}s ({:.0} events/s); every source chain verified",
        copied.events,
        copied.streams,
        copied.events as f64 / copy_seconds.max(1e-9)
    );
    let started = Instant::now();
    let (target_digest, target_events) = verify_target(target).await?;
    if target_events != copied.events || target_digest != copied.digest {
        anyhow::bail!(
            "the target differs from the source after the copy ({target_events} events, log \
             digest {target_digest}; the source had {} events, log digest {})",
            copied.events,
            copied.digest
        );
    }
    println!(
        "target read back in {:.1}s: every chain verified, log digest {target_digest} equals the source's",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A `--from`/`--to` value as the flags of the other tools: a URL, or `sqlite:<data dir>`, or a
/// data directory.
fn location(value: &str) -> anyhow::Result<StoreArgs> {
    if value.contains("://") {
        StoreUrl::parse(value).map_err(|e| anyhow::anyhow!("{}: {e}", shown(value)))?;
        return Ok(StoreArgs {
            data_dir: "./data".into(),
            store: value.to_owned(),
        });
    }
    let dir = value.strip_prefix("sqlite:").unwrap_or(value);
    if dir.is_empty() {
        anyhow::bail!("sqlite: needs the data directory (sqlite:./data)");
    }
    Ok(StoreArgs {
        data_dir: dir.into(),
        store: "sqlite".into(),
    })
}

/// A location as it may be printed: a URL without its password.
fn shown(value: &str) -> String {
    match StoreUrl::parse(value) {
        Ok(url) if value.contains("://") => url.redacted(),
        _ => value.to_owned(),
    }
}

struct Copied {
    events: u64,
    streams: u64,
    digest: String,
}

/// Consecutive source events of one stream, appended together.
struct Run {
    stream: String,
    expected: u64,
    events: Vec<EventData>,
    positions: Vec<u64>,
}

async fn copy_all(
    source: Arc<dyn EventStore>,
    target: Arc<dyn EventStore>,
) -> anyhow::Result<Copied> {
    let mut verifier = ChainVerifier::new();
    let mut digest = LogDigest::new();
    let mut chunk = Chunk::default();
    let mut events = 0u64;
    let mut pages = pages::read_ahead(source, 0);
    while let Some(page) = pages.recv().await {
        for e in page.context("reading the source")? {
            verifier.check(&e);
            if let Some(f) = verifier.failures().first() {
                anyhow::bail!(
                    "the source does not verify: {f}; the copy stopped there, before position {}",
                    chunk.first_position().unwrap_or(f.position)
                );
            }
            digest.add(&e);
            events += 1;
            chunk.push(e);
            if chunk.runs.len() >= CHUNK_RUNS || chunk.events >= CHUNK_EVENTS {
                chunk.write(target.as_ref()).await?;
            }
            if events.is_multiple_of(PROGRESS_EVERY) {
                println!("{events} events read and verified");
            }
        }
    }
    chunk.write(target.as_ref()).await?;
    let streams = verifier.summary().streams_checked;
    Ok(Copied {
        events,
        streams,
        digest: digest.finish(),
    })
}

/// Runs waiting to be appended.
#[derive(Default)]
struct Chunk {
    runs: Vec<Run>,
    events: usize,
}

impl Chunk {
    /// Adds the next source event: to the last run when it continues its stream.
    fn push(&mut self, e: RecordedEvent) {
        self.events += 1;
        if let Some(run) = self.runs.last_mut() {
            if run.stream == e.stream && run.events.len() < MAX_EVENTS_PER_APPEND {
                run.positions.push(e.position);
                run.events.push(e.data);
                return;
            }
        }
        self.runs.push(Run {
            expected: e.version - 1,
            stream: e.stream,
            events: vec![e.data],
            positions: vec![e.position],
        });
    }

    fn first_position(&self) -> Option<u64> {
        self.runs.first().and_then(|r| r.positions.first().copied())
    }

    /// Appends every run, in order, and checks each landed at its source positions. (A run
    /// cut at a chunk's end goes on in the next chunk with the next expected version.)
    async fn write(&mut self, target: &dyn EventStore) -> anyhow::Result<()> {
        self.events = 0;
        let mut appends = Vec::with_capacity(self.runs.len());
        let mut sources = Vec::with_capacity(self.runs.len());
        for run in self.runs.drain(..) {
            sources.push((run.stream.clone(), run.positions));
            appends.push(Append {
                stream: run.stream,
                expected: ExpectedVersion::Exact(run.expected),
                events: run.events,
            });
        }
        let results = target.append_many(appends).await;
        for ((stream, positions), result) in sources.iter().zip(results) {
            let done = result.with_context(|| format!("appending {stream} to the target"))?;
            if &done.positions != positions {
                anyhow::bail!(
                    "{stream} landed at positions {:?}… in the target, not at {:?}… as in the \
                     source (has something else written to the target during the copy?)",
                    done.positions.first(),
                    positions.first()
                );
            }
        }
        Ok(())
    }
}

/// Reads the whole target back: its chains must verify. Returns its log digest and size.
async fn verify_target(target: Arc<dyn EventStore>) -> anyhow::Result<(String, u64)> {
    let mut verifier = ChainVerifier::new();
    let mut digest = LogDigest::new();
    let mut pages = pages::read_ahead(target, 0);
    while let Some(page) = pages.recv().await {
        for e in &page.context("reading the target back")? {
            verifier.check(e);
            digest.add(e);
        }
    }
    let summary = verifier.summary();
    if let Some(f) = summary.failures.first() {
        anyhow::bail!("after the copy, the target does not verify: {f}");
    }
    Ok((digest.finish(), summary.events_checked))
}
