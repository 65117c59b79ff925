//! `POST /api/import` (contract §1.12): Claude.ai and ChatGPT exports into sessions. A
//! malformed entry is reported with its index and the rest are imported; re-importing
//! the same export skips what is already there.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::error::ApiError;
use super::extract::ApiJson;
use crate::app::AppState;
use crate::chat::events::title_from_message;
use crate::chat::imports;
use crate::db::sessions::SessionChanges;
use crate::db::NewSession;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(import))
}

fn yes() -> bool {
    true
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

/// Import conversations from an export.
#[utoipa::path(post, path = "/api/import", tag = "imports", request_body = ImportBody,
    responses((status = 200, description = "`{total_conversations, imported_count, skipped_count, errors, session_ids}`", body = Object)))]
async fn import(
    State(s): State<AppState>,
    ApiJson(b): ApiJson<ImportBody>,
) -> Result<Json<Value>, ApiError> {
    let entries = imports::entries(&b.data);
    let mut imported = Vec::new();
    let mut skipped = 0;
    let mut errors = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let conv = match imports::parse_entry(entry) {
            Ok(c) => c,
            Err(e) => {
                errors.push(imports::entry_error(i, None, &e));
                continue;
            }
        };
        let id = conv.session_id();
        if s.store.get_session(&id).await?.is_some() || s.store.session_was_deleted(&id).await? {
            skipped += 1;
            continue;
        }
        let vault = s.settings.paths.vault.clone();
        let (c2, id2) = (conv.clone(), id.clone());
        let written =
            tokio::task::spawn_blocking(move || imports::write_history(&vault, &c2, &id2))
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?;
        if let Err(e) = written {
            errors.push(imports::entry_error(i, Some(&conv.external_id), &e));
            continue;
        }
        let title = conv.title.clone().or_else(|| {
            conv.messages
                .iter()
                .find(|m| m.0 == "user")
                .and_then(|m| title_from_message(&m.1))
        });
        let created = conv
            .created_at
            .as_deref()
            .map(crate::util::time::to_session_format);
        s.store
            .insert_session(&NewSession {
                id: id.clone(),
                title,
                module: "chat".into(),
                source: conv.source.into(),
                message_count: conv.messages.len() as i64,
                metadata: Some(json!({"imported_at": crate::util::time::now_session(), "external_id": conv.external_id}).to_string()),
                created_at: created,
                ..Default::default()
            })
            .await?;
        if b.archived {
            s.store
                .update_session(
                    &id,
                    &SessionChanges {
                        archived: Some(true),
                        ..Default::default()
                    },
                )
                .await?;
        }
        imported.push(id);
    }
    Ok(Json(
        json!({"total_conversations": entries.len(), "imported_count": imported.len(), "skipped_count": skipped,
        "errors": errors, "session_ids": imported}),
    ))
}
