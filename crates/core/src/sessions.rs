//! Session configuration changes:
//! validation and the merge into `metadata`, kept apart from HTTP and SQL.

use serde_json::{Map, Value};

use crate::db::SessionChanges;
use crate::db::{DbError, SessionRow, Store};
use crate::trust::TrustLevel;
use crate::workspaces::validate_slug;

/// A requested change; every field optional (camelCase on the wire).
#[derive(Debug, Clone, Default)]
pub struct ConfigUpdate {
    /// New trust level: `full`, `vault` or `sandboxed` (case-insensitive).
    pub trust_level: Option<String>,
    /// New module name: 1 to 64 ASCII letters, digits, `-` or `_` (trimmed).
    pub module: Option<String>,
    /// Replaces `metadata.config_overrides`; must be a JSON object.
    pub config_overrides: Option<Value>,
    /// Workspace slug to attach the session to; an empty string detaches it.
    pub workspace_id: Option<String>,
    /// Bot reply mode, `all_messages` or `mention_only`; stored in `metadata.bot_settings`.
    pub response_mode: Option<String>,
    /// Bot mention pattern; stored in `metadata.bot_settings`.
    pub mention_pattern: Option<String>,
}

impl ConfigUpdate {
    fn is_empty(&self) -> bool {
        self.trust_level.is_none()
            && self.module.is_none()
            && self.config_overrides.is_none()
            && self.workspace_id.is_none()
            && self.response_mode.is_none()
            && self.mention_pattern.is_none()
    }
}

/// Why a session configuration change was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// No session has that id.
    #[error("Session not found")]
    NotFound,
    /// `trust_level` is not a known level.
    #[error("Invalid trust level")]
    InvalidTrustLevel,
    /// The update names no field to change.
    #[error("No fields to update")]
    NoFields,
    /// Activation was asked for a session without `metadata.pending_initialization`.
    #[error("Session is not pending initialization")]
    NotPending,
    /// Another field is invalid; the text says which and why.
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The stored metadata as a JSON object (`{}` when absent or unreadable).
pub fn metadata_object(row: &SessionRow) -> Map<String, Value> {
    row.metadata
        .as_deref()
        .and_then(|m| serde_json::from_str::<Value>(m).ok())
        .and_then(|v| match v {
            Value::Object(o) => Some(o),
            _ => None,
        })
        .unwrap_or_default()
}

/// Turns a validated update into column changes against the current row.
fn plan(
    row: &SessionRow,
    upd: &ConfigUpdate,
) -> Result<(SessionChanges, Map<String, Value>), SessionError> {
    let mut changes = SessionChanges::default();
    if let Some(t) = &upd.trust_level {
        let level: TrustLevel = t.parse().map_err(|_| SessionError::InvalidTrustLevel)?;
        changes.trust_level = Some(Some(level.as_str().to_string()));
    }
    if let Some(m) = &upd.module {
        let m = m.trim();
        if m.is_empty()
            || m.len() > 64
            || !m
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(SessionError::Invalid(format!(
                "Invalid module name: '{}'",
                m.chars().take(80).collect::<String>()
            )));
        }
        changes.module = Some(m.to_string());
    }
    if let Some(w) = &upd.workspace_id {
        if w.is_empty() {
            changes.workspace_id = Some(None);
        } else {
            validate_slug(w).map_err(|e| SessionError::Invalid(e.to_string()))?;
            changes.workspace_id = Some(Some(w.clone()));
        }
    }
    let mut md = metadata_object(row);
    if let Some(o) = &upd.config_overrides {
        if !o.is_object() {
            return Err(SessionError::Invalid(
                "configOverrides must be an object".into(),
            ));
        }
        md.insert("config_overrides".into(), o.clone());
    }
    if upd.response_mode.is_some() || upd.mention_pattern.is_some() {
        let bot = md
            .entry("bot_settings")
            .or_insert_with(|| Value::Object(Map::new()));
        if !bot.is_object() {
            *bot = Value::Object(Map::new());
        }
        let bot = bot.as_object_mut().expect("made an object above");
        if let Some(r) = &upd.response_mode {
            if r != "all_messages" && r != "mention_only" {
                return Err(SessionError::Invalid(
                    "responseMode must be 'all_messages' or 'mention_only'".into(),
                ));
            }
            bot.insert("response_mode".into(), Value::from(r.as_str()));
        }
        if let Some(p) = &upd.mention_pattern {
            bot.insert("mention_pattern".into(), Value::from(p.as_str()));
        }
    }
    Ok((changes, md))
}

/// Read-modify-write updates of a session's row and metadata, one at a time, so two
/// concurrent edits (the app, a bot, the UI) cannot lose one another. Every caller
/// goes through the one instance in `AppState`.
#[derive(Debug, Default)]
pub struct SessionUpdates {
    lock: tokio::sync::Mutex<()>,
}

impl SessionUpdates {
    /// [`update_config`] under the update lock.
    pub async fn update_config(
        &self,
        store: &Store,
        id: &str,
        upd: &ConfigUpdate,
    ) -> Result<SessionRow, SessionError> {
        let _g = self.lock.lock().await;
        update_config(store, id, upd).await
    }

    /// Changes a session's row and metadata under the update lock: `edit` gets the
    /// metadata object and the column changes to fill. `None` when the session is unknown.
    pub async fn modify(
        &self,
        store: &Store,
        id: &str,
        edit: impl FnOnce(&mut Map<String, Value>, &mut SessionChanges),
    ) -> Result<Option<SessionRow>, SessionError> {
        let _g = self.lock.lock().await;
        let Some(row) = store.get_session(id).await? else {
            return Ok(None);
        };
        let before = metadata_object(&row);
        let mut md = before.clone();
        let mut changes = SessionChanges::default();
        edit(&mut md, &mut changes);
        if md != before {
            changes.metadata = Some(Some(Value::Object(md).to_string()));
        }
        Ok(store.update_session(id, &changes).await?)
    }

    /// [`activate`] under the update lock.
    pub async fn activate(
        &self,
        store: &Store,
        id: &str,
        upd: &ConfigUpdate,
    ) -> Result<SessionRow, SessionError> {
        let _g = self.lock.lock().await;
        activate(store, id, upd).await
    }
}

/// Applies `PATCH /api/chat/{id}/config` (callers hold the update lock:
/// [`SessionUpdates::update_config`]).
async fn update_config(
    store: &Store,
    id: &str,
    upd: &ConfigUpdate,
) -> Result<SessionRow, SessionError> {
    if upd.is_empty() {
        return Err(SessionError::NoFields);
    }
    let row = store.get_session(id).await?.ok_or(SessionError::NotFound)?;
    let (mut changes, md) = plan(&row, upd)?;
    if md != metadata_object(&row) {
        changes.metadata = Some(Some(Value::Object(md).to_string()));
    }
    store
        .update_session(id, &changes)
        .await?
        .ok_or(SessionError::NotFound)
}

/// Applies `POST /api/chat/{id}/activate`: only for sessions a bot left pending.
async fn activate(store: &Store, id: &str, upd: &ConfigUpdate) -> Result<SessionRow, SessionError> {
    let row = store.get_session(id).await?.ok_or(SessionError::NotFound)?;
    if !metadata_object(&row).contains_key("pending_initialization") {
        return Err(SessionError::NotPending);
    }
    let (mut changes, mut md) = plan(&row, upd)?;
    md.remove("pending_initialization");
    changes.metadata = Some(Some(Value::Object(md).to_string()));
    store
        .update_session(id, &changes)
        .await?
        .ok_or(SessionError::NotFound)
}

/// Archives or unarchives.
pub async fn set_archived(
    store: &Store,
    id: &str,
    archived: bool,
) -> Result<SessionRow, SessionError> {
    let changes = SessionChanges {
        archived: Some(archived),
        ..Default::default()
    };
    store
        .update_session(id, &changes)
        .await?
        .ok_or(SessionError::NotFound)
}
