//! The audit API (auditors and admins): events with filters, a case or the queue as of a past
//! moment, the log's head commitment, verification, and a streamed NDJSON export.

use actix_web::{web, HttpResponse};
use events::domain::Role;
use events::store::MAX_POSITION;
use events::verify::ChainVerifier;
use events::{EventEnvelope, EventStore, RecordedEvent};
use futures_util::stream;
use projections::{case_as_of, queue_as_of, AsOf, AuditEvent, Projections};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use uuid::Uuid;

use super::authn::Authenticated;
use super::cases::{case_id, command_error};
use super::problem::ApiError;
use super::AppState;
use crate::projector::WithModels;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/audit")
            .route("/events", web::get().to(events_page))
            .route("/cases/{id}", web::get().to(case_then))
            .route("/queue", web::get().to(queue_then))
            .route("/verify", web::get().to(verify))
            .route("/head", web::get().to(head))
            .route("/export", web::get().to(export)),
    );
}

const AUDITORS: &[Role] = &[Role::Auditor, Role::Admin];
const PAGE: usize = 1_000;
/// Events one filtered request looks at, at most; `next` says where to go on.
const SCAN: usize = 50_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    after: Option<String>,
    limit: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    stream: Option<String>,
    user_id: Option<String>,
}

fn number(field: &str, value: Option<&str>, default: u64, max: u64) -> Result<u64, ApiError> {
    match value {
        None | Some("") => Ok(default),
        Some(v) => {
            v.parse::<u64>().ok().filter(|n| *n <= max).ok_or_else(|| {
                ApiError::field(field, format!("must be a whole number up to {max}"))
            })
        }
    }
}

async fn events_page(
    state: web::Data<AppState>,
    who: Authenticated,
    query: web::Query<EventsQuery>,
) -> Result<HttpResponse, ApiError> {
    who.require(AUDITORS)?;
    let q = query.into_inner();
    let mut after = number("after", q.after.as_deref(), 0, MAX_POSITION)?;
    let limit = number("limit", q.limit.as_deref(), 100, PAGE as u64)?.max(1) as usize;
    let user = match q.user_id.as_deref() {
        None | Some("") => None,
        Some(u) => {
            Some(Uuid::try_parse(u).map_err(|_| ApiError::field("user_id", "must be a UUID"))?)
        }
    };
    let wanted = |e: &RecordedEvent| {
        q.event_type
            .as_deref()
            .is_none_or(|t| e.data.event_type == t)
            && q.stream.as_deref().is_none_or(|s| e.stream == s)
            && user.is_none_or(|u| e.data.metadata.user_id == Some(u))
    };
    let mut found = Vec::new();
    let mut scanned = 0;
    let mut exhausted = false;
    while found.len() < limit && scanned < SCAN {
        let page = state
            .store
            .read_all(after, PAGE)
            .await
            .map_err(|e| command_error(e.into(), None))?;
        if page.is_empty() {
            exhausted = true;
            break;
        }
        for record in page {
            scanned += 1;
            after = record.position;
            if wanted(&record) {
                found.push(audit_event(record)?);
                if found.len() == limit {
                    break;
                }
            }
        }
    }
    let head = state
        .store
        .head_position()
        .await
        .map_err(|e| command_error(e.into(), None))?;
    let next = (!exhausted && after < head).then_some(after);
    Ok(HttpResponse::Ok().json(json!({ "events": found, "next": next })))
}

fn audit_event(record: RecordedEvent) -> Result<AuditEvent, ApiError> {
    EventEnvelope::decode(record)
        .map(|env| AuditEvent::from_envelope(&env))
        .map_err(ApiError::internal)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AsOfQuery {
    as_of: Option<String>,
}

fn as_of(q: &AsOfQuery) -> Result<AsOf, ApiError> {
    match q.as_of.as_deref() {
        None | Some("") => Ok(AsOf::Position(u64::MAX)),
        Some(s) => AsOf::parse(s)
            .map_err(|_| ApiError::field("as_of", "must be a position or an RFC 3339 time")),
    }
}

/// Reads the whole store page by page, in position order, until `f` answers `false`.
async fn each_page(
    state: &AppState,
    mut f: impl FnMut(Vec<RecordedEvent>) -> Result<bool, ApiError>,
) -> Result<(), ApiError> {
    let mut after = 0;
    loop {
        let page = state
            .store
            .read_all(after, events::store::MAX_READ_LIMIT)
            .await
            .map_err(|e| command_error(e.into(), None))?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        after = last.position;
        if !f(page)? {
            return Ok(());
        }
    }
}

fn decode_all(records: Vec<RecordedEvent>) -> Result<Vec<EventEnvelope>, ApiError> {
    records
        .into_iter()
        .map(EventEnvelope::decode)
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::internal)
}

async fn case_then(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
    query: web::Query<AsOfQuery>,
) -> Result<HttpResponse, ApiError> {
    who.require(AUDITORS)?;
    let id = case_id(&id)?;
    let when = as_of(&query)?;
    let records = state
        .store
        .read_stream(
            &events::domain::case::stream_name(id),
            1,
            events::store::MAX_READ_LIMIT,
        )
        .await
        .map_err(|e| command_error(e.into(), None))?;
    let envs = decode_all(records)?;
    match case_as_of(&envs, id, when) {
        Some(case) => Ok(HttpResponse::Ok().json(case)),
        None => Err(ApiError::not_found(format!("no case {id} at that moment"))),
    }
}

async fn queue_then(
    state: web::Data<AppState>,
    who: Authenticated,
    query: web::Query<AsOfQuery>,
) -> Result<HttpResponse, ApiError> {
    who.require(AUDITORS)?;
    let when = as_of(&query)?;
    let mut envs = Vec::new();
    each_page(&state, |page| {
        let last = page.last().map_or(0, |e| e.position);
        envs.extend(decode_all(page)?);
        Ok(!matches!(when, AsOf::Position(p) if last >= p))
    })
    .await?;
    let queue = queue_as_of(&envs, when);
    Ok(HttpResponse::Ok().json(json!({ "cases": queue })))
}

async fn verify(state: web::Data<AppState>, who: Authenticated) -> Result<HttpResponse, ApiError> {
    who.require(AUDITORS)?;
    let mut verifier = ChainVerifier::new();
    each_page(&state, |page| {
        page.iter().for_each(|e| verifier.check(e));
        Ok(true)
    })
    .await?;
    Ok(HttpResponse::Ok().json(verifier.summary()))
}

/// `{"position", "commitment"}`: the commitment to the log up to the last event the read models
/// applied, kept by the projector as it folds, so answered at once.
async fn head(state: web::Data<AppState>, who: Authenticated) -> Result<HttpResponse, ApiError> {
    who.require(AUDITORS)?;
    let head = state
        .projector
        .send(WithModels::new(|m: &Projections| m.log_head()))
        .await
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(head))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    after: Option<String>,
}

/// Streams NDJSON page by page: memory stays one page whatever the size of the history.
async fn export(
    state: web::Data<AppState>,
    who: Authenticated,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    who.require(AUDITORS)?;
    let after = number("after", query.after.as_deref(), 0, MAX_POSITION)?;
    let store: Arc<dyn EventStore> = state.store.clone();
    let body = stream::unfold(Some(after), move |cursor| {
        let store = store.clone();
        async move {
            let after = cursor?;
            match store.read_all(after, PAGE).await {
                Ok(page) if page.is_empty() => None,
                Ok(page) => {
                    let next = page.last().map(|e| e.position);
                    let mut lines = String::new();
                    for record in page {
                        match EventEnvelope::decode(record) {
                            Ok(env) => {
                                lines.push_str(&AuditEvent::from_envelope(&env).to_json());
                                lines.push('\n');
                            }
                            Err(e) => {
                                tracing::error!("export: {e}");
                                return Some((
                                    Err(std::io::Error::other("undecodable event")),
                                    None,
                                ));
                            }
                        }
                    }
                    Some((Ok(web::Bytes::from(lines)), next))
                }
                Err(e) => {
                    tracing::error!("export: {e}");
                    Some((Err(std::io::Error::other("event store unavailable")), None))
                }
            }
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .streaming(body))
}
