//! `adjudicator audit verify` and `adjudicator audit export`.

use std::io::{BufWriter, Write};

use anyhow::Context;
use events::verify::ChainVerifier;
use events::EventEnvelope;
use projections::AuditEvent;

use super::args::{ExportArgs, StoreArgs};
use super::digest::LogDigest;
use super::{open_store, pages};

/// Checks every chain and prints a summary; an error (non-zero exit) names each break.
pub async fn verify(args: StoreArgs) -> anyhow::Result<()> {
    let store = open_store(&args, false).await?;
    let mut verifier = ChainVerifier::new();
    let mut digest = LogDigest::new();
    let mut pages = pages::read_ahead(store, 0);
    while let Some(page) = pages.recv().await {
        for e in &page.context("reading the store")? {
            verifier.check(e);
            digest.add(e);
        }
    }
    let summary = verifier.summary();
    println!(
        "streams checked: {}, events checked: {}, ok: {}",
        summary.streams_checked, summary.events_checked, summary.ok
    );
    println!("log digest: {}", digest.finish());
    for f in &summary.failures {
        println!(
            "BROKEN {} at version {} (position {}): {}",
            f.stream, f.version, f.position, f.problem
        );
    }
    if !summary.ok {
        anyhow::bail!("{} broken hash chain(s)", summary.failures.len());
    }
    Ok(())
}

/// Writes NDJSON, one audit event per line, in position order.
pub async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let store = open_store(&args.store, false).await?;
    let out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(
            std::fs::File::create(path)
                .with_context(|| format!("--output {}: cannot create it", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = BufWriter::new(out);
    let mut pages = pages::read_ahead(store, args.after);
    while let Some(page) = pages.recv().await {
        for record in page.context("reading the store")? {
            let position = record.position;
            let env = EventEnvelope::decode(record)
                .with_context(|| format!("cannot decode the event at position {position}"))?;
            out.write_all(AuditEvent::from_envelope(&env).to_json().as_bytes())?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(())
}
