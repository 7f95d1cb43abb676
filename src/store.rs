//! Opening the event store that `--store` names.

use std::sync::Arc;

use events::store::sqlite::SqliteStore;
use events::{EventStore, StoreError};

use crate::config::{Settings, StoreUrl};

/// Why the store could not be opened; each message names the file or URL at fault.
#[derive(Debug, thiserror::Error)]
pub enum OpenStoreError {
    #[error("cannot open the event store: {0}")]
    Store(#[from] StoreError),
    #[error("--store {0}: this build has no {1} backend yet; use `sqlite`")]
    Unsupported(String, &'static str),
}

pub fn open(settings: &Settings) -> Result<Arc<dyn EventStore>, OpenStoreError> {
    match &settings.store {
        StoreUrl::Sqlite => Ok(Arc::new(SqliteStore::open_in(&settings.data_dir)?)),
        other => Err(OpenStoreError::Unsupported(
            other.redacted(),
            other.backend(),
        )),
    }
}
