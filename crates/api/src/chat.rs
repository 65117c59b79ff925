//! `POST /api/chat` and the stream controls: the turn's events as
//! SSE (`id:` = sequence number, `data:` = JSON), re-attach with `Last-Event-ID`,
//! heartbeats, stream status, active streams, abort.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::error::ApiError;
use super::extract::ApiJson;
use parachute_core::app::AppState;
use parachute_core::chat::{Answer, PendingPermission, PromptKind};
use parachute_core::chat::{ChatRequest, Turn};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(post_chat))
        .routes(routes!(reattach))
        .routes(routes!(stream_status))
        .routes(routes!(active_streams))
        .routes(routes!(abort))
        .routes(routes!(answer_question))
        .routes(routes!(list_permissions))
        .routes(routes!(grant_permission))
        .routes(routes!(deny_permission))
}

/// The SSE body of a turn from event `after` on; ends when the turn is over.
fn sse(turn: Arc<Turn>, after: usize, heartbeat: Duration) -> Response {
    let stream = async_stream(turn, after, heartbeat);
    let mut res = Response::new(Body::from_stream(stream));
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
    // No blanket `Access-Control-Allow-Origin: *` (the original sent one): the CORS layer
    // answers for configured origins, so other web pages cannot read a turn.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    res
}

fn async_stream(
    turn: Arc<Turn>,
    after: usize,
    heartbeat: Duration,
) -> impl futures_core::Stream<Item = Result<Bytes, Infallible>> {
    futures_util::stream::unfold((turn, after, false), move |(turn, pos, done)| async move {
        if done {
            return None;
        }
        match tokio::time::timeout(heartbeat, turn.next_after(pos)).await {
            Err(_) => Some((
                Ok(Bytes::from_static(b": heartbeat\n\n")),
                (turn, pos, false),
            )),
            Ok(batch) if batch.is_empty() => None,
            Ok(batch) => {
                let last = batch.last().map(|(i, _)| *i).unwrap_or(pos);
                let mut out = String::new();
                for (i, ev) in &batch {
                    out.push_str(&format!("id: {i}\ndata: {ev}\n\n"));
                }
                Some((Ok(Bytes::from(out)), (turn, last, false)))
            }
        }
    })
}

/// Run one agent turn and stream its events.
#[utoipa::path(post, path = "/api/chat", tag = "chat", request_body = ChatRequest,
    responses((status = 200, description = "SSE stream of turn events: `session`, `prompt_metadata`, `user_message`, `session`, then — ours, beyond the contract — `queued` (`{position, inUse, maxProcesses, message}`) while the turn waits for a CLI process at `max_cli_processes`, then `init`, `model`, `text`…, `tool_use`, `tool_result`, `user_question`, `permission_request`, and `done` or `error` (a full queue ends with an `error` saying the server is busy). Each `data:` line is one `TurnEvent`.", body = parachute_core::chat::TurnEvent, content_type = "text/event-stream"),
        (status = 415, description = "Content-Type is not application/json"),
        (status = 422, description = "Malformed body")))]
async fn post_chat(State(s): State<AppState>, ApiJson(req): ApiJson<ChatRequest>) -> Response {
    // The core refuses it too (for bots and the scheduler); HTTP answers the
    // contract's 422 before any stream starts.
    if let Some((i, name)) = req.blocked_attachment() {
        return ApiError::invalid(
            "value_error",
            vec![
                json!("body"),
                json!("attachments"),
                json!(i),
                json!("fileName"),
            ],
            format!("File type not allowed: {name}"),
            json!(name),
            None,
        )
        .into_response();
    }
    let turn = s.chat.start(req).await;
    sse(turn, 0, s.settings.sse_heartbeat)
}

fn last_event_id(headers: &HeaderMap) -> usize {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Re-attach to a session's running or just-finished turn, replaying after `Last-Event-ID`.
#[utoipa::path(get, path = "/api/chat/{session_id}/stream", tag = "chat",
    params(("session_id" = String, Path, description = "Session id"),
        ("Last-Event-ID" = Option<String>, Header, description = "Last event id already seen")),
    responses((status = 200, description = "SSE stream", content_type = "text/event-stream"),
        (status = 404, description = "No turn for this session")))]
async fn reattach(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match s.chat.hub.get(&id) {
        Some(turn) => sse(turn, last_event_id(&headers), s.settings.sse_heartbeat),
        None => {
            ApiError::NotFound(format!("No active stream found for session {id}")).into_response()
        }
    }
}

/// Whether a turn is running for a session.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct StreamStatus {
    /// A turn is running.
    active: bool,
    session_id: String,
}

/// Whether a turn is running for a session.
#[utoipa::path(get, path = "/api/chat/{session_id}/stream-status", tag = "chat",
    params(("session_id" = String, Path, description = "Session id")),
    responses((status = 200, body = StreamStatus)))]
async fn stream_status(State(s): State<AppState>, Path(id): Path<String>) -> Json<StreamStatus> {
    Json(StreamStatus {
        active: s.chat.hub.active(&id).is_some(),
        session_id: id,
    })
}

/// Sessions with a running turn.
#[derive(Serialize, ToSchema)]
struct ActiveStreams {
    streams: Vec<ActiveStream>,
    /// Number of `streams`.
    count: usize,
}

/// A session with a running turn.
#[derive(Serialize, ToSchema)]
struct ActiveStream {
    session_id: String,
}

/// Sessions with a running turn.
#[utoipa::path(get, path = "/api/chat/active-streams", tag = "chat",
    responses((status = 200, body = ActiveStreams)))]
async fn active_streams(State(s): State<AppState>) -> Json<ActiveStreams> {
    let ids = s.chat.hub.active_ids();
    let count = ids.len();
    Json(ActiveStreams {
        streams: ids
            .into_iter()
            .map(|session_id| ActiveStream { session_id })
            .collect(),
        count,
    })
}

/// The abort was signalled.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct StreamAborted {
    /// Always `true`.
    success: bool,
    /// `Stream abort signal sent`.
    message: &'static str,
    session_id: String,
}

/// Interrupt a running turn; it ends with `done` carrying the partial response.
#[utoipa::path(post, path = "/api/chat/{session_id}/abort", tag = "chat",
    params(("session_id" = String, Path, description = "Session id")),
    responses((status = 200, body = StreamAborted),
        (status = 404, description = "No active stream")))]
async fn abort(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<StreamAborted>), ApiError> {
    let turn =
        s.chat.hub.active(&id).ok_or_else(|| {
            ApiError::NotFound(format!("No active stream found for session {id}"))
        })?;
    turn.request_abort();
    Ok((
        StatusCode::OK,
        Json(StreamAborted {
            success: true,
            message: "Stream abort signal sent",
            session_id: id,
        }),
    ))
}

#[derive(Deserialize, ToSchema)]
struct AnswerBody {
    #[serde(default)]
    request_id: Option<String>,
    /// Answers by question text.
    #[serde(default)]
    #[schema(value_type = Object)]
    answers: Value,
}

/// The answers were handed to the waiting turn.
#[derive(Serialize, ToSchema)]
struct AnswerSubmitted {
    /// Always `true`.
    success: bool,
    /// `Answers submitted`.
    message: &'static str,
    session_id: String,
    request_id: String,
}

/// Answer an AskUserQuestion (`user_question` event).
#[utoipa::path(post, path = "/api/chat/{session_id}/answer", tag = "chat", request_body = AnswerBody,
    params(("session_id" = String, Path, description = "Session id")),
    responses((status = 200, body = AnswerSubmitted),
        (status = 400, description = "request_id is required"), (status = 404, description = "No such question")))]
async fn answer_question(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AnswerBody>,
) -> Result<Json<AnswerSubmitted>, ApiError> {
    let rid = body
        .request_id
        .filter(|r| !r.is_empty())
        .ok_or_else(|| ApiError::BadRequest("request_id is required".into()))?;
    if s.chat.hub.active(&id).is_none() {
        return Err(ApiError::NotFound(format!("No active session found: {id}")));
    }
    let answers = if body.answers.is_object() {
        body.answers
    } else {
        json!({})
    };
    s.chat
        .pending
        .answer(&id, &rid, PromptKind::Question, Answer::Answers(answers))
        .map_err(|_| ApiError::NotFound(format!("No pending question with request_id: {rid}")))?;
    Ok(Json(AnswerSubmitted {
        success: true,
        message: "Answers submitted",
        session_id: id,
        request_id: rid,
    }))
}

/// A session's permission prompts waiting for the owner.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct PendingPermissions {
    /// Oldest first.
    pending: Vec<PendingPermission>,
    session_id: String,
}

/// Tool-permission prompts waiting for the owner.
#[utoipa::path(get, path = "/api/chat/{session_id}/permissions", tag = "chat",
    params(("session_id" = String, Path, description = "Session id")),
    responses((status = 200, body = PendingPermissions)))]
async fn list_permissions(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Json<PendingPermissions> {
    Json(PendingPermissions {
        pending: s.chat.pending.pending_permissions(&id),
        session_id: id,
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct GrantBody {
    #[serde(alias = "request_id")]
    request_id: String,
    #[serde(default)]
    pattern: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct DenyBody {
    #[serde(alias = "request_id")]
    request_id: String,
}

const NOT_PENDING: &str = "Permission request not found or already resolved";

/// The tool call was allowed.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct PermissionGranted {
    /// Always `true`.
    success: bool,
    session_id: String,
    request_id: String,
    /// The pattern remembered with the grant, as sent; null when none was.
    pattern: Option<String>,
}

/// The tool call was denied.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct PermissionDenied {
    /// Always `true`.
    success: bool,
    session_id: String,
    request_id: String,
}

/// Allow a pending tool call.
#[utoipa::path(post, path = "/api/chat/{session_id}/permissions/grant", tag = "chat", request_body = GrantBody,
    params(("session_id" = String, Path, description = "Session id")),
    responses((status = 200, body = PermissionGranted),
        (status = 404, description = "Not pending")))]
async fn grant_permission(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<GrantBody>,
) -> Result<Json<PermissionGranted>, ApiError> {
    s.chat
        .pending
        .answer(
            &id,
            &body.request_id,
            PromptKind::Permission,
            Answer::Grant(body.pattern.clone()),
        )
        .map_err(|_| ApiError::NotFound(NOT_PENDING.into()))?;
    Ok(Json(PermissionGranted {
        success: true,
        session_id: id,
        request_id: body.request_id,
        pattern: body.pattern,
    }))
}

/// Deny a pending tool call.
#[utoipa::path(post, path = "/api/chat/{session_id}/permissions/deny", tag = "chat", request_body = DenyBody,
    params(("session_id" = String, Path, description = "Session id")),
    responses((status = 200, body = PermissionDenied),
        (status = 404, description = "Not pending")))]
async fn deny_permission(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<DenyBody>,
) -> Result<Json<PermissionDenied>, ApiError> {
    s.chat
        .pending
        .answer(&id, &body.request_id, PromptKind::Permission, Answer::Deny)
        .map_err(|_| ApiError::NotFound(NOT_PENDING.into()))?;
    Ok(Json(PermissionDenied {
        success: true,
        session_id: id,
        request_id: body.request_id,
    }))
}
