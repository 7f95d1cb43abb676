//! The cases API: submit, list, get, claim, release, decide, history, stats.
//!
//! Commands answer with the case as it stands after them, read from the projector once it has
//! applied the append, so a client's next read never shows an older case than its own write.
//! A submission with an `Idempotency-Key` that names an earlier submission of the same case
//! answers that case again (200) and appends nothing (see [`crate::commands::keyed_submit`]).

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use events::domain::case::{Assessment, CaseAction, CaseCommand, Submission};
use events::domain::idempotency::check_key;
use events::domain::{Actor, Culpability, Decision, Priority, Role};
use events::{EventEnvelope, Metadata, Timestamp};
use projections::{AuditEvent, CaseStatusFilter, Cursor, Projections, Statuses};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::authn::Authenticated;
use super::json::Json;
use super::problem::ApiError;
use super::{case_json, wait_for, AppState};
use crate::commands::keyed_submit::{submit_with_key, KeyedError, KeyedOutcome};
use crate::commands::{self, CommandError};
use crate::projector::WithModels;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/cases", web::post().to(submit))
        .route("/cases", web::get().to(list))
        .route("/cases/{id}", web::get().to(get))
        .route("/cases/{id}/claim", web::post().to(claim))
        .route("/cases/{id}/release", web::post().to(release))
        .route("/cases/{id}/decision", web::post().to(decide))
        .route("/cases/{id}/reopen", web::post().to(reopen))
        .route("/cases/{id}/history", web::get().to(history))
        .route("/stats", web::get().to(stats));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitBody {
    subject_ref: String,
    excerpt: String,
    assessment: AssessmentBody,
    #[serde(default = "normal")]
    priority: Priority,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssessmentBody {
    culpability: Culpability,
    confidence: f64,
    #[serde(default)]
    rationale: String,
}

fn normal() -> Priority {
    Priority::Normal
}

async fn submit(
    state: web::Data<AppState>,
    who: Authenticated,
    req: HttpRequest,
    body: Json<SubmitBody>,
) -> Result<HttpResponse, ApiError> {
    let key = idempotency_key(&req)?;
    let body = body.0;
    let case_id = Uuid::now_v7();
    let submission = Submission {
        case_id,
        subject_ref: body.subject_ref,
        excerpt: body.excerpt,
        assessment: Assessment {
            culpability: body.assessment.culpability,
            confidence: body.assessment.confidence,
            rationale: body.assessment.rationale,
        },
        priority: body.priority,
    };
    let actor = who.actor();
    if let Some(key) = key {
        return submit_once(&state, &who, &key, submission).await;
    }
    let outcome = commands::run_case(state.store.as_ref(), case_id, None, who.metadata(), || {
        CaseCommand {
            actor: actor.clone(),
            at: Timestamp::now(),
            action: CaseAction::Submit(submission.clone()),
        }
    })
    .await
    .map_err(|e| command_error(e, None))?;
    let case = case_after(&state, case_id, outcome).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/cases/{case_id}")))
        .json(case))
}

/// `Idempotency-Key`, if given: 1 to 128 printable characters, or 400 `bad_idempotency_key`.
fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let mut values = req.headers().get_all("idempotency-key");
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let bad = |detail: String| ApiError::bad_request("bad_idempotency_key", detail);
    if values.next().is_some() {
        return Err(bad("give one Idempotency-Key".into()));
    }
    let key = value
        .to_str()
        .map_err(|_| bad("Idempotency-Key must be printable ASCII characters".into()))?;
    check_key(key).map_err(bad)?;
    Ok(Some(key.to_owned()))
}

/// A submission under a key: a new case (201), or the key's case again (200).
async fn submit_once(
    state: &AppState,
    who: &Authenticated,
    key: &str,
    submission: Submission,
) -> Result<HttpResponse, ApiError> {
    // Even a retry that appends nothing answers only those who may submit now.
    who.require(&[Role::Classifier, Role::Admin])?;
    let outcome = submit_with_key(
        state.store.as_ref(),
        &who.actor(),
        who.metadata(),
        key,
        submission,
    )
    .await;
    let (case_id, case, created) = match outcome {
        Ok(KeyedOutcome::Created { case_id, appended }) => (
            case_id,
            case_after(state, case_id, Some(appended)).await?,
            true,
        ),
        Ok(KeyedOutcome::Replayed { case_id, position }) => {
            // Its case may come from another node: wait until the models hold it.
            wait_for(state, position).await?;
            (case_id, case_after(state, case_id, None).await?, false)
        }
        Err(KeyedError::KeyReused) => {
            return Err(ApiError::new(
                actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                KeyedError::KeyReused.to_string(),
            ))
        }
        Err(KeyedError::Contended) => {
            return Err(ApiError::unavailable(KeyedError::Contended.to_string()))
        }
        Err(KeyedError::Command(e)) => return Err(command_error(e, None)),
    };
    let mut answer = if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(answer
        .insert_header(("Location", format!("/api/v1/cases/{case_id}")))
        .json(case))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    limit: Option<String>,
    after: Option<String>,
}

const MAX_PAGE: usize = 500;

async fn list(
    state: web::Data<AppState>,
    _who: Authenticated,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    // One status, or several separated by commas (the statuses of a queue window).
    let statuses = match q.status.as_deref() {
        None | Some("") => Statuses::UNDECIDED,
        Some(s) => s
            .split(',')
            .map(|one| one.parse::<CaseStatusFilter>().map(CaseStatusFilter::status))
            .collect::<Result<Statuses, _>>()
            .map_err(|_| {
                ApiError::field(
                    "status",
                    "must be one or more of pending, in_review, escalated, decided, separated by commas",
                )
            })?,
    };
    let limit = match q.limit.as_deref() {
        None => 50,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=MAX_PAGE).contains(l))
            .ok_or_else(|| ApiError::field("limit", format!("must be 1 to {MAX_PAGE}")))?,
    };
    let after = match q.after.as_deref() {
        None | Some("") => None,
        Some(c) => Some(
            c.parse::<Cursor>()
                .map_err(|_| ApiError::field("after", "is not a cursor this server gave"))?,
        ),
    };
    let page = state
        .projector
        .send(WithModels::new(move |m: &Projections| {
            let (cases, next) = m.list_cases_of(statuses, limit, after.as_ref());
            json!({
                "cases": cases,
                "next": next.map(|c| c.to_string()),
            })
        }))
        .await
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(page))
}

async fn get(
    state: web::Data<AppState>,
    _who: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = case_id(&id)?;
    match case_json(&state, id).await? {
        Some(case) => Ok(HttpResponse::Ok().json(case)),
        None => Err(ApiError::not_found(format!("no case {id}"))),
    }
}

async fn claim(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let lease = state.claim_lease;
    command(&state, &who, &id, &req, move || CaseAction::Claim { lease }).await
}

async fn release(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    command(&state, &who, &id, &req, || CaseAction::Release).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    decision: Decision,
    final_culpability: Option<Culpability>,
    notes: Option<String>,
}

async fn decide(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
    req: HttpRequest,
    body: Json<DecisionBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    command(&state, &who, &id, &req, move || CaseAction::Decide {
        decision: body.decision,
        final_culpability: body.final_culpability,
        notes: body.notes.clone(),
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReopenBody {
    reason: String,
}

/// `POST /cases/{id}/reopen` (admin or auditor): a decided case goes back to the queue.
async fn reopen(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
    req: HttpRequest,
    body: Json<ReopenBody>,
) -> Result<HttpResponse, ApiError> {
    let reason = body.0.reason;
    command(&state, &who, &id, &req, move || CaseAction::Reopen {
        reason: reason.clone(),
    })
    .await
}

/// Runs one command on a case and answers the case after it.
async fn command(
    state: &AppState,
    who: &Authenticated,
    id: &str,
    req: &HttpRequest,
    action: impl Fn() -> CaseAction,
) -> Result<HttpResponse, ApiError> {
    let id = case_id(id)?;
    let expected = if_match(req)?;
    let actor: Actor = who.actor();
    let result = commands::run_case(state.store.as_ref(), id, expected, who.metadata(), || {
        CaseCommand {
            actor: actor.clone(),
            at: Timestamp::now(),
            action: action(),
        }
    })
    .await;
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(e) => {
            let current = match &e {
                CommandError::VersionConflict { .. } => case_now(state, id).await,
                _ => None,
            };
            return Err(command_error(e, current));
        }
    };
    let case = case_after(state, id, outcome).await?;
    Ok(HttpResponse::Ok().json(case))
}

/// The case once the projector has applied `outcome` (or as it is, if nothing changed).
async fn case_after(
    state: &AppState,
    id: Uuid,
    outcome: commands::Outcome,
) -> Result<serde_json::Value, ApiError> {
    if let Some(appended) = outcome {
        let last = appended.positions.last().copied().unwrap_or(0);
        wait_for(state, last).await?;
    }
    case_json(state, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no case {id}")))
}

/// The current case for a `version_conflict` answer, after the projector has caught up.
async fn case_now(state: &AppState, id: Uuid) -> Option<serde_json::Value> {
    let head = state.store.head_position().await.ok()?;
    let _ = tokio::time::timeout(Duration::from_secs(2), wait_for(state, head)).await;
    case_json(state, id).await.ok().flatten()
}

pub(super) fn command_error(e: CommandError, current: Option<serde_json::Value>) -> ApiError {
    match e {
        CommandError::Domain(d) => d.into(),
        CommandError::VersionConflict { actual } => {
            let err = ApiError::conflict(
                "version_conflict",
                format!("the case has changed; its current version is {actual}"),
            );
            match current {
                Some(c) => err.with_current(c),
                None => err,
            }
        }
        CommandError::Store(events::StoreError::Unavailable(why)) => {
            tracing::error!("event store unavailable: {why}");
            ApiError::unavailable("the event store is unavailable; try again")
        }
        other => ApiError::internal(other),
    }
}

/// `If-Match: "3"` (quotes optional) → `Some(3)`.
fn if_match(req: &HttpRequest) -> Result<Option<u64>, ApiError> {
    let Some(value) = req.headers().get("if-match") else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("").trim();
    let text = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
    text.parse::<u64>().map(Some).map_err(|_| {
        ApiError::bad_request(
            "bad_if_match",
            "If-Match must be a case version, e.g. \"3\"",
        )
    })
}

pub(super) fn case_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(id).map_err(|_| ApiError::not_found(format!("no case {id:?}")))
}

async fn history(
    state: web::Data<AppState>,
    _who: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = case_id(&id)?;
    let stream = events::domain::case::stream_name(id);
    let records = state
        .store
        .read_stream(&stream, 1, events::store::MAX_READ_LIMIT)
        .await
        .map_err(|e| command_error(e.into(), None))?;
    if records.is_empty() {
        return Err(ApiError::not_found(format!("no case {id}")));
    }
    let events = records
        .into_iter()
        .map(|r| EventEnvelope::decode(r).map(|env| AuditEvent::from_envelope(&env)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(events))
}

async fn stats(state: web::Data<AppState>, _who: Authenticated) -> Result<HttpResponse, ApiError> {
    let stats = state
        .projector
        .send(WithModels::new(|m: &Projections| json!(m.stats())))
        .await
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(stats))
}

/// Metadata of a request by this user.
impl Authenticated {
    pub fn metadata(&self) -> Metadata {
        Metadata::for_request(Some(self.0.user_id))
    }
}
