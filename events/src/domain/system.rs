//! Facts about the store itself, in one stream for the whole system.
//!
//! Today one: the store was made a *demo store* (`serve --demo` on a new store). Demo users have
//! published passwords, so the runtime refuses `--demo` on any store that is not new or not
//! already a demo store, and warns at every start of a demo store; this event is how every node
//! and every later start knows which kind of store it serves.

use serde::{Deserialize, Serialize};

/// The stream of system facts.
pub const STREAM: &str = "system";

/// The store is a demo store: it holds (or is about to hold) users with known passwords.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemoStoreMarked {}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SystemEvent {
    DemoStoreMarked(DemoStoreMarked),
}
