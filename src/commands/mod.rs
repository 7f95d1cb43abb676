//! Running a command against an aggregate: load its stream, fold it, decide, append with the
//! version that was loaded. The domain decides; this module only does the I/O around it.
//!
//! A conflict on append (another writer got there first) is retried against the new state a
//! few times when the caller did not pin a version; with `If-Match`, it is the caller's
//! `version_conflict`.

pub mod keyed_submit;

use events::domain::case::{self, CaseCommand, CaseState};
use events::domain::user::{self, UserCommand, UserState};
use events::domain::{DomainError, DomainEvent};
use events::store::MAX_READ_LIMIT;
use events::{
    AppendResult, EventData, EventStore, ExpectedVersion, Metadata, StoreError, Timestamp,
};
use uuid::Uuid;

/// How often a command without a pinned version is retried after a conflict.
const RETRIES: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// `If-Match` named another version than the stream's.
    #[error("version conflict: the current version is {actual}")]
    VersionConflict { actual: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a stored event cannot be read: {0}")]
    Codec(#[from] events::codec::CodecError),
}

/// What a command did: `None` when it changed nothing.
pub type Outcome = Option<AppendResult>;

/// Runs a case command. `expected` is the version the caller saw (`If-Match`), if any.
pub async fn run_case(
    store: &dyn EventStore,
    case_id: Uuid,
    expected: Option<u64>,
    metadata: Metadata,
    command: impl Fn() -> CaseCommand,
) -> Result<Outcome, CommandError> {
    let stream = case::stream_name(case_id);
    run(store, &stream, expected, metadata, |events| {
        let state = events.iter().fold(CaseState::default(), |s, e| match e {
            DomainEvent::Case(e) => case::evolve(s, e),
            _ => s,
        });
        Ok(case::decide(&state, command())?
            .into_iter()
            .map(DomainEvent::Case)
            .collect())
    })
    .await
}

/// Runs a user command.
pub async fn run_user(
    store: &dyn EventStore,
    user_id: Uuid,
    metadata: Metadata,
    command: impl Fn() -> UserCommand,
) -> Result<Outcome, CommandError> {
    let stream = user::stream_name(user_id);
    run(store, &stream, None, metadata, |events| {
        let state = events.iter().fold(UserState::default(), |s, e| match e {
            DomainEvent::User(e) => user::evolve(s, e),
            _ => s,
        });
        Ok(user::decide(&state, command())?
            .into_iter()
            .map(DomainEvent::User)
            .collect())
    })
    .await
}

async fn run(
    store: &dyn EventStore,
    stream: &str,
    expected: Option<u64>,
    metadata: Metadata,
    decide: impl Fn(&[DomainEvent]) -> Result<Vec<DomainEvent>, CommandError>,
) -> Result<Outcome, CommandError> {
    let mut attempt = 0;
    loop {
        let (version, history) = load(store, stream).await?;
        if let Some(expected) = expected {
            if expected != version {
                return Err(CommandError::VersionConflict { actual: version });
            }
        }
        let new = decide(&history)?;
        if new.is_empty() {
            return Ok(None);
        }
        let at = Timestamp::now();
        let data = new
            .iter()
            .map(|e| EventData::encode(e, metadata, at))
            .collect::<Result<Vec<_>, _>>()?;
        match store
            .append(stream, ExpectedVersion::Exact(version), data)
            .await
        {
            Ok(result) => return Ok(Some(result)),
            Err(StoreError::Conflict { actual, .. }) => {
                if expected.is_some() {
                    return Err(CommandError::VersionConflict { actual });
                }
                attempt += 1;
                if attempt > RETRIES {
                    return Err(CommandError::VersionConflict { actual });
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Reads and decodes a whole stream; returns its version and its events.
pub async fn load(
    store: &dyn EventStore,
    stream: &str,
) -> Result<(u64, Vec<DomainEvent>), CommandError> {
    let mut events = Vec::new();
    let mut version = 0;
    loop {
        let page = store
            .read_stream(stream, version + 1, MAX_READ_LIMIT)
            .await?;
        let Some(last) = page.last() else { break };
        version = last.version;
        let full = page.len() == MAX_READ_LIMIT;
        for record in page {
            events.push(record.data.decode()?);
        }
        if !full {
            break;
        }
    }
    Ok((version, events))
}
