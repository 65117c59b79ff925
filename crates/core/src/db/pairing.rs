//! Queries on `pairing_requests`: a bot user who is not on the allowlist asks to talk
//! to the agent; the owner approves (with a trust level) or denies.

use sqlx::FromRow;

use super::{DbError, NewSession, Store};
use crate::util::time::now_session;

/// A request's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairingStatus {
    /// Waiting for the owner.
    Pending,
    /// Approved: the user may talk to the agent.
    Approved,
    /// Denied.
    Denied,
}

impl PairingStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            PairingStatus::Pending => "pending",
            PairingStatus::Approved => "approved",
            PairingStatus::Denied => "denied",
        }
    }
}

/// A `pairing_requests` row.
#[derive(Debug, Clone, FromRow, PartialEq)]
pub struct PairingRow {
    /// The request id (a UUID).
    pub id: String,
    /// `telegram` or `discord`.
    pub platform: String,
    /// The platform's user id, as text.
    pub platform_user_id: String,
    /// The user's display name when they asked.
    pub platform_user_display: Option<String>,
    /// The chat they asked from.
    pub platform_chat_id: String,
    /// `pending`, `approved` or `denied`.
    pub status: String,
    /// The level the owner approved them at.
    pub approved_trust_level: Option<String>,
    /// When they asked.
    pub created_at: String,
    /// When the owner decided.
    pub resolved_at: Option<String>,
    /// Who decided (`owner`).
    pub resolved_by: Option<String>,
}

const COLUMNS: &str = "id, platform, platform_user_id, platform_user_display, platform_chat_id, \
    status, approved_trust_level, created_at, resolved_at, resolved_by";

impl Store {
    /// The user's most recent request, whatever its state.
    pub async fn latest_pairing(
        &self,
        platform: &str,
        user_id: &str,
    ) -> Result<Option<PairingRow>, DbError> {
        Ok(sqlx::query_as::<_, PairingRow>(&format!(
            "SELECT {COLUMNS} FROM pairing_requests WHERE platform = ? AND platform_user_id = ? \
             ORDER BY created_at DESC, rowid DESC LIMIT 1"
        ))
        .bind(platform)
        .bind(user_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// One request.
    pub async fn get_pairing(&self, id: &str) -> Result<Option<PairingRow>, DbError> {
        Ok(sqlx::query_as::<_, PairingRow>(&format!(
            "SELECT {COLUMNS} FROM pairing_requests WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Pending requests, newest first.
    pub async fn pending_pairings(&self) -> Result<Vec<PairingRow>, DbError> {
        Ok(sqlx::query_as::<_, PairingRow>(&format!(
            "SELECT {COLUMNS} FROM pairing_requests WHERE status = 'pending' \
             ORDER BY created_at DESC, rowid DESC LIMIT 1000"
        ))
        .fetch_all(self.pool())
        .await?)
    }

    /// Records a new pending request and its pending session in one transaction: both
    /// or neither. `false` (nothing written) when the user already has one pending.
    pub async fn insert_pairing(
        &self,
        row: &PairingRow,
        session: &NewSession,
    ) -> Result<bool, DbError> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "INSERT OR IGNORE INTO pairing_requests (id, platform, platform_user_id, platform_user_display, \
             platform_chat_id, status, created_at) VALUES (?, ?, ?, ?, ?, 'pending', ?)",
        )
        .bind(&row.id)
        .bind(&row.platform)
        .bind(&row.platform_user_id)
        .bind(&row.platform_user_display)
        .bind(&row.platform_chat_id)
        .bind(&row.created_at)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        let now = now_session();
        sqlx::query(
            "INSERT INTO sessions (id, title, module, source, message_count, archived, created_at, \
             last_accessed, trust_level, metadata, linked_bot_platform, linked_bot_chat_id, \
             linked_bot_chat_type) VALUES (?, ?, 'chat', ?, 0, 0, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&session.id)
        .bind(&session.title)
        .bind(&session.source)
        .bind(&now)
        .bind(&now)
        .bind(&session.trust_level)
        .bind(&session.metadata)
        .bind(session.linked_bot.as_ref().map(|l| l.platform.as_str()))
        .bind(session.linked_bot.as_ref().map(|l| l.chat_id.as_str()))
        .bind(session.linked_bot.as_ref().map(|l| l.chat_type.as_str()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Moves a pending request to `status` (with the approved level); `Err(row)` with
    /// the request as it is when it is not pending, `Ok(None)` when it does not exist.
    /// An older request of the same user in the target state is removed first (the
    /// table keeps one row per user and state).
    pub async fn resolve_pairing(
        &self,
        id: &str,
        status: PairingStatus,
        trust_level: Option<&str>,
    ) -> Result<Option<Result<PairingRow, PairingRow>>, DbError> {
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query_as::<_, PairingRow>(&format!(
            "SELECT {COLUMNS} FROM pairing_requests WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        if row.status != PairingStatus::Pending.as_str() {
            return Ok(Some(Err(row)));
        }
        sqlx::query(
            "DELETE FROM pairing_requests WHERE platform = ? AND platform_user_id = ? AND status = ? AND id != ?",
        )
        .bind(&row.platform)
        .bind(&row.platform_user_id)
        .bind(status.as_str())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE pairing_requests SET status = ?, approved_trust_level = ?, resolved_at = ?, \
             resolved_by = 'owner' WHERE id = ?",
        )
        .bind(status.as_str())
        .bind(trust_level)
        .bind(now_session())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query_as::<_, PairingRow>(&format!(
            "SELECT {COLUMNS} FROM pairing_requests WHERE id = ?"
        ))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(Ok(row)))
    }
}
