//! `/api/contexts…`: context folders, their chain, and the folders
//! chosen per session.

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery};
use super::health::lenient_bool;
use parachute_core::app::AppState;
use parachute_core::vault::context_folders::{self, ContextChain, ContextFolderList};
use parachute_core::vault::VaultPathError;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_folders))
        .routes(routes!(folder_chain))
        .routes(routes!(get_session_contexts, put_session_contexts))
        .routes(routes!(add_session_context))
        .routes(routes!(remove_session_context))
}

fn path_error(e: VaultPathError) -> ApiError {
    match e {
        VaultPathError::VaultMissing(m) => ApiError::Internal(m),
        other => ApiError::Forbidden(format!("Access denied: {other}")),
    }
}

/// Folders of the vault that hold an `AGENTS.md` or `CLAUDE.md`.
#[utoipa::path(get, path = "/api/contexts/folders", tag = "contexts",
    responses((status = 200, description = "The folders with a context file", body = ContextFolderList)))]
async fn list_folders(State(s): State<AppState>) -> Result<Json<ContextFolderList>, ApiError> {
    let gate = s.settings.vault_gate();
    let v = tokio::task::spawn_blocking(move || context_folders::folders(&gate))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(path_error)?;
    Ok(Json(v))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ChainQuery {
    /// Comma-separated folders (an empty element = the vault root).
    folders: String,
    /// Token budget, default 50000.
    max_tokens: Option<usize>,
}

fn split_folders(s: &str) -> Vec<String> {
    s.split(',').map(|f| f.trim().to_string()).collect()
}

/// The context files of some folders, with token estimates.
#[utoipa::path(get, path = "/api/contexts/chain", tag = "contexts", params(ChainQuery),
    responses((status = 200, description = "The context files, with token estimates", body = ContextChain), (status = 403, description = "Outside the vault")))]
async fn folder_chain(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<ChainQuery>,
) -> Result<Json<ContextChain>, ApiError> {
    let gate = s.settings.vault_gate();
    let folders = split_folders(&q.folders);
    let max = q.max_tokens.unwrap_or(50_000);
    let v = tokio::task::spawn_blocking(move || context_folders::chain(&gate, &folders, max))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(path_error)?;
    Ok(Json(v))
}

async fn require_session(s: &AppState, id: &str) -> Result<(), ApiError> {
    match s.store.get_session(id).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::NotFound("Session not found".into())),
    }
}

/// A folder must be a folder of the vault (and not `.parachute`).
fn check_folder(s: &AppState, folder: &str) -> Result<(), ApiError> {
    let p = s
        .settings
        .vault_gate()
        .resolve(folder)
        .map_err(path_error)?;
    if !p.is_dir() {
        return Err(ApiError::BadRequest(format!(
            "Not a folder of the vault: {folder}"
        )));
    }
    Ok(())
}

/// A session's context folders.
#[derive(Serialize, ToSchema)]
struct SessionContexts {
    session_id: String,
    /// In the order they were added.
    folder_paths: Vec<String>,
    /// The chain of `folder_paths`; `null` unless asked for with `include_chain`.
    chain: Option<ContextChain>,
}

async fn session_answer(
    s: &AppState,
    id: &str,
    include_chain: bool,
) -> Result<Json<SessionContexts>, ApiError> {
    let folders = s.store.session_contexts(id).await?;
    let chain = if include_chain {
        let gate = s.settings.vault_gate();
        let f = folders.clone();
        let v = tokio::task::spawn_blocking(move || context_folders::chain(&gate, &f, 50_000))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map_err(path_error)?;
        Some(v)
    } else {
        None
    };
    Ok(Json(SessionContexts {
        session_id: id.to_string(),
        folder_paths: folders,
        chain,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct IncludeChain {
    #[serde(default, deserialize_with = "lenient_bool")]
    include_chain: bool,
}

/// The context folders chosen for a session.
#[utoipa::path(get, path = "/api/contexts/session/{session_id}", tag = "contexts",
    params(("session_id" = String, Path, description = "Session id"), IncludeChain),
    responses((status = 200, description = "The session's context folders", body = SessionContexts), (status = 404, description = "Session not found")))]
async fn get_session_contexts(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<IncludeChain>,
) -> Result<Json<SessionContexts>, ApiError> {
    require_session(&s, &id).await?;
    session_answer(&s, &id, q.include_chain).await
}

#[derive(Deserialize, ToSchema)]
struct FolderPaths {
    folder_paths: Vec<String>,
}

/// Replace a session's context folders.
#[utoipa::path(put, path = "/api/contexts/session/{session_id}", tag = "contexts", request_body = FolderPaths,
    params(("session_id" = String, Path, description = "Session id")),
    responses((status = 200, description = "The session's context folders", body = SessionContexts), (status = 404, description = "Session not found")))]
async fn put_session_contexts(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<FolderPaths>,
) -> Result<Json<SessionContexts>, ApiError> {
    require_session(&s, &id).await?;
    for f in &b.folder_paths {
        check_folder(&s, f)?;
    }
    s.store.set_session_contexts(&id, &b.folder_paths).await?;
    session_answer(&s, &id, false).await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct FolderQuery {
    folder_path: String,
}

/// Add a context folder to a session.
#[utoipa::path(post, path = "/api/contexts/session/{session_id}/add", tag = "contexts",
    params(("session_id" = String, Path, description = "Session id"), FolderQuery),
    responses((status = 200, description = "The session's context folders", body = SessionContexts), (status = 404, description = "Session not found")))]
async fn add_session_context(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<FolderQuery>,
) -> Result<Json<SessionContexts>, ApiError> {
    require_session(&s, &id).await?;
    check_folder(&s, &q.folder_path)?;
    s.store.add_session_context(&id, &q.folder_path).await?;
    session_answer(&s, &id, false).await
}

/// Remove a context folder from a session.
#[utoipa::path(delete, path = "/api/contexts/session/{session_id}/remove", tag = "contexts",
    params(("session_id" = String, Path, description = "Session id"), FolderQuery),
    responses((status = 200, description = "The session's context folders", body = SessionContexts), (status = 404, description = "Session not found")))]
async fn remove_session_context(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<FolderQuery>,
) -> Result<Json<SessionContexts>, ApiError> {
    require_session(&s, &id).await?;
    s.store.remove_session_context(&id, &q.folder_path).await?;
    session_answer(&s, &id, false).await
}
