//! The read side of Adjudicator: pure folds from recorded events to the read models the API
//! answers from and the WebSocket pushes. No I/O, no clocks, no async: the runtime feeds events
//! in position order to [`Projections::apply`] and sends out the [`Update`]s it returns.
//!
//! * [`CaseView`]: one case as the protocol shows it; [`Cases`] every case by id.
//! * [`Queue`]: the cases not yet decided, in review order, paged by [`Cursor`]; a
//!   [`QueueWindow`] is what one `queue` subscription sees of it.
//! * [`Stats`], [`Users`], [`Revocations`], [`ReviewerActivity`].
//! * [`Update`] and [`Topic`]: the pushes; [`AuditEvent`]: the auditors' view of an event.
//! * [`case_as_of`] and [`queue_as_of`]: the past, folded again.
//! * [`ResumeFold`]: the `audit` and `case:<id>` updates of a resume, rebuilt from the log.
//! * [`Projections`]: all of them behind one checkpoint, with byte snapshots; a [`ReadView`]
//!   is what snapshots show, taken from them for next to nothing, for a reader elsewhere.

pub mod activity;
pub mod as_of;
pub mod audit;
pub mod case_view;
pub mod cases;
mod json;
pub mod open_queue;
mod presized;
pub mod projections;
pub mod queue;
pub mod resume;
pub mod revocations;
pub mod snapshot;
pub mod stats;
pub mod streams;
#[cfg(test)]
mod testing;
pub mod updates;
pub mod users;
pub mod view;
pub mod window;

pub use activity::{ReviewerActivity, ReviewerStats};
pub use as_of::{case_as_of, queue_as_of, AsOf, AsOfError};
pub use audit::AuditEvent;
pub use case_view::{CaseTally, CaseView};
pub use cases::Cases;
pub use open_queue::OpenQueue;
pub use projections::Projections;
pub use queue::{CaseStatusFilter, Cursor, CursorError, Queue, QueueKey, StatusFilterError};
pub use resume::ResumeFold;
pub use revocations::{Revocations, Revoked};
pub use snapshot::SnapshotError;
pub use stats::{ByDecision, Stats};
pub use updates::{snapshot_json, Topic, TopicError, Update};
pub use users::{PasswordHash, UserRecord, UserView, Users};
pub use view::ReadView;
pub use window::{QueueWindow, Statuses, WindowPage};
