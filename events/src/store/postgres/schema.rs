//! The database layout and its versioned migrations, applied at start under an advisory lock so
//! that nodes starting together migrate once; a database migrated by a newer Adjudicator is
//! refused with a message that says so.
//!
//! Everything lives in the schema `adjudicator`:
//! * `events`: one row per event, the global position its primary key;
//! * `head`: a single row holding the last position given out. Every append locks it for update,
//!   which puts appends from every node in one order and makes positions gap-free and committed
//!   in order (see `writer` and the ADR on the PostgreSQL backend);
//! * `migrations`: the versions applied, with when;
//! * `expect_head(actual, wanted)`: raises `AJ001` unless the head is where a writer expects
//!   it (see `writer`).

use tokio_postgres::Client;

use super::pg_error;
use crate::store::StoreError;

/// The advisory lock taken while migrating ("ADJU" + 1).
const MIGRATION_LOCK: i64 = 0x4144_4A55_0000_0001;

/// Each migration, in order; version `n` is `MIGRATIONS[n - 1]`. Never edit one that shipped:
/// add the next.
const MIGRATIONS: &[(&str, &str)] = &[(
    "events, head and migrations",
    "
    CREATE TABLE adjudicator.events (
        position        bigint   PRIMARY KEY,
        stream          text     NOT NULL,
        version         bigint   NOT NULL,
        id              uuid     NOT NULL,
        event_type      text     NOT NULL,
        schema_version  integer  NOT NULL,
        codec           smallint NOT NULL,
        recorded_at     bigint   NOT NULL,
        user_id         uuid,
        correlation_id  uuid     NOT NULL,
        causation_id    uuid,
        payload         bytea    NOT NULL,
        prev_hash       bytea    NOT NULL,
        hash            bytea    NOT NULL,
        UNIQUE (stream, version)
    );
    CREATE TABLE adjudicator.head (
        only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
        position  bigint  NOT NULL
    );
    INSERT INTO adjudicator.head (position) VALUES (0);
    -- The writer's one-round-trip append moves the head only if it is where the writer last
    -- left it (no other node appended since, so its cached stream heads hold).
    CREATE FUNCTION adjudicator.expect_head(actual bigint, wanted bigint) RETURNS bigint
    LANGUAGE plpgsql AS $$
    BEGIN
        IF actual <> wanted THEN
            RAISE EXCEPTION 'the head moved' USING ERRCODE = 'AJ001';
        END IF;
        RETURN actual;
    END
    $$;
    ",
)];

/// The newest layout this build knows.
pub const LATEST: i32 = MIGRATIONS.len() as i32;

/// Brings the database to [`LATEST`], or refuses one that is newer. Returns the version found
/// before migrating (0 for a new database).
pub async fn migrate(client: &mut Client) -> Result<i32, StoreError> {
    let tx = client.transaction().await.map_err(pg_error)?;
    // Transaction-scoped: released by the commit (or the rollback of a failed migration).
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg_error)?;
    tx.batch_execute(
        "CREATE SCHEMA IF NOT EXISTS adjudicator;
         CREATE TABLE IF NOT EXISTS adjudicator.migrations (
             version      integer     PRIMARY KEY,
             description  text        NOT NULL,
             applied_at   timestamptz NOT NULL DEFAULT now()
         );",
    )
    .await
    .map_err(pg_error)?;
    let found: i32 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM adjudicator.migrations",
            &[],
        )
        .await
        .map_err(pg_error)?
        .get(0);
    if found > LATEST {
        return Err(StoreError::Corrupt {
            path: "the PostgreSQL database".into(),
            problem: format!(
                "its schema was migrated by a newer Adjudicator (schema version {found}, this \
                 build knows up to {LATEST}); run that version or newer"
            ),
        });
    }
    for (version, (description, sql)) in (1..).zip(MIGRATIONS).skip(found as usize) {
        tx.batch_execute(sql).await.map_err(pg_error)?;
        tx.execute(
            "INSERT INTO adjudicator.migrations (version, description) VALUES ($1, $2)",
            &[&version, description],
        )
        .await
        .map_err(pg_error)?;
        tracing::info!(version, description, "PostgreSQL schema migrated");
    }
    tx.commit().await.map_err(pg_error)?;
    Ok(found)
}
