//! `/api/workspaces…`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery};
use super::health::lenient_bool;
use super::sessions::{check_range, SessionJson};
use parachute_core::app::AppState;
use parachute_core::db::ListFilter;
use parachute_core::workspaces::{validate_slug, Workspace, WorkspaceCreate, WorkspaceUpdate};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_workspaces, create_workspace))
        .routes(routes!(get_workspace, update_workspace, delete_workspace))
        .routes(routes!(workspace_sessions))
}

/// `{workspaces: [WorkspaceJSON]}`.
#[derive(Serialize, ToSchema)]
struct WorkspaceList {
    workspaces: Vec<Workspace>,
}

/// `{workspace: WorkspaceJSON}`.
#[derive(Serialize, ToSchema)]
struct WorkspaceBody {
    workspace: Workspace,
}

/// `{deleted: slug}`.
#[derive(Serialize, ToSchema)]
struct WorkspaceDeleted {
    /// The slug of the deleted workspace.
    deleted: String,
}

/// `{workspace, sessions}`.
#[derive(Serialize, ToSchema)]
struct WorkspaceSessions {
    workspace: Workspace,
    sessions: Vec<SessionJson>,
}

/// List workspaces.
#[utoipa::path(get, path = "/api/workspaces", tag = "workspaces",
    responses((status = 200, description = "Every workspace", body = WorkspaceList)))]
async fn list_workspaces(State(s): State<AppState>) -> Result<Json<WorkspaceList>, ApiError> {
    Ok(Json(WorkspaceList {
        workspaces: s.workspaces.list().await?,
    }))
}

/// Create a workspace; its slug is derived from the name.
#[utoipa::path(post, path = "/api/workspaces", tag = "workspaces", request_body = WorkspaceCreate,
    responses((status = 201, description = "The new workspace", body = WorkspaceBody), (status = 400, description = "Invalid field")))]
async fn create_workspace(
    State(s): State<AppState>,
    ApiJson(body): ApiJson<WorkspaceCreate>,
) -> Result<(StatusCode, Json<WorkspaceBody>), ApiError> {
    let workspace = s.workspaces.create(body).await?;
    Ok((StatusCode::CREATED, Json(WorkspaceBody { workspace })))
}

/// One workspace.
#[utoipa::path(get, path = "/api/workspaces/{slug}", tag = "workspaces",
    params(("slug" = String, Path, description = "Workspace slug")),
    responses((status = 200, body = WorkspaceBody), (status = 400, description = "Invalid slug"), (status = 404, description = "Not found")))]
async fn get_workspace(
    State(s): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Json<WorkspaceBody>, ApiError> {
    Ok(Json(WorkspaceBody {
        workspace: s.workspaces.get(&slug).await?,
    }))
}

/// Change some fields of a workspace.
#[utoipa::path(put, path = "/api/workspaces/{slug}", tag = "workspaces",
    params(("slug" = String, Path, description = "Workspace slug")), request_body = WorkspaceUpdate,
    responses((status = 200, body = WorkspaceBody), (status = 400, description = "Invalid"), (status = 404, description = "Not found")))]
async fn update_workspace(
    State(s): State<AppState>,
    Path(slug): Path<String>,
    ApiJson(body): ApiJson<WorkspaceUpdate>,
) -> Result<Json<WorkspaceBody>, ApiError> {
    Ok(Json(WorkspaceBody {
        workspace: s.workspaces.update(&slug, body).await?,
    }))
}

/// Delete a workspace; its sessions are detached.
#[utoipa::path(delete, path = "/api/workspaces/{slug}", tag = "workspaces",
    params(("slug" = String, Path, description = "Workspace slug")),
    responses((status = 200, description = "The workspace is gone", body = WorkspaceDeleted), (status = 404, description = "Not found")))]
async fn delete_workspace(
    State(s): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Json<WorkspaceDeleted>, ApiError> {
    s.workspaces.delete(&slug).await?;
    s.store.clear_workspace(&slug).await?;
    Ok(Json(WorkspaceDeleted { deleted: slug }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct WorkspaceSessionsQuery {
    #[serde(default, deserialize_with = "lenient_bool")]
    archived: bool,
    /// 1..=500, default 100.
    limit: Option<i64>,
    offset: Option<i64>,
}

/// The sessions of a workspace.
#[utoipa::path(get, path = "/api/workspaces/{slug}/sessions", tag = "workspaces",
    params(("slug" = String, Path, description = "Workspace slug"), WorkspaceSessionsQuery),
    responses((status = 200, description = "The workspace and its sessions", body = WorkspaceSessions), (status = 404, description = "Not found")))]
async fn workspace_sessions(
    State(s): State<AppState>,
    Path(slug): Path<String>,
    ApiQuery(q): ApiQuery<WorkspaceSessionsQuery>,
) -> Result<Json<WorkspaceSessions>, ApiError> {
    validate_slug(&slug)?;
    let w = s.workspaces.get(&slug).await?;
    let filter = ListFilter {
        archived: q.archived,
        workspace_id: Some(slug),
        limit: check_range("limit", q.limit.unwrap_or(100), 1, 500)?,
        offset: check_range("offset", q.offset.unwrap_or(0), 0, i64::from(i32::MAX))?,
        ..Default::default()
    };
    let rows = s.store.list_sessions(&filter).await?;
    let sessions: Vec<SessionJson> = rows.into_iter().map(SessionJson::from).collect();
    Ok(Json(WorkspaceSessions {
        workspace: w,
        sessions,
    }))
}
