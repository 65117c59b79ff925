//! Queries on `session_contexts`: the context folders chosen for a session.

use super::{DbError, Store};

impl Store {
    /// A session's folders, in the order they were added.
    pub async fn session_contexts(&self, session_id: &str) -> Result<Vec<String>, DbError> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT folder_path FROM session_contexts WHERE session_id = ? ORDER BY added_at, folder_path")
                .bind(session_id)
                .fetch_all(self.pool())
                .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// Replaces a session's folders.
    pub async fn set_session_contexts(
        &self,
        session_id: &str,
        folders: &[String],
    ) -> Result<(), DbError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM session_contexts WHERE session_id = ?")
            .bind(session_id)
            .execute(&mut *tx)
            .await?;
        for f in folders {
            sqlx::query(
                "INSERT OR IGNORE INTO session_contexts (session_id, folder_path) VALUES (?, ?)",
            )
            .bind(session_id)
            .bind(f)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Adds one folder.
    pub async fn add_session_context(&self, session_id: &str, folder: &str) -> Result<(), DbError> {
        sqlx::query(
            "INSERT OR IGNORE INTO session_contexts (session_id, folder_path) VALUES (?, ?)",
        )
        .bind(session_id)
        .bind(folder)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Removes one folder.
    pub async fn remove_session_context(
        &self,
        session_id: &str,
        folder: &str,
    ) -> Result<(), DbError> {
        sqlx::query("DELETE FROM session_contexts WHERE session_id = ? AND folder_path = ?")
            .bind(session_id)
            .bind(folder)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
