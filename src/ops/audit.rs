//! `adjudicator audit verify`, `adjudicator audit head` and `adjudicator audit export`.

use std::io::{BufWriter, Write};
use std::sync::Arc;

use anyhow::Context;
use events::commitment::LogHead;
use events::verify::{ChainVerifier, VerifySummary};
use events::{EventEnvelope, EventStore};
use projections::AuditEvent;

use super::args::{ExportArgs, StoreArgs, VerifyArgs};
use super::digest::LogDigest;
use super::{open_store, pages};

/// Checks the whole log (and the heads expected) and prints a summary; an error (non-zero exit)
/// names each problem at the first position it concerns.
pub async fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let store = open_store(&args.store, false).await?;
    let expected = args.expect.len();
    let (summary, digest) = check_log(store, args.expect).await?;
    println!(
        "streams checked: {}, events checked: {}, ok: {}",
        summary.streams_checked, summary.events_checked, summary.ok
    );
    println!("head: {}", summary.head);
    println!("log digest: {digest}");
    report(&summary)?;
    if expected > 0 {
        println!("every expected head holds ({expected})");
    }
    Ok(())
}

/// Prints the head commitment, once the log verifies: a head of a damaged log proves nothing.
pub async fn head(args: StoreArgs) -> anyhow::Result<()> {
    let store = open_store(&args, false).await?;
    let (summary, _) = check_log(store, Vec::new()).await?;
    report(&summary)?;
    println!("{}", summary.head);
    Ok(())
}

/// Reads the whole log once: the verifier's summary and the log digest.
async fn check_log(
    store: Arc<dyn EventStore>,
    expected: Vec<LogHead>,
) -> anyhow::Result<(VerifySummary, String)> {
    let mut verifier = ChainVerifier::expecting(expected);
    let mut digest = LogDigest::new();
    let mut pages = pages::read_ahead(store, 0);
    while let Some(page) = pages.recv().await {
        for e in &page.context("reading the store")? {
            verifier.check(e);
            digest.add(e);
        }
    }
    Ok((verifier.summary(), digest.finish()))
}

/// Prints each failure; an error names how many and the first bad position.
fn report(summary: &VerifySummary) -> anyhow::Result<()> {
    for f in &summary.failures {
        println!("BROKEN {f}");
    }
    match summary.first_bad_position() {
        None => Ok(()),
        Some(first) => anyhow::bail!(
            "the log does not verify: {} problem(s), the first at position {first}",
            summary.failures.len()
        ),
    }
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
            let env = EventEnvelope::decode(record)?;
            out.write_all(AuditEvent::from_envelope(&env).to_json().as_bytes())?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(())
}
