//! `/api/brain/*`: search and look up the vault's entities (the bundled `brain` module;
//! 503 while it is not enabled). The work is the extensions crate's [`Brain`](parachute_extensions::Brain).

use std::sync::Arc;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use parachute_core::app::AppState;
use parachute_extensions::brain::{BrainEntity, SearchResult};
use parachute_extensions::Extensions;

use crate::error::ApiError;
use crate::extract::ApiQuery;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search))
        // An id may contain '/': a catch-all route, documented in the API doc by
        // `entity`'s annotation (see `ApiDoc`).
        .route("/api/brain/entities/{*para_id}", axum::routing::get(entity))
        .routes(routes!(resolve))
        .routes(routes!(reload))
}

/// 503 unless the module `name` is enabled.
pub async fn require_module(ext: &Arc<Extensions>, name: &'static str) -> Result<(), ApiError> {
    if ext.module_enabled(name).await {
        Ok(())
    } else {
        Err(ApiError::Unavailable(format!(
            "Module '{name}' is not enabled: approve it with `parachute module approve {name}` (see GET /api/modules)"
        )))
    }
}

#[derive(Deserialize, IntoParams)]
struct SearchQuery {
    /// The words to look for (each as a prefix; all must match).
    q: String,
    /// Most results (1–200, default 50).
    limit: Option<i64>,
}

/// Search results.
#[derive(Serialize, ToSchema)]
struct SearchResults {
    query: String,
    count: usize,
    results: Vec<SearchResult>,
}

/// Searches entities by name, tags and body; a name match ranks above a body match.
#[utoipa::path(get, path = "/api/brain/search", tag = "brain", params(SearchQuery),
    responses((status = 200, body = SearchResults), (status = 422, description = "q missing"),
        (status = 503, description = "brain module not enabled")))]
async fn search(
    Extension(ext): Extension<Arc<Extensions>>,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> Result<Json<SearchResults>, ApiError> {
    require_module(&ext, "brain").await?;
    let results = ext.brain.search(&q.q, q.limit.unwrap_or(50)).await?;
    Ok(Json(SearchResults {
        query: q.q,
        count: results.len(),
        results,
    }))
}

fn not_found(key: &str, value: String) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": "Entity not found", key: value})),
    )
        .into_response()
}

/// One entity by id: its frontmatter, `content` (the body) and `path`.
#[utoipa::path(get, path = "/api/brain/entities/{para_id}", tag = "brain",
    params(("para_id" = String, Path, description = "Entity id (may contain '/')")),
    responses((status = 200, description = "The entity, with its other frontmatter keys", body = BrainEntity),
        (status = 404, description = "`{error, para_id}`", body = Object)))]
pub(crate) async fn entity(
    Extension(ext): Extension<Arc<Extensions>>,
    Path(para_id): Path<String>,
) -> Result<Response, ApiError> {
    require_module(&ext, "brain").await?;
    Ok(match ext.brain.entity(&para_id).await? {
        Some(e) => Json(e).into_response(),
        None => not_found("para_id", para_id),
    })
}

/// One entity by name (case-insensitive, exact).
#[utoipa::path(get, path = "/api/brain/resolve/{name}", tag = "brain",
    params(("name" = String, Path, description = "Entity name")),
    responses((status = 200, description = "The entity, with its other frontmatter keys", body = BrainEntity),
        (status = 404, description = "`{error, name}`", body = Object)))]
async fn resolve(
    Extension(ext): Extension<Arc<Extensions>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    require_module(&ext, "brain").await?;
    Ok(match ext.brain.resolve(&name).await? {
        Some(e) => Json(e).into_response(),
        None => not_found("name", name),
    })
}

/// The reload result.
#[derive(Serialize, ToSchema)]
struct Reloaded {
    status: &'static str,
    count: i64,
}

/// Re-reads every entity file.
#[utoipa::path(post, path = "/api/brain/reload", tag = "brain",
    responses((status = 200, body = Reloaded), (status = 503, description = "brain module not enabled")))]
async fn reload(Extension(ext): Extension<Arc<Extensions>>) -> Result<Json<Reloaded>, ApiError> {
    require_module(&ext, "brain").await?;
    let count = ext.brain.reload().await?;
    Ok(Json(Reloaded {
        status: "reloaded",
        count,
    }))
}
