//! `/api/import…`: Claude.ai and ChatGPT exports into sessions — as a
//! JSON body, an uploaded file (JSON or zip, streamed to disk and read entry by entry),
//! or a file of the vault — and `sync`, which recovers sessions the CLI has transcripts
//! for but the store has lost. A malformed entry is reported with its index and the
//! rest are imported; re-importing the same export skips what is already there.

use std::path::PathBuf;

use axum::extract::{DefaultBodyLimit, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::error::ApiError;
use super::extract::{ApiJson, ApiMultipart, ApiQuery};
use super::health::lenient_bool;
use parachute_core::app::AppState;
use parachute_core::chat::imports::{self, ImportEntryError, Outcome};
use parachute_core::vault::imported_contexts::{self, ImportedContexts};

/// Largest export file accepted.
const MAX_UPLOAD: usize = 1024 * 1024 * 1024;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(import))
        .routes(routes!(import_path))
        .routes(routes!(import_sync))
        .routes(routes!(import_contexts))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(import_file))
                .layer(DefaultBodyLimit::max(MAX_UPLOAD)),
        )
}

fn yes() -> bool {
    true
}

/// Running totals of an import.
#[derive(Default)]
struct Tally {
    total: usize,
    imported: Vec<String>,
    skipped: usize,
    errors: Vec<ImportEntryError>,
}

impl Tally {
    async fn add(&mut self, s: &AppState, index: usize, entry: &Value, archived: bool) {
        self.total += 1;
        let conv = match imports::parse_entry(entry) {
            Ok(c) => c,
            Err(e) => return self.errors.push(imports::entry_error(index, None, &e)),
        };
        match imports::import_one(&s.store, &s.settings.vault_gate(), &conv, archived).await {
            Ok(Outcome::Imported(id)) => self.imported.push(id),
            Ok(Outcome::Skipped) => self.skipped += 1,
            Err(e) => self
                .errors
                .push(imports::entry_error(index, Some(&conv.external_id), &e)),
        }
    }

    fn result(self) -> ImportResult {
        ImportResult {
            total_conversations: self.total,
            imported_count: self.imported.len(),
            skipped_count: self.skipped,
            errors: self.errors,
            session_ids: self.imported,
        }
    }
}

/// The totals of an import.
#[derive(Serialize, ToSchema)]
struct ImportResult {
    /// Conversations read from the export.
    total_conversations: usize,
    imported_count: usize,
    /// Conversations already imported.
    skipped_count: usize,
    errors: Vec<ImportEntryError>,
    /// The sessions created.
    session_ids: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
struct ImportBody {
    /// A Claude.ai or ChatGPT `conversations.json` (list of conversations).
    #[schema(value_type = Object)]
    data: Value,
    /// Import as archived sessions (default true).
    #[serde(default = "yes")]
    archived: bool,
}

/// Import conversations given in the body.
#[utoipa::path(post, path = "/api/import", tag = "imports", request_body = ImportBody,
    responses((status = 200, description = "Import totals", body = ImportResult)))]
async fn import(State(s): State<AppState>, ApiJson(b): ApiJson<ImportBody>) -> Json<ImportResult> {
    let mut t = Tally::default();
    for (i, entry) in imports::entries(&b.data).iter().enumerate() {
        t.add(&s, i, entry, b.archived).await;
    }
    Json(t.result())
}

/// Reads an export file entry by entry on a blocking thread, importing as it goes.
async fn import_from_file(
    s: &AppState,
    path: PathBuf,
    archived: bool,
) -> Result<ImportResult, ApiError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(usize, Value)>(2);
    let limits = imports::ImportLimits {
        max_entry_bytes: s.settings.import_max_entry_bytes,
        max_total_bytes: s.settings.import_max_total_bytes,
    };
    let reader = tokio::task::spawn_blocking(move || {
        imports::stream_file(&path, limits, &mut |i, v| tx.blocking_send((i, v)).is_ok())
    });
    let mut t = Tally::default();
    while let Some((i, v)) = rx.recv().await {
        t.add(s, i, &v, archived).await;
    }
    match reader
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
    {
        Ok(_) => Ok(t.result()),
        Err(e) if t.total == 0 => Err(ApiError::BadRequest(e)),
        Err(e) => {
            // Entries before the broken point were imported; say where it broke.
            t.errors.push(imports::entry_error(t.total, None, &e));
            Ok(t.result())
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ArchivedQuery {
    #[serde(default = "yes", deserialize_with = "lenient_bool")]
    archived: bool,
}

/// Import an uploaded export (multipart field `file`: `conversations.json` or the zip).
#[utoipa::path(post, path = "/api/import/file", tag = "imports", params(ArchivedQuery),
    request_body(content = String, content_type = "multipart/form-data", description = "field `file`"),
    responses((status = 200, description = "Import totals", body = ImportResult), (status = 400, description = "Not an export")))]
async fn import_file(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<ArchivedQuery>,
    ApiMultipart(mut form): ApiMultipart,
) -> Result<Json<ImportResult>, ApiError> {
    let dir = s.settings.paths.home.join("tmp");
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let tmp = dir.join(format!("import-{}", uuid::Uuid::new_v4()));
    // Removed however the request ends (including a client that goes away).
    struct RemoveOnDrop(PathBuf);
    impl Drop for RemoveOnDrop {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _cleanup = RemoveOnDrop(tmp.clone());
    let mut got = false;
    let result = async {
        while let Some(mut field) = form
            .next_field()
            .await
            .map_err(|e| ApiError::BadRequest(format!("bad upload: {e}")))?
        {
            if field.name() != Some("file") {
                continue;
            }
            let mut out = tokio::fs::File::create(&tmp)
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            while let Some(chunk) = field
                .chunk()
                .await
                .map_err(|e| ApiError::BadRequest(format!("bad upload: {e}")))?
            {
                out.write_all(&chunk)
                    .await
                    .map_err(|e| ApiError::Internal(e.to_string()))?;
            }
            out.flush()
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            got = true;
            break;
        }
        if !got {
            return Err(ApiError::BadRequest(
                "the upload has no `file` field".into(),
            ));
        }
        import_from_file(&s, tmp.clone(), q.archived).await
    }
    .await;
    result.map(Json)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PathQuery {
    /// An export inside the vault (vault-relative).
    path: String,
    #[serde(default = "yes", deserialize_with = "lenient_bool")]
    archived: bool,
}

/// Import an export stored in the vault (the original accepted any server path).
#[utoipa::path(post, path = "/api/import/path", tag = "imports", params(PathQuery),
    responses((status = 200, description = "Import totals", body = ImportResult), (status = 403, description = "Outside the vault"),
        (status = 404, description = "Not found")))]
async fn import_path(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<PathQuery>,
) -> Result<Json<ImportResult>, ApiError> {
    let p = s
        .settings
        .vault_gate()
        .resolve(&q.path)
        .map_err(|e| ApiError::Forbidden(format!("Access denied: {e}")))?;
    if !p.is_file() {
        return Err(ApiError::NotFound(format!("File not found: {}", q.path)));
    }
    import_from_file(&s, p, q.archived).await.map(Json)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct SyncQuery {
    #[serde(default, deserialize_with = "lenient_bool")]
    archived: bool,
    /// Also refresh sessions that already have a row.
    #[serde(default, deserialize_with = "lenient_bool")]
    force: bool,
}

/// A transcript whose session could not be created.
#[derive(Serialize, ToSchema)]
struct ImportSyncError {
    /// The session id.
    id: String,
    error: String,
}

/// The totals of a recovery from transcripts.
#[derive(Serialize, ToSchema)]
struct ImportSyncResult {
    /// Transcripts found.
    discovered: usize,
    /// Sessions created.
    synced: usize,
    /// Sessions refreshed (with `force`).
    updated: usize,
    /// Transcripts of deleted or already known sessions.
    skipped: usize,
    errors: Vec<ImportSyncError>,
}

/// Recover sessions from the CLI's transcripts: rows are created for transcripts the
/// store does not know (a lost or replaced database); deleted sessions stay deleted.
#[utoipa::path(post, path = "/api/import/sync", tag = "imports", params(SyncQuery),
    responses((status = 200, description = "Recovery totals", body = ImportSyncResult)))]
async fn import_sync(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<SyncQuery>,
) -> Result<Json<ImportSyncResult>, ApiError> {
    let cfg = s.settings.claude_config_dir.clone();
    let found =
        tokio::task::spawn_blocking(move || parachute_core::chat::transcript::all_summaries(&cfg))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
    let (mut synced, mut updated, mut skipped) = (0, 0, 0);
    let mut errors = Vec::new();
    for t in &found {
        if s.store.session_was_deleted(&t.id).await? {
            skipped += 1;
            continue;
        }
        if s.store.get_session(&t.id).await?.is_some() {
            if q.force {
                s.store.set_message_count(&t.id, t.message_count).await?;
                updated += 1;
            } else {
                skipped += 1;
            }
            continue;
        }
        let new = parachute_core::db::NewSession {
            id: t.id.clone(),
            title: t.title.clone(),
            module: "chat".into(),
            source: "parachute".into(),
            model: t.model.clone(),
            message_count: t.message_count,
            created_at: t
                .created_at
                .as_deref()
                .map(parachute_core::util::time::to_session_format),
            ..Default::default()
        };
        match s.store.insert_session(&new).await {
            Ok(_) => {
                if q.archived {
                    let ch = parachute_core::db::SessionChanges {
                        archived: Some(true),
                        ..Default::default()
                    };
                    s.store.update_session(&t.id, &ch).await?;
                }
                synced += 1;
            }
            Err(e) => errors.push(ImportSyncError {
                id: t.id.clone(),
                error: e.to_string(),
            }),
        }
    }
    Ok(Json(ImportSyncResult {
        discovered: found.len(),
        synced,
        updated,
        skipped,
        errors,
    }))
}

/// Context files left by imports for review (`Chat/contexts/*.md`).
#[utoipa::path(get, path = "/api/import/contexts", tag = "imports",
    responses((status = 200, description = "The context files", body = ImportedContexts)))]
async fn import_contexts(State(s): State<AppState>) -> Result<Json<ImportedContexts>, ApiError> {
    let gate = s.settings.vault_gate();
    let v = tokio::task::spawn_blocking(move || imported_contexts::list(&gate))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(v))
}
