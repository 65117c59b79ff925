//! `/api/ls`, `/api/read`, `/api/write`: vault browsing, confined by
//! `vault::resolve_user_path`; file work runs off the async runtime.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery};
use super::health::lenient_bool;
use parachute_core::app::AppState;
use parachute_core::vault::files::{self, FileError, VaultFile, VaultListing, VaultWriteResult};

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
            FileError::Io(_) => ApiError::internal(e),
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

/// List a vault folder.
#[utoipa::path(get, path = "/api/ls", tag = "files", params(LsQuery),
    responses((status = 200, description = "The folder's entries", body = VaultListing),
        (status = 403, description = "Outside the vault"), (status = 404, description = "Not found")))]
async fn ls(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<LsQuery>,
) -> Result<Json<VaultListing>, ApiError> {
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

/// Read a text file of the vault.
#[utoipa::path(get, path = "/api/read", tag = "files", params(ReadQuery),
    responses((status = 200, description = "The file", body = VaultFile),
        (status = 400, description = "Not a text file"), (status = 403, description = "Outside the vault"),
        (status = 404, description = "Not found")))]
async fn read(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<ReadQuery>,
) -> Result<Json<VaultFile>, ApiError> {
    let gate = s.settings.vault_gate();
    Ok(Json(blocking(move || files::read(&gate, &q.path)).await?))
}

#[derive(Deserialize, ToSchema)]
struct WriteBody {
    path: String,
    content: String,
}

/// Write a file of the vault (atomically; parents created).
#[utoipa::path(put, path = "/api/write", tag = "files", request_body = WriteBody,
    responses((status = 200, description = "The file written", body = VaultWriteResult),
        (status = 403, description = "Outside the vault"), (status = 413, description = "Too large")))]
async fn write(
    State(s): State<AppState>,
    ApiJson(b): ApiJson<WriteBody>,
) -> Result<Json<VaultWriteResult>, ApiError> {
    let gate = s.settings.vault_gate();
    Ok(Json(
        blocking(move || files::write(&gate, &b.path, &b.content)).await?,
    ))
}
