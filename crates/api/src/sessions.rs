//! Session routes under `/api/chat` that need no agent: list, stats,
//! get, delete, archive, unarchive, config, activate. Literal segments (`stats`) are
//! routed before `{session_id}` by axum's matcher, as the contract requires.

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery};
use super::health::lenient_bool;
use parachute_core::app::AppState;
use parachute_core::chat::transcript::{self, SessionTranscript, TranscriptMessage};
use parachute_core::db::{ListFilter, SessionRow};
use parachute_core::sessions::{self as core, ConfigUpdate};
use parachute_core::util::time::to_session_format;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_sessions))
        .routes(routes!(session_stats))
        .routes(routes!(get_session, delete_session))
        .routes(routes!(archive_session))
        .routes(routes!(unarchive_session))
        .routes(routes!(update_session_config))
        .routes(routes!(activate_session))
        .routes(routes!(get_transcript))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct TranscriptQuery {
    /// Only the last segment after compaction (default true).
    #[serde(default = "yes", deserialize_with = "lenient_bool")]
    after_compact: bool,
    /// Load this segment.
    segment: Option<usize>,
    /// Everything (overrides the others).
    #[serde(default, deserialize_with = "lenient_bool")]
    full: bool,
}

fn yes() -> bool {
    true
}

/// The CLI's raw transcript of a session, split at compaction boundaries.
#[utoipa::path(get, path = "/api/chat/{session_id}/transcript", tag = "sessions",
    params(("session_id" = String, Path, description = "Session id"), TranscriptQuery),
    responses((status = 200, description = "Segmented transcript", body = SessionTranscript), (status = 404, description = "Transcript not found")))]
async fn get_transcript(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<TranscriptQuery>,
) -> Result<Json<SessionTranscript>, ApiError> {
    let chat = s.chat.clone();
    let sid = id.clone();
    let found = tokio::task::spawn_blocking(move || {
        chat.transcript_path(&sid)
            .and_then(|p| transcript::read_events(&p).ok())
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let events = found.ok_or_else(|| ApiError::NotFound("Transcript not found".into()))?;
    Ok(Json(transcript::segmented(
        &id,
        events,
        q.after_compact,
        q.segment,
        q.full,
    )))
}

/// SessionJSON: camelCase, every key present.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionJson {
    pub id: String,
    pub title: Option<String>,
    pub module: String,
    pub source: String,
    pub working_directory: Option<String>,
    pub vault_root: Option<String>,
    pub model: Option<String>,
    pub message_count: i64,
    pub archived: bool,
    pub created_at: String,
    pub last_accessed: String,
    pub continued_from: Option<String>,
    pub agent_type: Option<String>,
    /// `null` means `full`.
    pub trust_level: Option<String>,
    pub linked_bot_platform: Option<String>,
    pub linked_bot_chat_id: Option<String>,
    pub linked_bot_chat_type: Option<String>,
    pub workspace_id: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

impl From<SessionRow> for SessionJson {
    fn from(r: SessionRow) -> Self {
        SessionJson {
            metadata: r
                .metadata
                .as_deref()
                .and_then(|m| serde_json::from_str(m).ok()),
            id: r.id,
            title: r.title,
            module: r.module,
            source: r.source,
            working_directory: r.working_directory,
            vault_root: r.vault_root,
            model: r.model,
            message_count: r.message_count.unwrap_or(0),
            archived: r.archived.unwrap_or(0) != 0,
            created_at: to_session_format(&r.created_at),
            last_accessed: to_session_format(&r.last_accessed),
            continued_from: r.continued_from,
            agent_type: r.agent_type,
            trust_level: r.trust_level,
            linked_bot_platform: r.linked_bot_platform,
            linked_bot_chat_id: r.linked_bot_chat_id,
            linked_bot_chat_type: r.linked_bot_chat_type,
            workspace_id: r.workspace_id,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionJson>,
}

#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only sessions of this module.
    module: Option<String>,
    /// Title contains this text.
    search: Option<String>,
    /// 1..=1000, default 100.
    limit: Option<i64>,
    /// Sessions to skip, default 0.
    offset: Option<i64>,
    /// Archived sessions instead of active ones.
    #[serde(default, deserialize_with = "lenient_bool")]
    archived: bool,
    /// Only sessions of this workspace.
    #[serde(alias = "workspace_id")]
    workspace_id: Option<String>,
}

/// Checks `value` lies in `lo..=hi`, answering the contract's 422 otherwise.
pub fn check_range(name: &str, value: i64, lo: i64, hi: i64) -> Result<i64, ApiError> {
    if value < lo {
        return Err(ApiError::invalid(
            "greater_than_equal",
            vec![json!("query"), json!(name)],
            format!("Input should be greater than or equal to {lo}"),
            json!(value.to_string()),
            Some(json!({"ge": lo})),
        ));
    }
    if value > hi {
        return Err(ApiError::invalid(
            "less_than_equal",
            vec![json!("query"), json!(name)],
            format!("Input should be less than or equal to {hi}"),
            json!(value.to_string()),
            Some(json!({"le": hi})),
        ));
    }
    Ok(value)
}

/// List sessions, most recently used first.
#[utoipa::path(get, path = "/api/chat", tag = "sessions", params(ListQuery),
    responses((status = 200, body = SessionList), (status = 422, description = "Bad parameter")))]
async fn list_sessions(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<SessionList>, ApiError> {
    let filter = ListFilter {
        module: q.module.filter(|m| !m.is_empty()),
        search: q.search.filter(|m| !m.is_empty()),
        archived: q.archived,
        workspace_id: q.workspace_id.filter(|m| !m.is_empty()),
        limit: check_range("limit", q.limit.unwrap_or(100), 1, 1000)?,
        offset: check_range("offset", q.offset.unwrap_or(0), 0, i64::from(i32::MAX))?,
    };
    let rows = s.store.list_sessions(&filter).await?;
    Ok(Json(SessionList {
        sessions: rows.into_iter().map(SessionJson::from).collect(),
    }))
}

/// Session counts.
#[derive(Serialize, ToSchema)]
struct SessionCounts {
    /// Every session, archived included.
    total: i64,
    /// Sessions not archived.
    active: i64,
    archived: i64,
    /// Sessions per module: `chat`, `daily` and `build` always (0 when none), then any
    /// other module, by name.
    #[schema(value_type = std::collections::HashMap<String, i64>)]
    by_module: serde_json::Map<String, Value>,
}

/// Session counts: total, active, archived, per module.
#[utoipa::path(get, path = "/api/chat/stats", tag = "sessions",
    responses((status = 200, description = "Counts", body = SessionCounts)))]
async fn session_stats(State(s): State<AppState>) -> Result<Json<SessionCounts>, ApiError> {
    let st = s.store.session_stats().await?;
    let mut by_module = serde_json::Map::new();
    for m in ["chat", "daily", "build"] {
        by_module.insert(m.into(), json!(0));
    }
    for (m, n) in st.by_module {
        by_module.insert(m, json!(n));
    }
    Ok(Json(SessionCounts {
        total: st.total,
        active: st.total - st.archived,
        archived: st.archived,
        by_module,
    }))
}

/// SessionJSON plus the conversation.
#[derive(Serialize, ToSchema)]
struct SessionWithMessages {
    #[serde(flatten)]
    session: SessionJson,
    /// From the CLI's transcript of the session; empty when there is none.
    messages: Vec<TranscriptMessage>,
}

/// One session with its messages.
#[utoipa::path(get, path = "/api/chat/{session_id}", tag = "sessions",
    params(("session_id" = String, Path, description = "Session id")),
    responses((status = 200, body = SessionWithMessages),
        (status = 404, description = "Session not found")))]
async fn get_session(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SessionWithMessages>, ApiError> {
    let row = s
        .store
        .get_session(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound("Session not found".into()))?;
    // Messages come from the CLI's transcript of the session.
    let messages = s.chat.stored_messages(&id).await;
    Ok(Json(SessionWithMessages {
        session: SessionJson::from(row),
        messages,
    }))
}

/// The session was deleted.
#[derive(Serialize, ToSchema)]
struct SessionDeleted {
    /// Always `true`.
    success: bool,
    /// The deleted session's id.
    deleted: String,
}

/// Delete a session (it stays deleted).
#[utoipa::path(delete, path = "/api/chat/{session_id}", tag = "sessions",
    params(("session_id" = String, Path, description = "Session id")),
    responses((status = 200, body = SessionDeleted), (status = 404, description = "Session not found")))]
async fn delete_session(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SessionDeleted>, ApiError> {
    if !s.store.delete_session(&id).await? {
        return Err(ApiError::NotFound("Session not found".into()));
    }
    // Its warm CLI goes too; a running turn is interrupted.
    s.chat.pool.remove(&id);
    if let Some(turn) = s.chat.hub.active(&id) {
        turn.request_abort();
    }
    Ok(Json(SessionDeleted {
        success: true,
        deleted: id,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct SessionEnvelope {
    success: bool,
    session: SessionJson,
}

fn envelope(row: SessionRow) -> Json<SessionEnvelope> {
    Json(SessionEnvelope {
        success: true,
        session: row.into(),
    })
}

/// Archive a session.
#[utoipa::path(post, path = "/api/chat/{session_id}/archive", tag = "sessions",
    params(("session_id" = String, Path, description = "Session id")),
    responses((status = 200, body = SessionEnvelope), (status = 404, description = "Session not found")))]
async fn archive_session(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SessionEnvelope>, ApiError> {
    Ok(envelope(core::set_archived(&s.store, &id, true).await?))
}

/// Unarchive a session.
#[utoipa::path(post, path = "/api/chat/{session_id}/unarchive", tag = "sessions",
    params(("session_id" = String, Path, description = "Session id")),
    responses((status = 200, body = SessionEnvelope), (status = 404, description = "Session not found")))]
async fn unarchive_session(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SessionEnvelope>, ApiError> {
    Ok(envelope(core::set_archived(&s.store, &id, false).await?))
}

/// SessionConfigUpdate: camelCase, snake_case accepted too.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionConfigBody {
    #[serde(default, alias = "trust_level")]
    trust_level: Option<String>,
    #[serde(default)]
    module: Option<String>,
    #[serde(default, alias = "config_overrides")]
    #[schema(value_type = Option<Object>)]
    config_overrides: Option<Value>,
    #[serde(default, alias = "workspace_id")]
    workspace_id: Option<String>,
    #[serde(default, alias = "response_mode")]
    response_mode: Option<String>,
    #[serde(default, alias = "mention_pattern")]
    mention_pattern: Option<String>,
}

impl From<SessionConfigBody> for ConfigUpdate {
    fn from(b: SessionConfigBody) -> Self {
        ConfigUpdate {
            trust_level: b.trust_level,
            module: b.module,
            config_overrides: b.config_overrides,
            workspace_id: b.workspace_id,
            response_mode: b.response_mode,
            mention_pattern: b.mention_pattern,
        }
    }
}

/// Update a session's trust level, module, overrides, workspace or bot settings.
#[utoipa::path(patch, path = "/api/chat/{session_id}/config", tag = "sessions",
    params(("session_id" = String, Path, description = "Session id")), request_body = SessionConfigBody,
    responses((status = 200, body = SessionEnvelope), (status = 400, description = "Invalid trust level / no fields"),
        (status = 404, description = "Session not found")))]
async fn update_session_config(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SessionConfigBody>,
) -> Result<Json<SessionEnvelope>, ApiError> {
    Ok(envelope(
        s.sessions
            .update_config(&s.store, &id, &body.into())
            .await?,
    ))
}

/// Activate a bot session waiting for initialization.
#[utoipa::path(post, path = "/api/chat/{session_id}/activate", tag = "sessions",
    params(("session_id" = String, Path, description = "Session id")), request_body = SessionConfigBody,
    responses((status = 200, body = SessionEnvelope), (status = 400, description = "Not pending / invalid trust level"),
        (status = 404, description = "Session not found")))]
async fn activate_session(
    State(s): State<AppState>,
    bots: Option<axum::Extension<std::sync::Arc<parachute_bots::Bots>>>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SessionConfigBody>,
) -> Result<Json<SessionEnvelope>, ApiError> {
    let row = s.sessions.activate(&s.store, &id, &body.into()).await?;
    // The chat hears it may start (off the request's path: the platform may be slow).
    if let Some(axum::Extension(bots)) = bots {
        let r = row.clone();
        tokio::spawn(async move { bots.session_activated(&r).await });
    }
    Ok(envelope(row))
}
