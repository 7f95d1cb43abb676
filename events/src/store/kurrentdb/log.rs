//! The operations this backend asks of KurrentDB, all on the log stream, with the client's
//! errors mapped onto [`StoreError`].

use std::sync::Arc;
use std::time::Duration;

use kurrentdb::{
    AppendToStreamOptions, Client, ReadStreamOptions, StreamPosition, StreamState,
    SubscribeToStreamOptions, Subscription,
};

use super::record;
use crate::envelope::RecordedEvent;
use crate::store::StoreError;

/// How long an append may take before it is reported as failed (its outcome is then unknown).
const APPEND_DEADLINE: Duration = Duration::from_secs(10);
/// How long a read of up to 10,000 events may take.
const READ_DEADLINE: Duration = Duration::from_secs(30);

/// The log stream on one server.
#[derive(Clone)]
pub(super) struct Log {
    client: Client,
    stream: Arc<str>,
}

/// Why an append did not happen.
pub(super) enum AppendError {
    /// Another process appended to the log since the revision named: nothing was written.
    Moved,
    /// Anything else; whether the events were written is unknown.
    Failed(StoreError),
}

impl Log {
    pub fn new(client: Client, stream: &str) -> Self {
        Log {
            client,
            stream: stream.into(),
        }
    }

    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// Appends `events` if the log's last revision is still `last`, atomically.
    pub async fn append(
        &self,
        last: u64,
        events: Vec<kurrentdb::EventData>,
    ) -> Result<(), AppendError> {
        let options = AppendToStreamOptions::default()
            .stream_state(StreamState::StreamRevision(last))
            .deadline(APPEND_DEADLINE);
        match self
            .client
            .append_to_stream(self.stream.to_string(), &options, events)
            .await
        {
            Ok(_) => Ok(()),
            Err(kurrentdb::Error::WrongExpectedVersion { .. }) => Err(AppendError::Moved),
            Err(e) => Err(AppendError::Failed(self.append_error(e))),
        }
    }

    /// Writes the marker of a new log; `Ok(false)` when the log exists already.
    pub async fn create(&self) -> Result<bool, StoreError> {
        let options = AppendToStreamOptions::default()
            .stream_state(StreamState::NoStream)
            .deadline(APPEND_DEADLINE);
        match self
            .client
            .append_to_stream(self.stream.to_string(), &options, record::marker())
            .await
        {
            Ok(_) => Ok(true),
            Err(kurrentdb::Error::WrongExpectedVersion { .. }) => Ok(false),
            Err(e) => Err(self.error(e)),
        }
    }

    /// Checks that the log's first event is this build's marker.
    pub async fn check(&self) -> Result<(), StoreError> {
        let options = ReadStreamOptions::default()
            .forwards()
            .position(StreamPosition::Start)
            .max_count(1)
            .deadline(READ_DEADLINE);
        let mut read = self
            .client
            .read_stream(self.stream.to_string(), &options)
            .await
            .map_err(|e| self.error(e))?;
        let problem = match read.next().await {
            Ok(Some(first)) => {
                let first = first.get_original_event();
                match first.revision {
                    0 => record::check_marker(&first.event_type, &first.data).err(),
                    r => Some(format!(
                        "its first event is at revision {r}: the stream was truncated or \
                         deleted, and positions before {r} are gone"
                    )),
                }
            }
            Ok(None) | Err(kurrentdb::Error::ResourceNotFound) => {
                Some("the stream has no events, not even its marker".to_owned())
            }
            Err(e) => return Err(self.error(e)),
        };
        match problem {
            Some(problem) => Err(self.corrupt(problem)),
            None => Ok(()),
        }
    }

    /// The events at positions `from ..`, at most `max`, in order. `from` is at least 1: the
    /// marker at revision 0 is not an event of the store.
    pub async fn read(&self, from: u64, max: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        let options = ReadStreamOptions::default()
            .forwards()
            .position(StreamPosition::Position(from.max(1)))
            .max_count(max)
            .deadline(READ_DEADLINE);
        let mut read = match self
            .client
            .read_stream(self.stream.to_string(), &options)
            .await
        {
            Ok(read) => read,
            Err(kurrentdb::Error::ResourceNotFound) => return Ok(Vec::new()),
            Err(e) => return Err(self.error(e)),
        };
        let mut events = Vec::with_capacity(max.min(1_024));
        loop {
            match read.next().await {
                Ok(Some(event)) => {
                    events.push(record::decode(&self.stream, event.get_original_event())?)
                }
                Ok(None) | Err(kurrentdb::Error::ResourceNotFound) => return Ok(events),
                Err(e) => return Err(self.error(e)),
            }
        }
    }

    /// The position of the last event (0 when the log holds only its marker, or nothing).
    pub async fn head(&self) -> Result<u64, StoreError> {
        let options = ReadStreamOptions::default()
            .position(StreamPosition::End)
            .max_count(1)
            .deadline(READ_DEADLINE);
        let mut read = match self
            .client
            .read_stream(self.stream.to_string(), &options)
            .await
        {
            Ok(read) => read,
            Err(kurrentdb::Error::ResourceNotFound) => return Ok(0),
            Err(e) => return Err(self.error(e)),
        };
        match read.next().await {
            Ok(Some(last)) => Ok(last.get_original_event().revision),
            Ok(None) | Err(kurrentdb::Error::ResourceNotFound) => Ok(0),
            Err(e) => Err(self.error(e)),
        }
    }

    /// A live subscription to the events after position `after`.
    pub async fn subscribe(&self, after: u64) -> Subscription {
        let options =
            SubscribeToStreamOptions::default().start_from(StreamPosition::Position(after));
        self.client
            .subscribe_to_stream(self.stream.to_string(), &options)
            .await
    }

    pub fn corrupt(&self, problem: String) -> StoreError {
        StoreError::Corrupt {
            path: format!("KurrentDB stream {}", self.stream),
            problem,
        }
    }

    pub fn error(&self, e: kurrentdb::Error) -> StoreError {
        match e {
            kurrentdb::Error::AccessDenied => StoreError::Unavailable(format!(
                "KurrentDB refused access to stream {}: check the user and password in --store \
                 (the user needs read and write access to that stream)",
                self.stream
            )),
            kurrentdb::Error::ResourceDeleted => {
                self.corrupt("the stream was deleted (tombstoned)".to_owned())
            }
            other => StoreError::Unavailable(format!("KurrentDB: {other}")),
        }
    }

    /// As [`Log::error`], and a request larger than the server accepts is the caller's fault.
    fn append_error(&self, e: kurrentdb::Error) -> StoreError {
        let text = e.to_string();
        if text.to_ascii_lowercase().contains("append size") {
            return StoreError::InvalidRequest(format!(
                "the events are larger than the KurrentDB server accepts in one append \
                 (its --max-append-size): {text}"
            ));
        }
        self.error(e)
    }
}
