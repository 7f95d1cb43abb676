//! Where the projector starts: the last good snapshot, or nothing.
//!
//! A snapshot is used only if it is intact and ours (its authentication code verifies with this
//! server's key, its bytes decode) and anchored in this store (the event at its checkpoint
//! position has the hash the snapshot recorded). Anything else is reported and ignored: the projector then replays from position 0, which is slower but
//! never wrong.

use events::hash::{Hash, GENESIS};
use events::EventStore;
use projections::Projections;

use super::actor::{Projector, Status, WaitForPosition};
use super::snapshot_file::{self, SnapshotFile};
use crate::metrics::MeteredAddr;

/// Waits until the projector has applied `position` (the store's head at start). If it stopped
/// at an event it cannot decode, the error names that event: the server must not start serving
/// models that lack it.
pub async fn caught_up(projector: &MeteredAddr<Projector>, position: u64) -> anyhow::Result<()> {
    let stopped = || anyhow::anyhow!("the projector stopped during start-up");
    if projector
        .send(WaitForPosition(position))
        .await
        .map_err(|_| stopped())?
    {
        return Ok(());
    }
    let status = projector.send(Status).await.map_err(|_| stopped())?;
    match status.stalled {
        Some(event) => Err(anyhow::anyhow!(
            "cannot start: {event}. Nothing was changed; run a build that reads this event \
             (`adjudicator replay` reports the same)"
        )),
        None => Err(anyhow::anyhow!(
            "the read models did not reach position {position} (they are at {})",
            status.position
        )),
    }
}

/// The models to start from and the hash of the event at their checkpoint.
pub struct Start {
    pub models: Projections,
    pub anchor: Hash,
    /// Why a snapshot on disk was not used, if one was not.
    pub ignored: Option<String>,
}

/// A snapshot read, authenticated and decoded, not yet compared with the store.
pub struct Decoded {
    pub models: Projections,
    pub anchor: Hash,
}

/// Reads, authenticates and decodes the snapshot file: `Ok(None)` when there is none (or it is
/// at position 0), `Err` with the reason to log when it cannot be used. Needs no store, so
/// `serve` runs it on a blocking thread while the store opens and checks itself; the result
/// is trusted only after [`anchor`] has found its anchor in the store.
pub fn decode(file: &SnapshotFile) -> Result<Option<Decoded>, String> {
    let path = file.path.as_path();
    let snapshot = match snapshot_file::read(file) {
        Ok(Some(s)) => s,
        Ok(None) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    if snapshot.position == 0 {
        return Ok(None);
    }
    match Projections::from_snapshot_bytes(&snapshot.payload) {
        Ok(models) if models.position() == snapshot.position => Ok(Some(Decoded {
            models,
            anchor: snapshot.anchor,
        })),
        Ok(_) => Err(format!(
            "{}: the snapshot's header and models disagree on the position",
            path.display()
        )),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Where to start: the decoded snapshot if the store's event at its position has the hash it
/// recorded, otherwise nothing (a replay from position 0), with the reason.
pub async fn anchor(
    store: &dyn EventStore,
    file: &SnapshotFile,
    decoded: Result<Option<Decoded>, String>,
) -> Start {
    let from_scratch = |ignored| Start {
        models: Projections::new(),
        anchor: GENESIS,
        ignored,
    };
    let decoded = match decoded {
        Ok(Some(d)) => d,
        Ok(None) => return from_scratch(None),
        Err(why) => return from_scratch(Some(why)),
    };
    let position = decoded.models.position();
    let anchored = match store.read_all(position - 1, 1).await {
        Ok(events) => events
            .first()
            .is_some_and(|e| e.position == position && e.hash == decoded.anchor),
        Err(e) => return from_scratch(Some(format!("cannot check the snapshot's anchor: {e}"))),
    };
    if !anchored {
        // A snapshot beyond the store's last event means the store lost events it had (a
        // damaged write-ahead log loses its last transactions silently), or is an older copy.
        let head = store.head_position().await.unwrap_or(0);
        if position > head {
            return from_scratch(Some(format!(
                "{}: the snapshot was taken at position {position} but the store ends at \
                 position {head}: the events after {head} are not in the store (restored from an \
                 older backup, or lost). Check the log against a recorded head with `adjudicator \
                 audit verify --expect <position>:<commitment>`",
                file.path.display(),
            )));
        }
        return from_scratch(Some(format!(
            "{}: the snapshot at position {position} does not belong to this store",
            file.path.display(),
        )));
    }
    Start {
        models: decoded.models,
        anchor: decoded.anchor,
        ignored: None,
    }
}

/// [`decode`] on a blocking thread, then [`anchor`].
pub async fn load_models(store: &dyn EventStore, file: &SnapshotFile) -> Start {
    let to_read = file.clone();
    let decoded = tokio::task::spawn_blocking(move || decode(&to_read))
        .await
        .unwrap_or_else(|e| Err(format!("snapshot read task failed: {e}")));
    anchor(store, file, decoded).await
}
