//! The projector: folds every event of the store, in position order, into the read models, and
//! hands the updates each event causes to whoever publishes them.
//!
//! * [`actor`]: the actix actor that owns the models, subscribes to the store from its
//!   checkpoint, answers queries from memory, and saves snapshots.
//! * [`snapshot_file`]: the snapshot file format, written atomically and checked on load.
//! * [`snapshot_key`]: the key that authenticates snapshots, derived from the server secret.
//! * [`startup`]: loading the last good snapshot (or none) before the actor starts.

pub mod actor;
pub mod snapshot_file;
pub mod snapshot_key;
pub mod startup;

pub use actor::{
    Control, Projector, ProjectorConfig, ProjectorStatus, Published, SaveSnapshot, Status,
    Subscribe, TakeView, WaitForPosition, WithModels,
};
pub use snapshot_file::SnapshotFile;
pub use snapshot_key::SnapshotKey;
pub use startup::load_models;
