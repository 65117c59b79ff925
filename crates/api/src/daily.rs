//! Daily (the bundled `daily` module): journal entries, written by the core's one
//! journal function, with links to the Brain entities they name. Daily agents are the
//! scheduler's (`scheduler.rs`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use parachute_core::app::AppState;
use parachute_core::vault::journal;
use parachute_extensions::brain::BrainLink;
use parachute_extensions::Extensions;

use crate::brain::require_module;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_entry, list_entries))
        .routes(routes!(read_entry))
}

/// A new entry.
#[derive(Deserialize, ToSchema)]
struct NewEntry {
    content: String,
    metadata: Option<Map<String, Value>>,
}

/// The saved entry.
#[derive(Serialize, ToSchema)]
struct Created {
    id: String,
    /// The file, absolute.
    path: String,
    created_at: String,
    /// The Brain entities the entry names.
    brain_suggestions: Vec<BrainLink>,
}

/// Saves a journal entry at `Daily/entries/{YYYY-MM-DD-HH-MM}.md` (a second one in the
/// same minute gets `-2`, never overwriting), linking the Brain entities it names.
#[utoipa::path(post, path = "/api/daily/entries", tag = "daily", request_body = NewEntry,
    responses((status = 200, body = Created), (status = 400, description = "Empty or too long"),
        (status = 503, description = "daily module not enabled")))]
async fn create_entry(
    State(state): State<AppState>,
    Extension(ext): Extension<Arc<Extensions>>,
    ApiJson(body): ApiJson<NewEntry>,
) -> Result<Json<Created>, ApiError> {
    require_module(&ext, "daily").await?;
    // Refused before any work on the text.
    if body.content.trim().is_empty() {
        return Err(journal::JournalError::Empty.into());
    }
    if body.content.chars().count() > journal::MAX_ENTRY_CHARS {
        return Err(journal::JournalError::TooLong(journal::MAX_ENTRY_CHARS).into());
    }
    // Links are a help, never a reason to lose the entry.
    let links = if ext.module_enabled("brain").await {
        ext.brain.links(&body.content).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "brain links not found; the entry is saved without");
            Vec::new()
        })
    } else {
        Vec::new()
    };
    let mut metadata = body.metadata.unwrap_or_default();
    metadata.remove("brain_links");
    if !links.is_empty() {
        let ids: Vec<Value> = links
            .iter()
            .map(|l| Value::from(l.para_id.as_str()))
            .collect();
        metadata.insert("brain_links".into(), Value::Array(ids));
    }
    let gate = state.settings.vault_gate();
    let saved = tokio::task::spawn_blocking(move || {
        journal::save_entry(&gate, &body.content, &metadata, chrono::Utc::now())
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    state
        .events
        .fire_blocking(
            "daily.entry.created",
            json!({"id": saved.id, "path": saved.relative_path, "created_at": saved.created_at,
            "brain_links": links.iter().map(|l| l.para_id.as_str()).collect::<Vec<_>>()}),
        )
        .await;
    Ok(Json(Created {
        id: saved.id,
        path: saved.path.display().to_string(),
        created_at: saved.created_at,
        brain_suggestions: links,
    }))
}

#[derive(Deserialize, IntoParams)]
struct ListQuery {
    /// Most entries (1–100, default 20).
    limit: Option<usize>,
    /// Entries to skip (newest first).
    offset: Option<usize>,
}

/// One entry in the list.
#[derive(Serialize, ToSchema)]
struct EntrySummary {
    id: String,
    created_at: Option<String>,
    /// The first 200 characters.
    snippet: String,
    brain_links: Vec<String>,
}

/// A page of entries.
#[derive(Serialize, ToSchema)]
struct EntryPage {
    entries: Vec<EntrySummary>,
    count: usize,
    offset: usize,
}

/// Journal entries, newest first.
#[utoipa::path(get, path = "/api/daily/entries", tag = "daily", params(ListQuery),
    responses((status = 200, body = EntryPage), (status = 422, description = "Bad limit"),
        (status = 503, description = "daily module not enabled")))]
async fn list_entries(
    State(state): State<AppState>,
    Extension(ext): Extension<Arc<Extensions>>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<EntryPage>, ApiError> {
    require_module(&ext, "daily").await?;
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid(
            "less_than_equal",
            vec![json!("query"), json!("limit")],
            "Input should be between 1 and 100",
            json!(limit),
            None,
        ));
    }
    let offset = q.offset.unwrap_or(0);
    let gate = state.settings.vault_gate();
    let entries = tokio::task::spawn_blocking(move || {
        let ids = journal::entry_ids(&gate)?;
        let mut out = Vec::new();
        for id in ids.into_iter().skip(offset).take(limit) {
            // One unreadable file (not UTF-8, say) does not hide the others.
            match journal::read_entry(&gate, &id) {
                Ok(Some(e)) => out.push(EntrySummary {
                    snippet: e.content.chars().take(200).collect(),
                    id: e.id,
                    created_at: e.created_at,
                    brain_links: e.brain_links,
                }),
                Ok(None) => {}
                Err(e) => tracing::warn!(entry = %id, error = %e, "journal entry skipped"),
            }
        }
        Ok::<_, journal::JournalError>(out)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    Ok(Json(EntryPage {
        count: entries.len(),
        entries,
        offset,
    }))
}

/// A whole entry.
#[derive(Serialize, ToSchema)]
struct EntryJson {
    id: String,
    created_at: Option<String>,
    content: String,
    metadata: Map<String, Value>,
    brain_links: Vec<String>,
}

/// One journal entry.
#[utoipa::path(get, path = "/api/daily/entries/{entry_id}", tag = "daily",
    params(("entry_id" = String, Path, description = "YYYY-MM-DD-HH-MM[-N]")),
    responses((status = 200, body = EntryJson), (status = 404, description = "`{error, id}`", body = Object),
        (status = 503, description = "daily module not enabled")))]
async fn read_entry(
    State(state): State<AppState>,
    Extension(ext): Extension<Arc<Extensions>>,
    Path(entry_id): Path<String>,
) -> Result<Response, ApiError> {
    require_module(&ext, "daily").await?;
    let gate = state.settings.vault_gate();
    let id = entry_id.clone();
    let entry = tokio::task::spawn_blocking(move || journal::read_entry(&gate, &id))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;
    Ok(match entry {
        Some(e) => Json(EntryJson {
            id: e.id,
            created_at: e.created_at,
            content: e.content,
            metadata: e.metadata,
            brain_links: e.brain_links,
        })
        .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "Entry not found", "id": entry_id})),
        )
            .into_response(),
    })
}
