//! Queries on `sessions` (and the rows that hang off it).

use sqlx::{FromRow, QueryBuilder, Sqlite};

use super::{DbError, Store};
use crate::util::time::now_session;

/// A `sessions` row as stored.
#[derive(Debug, Clone, Default, FromRow)]
pub struct SessionRow {
    /// The session id (primary key).
    pub id: String,
    /// Display title; `None` when none was derived or given.
    pub title: Option<String>,
    /// The module the session belongs to (`chat` by default).
    pub module: String,
    /// Origin: `parachute`, `claude-code`, or an import source (`claude`, `chatgpt`).
    pub source: String,
    /// Working directory it started in, inside the vault; `None` means the vault root.
    pub working_directory: Option<String>,
    /// Vault root the session ran against (kept from older rows; this server does not set it).
    pub vault_root: Option<String>,
    /// Model last reported for the session, if any.
    pub model: Option<String>,
    /// Number of messages recorded; `None` reads as 0.
    pub message_count: Option<i64>,
    /// `1` when archived; `0` or `None` otherwise.
    pub archived: Option<i64>,
    /// Creation time in UTC, normally like `2026-11-22T08:28:25.683545Z` (older rows may differ).
    pub created_at: String,
    /// Time of the latest turn or change, in the same format as `created_at`.
    pub last_accessed: String,
    /// Id of the session this one continues (kept from older rows; this server does not set it).
    pub continued_from: Option<String>,
    /// Agent type the session ran with (kept from older rows; this server does not set it).
    pub agent_type: Option<String>,
    /// JSON object as text (`config_overrides`, `bot_settings`, …); `None` when never set.
    pub metadata: Option<String>,
    /// Stored trust level (`full`, `vault` or `sandboxed`); `None` means `full`.
    pub trust_level: Option<String>,
    /// Platform of a linked bot chat (`telegram`, `discord`), for sessions a bot made.
    pub linked_bot_platform: Option<String>,
    /// Id of the linked bot chat.
    pub linked_bot_chat_id: Option<String>,
    /// Type of the linked bot chat (`dm` or `group`).
    pub linked_bot_chat_type: Option<String>,
    /// Slug of the workspace the session belongs to, if any.
    pub workspace_id: Option<String>,
}

/// Filters of `GET /api/chat` (already validated).
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only sessions of this module.
    pub module: Option<String>,
    /// Only sessions whose title contains this text (literal; `LIKE` wildcards are escaped).
    pub search: Option<String>,
    /// Archived sessions when `true`, active ones when `false`.
    pub archived: bool,
    /// Only sessions of this workspace slug.
    pub workspace_id: Option<String>,
    /// Most rows returned.
    pub limit: i64,
    /// Rows skipped before the first returned.
    pub offset: i64,
}

/// Counts for `GET /api/chat/stats`.
#[derive(Debug, Clone, Default)]
pub struct SessionStats {
    /// Number of sessions, archived included.
    pub total: i64,
    /// Number of archived sessions.
    pub archived: i64,
    /// Number of sessions per module, sorted by module name.
    pub by_module: Vec<(String, i64)>,
}

/// A session to insert (chat turns, imports, bots, tests and the bench).
#[derive(Debug, Clone, Default)]
pub struct NewSession {
    /// Id of the new session.
    pub id: String,
    /// Display title, if known.
    pub title: Option<String>,
    /// Module; empty means `chat`.
    pub module: String,
    /// Origin; empty means `parachute`.
    pub source: String,
    /// Working directory inside the vault; `None` means the vault root.
    pub working_directory: Option<String>,
    /// Model, if known.
    pub model: Option<String>,
    /// Starting message count (non-zero for imported or adopted sessions).
    pub message_count: i64,
    /// Trust level to store; `None` means `full`.
    pub trust_level: Option<String>,
    /// Slug of the workspace it belongs to, if any.
    pub workspace_id: Option<String>,
    /// Metadata as JSON object text, if any.
    pub metadata: Option<String>,
    /// Creation time in the session timestamp format; `None` means now. Also the first
    /// `last_accessed`.
    pub created_at: Option<String>,
    /// The bot chat the session belongs to, if a bot created it.
    pub linked_bot: Option<LinkedBot>,
}

/// The bot chat a session is linked to (`linked_bot_*` columns).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinkedBot {
    /// `telegram` or `discord`.
    pub platform: String,
    /// The platform's chat id, as text.
    pub chat_id: String,
    /// `dm` or `group`.
    pub chat_type: String,
}

/// The columns a config update may change; `None` leaves a column alone.
#[derive(Debug, Clone, Default)]
pub struct SessionChanges {
    /// New module name.
    pub module: Option<String>,
    /// `Some(None)` clears the column.
    pub trust_level: Option<Option<String>>,
    /// New workspace slug; `Some(None)` detaches the session.
    pub workspace_id: Option<Option<String>>,
    /// New metadata JSON text; `Some(None)` clears the column.
    pub metadata: Option<Option<String>>,
    /// `true` archives the session, `false` unarchives it.
    pub archived: Option<bool>,
}

pub(super) const COLUMNS: &str =
    "id, title, module, source, working_directory, vault_root, model, message_count, \
    archived, created_at, last_accessed, continued_from, agent_type, metadata, trust_level, \
    linked_bot_platform, linked_bot_chat_id, linked_bot_chat_type, workspace_id";

pub(super) fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

impl Store {
    /// Sessions matching `f`, most recently used first.
    pub async fn list_sessions(&self, f: &ListFilter) -> Result<Vec<SessionRow>, DbError> {
        let mut q: QueryBuilder<Sqlite> =
            QueryBuilder::new(format!("SELECT {COLUMNS} FROM sessions WHERE archived = "));
        q.push_bind(f.archived as i64);
        if let Some(m) = &f.module {
            q.push(" AND module = ").push_bind(m.clone());
        }
        if let Some(s) = &f.search {
            q.push(" AND title LIKE ")
                .push_bind(format!("%{}%", escape_like(s)))
                .push(" ESCAPE '\\'");
        }
        if let Some(w) = &f.workspace_id {
            q.push(" AND workspace_id = ").push_bind(w.clone());
        }
        q.push(" ORDER BY last_accessed DESC LIMIT ")
            .push_bind(f.limit);
        q.push(" OFFSET ").push_bind(f.offset);
        Ok(q.build_query_as::<SessionRow>()
            .fetch_all(self.pool())
            .await?)
    }

    /// One session, if it exists.
    pub async fn get_session(&self, id: &str) -> Result<Option<SessionRow>, DbError> {
        Ok(
            sqlx::query_as::<_, SessionRow>(&format!(
                "SELECT {COLUMNS} FROM sessions WHERE id = ?"
            ))
            .bind(id)
            .fetch_optional(self.pool())
            .await?,
        )
    }

    /// The most recent non-archived session linked to a bot chat.
    pub async fn latest_linked_session(
        &self,
        platform: &str,
        chat_id: &str,
    ) -> Result<Option<SessionRow>, DbError> {
        Ok(sqlx::query_as::<_, SessionRow>(&format!(
            "SELECT {COLUMNS} FROM sessions WHERE linked_bot_platform = ? AND linked_bot_chat_id = ? \
             AND COALESCE(archived, 0) = 0 ORDER BY created_at DESC, rowid DESC LIMIT 1"
        ))
        .bind(platform)
        .bind(chat_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Totals for the stats route.
    pub async fn session_stats(&self) -> Result<SessionStats, DbError> {
        let (total, archived): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), SUM(CASE WHEN archived = 1 THEN 1 ELSE 0 END) FROM sessions",
        )
        .fetch_one(self.pool())
        .await?;
        let by_module: Vec<(String, i64)> =
            sqlx::query_as("SELECT module, COUNT(*) FROM sessions GROUP BY module ORDER BY module")
                .fetch_all(self.pool())
                .await?;
        Ok(SessionStats {
            total,
            archived: archived.unwrap_or(0),
            by_module,
        })
    }

    /// How many sessions (archived ones included) store each trust level, a missing
    /// level counted as `full`.
    pub async fn sessions_per_trust_level(&self) -> Result<Vec<(String, i64)>, DbError> {
        Ok(sqlx::query_as(
            "SELECT COALESCE(trust_level, 'full'), COUNT(*) FROM sessions GROUP BY 1 ORDER BY 1",
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// Inserts a session.
    pub async fn insert_session(&self, s: &NewSession) -> Result<SessionRow, DbError> {
        let now = now_session();
        let created = s.created_at.clone().unwrap_or_else(|| now.clone());
        sqlx::query(
            "INSERT INTO sessions (id, title, module, source, working_directory, model, message_count, \
             archived, created_at, last_accessed, trust_level, workspace_id, metadata, \
             linked_bot_platform, linked_bot_chat_id, linked_bot_chat_type) \
             VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&s.id)
        .bind(&s.title)
        .bind(if s.module.is_empty() { "chat" } else { &s.module })
        .bind(if s.source.is_empty() { "parachute" } else { &s.source })
        .bind(&s.working_directory)
        .bind(&s.model)
        .bind(s.message_count)
        .bind(&created)
        .bind(&created)
        .bind(&s.trust_level)
        .bind(&s.workspace_id)
        .bind(&s.metadata)
        .bind(s.linked_bot.as_ref().map(|l| l.platform.as_str()))
        .bind(s.linked_bot.as_ref().map(|l| l.chat_id.as_str()))
        .bind(s.linked_bot.as_ref().map(|l| l.chat_type.as_str()))
        .execute(self.pool())
        .await?;
        self.get_session(&s.id)
            .await?
            .ok_or(DbError::Query(sqlx::Error::RowNotFound))
    }

    /// Applies `changes` and bumps `last_accessed`; `None` when the session is unknown.
    pub async fn update_session(
        &self,
        id: &str,
        changes: &SessionChanges,
    ) -> Result<Option<SessionRow>, DbError> {
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new("UPDATE sessions SET last_accessed = ");
        q.push_bind(now_session());
        if let Some(m) = &changes.module {
            q.push(", module = ").push_bind(m.clone());
        }
        if let Some(t) = &changes.trust_level {
            q.push(", trust_level = ").push_bind(t.clone());
        }
        if let Some(w) = &changes.workspace_id {
            q.push(", workspace_id = ").push_bind(w.clone());
        }
        if let Some(md) = &changes.metadata {
            q.push(", metadata = ").push_bind(md.clone());
        }
        if let Some(a) = changes.archived {
            q.push(", archived = ").push_bind(a as i64);
        }
        q.push(" WHERE id = ").push_bind(id.to_string());
        let done = q.build().execute(self.pool()).await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.get_session(id).await
    }

    /// Sets the message count (recovery from transcripts).
    pub async fn set_message_count(&self, id: &str, count: i64) -> Result<(), DbError> {
        sqlx::query("UPDATE sessions SET message_count = ? WHERE id = ?")
            .bind(count)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Records a finished turn: adds `messages` to the count, stores the model, bumps
    /// `last_accessed`; returns the new count (0 when the session is unknown).
    pub async fn record_turn(
        &self,
        id: &str,
        model: Option<&str>,
        messages: i64,
    ) -> Result<i64, DbError> {
        let r: Option<(i64,)> = sqlx::query_as(
            "UPDATE sessions SET message_count = COALESCE(message_count, 0) + ?, model = COALESCE(?, model), \
             last_accessed = ? WHERE id = ? RETURNING message_count",
        )
        .bind(messages)
        .bind(model)
        .bind(now_session())
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(r.map(|r| r.0).unwrap_or(0))
    }

    /// Deletes a session (its tags and contexts cascade) and records a tombstone so the
    /// id is never silently resurrected. `false` when it did not exist.
    pub async fn delete_session(&self, id: &str) -> Result<bool, DbError> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query("DELETE FROM sessions WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("INSERT OR REPLACE INTO session_tombstones (id, deleted_at) VALUES (?, ?)")
            .bind(id)
            .bind(now_session())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Whether a session id was deleted.
    pub async fn session_was_deleted(&self, id: &str) -> Result<bool, DbError> {
        let r: Option<(String,)> = sqlx::query_as("SELECT id FROM session_tombstones WHERE id = ?")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(r.is_some())
    }

    /// Detaches every session from a deleted workspace.
    pub async fn clear_workspace(&self, slug: &str) -> Result<u64, DbError> {
        Ok(
            sqlx::query("UPDATE sessions SET workspace_id = NULL WHERE workspace_id = ?")
                .bind(slug)
                .execute(self.pool())
                .await?
                .rows_affected(),
        )
    }
}
