//! `/api/claude-code…`: browse the owner's Claude Code sessions and
//! adopt one as a Parachute session that resumes.

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::error::ApiError;
use super::extract::{ApiQuery, OptionalJson};
use super::sessions::check_range;
use parachute_core::app::AppState;
use parachute_core::chat::claude_code::{self, ClaudeCodeSession, ClaudeCodeSessionDetail};
use parachute_core::db::NewSession;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(recent))
        .routes(routes!(projects))
        .routes(routes!(sessions))
        .routes(routes!(session_detail))
        .routes(routes!(adopt))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct Limit {
    /// 1..=500, default 100.
    limit: Option<i64>,
}

/// Claude Code sessions, newest first.
#[derive(Serialize, ToSchema)]
struct ClaudeCodeSessionList {
    sessions: Vec<ClaudeCodeSession>,
}

/// Recent Claude Code sessions across projects, newest first.
#[utoipa::path(get, path = "/api/claude-code/recent", tag = "claude-code", params(Limit),
    responses((status = 200, description = "The sessions", body = ClaudeCodeSessionList)))]
async fn recent(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<Limit>,
) -> Result<Json<ClaudeCodeSessionList>, ApiError> {
    let limit = check_range("limit", q.limit.unwrap_or(100), 1, 500)? as usize;
    let root = s.settings.claude_code_dir.clone();
    let sessions = blocking(move || claude_code::sessions(&root, None, limit)).await?;
    Ok(Json(ClaudeCodeSessionList { sessions }))
}

/// A Claude Code project.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ClaudeCodeProject {
    /// The folder name under `projects/`.
    encoded_name: String,
    /// The working directory its sessions ran in.
    path: String,
    /// Number of its session transcripts.
    session_count: usize,
}

/// Claude Code projects, by path.
#[derive(Serialize, ToSchema)]
struct ClaudeCodeProjectList {
    projects: Vec<ClaudeCodeProject>,
}

/// Claude Code projects, by path.
#[utoipa::path(get, path = "/api/claude-code/projects", tag = "claude-code",
    responses((status = 200, description = "The projects", body = ClaudeCodeProjectList)))]
async fn projects(State(s): State<AppState>) -> Result<Json<ClaudeCodeProjectList>, ApiError> {
    let root = s.settings.claude_code_dir.clone();
    let projects = blocking(move || {
        claude_code::projects(&root)
            .into_iter()
            .map(|p| {
                let n = std::fs::read_dir(&p.dir)
                    .map(|rd| {
                        rd.flatten()
                            .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
                            .count()
                    })
                    .unwrap_or(0);
                ClaudeCodeProject {
                    encoded_name: p.encoded_name,
                    path: p.path,
                    session_count: n,
                }
            })
            .collect::<Vec<_>>()
    })
    .await?;
    Ok(Json(ClaudeCodeProjectList { projects }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ProjectPath {
    /// The project's path (or encoded name).
    path: String,
}

/// The sessions of one Claude Code project.
#[utoipa::path(get, path = "/api/claude-code/sessions", tag = "claude-code", params(ProjectPath),
    responses((status = 200, description = "The project's sessions, newest first", body = ClaudeCodeSessionList)))]
async fn sessions(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<ProjectPath>,
) -> Result<Json<ClaudeCodeSessionList>, ApiError> {
    let root = s.settings.claude_code_dir.clone();
    let sessions = blocking(move || claude_code::sessions(&root, Some(&q.path), 10_000)).await?;
    Ok(Json(ClaudeCodeSessionList { sessions }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct OptionalPath {
    path: Option<String>,
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("Claude Code session not found: {id}"))
}

/// One Claude Code session with its messages.
#[utoipa::path(get, path = "/api/claude-code/sessions/{session_id}", tag = "claude-code",
    params(("session_id" = String, Path, description = "Session id"), OptionalPath),
    responses((status = 200, description = "The session", body = ClaudeCodeSessionDetail),
        (status = 404, description = "Not found")))]
async fn session_detail(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<OptionalPath>,
) -> Result<Json<ClaudeCodeSessionDetail>, ApiError> {
    let root = s.settings.claude_code_dir.clone();
    let sid = id.clone();
    let found = blocking(move || {
        claude_code::find_session(&root, &sid, q.path.as_deref())
            .and_then(|(p, f)| claude_code::detail(&p, &f))
    })
    .await?;
    found.map(Json).ok_or_else(|| not_found(&id))
}

/// The outcome of an adoption.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ClaudeCodeAdoption {
    /// Always `true`.
    success: bool,
    already_adopted: bool,
    parachute_session_id: String,
    /// Messages of the adopted transcript; absent when it was already adopted.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    message_count: Option<i64>,
    message: String,
}

/// Adopt a Claude Code session as a Parachute session (its transcript is copied so the
/// CLI resumes it; the original files are not touched).
#[utoipa::path(post, path = "/api/claude-code/adopt/{session_id}", tag = "claude-code",
    params(("session_id" = String, Path, description = "Session id"), OptionalPath),
    responses((status = 200, description = "The adoption", body = ClaudeCodeAdoption),
        (status = 400, description = "Invalid working directory"), (status = 404, description = "Not found")))]
async fn adopt(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<OptionalPath>,
    OptionalJson(body): OptionalJson,
) -> Result<Json<ClaudeCodeAdoption>, ApiError> {
    let requested_wd = body
        .as_ref()
        .and_then(|v| v.get("workingDirectory"))
        .and_then(Value::as_str)
        .map(str::to_string);
    // A working directory the client names must pass the gate (protected paths too).
    if let Some(w) = requested_wd.as_deref().filter(|w| !w.is_empty()) {
        s.settings
            .vault_gate()
            .resolve(w)
            .map_err(|e| ApiError::BadRequest(format!("Invalid working directory '{w}': {e}")))?;
    }
    if s.store.get_session(&id).await?.is_some() {
        return Ok(Json(ClaudeCodeAdoption {
            success: true,
            already_adopted: true,
            parachute_session_id: id,
            message_count: None,
            message: "Session already adopted".into(),
        }));
    }
    let root = s.settings.claude_code_dir.clone();
    let sid = id.clone();
    let (project, file) =
        blocking(move || claude_code::find_session(&root, &sid, q.path.as_deref()))
            .await?
            .ok_or_else(|| not_found(&id))?;
    let info = {
        let f = file.clone();
        let p = claude_code::Project {
            encoded_name: project.encoded_name.clone(),
            dir: project.dir.clone(),
            path: project.path.clone(),
        };
        blocking(move || claude_code::info(&p, &f))
            .await?
            .ok_or_else(|| not_found(&id))?
    };
    // The working directory must lie in the vault; otherwise the session runs at its root.
    let gate = s.settings.vault_gate();
    let vault = gate.root().to_path_buf();
    let candidate = requested_wd.or_else(|| Some(info.cwd.clone()));
    let rel = candidate.as_deref().and_then(|c| {
        gate.resolve(c)
            .ok()
            .map(|p| parachute_core::vault::relative_to_vault(&vault, &p))
    });
    let cwd = match rel.as_deref().filter(|r| !r.is_empty()) {
        Some(r) => gate
            .resolve(r)
            .map_err(|e| ApiError::BadRequest(e.to_string()))?,
        None => vault
            .canonicalize()
            .map_err(|e| ApiError::Internal(e.to_string()))?,
    };
    let cfg = s.settings.claude_config_dir.clone();
    let (f, c) = (file.clone(), cwd.clone());
    blocking(move || claude_code::copy_for_resume(&f, &cfg, &c))
        .await?
        .map_err(|e| ApiError::internal_while("could not copy the transcript", e))?;
    let count = i64::try_from(info.message_count).unwrap_or(i64::MAX);
    s.store
        .insert_session(&NewSession {
            id: id.clone(),
            title: info.title,
            module: "chat".into(),
            source: "claude-code".into(),
            working_directory: rel.filter(|r| !r.is_empty()),
            model: info.model,
            message_count: count,
            ..Default::default()
        })
        .await?;
    Ok(Json(ClaudeCodeAdoption {
        success: true,
        already_adopted: false,
        parachute_session_id: id,
        message_count: Some(count),
        message: "Session adopted; continue it from Parachute".into(),
    }))
}
