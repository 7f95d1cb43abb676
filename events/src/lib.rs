//! The write side of Adjudicator.
//!
//! * [`domain`]: the events, commands and deciders of cases, users and token revocations, as pure
//!   functions over data (`decide` and `evolve`), with their validation rules.
//! * [`codec`]: how a domain event becomes the bytes of a record (bincode 2, tagged with a codec id
//!   and a schema version) and back, upcasting records written by older schema versions.
//! * [`envelope`] and [`hash`]: what the store keeps around each payload, and the per-stream hash
//!   chain that lets an auditor prove a history was not edited.
//! * [`commitment`] and [`verify`]: the head commitment over the whole log, and the one-pass
//!   check of positions, versions, chains and expected heads.
//! * [`store`]: the [`store::EventStore`] trait and its backends.
//! * [`contract`]: the test suite every backend passes.

pub mod codec;
pub mod commitment;
pub mod contract;
pub mod domain;
pub mod envelope;
pub mod hash;
#[cfg(feature = "testing")]
pub mod pg_test_cluster;
pub mod store;
pub mod timestamp;
pub mod verify;

pub use envelope::{EventData, EventEnvelope, Metadata, RecordedEvent, UndecodableEvent};
pub use store::{AppendResult, EventStore, ExpectedVersion, StoreError, Subscription};
pub use timestamp::Timestamp;
