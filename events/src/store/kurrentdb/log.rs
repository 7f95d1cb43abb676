//! The operations this backend asks of KurrentDB, all on the log stream, with the client's
//! errors mapped onto [`StoreError`].
//!
//! The client gives up for good when it cannot (re)connect: its connection task ends, and every
//! later call fails with `ConnectionClosed`. So the log keeps the client behind a generation
//! number, and the first call that finds its client given up replaces it with a new one; that
//! call fails (it is `Unavailable`: the caller retries), later calls use the new client.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use kurrentdb::{
    AppendToStreamOptions, Client, ClientSettings, ReadStreamOptions, StreamPosition, StreamState,
    SubscribeToStreamOptions, Subscription,
};
use tokio::runtime::Handle;

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
    connection: Arc<Connection>,
    stream: Arc<str>,
}

struct Connection {
    settings: ClientSettings,
    runtime: Handle,
    /// The client in use, and how many clients were made before it.
    current: Mutex<(u64, Client)>,
}

/// Why an append did not happen.
pub(super) enum AppendError {
    /// Another process appended to the log since the revision named: nothing was written.
    Moved,
    /// Anything else; whether the events were written is unknown.
    Failed(StoreError),
}

/// A client, and its generation, to report its failures with.
struct InUse {
    generation: u64,
    client: Client,
}

impl Log {
    /// The log `stream` on the server `settings` name; the client runs on `runtime`.
    pub fn new(
        settings: ClientSettings,
        runtime: Handle,
        stream: &str,
    ) -> Result<Self, StoreError> {
        let client = new_client(&settings, &runtime)?;
        Ok(Log {
            connection: Arc::new(Connection {
                settings,
                runtime,
                current: Mutex::new((0, client)),
            }),
            stream: stream.into(),
        })
    }

    fn client(&self) -> InUse {
        let current = self
            .connection
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        InUse {
            generation: current.0,
            client: current.1.clone(),
        }
    }

    /// Replaces the client of `generation` if it gave up on its connection.
    fn replace_if_given_up(&self, generation: u64, e: &kurrentdb::Error) {
        let given_up = matches!(
            e,
            kurrentdb::Error::ConnectionClosed | kurrentdb::Error::GrpcConnectionError(_)
        );
        if !given_up {
            return;
        }
        let c = &self.connection;
        let client = match new_client(&c.settings, &c.runtime) {
            Ok(client) => client,
            Err(e) => {
                tracing::warn!(stream = %self.stream, "cannot make a new KurrentDB client: {e}");
                return;
            }
        };
        let mut current = c.current.lock().unwrap_or_else(PoisonError::into_inner);
        if current.0 == generation {
            tracing::warn!(stream = %self.stream, "KurrentDB connection lost: reconnecting ({e})");
            *current = (generation + 1, client);
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
        let InUse { generation, client } = self.client();
        match client
            .append_to_stream(self.stream.to_string(), &options, events)
            .await
        {
            Ok(_) => Ok(()),
            Err(kurrentdb::Error::WrongExpectedVersion { .. }) => Err(AppendError::Moved),
            Err(e) => Err(AppendError::Failed(self.append_error(generation, e))),
        }
    }

    /// Writes the marker of a new log; `Ok(false)` when the log exists already.
    pub async fn create(&self) -> Result<bool, StoreError> {
        let options = AppendToStreamOptions::default()
            .stream_state(StreamState::NoStream)
            .deadline(APPEND_DEADLINE);
        let InUse { generation, client } = self.client();
        match client
            .append_to_stream(self.stream.to_string(), &options, record::marker())
            .await
        {
            Ok(_) => Ok(true),
            Err(kurrentdb::Error::WrongExpectedVersion { .. }) => Ok(false),
            Err(e) => Err(self.error(generation, e)),
        }
    }

    /// Checks that the log's first event is this build's marker; `Ok(false)` when there is no
    /// log.
    pub async fn check(&self) -> Result<bool, StoreError> {
        let options = ReadStreamOptions::default()
            .forwards()
            .position(StreamPosition::Start)
            .max_count(1)
            .deadline(READ_DEADLINE);
        let InUse { generation, client } = self.client();
        let mut read = client
            .read_stream(self.stream.to_string(), &options)
            .await
            .map_err(|e| self.error(generation, e))?;
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
            Ok(None) | Err(kurrentdb::Error::ResourceNotFound) => return Ok(false),
            Err(e) => return Err(self.error(generation, e)),
        };
        match problem {
            Some(problem) => Err(self.corrupt(problem)),
            None => Ok(true),
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
        let InUse { generation, client } = self.client();
        let mut read = match client.read_stream(self.stream.to_string(), &options).await {
            Ok(read) => read,
            Err(kurrentdb::Error::ResourceNotFound) => return Ok(Vec::new()),
            Err(e) => return Err(self.error(generation, e)),
        };
        let mut events = Vec::with_capacity(max.min(1_024));
        loop {
            match read.next().await {
                Ok(Some(event)) => {
                    events.push(record::decode(&self.stream, event.get_original_event())?)
                }
                Ok(None) | Err(kurrentdb::Error::ResourceNotFound) => return Ok(events),
                Err(e) => return Err(self.error(generation, e)),
            }
        }
    }

    /// The position of the last event (0 when the log holds only its marker, or nothing).
    pub async fn head(&self) -> Result<u64, StoreError> {
        let options = ReadStreamOptions::default()
            .position(StreamPosition::End)
            .max_count(1)
            .deadline(READ_DEADLINE);
        let InUse { generation, client } = self.client();
        let mut read = match client.read_stream(self.stream.to_string(), &options).await {
            Ok(read) => read,
            Err(kurrentdb::Error::ResourceNotFound) => return Ok(0),
            Err(e) => return Err(self.error(generation, e)),
        };
        match read.next().await {
            Ok(Some(last)) => Ok(last.get_original_event().revision),
            Ok(None) | Err(kurrentdb::Error::ResourceNotFound) => Ok(0),
            Err(e) => Err(self.error(generation, e)),
        }
    }

    /// A live subscription to the events after position `after`, and the generation of its
    /// client (to report its failure with, through [`Log::error`]).
    pub async fn subscribe(&self, after: u64) -> (u64, Subscription) {
        let options =
            SubscribeToStreamOptions::default().start_from(StreamPosition::Position(after));
        let InUse { generation, client } = self.client();
        let subscription = client
            .subscribe_to_stream(self.stream.to_string(), &options)
            .await;
        (generation, subscription)
    }

    pub fn corrupt(&self, problem: String) -> StoreError {
        StoreError::Corrupt {
            path: format!("KurrentDB stream {}", self.stream),
            problem,
        }
    }

    /// Maps an error of the client of `generation`, replacing that client if it gave up.
    pub fn error(&self, generation: u64, e: kurrentdb::Error) -> StoreError {
        self.replace_if_given_up(generation, &e);
        match e {
            kurrentdb::Error::AccessDenied => StoreError::Unavailable(format!(
                "KurrentDB refused access to stream {}: check the user and password in --store \
                 (the user needs read and write access to that stream)",
                self.stream
            )),
            kurrentdb::Error::ResourceDeleted => {
                self.corrupt("the stream was deleted (tombstoned)".to_owned())
            }
            e @ (kurrentdb::Error::ConnectionClosed | kurrentdb::Error::GrpcConnectionError(_)) => {
                StoreError::Unavailable(format!(
                    "cannot reach the KurrentDB server at {}: {e}",
                    self.servers()
                ))
            }
            other => StoreError::Unavailable(format!("KurrentDB: {other}")),
        }
    }

    /// The hosts of the connection string (never its credentials).
    fn servers(&self) -> String {
        let hosts = self.connection.settings.hosts();
        let hosts: Vec<String> = hosts
            .iter()
            .map(|h| format!("{}:{}", h.host, h.port))
            .collect();
        hosts.join(",")
    }

    /// As [`Log::error`], and a request larger than the server accepts is the caller's fault.
    fn append_error(&self, generation: u64, e: kurrentdb::Error) -> StoreError {
        let text = e.to_string();
        if text.to_ascii_lowercase().contains("append size") {
            return StoreError::InvalidRequest(format!(
                "the events are larger than the KurrentDB server accepts in one append \
                 (its --max-append-size): {text}"
            ));
        }
        self.error(generation, e)
    }
}

fn new_client(settings: &ClientSettings, runtime: &Handle) -> Result<Client, StoreError> {
    Client::with_runtime_handle(runtime.clone(), settings.clone())
        .map_err(|e| StoreError::Unavailable(format!("cannot create the KurrentDB client: {e}")))
}
