//! `/api/ls`, `/api/read`, `/api/write`: vault browsing, confined by
//! `vault::resolve_user_path`; file work runs off the async runtime.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery};
use super::health::lenient_bool;
use parachute_core::app::AppState;
use parachute_core::vault::files::{self, FileError};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ls))
        .routes(routes!(read))
        .routes(routes!(write))
}

impl From<FileError> for ApiError {
    fn from(e: FileError) -> Self {
        match e {
            FileError::Denied(parachute_core::vault::VaultPathError::VaultMissing(m)) => {
                ApiError::Internal(m)
            }
            FileError::Denied(_) => ApiError::Forbidden(e.to_string()),
            FileError::NotFound(_) => ApiError::NotFound(e.to_string()),
            FileError::NotADirectory
            | FileError::NotAFile
            | FileError::NotText
            | FileError::TooLarge(_)
            | FileError::Rejected(_) => ApiError::BadRequest(e.to_string()),
            FileError::Io(m) => ApiError::Internal(m),
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, FileError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(ApiError::from)
}

#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct LsQuery {
    /// Vault-relative folder; empty = the vault root.
    #[serde(default)]
    path: String,
    /// Include dotfiles.
    #[serde(default, deserialize_with = "lenient_bool")]
    include_hidden: bool,
}

/// An entry of a vault folder.
// Documentation only, as are the other structs of this file but `WriteBody`: the bodies
// are built by `vault::files`.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct VaultEntry {
    name: String,
    /// `directory`, `file`, or `symlink` for anything else (such as a broken link).
    #[serde(rename = "type")]
    kind: String,
    /// Absolute path on the server.
    path: String,
    /// Vault-relative path.
    relative_path: String,
    is_directory: bool,
    is_file: bool,
    is_symlink: bool,
    is_broken_symlink: bool,
    /// Where a link points; `null` for anything else.
    symlink_target: Option<String>,
    has_agents_md: bool,
    has_claude_md: bool,
    is_git_repo: bool,
    /// Bytes, for a file; `null` otherwise.
    size: Option<u64>,
    /// UTC ISO 8601 of the entry itself (not a link's target).
    last_modified: Option<String>,
}

/// The entries of a vault folder, by name.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct VaultListing {
    /// The folder as asked for.
    path: String,
    /// Absolute path on the server.
    full_path: String,
    entries: Vec<VaultEntry>,
}

/// List a vault folder.
#[utoipa::path(get, path = "/api/ls", tag = "files", params(LsQuery),
    responses((status = 200, description = "The folder's entries", body = VaultListing),
        (status = 403, description = "Outside the vault"), (status = 404, description = "Not found")))]
async fn ls(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<LsQuery>,
) -> Result<Json<Value>, ApiError> {
    let gate = s.settings.vault_gate();
    Ok(Json(
        blocking(move || files::list(&gate, &q.path, q.include_hidden)).await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ReadQuery {
    /// Vault-relative file.
    path: String,
}

/// A text file of the vault.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct VaultFile {
    /// The file as asked for.
    path: String,
    content: String,
    /// Bytes.
    size: u64,
    /// UTC ISO 8601.
    last_modified: Option<String>,
}

/// Read a text file of the vault.
#[utoipa::path(get, path = "/api/read", tag = "files", params(ReadQuery),
    responses((status = 200, description = "The file", body = VaultFile),
        (status = 400, description = "Not a text file"), (status = 403, description = "Outside the vault"),
        (status = 404, description = "Not found")))]
async fn read(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<ReadQuery>,
) -> Result<Json<Value>, ApiError> {
    let gate = s.settings.vault_gate();
    Ok(Json(blocking(move || files::read(&gate, &q.path)).await?))
}

#[derive(Deserialize, ToSchema)]
struct WriteBody {
    path: String,
    content: String,
}

/// A file written.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct VaultWriteResult {
    /// Always `true`.
    success: bool,
    /// The file as named.
    path: String,
    /// Bytes.
    size: u64,
    /// UTC ISO 8601.
    last_modified: Option<String>,
}

/// Write a file of the vault (atomically; parents created).
#[utoipa::path(put, path = "/api/write", tag = "files", request_body = WriteBody,
    responses((status = 200, description = "The file written", body = VaultWriteResult),
        (status = 403, description = "Outside the vault"), (status = 413, description = "Too large")))]
async fn write(
    State(s): State<AppState>,
    ApiJson(b): ApiJson<WriteBody>,
) -> Result<Json<Value>, ApiError> {
    let gate = s.settings.vault_gate();
    Ok(Json(
        blocking(move || files::write(&gate, &b.path, &b.content)).await?,
    ))
}
