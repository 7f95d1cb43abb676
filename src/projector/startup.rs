//! Where the projector starts: the last good snapshot, or nothing.
//!
//! A snapshot is used only if it is intact and ours (its authentication code verifies with this
//! server's key, its bytes decode) and anchored in this store (the event at its checkpoint position has the hash the snapshot recorded). Anything
//! else is reported and ignored: the projector then replays from position 0, which is slower but
//! never wrong.

use events::hash::{Hash, GENESIS};
use events::EventStore;
use projections::Projections;

use super::snapshot_file::{self, SnapshotFile};

/// The models to start from and the hash of the event at their checkpoint.
pub struct Start {
    pub models: Projections,
    pub anchor: Hash,
    /// Why a snapshot on disk was not used, if one was not.
    pub ignored: Option<String>,
}

pub async fn load_models(store: &dyn EventStore, file: &SnapshotFile) -> Start {
    let path = file.path.as_path();
    let from_scratch = |ignored| Start {
        models: Projections::new(),
        anchor: GENESIS,
        ignored,
    };
    let to_read = file.clone();
    let read = tokio::task::spawn_blocking(move || snapshot_file::read(&to_read)).await;
    let snapshot = match read {
        Ok(Ok(Some(s))) => s,
        Ok(Ok(None)) => return from_scratch(None),
        Ok(Err(e)) => return from_scratch(Some(e.to_string())),
        Err(e) => return from_scratch(Some(format!("snapshot read task failed: {e}"))),
    };
    if snapshot.position == 0 {
        return from_scratch(None);
    }
    let anchored = match store.read_all(snapshot.position - 1, 1).await {
        Ok(events) => events
            .first()
            .is_some_and(|e| e.position == snapshot.position && e.hash == snapshot.anchor),
        Err(e) => return from_scratch(Some(format!("cannot check the snapshot's anchor: {e}"))),
    };
    if !anchored {
        return from_scratch(Some(format!(
            "{}: the snapshot at position {} does not belong to this store",
            path.display(),
            snapshot.position
        )));
    }
    match Projections::from_snapshot_bytes(&snapshot.payload) {
        Ok(models) if models.position() == snapshot.position => Start {
            models,
            anchor: snapshot.anchor,
            ignored: None,
        },
        Ok(_) => from_scratch(Some(format!(
            "{}: the snapshot's header and models disagree on the position",
            path.display()
        ))),
        Err(e) => from_scratch(Some(format!("{}: {e}", path.display()))),
    }
}
