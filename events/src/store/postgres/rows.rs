//! Mapping between table rows and [`RecordedEvent`], and the insert of a whole batch in one
//! statement (one array per column, `unnest`ed by the server).

use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::envelope::{EventData, Metadata, RecordedEvent};
use crate::hash::Hash;
use crate::store::StoreError;
use crate::Timestamp;

pub const COLUMNS: &str = "position, stream, version, id, event_type, schema_version, codec, \
     recorded_at, user_id, correlation_id, causation_id, payload, prev_hash, hash";

/// The insert of a batch's arrays (`$1`–`$14`), each row joined with `first` (e.g. a CTE that
/// must run before any row is inserted), or alone.
pub fn insert_sql(first: Option<&str>) -> String {
    let from = match first {
        Some(first) => format!("{first}, "),
        None => String::new(),
    };
    format!(
        "INSERT INTO adjudicator.events (position, stream, version, id, event_type, \
         schema_version, codec, recorded_at, user_id, correlation_id, causation_id, payload, \
         prev_hash, hash) \
         SELECT t.* FROM {from}unnest($1::bigint[], $2::text[], $3::bigint[], $4::uuid[], \
         $5::text[], $6::integer[], $7::smallint[], $8::bigint[], $9::uuid[], $10::uuid[], \
         $11::uuid[], $12::bytea[], $13::bytea[], $14::bytea[]) AS t"
    )
}

/// The columns of a batch, ready to bind to [`insert_sql`].
#[derive(Default)]
pub struct Columns {
    position: Vec<i64>,
    stream: Vec<String>,
    version: Vec<i64>,
    id: Vec<Uuid>,
    event_type: Vec<String>,
    schema_version: Vec<i32>,
    codec: Vec<i16>,
    recorded_at: Vec<i64>,
    user_id: Vec<Option<Uuid>>,
    correlation_id: Vec<Uuid>,
    causation_id: Vec<Option<Uuid>>,
    payload: Vec<Vec<u8>>,
    prev_hash: Vec<Vec<u8>>,
    hash: Vec<Vec<u8>>,
}

impl Columns {
    /// Adds one event, taking its data.
    pub fn push(&mut self, e: RecordedEvent) {
        let d = e.data;
        self.position.push(e.position as i64);
        self.stream.push(e.stream);
        self.version.push(e.version as i64);
        self.id.push(d.id);
        self.event_type.push(d.event_type);
        self.schema_version.push(i32::from(d.schema_version));
        self.codec.push(i16::from(d.codec));
        self.recorded_at.push(d.recorded_at.as_micros());
        self.user_id.push(d.metadata.user_id);
        self.correlation_id.push(d.metadata.correlation_id);
        self.causation_id.push(d.metadata.causation_id);
        self.payload.push(d.payload);
        self.prev_hash.push(e.prev_hash.to_vec());
        self.hash.push(e.hash.to_vec());
    }

    pub fn is_empty(&self) -> bool {
        self.position.is_empty()
    }

    pub fn params(&self) -> [&(dyn ToSql + Sync); 14] {
        [
            &self.position,
            &self.stream,
            &self.version,
            &self.id,
            &self.event_type,
            &self.schema_version,
            &self.codec,
            &self.recorded_at,
            &self.user_id,
            &self.correlation_id,
            &self.causation_id,
            &self.payload,
            &self.prev_hash,
            &self.hash,
        ]
    }
}

/// Reads a row selected with [`COLUMNS`]; a value out of range means the table was edited by
/// something other than this store.
pub fn read(row: &Row) -> Result<RecordedEvent, StoreError> {
    let bad = |what: &str| StoreError::Corrupt {
        path: "adjudicator.events".into(),
        problem: format!("a row has an impossible {what}"),
    };
    let get = |e: tokio_postgres::Error| StoreError::Unavailable(format!("reading a row: {e}"));
    let position: i64 = row.try_get(0).map_err(get)?;
    let version: i64 = row.try_get(2).map_err(get)?;
    let schema_version: i32 = row.try_get(5).map_err(get)?;
    let codec: i16 = row.try_get(6).map_err(get)?;
    let hash_of = |i: usize| -> Result<Hash, StoreError> {
        let bytes: &[u8] = row.try_get(i).map_err(get)?;
        bytes.try_into().map_err(|_| bad("hash length"))
    };
    Ok(RecordedEvent {
        position: u64::try_from(position).map_err(|_| bad("position"))?,
        stream: row.try_get(1).map_err(get)?,
        version: u64::try_from(version).map_err(|_| bad("version"))?,
        data: EventData {
            id: row.try_get(3).map_err(get)?,
            event_type: row.try_get(4).map_err(get)?,
            schema_version: u16::try_from(schema_version).map_err(|_| bad("schema version"))?,
            codec: u8::try_from(codec).map_err(|_| bad("codec"))?,
            recorded_at: Timestamp::from_micros(row.try_get(7).map_err(get)?),
            metadata: Metadata {
                user_id: row.try_get(8).map_err(get)?,
                correlation_id: row.try_get(9).map_err(get)?,
                causation_id: row.try_get(10).map_err(get)?,
            },
            payload: row.try_get(11).map_err(get)?,
        },
        prev_hash: hash_of(12)?,
        hash: hash_of(13)?,
    })
}
