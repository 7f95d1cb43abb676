//! The domain of the adjudication queue: what can happen to a case, a user and a token, and the
//! rules that decide whether a command may happen.
//!
//! Every aggregate follows the same split: `decide(&state, command) -> Result<Vec<Event>, _>` says
//! what a command causes (or why it may not happen), `evolve(state, &event) -> state` folds one
//! recorded event into the state. Both are pure; the runtime loads a stream, folds it with
//! `evolve`, calls `decide`, and appends the result with the version it loaded.

pub mod case;
pub mod error;
pub mod event;
pub mod idempotency;
pub mod revocation;
pub mod system;
pub mod user;
pub mod values;

pub use error::{DomainError, FieldError};
pub use event::DomainEvent;
pub use values::{Actor, Culpability, Decision, Priority, Role};
