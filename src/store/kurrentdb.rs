//! Opening the KurrentDB / EventStoreDB backend when this build has it (cargo feature
//! `kurrentdb`), and a clear refusal when it does not.

use std::sync::Arc;

use events::EventStore;

use super::OpenStoreError;
use crate::config::StoreUrl;

/// Opens the store `url` names (a `StoreUrl::EventStoreDb`). With `create`, a server's first
/// start creates the log; tools that only read pass `false` and fail on a log that is not there.
#[cfg(feature = "kurrentdb")]
pub fn open(url: &StoreUrl, create: bool) -> Result<Arc<dyn EventStore>, OpenStoreError> {
    use events::store::kurrentdb::KurrentDbStore;
    let StoreUrl::EventStoreDb(raw) = url else {
        return Err(OpenStoreError::Unsupported(url.redacted(), url.backend()));
    };
    let store = match create {
        true => KurrentDbStore::open(raw)?,
        false => KurrentDbStore::open_existing(raw)?,
    };
    Ok(Arc::new(store))
}

/// This build has no KurrentDB backend: says how to get one.
#[cfg(not(feature = "kurrentdb"))]
pub fn open(url: &StoreUrl, _create: bool) -> Result<Arc<dyn EventStore>, OpenStoreError> {
    Err(OpenStoreError::NotBuilt(url.redacted()))
}
