//! `/api/sync/*`: what the app's sync service calls.

use axum::extract::{RawQuery, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery};
use super::health::lenient_bool;
use parachute_core::app::AppState;
use parachute_core::vault::sync::{
    self, Filter, SyncDeleteResult, SyncError, SyncFile, SyncPullResult, SyncPushResult,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(manifest))
        .routes(routes!(changes))
        .routes(routes!(push))
        .routes(routes!(pull))
        .routes(routes!(delete_files))
}

impl From<SyncError> for ApiError {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::Denied(parachute_core::vault::VaultPathError::VaultMissing(m)) => {
                ApiError::Internal(m)
            }
            SyncError::Denied(_) => ApiError::Forbidden(e.to_string()),
            SyncError::RootNotFound(_) => ApiError::NotFound(e.to_string()),
            SyncError::BadPattern => ApiError::BadRequest(e.to_string()),
        }
    }
}

fn star() -> String {
    "*.md".into()
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ManifestQuery {
    /// Vault folder, e.g. `Daily`.
    root: String,
    #[serde(default = "star")]
    pattern: String,
    #[serde(default, deserialize_with = "lenient_bool")]
    include_binary: bool,
    /// Only files whose path contains this `YYYY-MM-DD`.
    date: Option<String>,
    /// Hash = modification time (fast) instead of SHA-256.
    #[serde(default, deserialize_with = "lenient_bool")]
    quick: bool,
}

async fn listing(s: &AppState, root: String, f: Filter) -> Result<Vec<SyncFile>, ApiError> {
    let gate = s.settings.vault_gate();
    tokio::task::spawn_blocking(move || sync::list(&gate, &root, &f))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(ApiError::from)
}

/// Files under a vault folder with their hashes.
#[derive(Serialize, ToSchema)]
struct SyncManifest {
    root: String,
    /// By path.
    files: Vec<SyncFile>,
    /// When the listing began, Unix seconds (fractional).
    generated_at: f64,
}

/// Files under a vault folder with their hashes.
#[utoipa::path(get, path = "/api/sync/manifest", tag = "sync", params(ManifestQuery),
    responses((status = 200, description = "The listing", body = SyncManifest),
        (status = 404, description = "Root not found"), (status = 403, description = "Outside the vault")))]
async fn manifest(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<ManifestQuery>,
) -> Result<Json<SyncManifest>, ApiError> {
    let generated_at = sync::now();
    let f = Filter {
        pattern: q.pattern,
        include_binary: q.include_binary,
        date: q.date,
        since: None,
        quick: q.quick,
    };
    let files = listing(&s, q.root.clone(), f).await?;
    Ok(Json(SyncManifest {
        root: q.root,
        files,
        generated_at,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ChangesQuery {
    root: String,
    /// Unix time (seconds, fractional allowed).
    since: f64,
    #[serde(default = "star")]
    pattern: String,
    #[serde(default, deserialize_with = "lenient_bool")]
    include_binary: bool,
}

/// Files changed since a time.
#[derive(Serialize, ToSchema)]
struct SyncChanges {
    root: String,
    /// Files modified after `since`, by path.
    files: Vec<SyncFile>,
    /// As asked for.
    since: f64,
    /// When the listing began, Unix seconds (fractional).
    generated_at: f64,
}

/// Files changed since a time.
#[utoipa::path(get, path = "/api/sync/changes", tag = "sync", params(ChangesQuery),
    responses((status = 200, description = "The files changed", body = SyncChanges), (status = 404, description = "Root not found"),
        (status = 403, description = "Outside the vault, or a protected path")))]
async fn changes(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<ChangesQuery>,
) -> Result<Json<SyncChanges>, ApiError> {
    let generated_at = sync::now();
    if !q.since.is_finite() {
        return Err(ApiError::BadRequest(
            "since must be a number of seconds".into(),
        ));
    }
    let f = Filter {
        pattern: q.pattern,
        include_binary: q.include_binary,
        date: None,
        since: Some(q.since),
        quick: false,
    };
    let files = listing(&s, q.root.clone(), f).await?;
    Ok(Json(SyncChanges {
        root: q.root,
        files,
        since: q.since,
        generated_at,
    }))
}

#[derive(Deserialize, ToSchema)]
struct PushBody {
    root: String,
    /// `[{path, content, is_binary}]` (binary content in base64).
    #[schema(value_type = Vec<Object>)]
    files: Vec<Value>,
}

/// Write files into a vault folder.
#[utoipa::path(post, path = "/api/sync/push", tag = "sync", request_body = PushBody,
    responses((status = 200, description = "Files written, and failures", body = SyncPushResult)))]
async fn push(
    State(s): State<AppState>,
    ApiJson(b): ApiJson<PushBody>,
) -> Result<Json<SyncPushResult>, ApiError> {
    let gate = s.settings.vault_gate();
    let (v, written) = tokio::task::spawn_blocking(move || sync::push(&gate, &b.root, &b.files))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    // Journal files that arrive by sync are Daily entries created or changed elsewhere.
    for f in written {
        let id = f
            .path
            .strip_prefix("Daily/entries/")
            .or_else(|| f.path.strip_prefix("Daily/journals/"))
            .and_then(|n| n.strip_suffix(".md"));
        if let Some(id) = id {
            let event = if f.existed {
                "daily.entry.updated"
            } else {
                "daily.entry.created"
            };
            s.events.fire(
                event,
                serde_json::json!({"id": id, "path": f.path, "source": "sync"}),
            );
        }
    }
    Ok(Json(v))
}

#[derive(Deserialize, ToSchema)]
struct PullBody {
    root: String,
    paths: Vec<String>,
}

/// Read files from a vault folder.
#[utoipa::path(post, path = "/api/sync/pull", tag = "sync", request_body = PullBody,
    responses((status = 200, description = "Files read, and failures", body = SyncPullResult)))]
async fn pull(
    State(s): State<AppState>,
    ApiJson(b): ApiJson<PullBody>,
) -> Result<Json<SyncPullResult>, ApiError> {
    let gate = s.settings.vault_gate();
    let v = tokio::task::spawn_blocking(move || sync::pull(&gate, &b.root, &b.paths))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(v))
}

/// Delete files of a vault folder (`?root=…&paths=a&paths=b`).
#[utoipa::path(delete, path = "/api/sync/files", tag = "sync",
    params(("root" = String, Query, description = "Vault folder"), ("paths" = Vec<String>, Query, description = "Repeated")),
    responses((status = 200, description = "Files deleted, and failures", body = SyncDeleteResult), (status = 422, description = "root missing")))]
async fn delete_files(
    State(s): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<SyncDeleteResult>, ApiError> {
    let raw = raw.unwrap_or_default();
    let mut root = None;
    let mut paths = Vec::new();
    for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
        match k.as_ref() {
            "root" => root = Some(v.into_owned()),
            "paths" => paths.push(v.into_owned()),
            _ => {}
        }
    }
    let root = root.ok_or_else(|| {
        ApiError::invalid(
            "missing",
            vec![json!("query"), json!("root")],
            "Field required",
            Value::Null,
            None,
        )
    })?;
    let gate = s.settings.vault_gate();
    let v = tokio::task::spawn_blocking(move || sync::delete(&gate, &root, &paths))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(v))
}
