//! Operator and auditor tools run from the command line against a store: replay, audit
//! verification and export, and the benchmarks.

pub mod append_bench;
pub mod args;
pub mod audit;
pub mod copy;
pub mod digest;
pub mod generate;
pub mod pages;
pub mod replay;
pub mod users;

use std::sync::Arc;

use anyhow::Context;
use events::store::postgres::PostgresStore;
use events::store::sqlite::{SqliteStore, FILE_NAME};
use events::EventStore;

use crate::config::StoreUrl;
use args::StoreArgs;

/// Opens the store the flags name. SQLite is opened read-only unless `write` is set, so an
/// audit can run beside a live server; PostgreSQL is shared by design.
pub async fn open_store(args: &StoreArgs, write: bool) -> anyhow::Result<Arc<dyn EventStore>> {
    let url = StoreUrl::parse(&args.store)
        .map_err(|e| anyhow::anyhow!("invalid value for --store: {e}"))?;
    match url {
        StoreUrl::Postgres(url) => Ok(Arc::new(
            PostgresStore::connect(&url)
                .await
                .context("cannot open the event store")?,
        )),
        StoreUrl::Sqlite if write => Ok(Arc::new(
            SqliteStore::open_in(&args.data_dir).context("cannot open the event store")?,
        )),
        StoreUrl::Sqlite => Ok(Arc::new(
            SqliteStore::open_read_only(args.data_dir.join(FILE_NAME))
                .context("cannot open the event store")?,
        )),
        url @ StoreUrl::EventStoreDb(_) => Ok(
            crate::store::kurrentdb::open(&url, write).context("cannot open the event store")?
        ),
    }
}
