//! `adjudicator replay`: rebuild every read model from position 0, report the speed, and check
//! the result against the live models (the last snapshot the server saved, plus the events after
//! it), exiting non-zero on any difference.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

use events::EventStore;
use projections::Projections;

use super::args::ReplayArgs;
use super::{open_store, pages};
use crate::auth::load_or_create_secret;
use crate::projector::startup::load_models;
use crate::projector::{snapshot_file, SnapshotFile, SnapshotKey};

pub async fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    let store = open_store(&args.store, false).await?;
    let started = Instant::now();
    let full = fold_from(store.clone(), Projections::new()).await?;
    let seconds = started.elapsed().as_secs_f64();
    let events = full.position();
    println!(
        "replayed {events} events in {seconds:.2}s: {:.0} events/s",
        events as f64 / seconds.max(1e-9)
    );
    // What the replay built, comparable across stores (e.g. both sides of a `store copy`).
    println!(
        "read models: {} cases, {} users; stats {:?}",
        full.cases().len(),
        full.users().len(),
        full.stats()
    );

    let path = args
        .snapshot
        .unwrap_or_else(|| args.store.data_dir.join(snapshot_file::FILE_NAME));
    if !path.exists() {
        println!("no snapshot to compare with: the live models are a replay themselves");
        return Ok(());
    }
    let secret_file = args
        .jwt_secret_file
        .unwrap_or_else(|| args.store.data_dir.join("jwt-secret"));
    // Read only: a replay never creates the server's secret.
    let secret = load_or_create_secret(&secret_file, false)
        .context("the snapshot is authenticated with the server secret")?;
    let snapshot = SnapshotFile {
        path,
        key: SnapshotKey::derive(secret.expose()),
    };
    let started = Instant::now();
    let start = load_models(store.as_ref(), &snapshot).await;
    if let Some(why) = &start.ignored {
        println!("snapshot not used: {why}");
    }
    if start.models.position() == 0 {
        println!("no snapshot to compare with: the live models are a replay themselves");
        return Ok(());
    }
    let from = start.models.position();
    let mut live = fold_from(store, start.models).await?;
    // The server forgets revocations of expired tokens on a timer, so its snapshot may hold
    // fewer than a replay: compare both as of one instant.
    let now = events::Timestamp::now();
    let mut full = full;
    full.prune_revocations(now);
    live.prune_revocations(now);
    println!(
        "live models: snapshot at position {from} plus {} events, loaded in {:.3}s",
        live.position() - from,
        started.elapsed().as_secs_f64()
    );
    let differences = compare(&full, &live);
    if !differences.is_empty() {
        for d in &differences {
            println!("DIFFERENT {d}");
        }
        anyhow::bail!("the replay differs from the live models");
    }
    println!(
        "the replay matches the live models: {} cases, {} users, equal stats",
        full.cases().len(),
        full.users().len()
    );
    Ok(())
}

/// Folds every event after the models' checkpoint into them.
pub async fn fold_from(
    store: Arc<dyn EventStore>,
    mut models: Projections,
) -> anyhow::Result<Projections> {
    let mut pages = pages::decode_ahead(store, models.position());
    while let Some(page) = pages.recv().await {
        let page = page?;
        for env in &page {
            models.apply_quiet(env);
        }
        // Freeing a page's strings is real work: leave it to another thread.
        tokio::task::spawn_blocking(move || drop(page));
    }
    Ok(models)
}

/// Names what differs between two sets of models (at most a few cases).
fn compare(replayed: &Projections, live: &Projections) -> Vec<String> {
    let mut out = Vec::new();
    if replayed.position() != live.position() {
        out.push(format!(
            "checkpoint: replay {} vs live {}",
            replayed.position(),
            live.position()
        ));
    }
    if replayed.stats() != live.stats() {
        out.push(format!(
            "stats: replay {:?} vs live {:?}",
            replayed.stats(),
            live.stats()
        ));
    }
    if replayed.cases().len() != live.cases().len() {
        out.push(format!(
            "case count: replay {} vs live {}",
            replayed.cases().len(),
            live.cases().len()
        ));
    }
    for case in replayed.cases().iter() {
        if live.case(case.id) != Some(case) {
            out.push(format!("case {}", case.id));
            if out.len() > 20 {
                break;
            }
        }
    }
    if out.is_empty() && replayed != live {
        out.push("users, revocations, queue or reviewer activity".into());
    }
    out
}
