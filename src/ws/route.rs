//! `GET /api/v1/ws`: the checks before the upgrade (origin, connect attempts, capacity), the
//! upgrade (our own outbound queue, `outbound/`, written straight into the socket where it can
//! be), the token check after it (an `error` message and a close on failure, as the
//! protocol says), and the start of the session actor.
//!
//! Every refusal is logged with its reason (at `warn` for the limits, 429 and 503; `info` for
//! an origin and a failed token check), inside the request's span, so with its request id;
//! never with the token.

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::outbound::Outbound;
use super::protocol;
use super::registry::{Admit, Refusal};
use super::session::auth_failure;
use super::session::WsSession;
use super::socket::ConnectionSocket;
use super::WsContext;
use crate::http::authn::authenticate;
use crate::http::client_ip::client_ip;
use crate::http::problem::ApiError;
use crate::http::request_id::RequestId;
use crate::metrics::{metrics, ConnectionStatus, RateLimit};
use crate::state::AppState;

/// The subprotocol the server speaks; `bearer.<token>` may come beside it.
const SUBPROTOCOL: &str = "adjudicator.v1";

#[derive(Deserialize)]
struct WsQuery {
    token: Option<String>,
}

pub async fn upgrade(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    ws: web::Data<WsContext>,
) -> Result<HttpResponse, ApiError> {
    if let Some(origin) = req.headers().get("origin") {
        let origin = origin.to_str().unwrap_or("");
        let host = req
            .headers()
            .get("host")
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()));
        if !super::origin::allowed(&ws.allowed_origins, origin, host) {
            metrics().connection(ConnectionStatus::RejectedOrigin);
            tracing::info!(
                status = 403,
                reason = "origin",
                origin = ?truncated(origin),
                "WebSocket refused: origin not allowed"
            );
            return Err(ApiError::forbidden("this origin may not open a WebSocket"));
        }
    }
    let ip = client_ip(&req);
    match ws.registry.send(Admit { ip }).await {
        Ok(Ok(())) => {}
        Ok(Err(Refusal::RateLimited(wait))) => {
            metrics().connection(ConnectionStatus::RejectedRateLimited);
            metrics().rate_limited(RateLimit::ConnectAttempts);
            tracing::warn!(
                status = 429,
                reason = "connect_attempts",
                %ip,
                retry_after_seconds = wait.0.as_secs(),
                "WebSocket refused: too many connect attempts from this address"
            );
            return Err(ApiError::rate_limited(wait.0));
        }
        Ok(Err(Refusal::AtCapacity)) => {
            metrics().connection(ConnectionStatus::RejectedCapacity);
            metrics().rate_limited(RateLimit::MaxConnections);
            tracing::warn!(
                status = 503,
                reason = "max_connections",
                "WebSocket refused: the node is at its connection limit"
            );
            return Err(ApiError::unavailable(
                "the server is at its connection limit",
            ));
        }
        Ok(Err(Refusal::Draining)) => {
            metrics().connection(ConnectionStatus::RejectedCapacity);
            tracing::info!(
                status = 503,
                reason = "draining",
                "WebSocket refused: the node is shutting down"
            );
            return Err(ApiError::unavailable("the server is shutting down"));
        }
        Err(e) => return Err(ApiError::internal(e)),
    }
    let (token, offered_subprotocol) = token_of(&req);
    let protocols: &[&str] = if offered_subprotocol {
        &[SUBPROTOCOL]
    } else {
        &[]
    };
    // actix-ws makes the handshake and parses what the client sends; what the server sends is
    // our own queue (`outbound/`: pre-encoded frames, several to a write). actix-ws's body is
    // kept inside ours, unused, because its drop is what tells the inbound stream that the
    // connection is gone.
    let (response, session, stream) = actix_ws::handle_with_protocols(&req, body, protocols)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "not_websocket", e.to_string()))?;
    drop(session);
    let (out, outbound_body) = Outbound::start(
        ws.session.outbound_messages,
        ws.session.outbound_bytes,
        ws.session.heartbeat_interval * ws.session.heartbeat_missed,
    );
    let connection = req.conn_data::<Arc<ConnectionSocket>>();
    let (response, actix_ws_body) = response.into_parts();
    let outbound_body = outbound_body.keeping(actix_ws_body).direct_to(connection);
    let response = response.set_body(outbound_body).map_into_boxed_body();
    let stream = stream
        .max_frame_size(ws.max_frame_bytes)
        .aggregate_continuations()
        .max_continuation_size(ws.max_frame_bytes);
    let state = state.get_ref().clone();
    let ws = ws.get_ref().clone();
    let socket = connection.map(Arc::downgrade);
    let request_id = RequestId::of(&req);
    let span = tracing::Span::current();
    let checking = async move {
        let out = out.with_socket(socket);
        let started = Instant::now();
        let checked = match token {
            Some(token) => authenticate(&state, &token).await,
            None => Err(ApiError::unauthorized(
                "token_missing",
                "no token was given",
            )),
        };
        metrics().auth_latency(started.elapsed().as_secs_f64());
        match checked {
            Ok(principal) => {
                let registry = ws.registry.clone();
                WsSession::create(move |ctx| {
                    ctx.add_stream(stream);
                    WsSession::new(
                        principal,
                        ip,
                        registry,
                        state,
                        ws.session.clone(),
                        out,
                        &request_id,
                    )
                });
            }
            Err(e) => {
                if let Some(reason) = auth_failure(e.code) {
                    metrics().auth_failure(reason);
                }
                metrics().connection(ConnectionStatus::AuthFailed);
                let close = if e.status == StatusCode::FORBIDDEN {
                    4403
                } else {
                    4401
                };
                tracing::info!(
                    code = close,
                    reason = e.code,
                    "WebSocket closed: the token check failed"
                );
                let _ = out.text(protocol::error(None, e.code, &e.detail).into());
                out.close(close, e.code);
                drop(stream);
            }
        }
    };
    actix_web::rt::spawn(tracing::Instrument::instrument(checking, span));
    Ok(response)
}

/// At most 100 characters of a value a client sent, for a log line.
fn truncated(value: &str) -> &str {
    match value.char_indices().nth(100) {
        Some((i, _)) => &value[..i],
        None => value,
    }
}

/// The token from `?token=` or from a `bearer.<token>` subprotocol; and whether the client
/// offered subprotocols (then the answer names `adjudicator.v1`).
fn token_of(req: &HttpRequest) -> (Option<String>, bool) {
    let mut offered = false;
    let mut from_header = None;
    for value in req.headers().get_all("sec-websocket-protocol") {
        for p in value.to_str().unwrap_or("").split(',').map(str::trim) {
            if p == SUBPROTOCOL {
                offered = true;
            } else if let Some(t) = p.strip_prefix("bearer.") {
                offered = true;
                from_header = Some(t.to_owned());
            }
        }
    }
    let from_query = web::Query::<WsQuery>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.into_inner().token)
        .filter(|t| !t.is_empty());
    (from_query.or(from_header), offered)
}
