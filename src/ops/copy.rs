//! `adjudicator store copy --from <store> --to <store>`: moves a whole history into an empty
//! store, e.g. from SQLite to PostgreSQL.
//!
//! Every source event's hash chain is verified before it is copied, and the copy stops at the
//! first break. Events are appended stream run by stream run with the exact expected version,
//! and each must land at the position it had in the source (so snapshots, `since` positions
//! and audit references stay valid). At the end the target is read back: its chains are
//! verified, and its log digest (position, stream, version and hash of every event) must equal
//! the source's.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use events::store::MAX_EVENTS_PER_APPEND;
use events::verify::ChainVerifier;
use events::{EventData, EventStore, ExpectedVersion};

use super::args::{CopyArgs, StoreArgs};
use super::digest::LogDigest;
use super::{open_store, pages};
use crate::config::StoreUrl;

/// Progress is printed after every this many events.
const PROGRESS_EVERY: u64 = 100_000;

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
    let mut run: Option<Run> = None;
    let mut events = 0u64;
    let mut pages = pages::read_ahead(source, 0);
    while let Some(page) = pages.recv().await {
        for e in page.context("reading the source")? {
            verifier.check(&e);
            if let Some(f) = verifier.failures().first() {
                anyhow::bail!(
                    "the source's hash chain of {} breaks at version {} (position {}): {}; \
                     the copy stopped there, {events} events were copied",
                    f.stream,
                    f.version,
                    f.position,
                    f.problem
                );
            }
            digest.add(&e);
            events += 1;
            let continues = run
                .as_ref()
                .is_some_and(|r| r.stream == e.stream && r.events.len() < MAX_EVENTS_PER_APPEND);
            if !continues {
                if let Some(done) = run.take() {
                    append(target.as_ref(), done).await?;
                }
                run = Some(Run {
                    stream: e.stream.clone(),
                    expected: e.version - 1,
                    events: Vec::new(),
                    positions: Vec::new(),
                });
            }
            if let Some(r) = run.as_mut() {
                r.positions.push(e.position);
                r.events.push(e.data);
            }
            if events.is_multiple_of(PROGRESS_EVERY) {
                println!("{events} events copied");
            }
        }
    }
    if let Some(done) = run.take() {
        append(target.as_ref(), done).await?;
    }
    let streams = verifier.summary().streams_checked;
    Ok(Copied {
        events,
        streams,
        digest: digest.finish(),
    })
}

/// Appends one run and checks it landed at the source's positions.
async fn append(target: &dyn EventStore, run: Run) -> anyhow::Result<()> {
    let expected = ExpectedVersion::Exact(run.expected);
    let done = target
        .append(&run.stream, expected, run.events)
        .await
        .with_context(|| format!("appending {} to the target", run.stream))?;
    if done.positions != run.positions {
        anyhow::bail!(
            "{} landed at positions {:?}… in the target, not at {:?}… as in the source (has \
             something else written to the target during the copy?)",
            run.stream,
            done.positions.first(),
            run.positions.first()
        );
    }
    Ok(())
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
        anyhow::bail!(
            "after the copy, the target's hash chain of {} breaks at version {}: {}",
            f.stream,
            f.version,
            f.problem
        );
    }
    Ok((digest.finish(), summary.events_checked))
}
