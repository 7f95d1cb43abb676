//! Mapping between table rows and [`RecordedEvent`].

use rusqlite::{Row, Statement, ToSql};
use uuid::Uuid;

use crate::envelope::{EventData, Metadata, RecordedEvent};
use crate::hash::Hash;
use crate::Timestamp;

pub(super) const COLUMNS: &str = "position, stream, version, id, event_type, schema_version, \
     codec, recorded_at, user_id, correlation_id, causation_id, payload, prev_hash, hash";

pub(super) const INSERT: &str = "INSERT INTO events (position, stream, version, id, event_type, \
     schema_version, codec, recorded_at, user_id, correlation_id, causation_id, payload, \
     prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";

pub(super) fn insert(stmt: &mut Statement<'_>, e: &RecordedEvent) -> rusqlite::Result<()> {
    let d = &e.data;
    let params: [&dyn ToSql; 14] = [
        &(e.position as i64),
        &e.stream,
        &(e.version as i64),
        &d.id.as_bytes().as_slice(),
        &d.event_type,
        &d.schema_version,
        &d.codec,
        &d.recorded_at.as_micros(),
        &d.metadata.user_id.map(|u| u.into_bytes().to_vec()),
        &d.metadata.correlation_id.as_bytes().as_slice(),
        &d.metadata.causation_id.map(|u| u.into_bytes().to_vec()),
        &d.payload,
        &e.prev_hash.as_slice(),
        &e.hash.as_slice(),
    ];
    stmt.execute(&params[..]).map(|_| ())
}

pub(super) fn read(row: &Row<'_>) -> rusqlite::Result<RecordedEvent> {
    Ok(RecordedEvent {
        position: row.get::<_, i64>(0)? as u64,
        stream: row.get(1)?,
        version: row.get::<_, i64>(2)? as u64,
        data: EventData {
            id: uuid(row, 3)?,
            event_type: row.get(4)?,
            schema_version: row.get(5)?,
            codec: row.get(6)?,
            recorded_at: Timestamp::from_micros(row.get(7)?),
            metadata: Metadata {
                user_id: optional_uuid(row, 8)?,
                correlation_id: uuid(row, 9)?,
                causation_id: optional_uuid(row, 10)?,
            },
            payload: row.get(11)?,
        },
        prev_hash: hash(row, 12)?,
        hash: hash(row, 13)?,
    })
}

fn uuid(row: &Row<'_>, i: usize) -> rusqlite::Result<Uuid> {
    let bytes: [u8; 16] = row.get(i)?;
    Ok(Uuid::from_bytes(bytes))
}

fn optional_uuid(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<Uuid>> {
    let bytes: Option<[u8; 16]> = row.get(i)?;
    Ok(bytes.map(Uuid::from_bytes))
}

fn hash(row: &Row<'_>, i: usize) -> rusqlite::Result<Hash> {
    row.get(i)
}
