//! Session tags (`session_tags`): listing, adding, removing, and finding sessions by tag
//! or title. Used by the MCP server's session tools.

use sqlx::{QueryBuilder, Sqlite};

use super::sessions::{escape_like, SessionRow, COLUMNS};
use super::{DbError, Store};
use crate::util::time::now_session;

/// Longest tag kept.
pub const MAX_TAG_CHARS: usize = 100;

/// A tag as stored: trimmed; `None` when empty or longer than [`MAX_TAG_CHARS`].
pub fn normalize_tag(tag: &str) -> Option<String> {
    let t = tag.trim();
    (!t.is_empty() && t.chars().count() <= MAX_TAG_CHARS && !t.chars().any(char::is_control))
        .then(|| t.to_string())
}

impl Store {
    /// Every tag with how many sessions carry it, most used first.
    pub async fn list_tags(&self) -> Result<Vec<(String, i64)>, DbError> {
        Ok(sqlx::query_as::<_, (String, i64)>(
            "SELECT tag, COUNT(*) AS n FROM session_tags GROUP BY tag ORDER BY n DESC, tag",
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// The tags of one session, sorted.
    pub async fn session_tags(&self, id: &str) -> Result<Vec<String>, DbError> {
        Ok(sqlx::query_scalar::<_, String>(
            "SELECT tag FROM session_tags WHERE session_id = ? ORDER BY tag",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?)
    }

    /// Tags session `id` (again is a no-op); `false` when there is no such session.
    pub async fn add_session_tag(&self, id: &str, tag: &str) -> Result<bool, DbError> {
        let r = sqlx::query(
            "INSERT OR IGNORE INTO session_tags (session_id, tag, created_at) \
             SELECT id, ?, ? FROM sessions WHERE id = ?",
        )
        .bind(tag)
        .bind(now_session())
        .bind(id)
        .execute(self.pool())
        .await?;
        if r.rows_affected() > 0 {
            return Ok(true);
        }
        Ok(self.get_session(id).await?.is_some())
    }

    /// Removes a tag from a session; whether it was there.
    pub async fn remove_session_tag(&self, id: &str, tag: &str) -> Result<bool, DbError> {
        let r = sqlx::query("DELETE FROM session_tags WHERE session_id = ? AND tag = ?")
            .bind(id)
            .bind(tag)
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Sessions whose title contains `query` (any, when empty), carrying every tag in
    /// `tags`, from `source` if given; most recent first.
    pub async fn search_sessions(
        &self,
        query: &str,
        tags: &[String],
        source: Option<&str>,
        limit: i64,
    ) -> Result<Vec<SessionRow>, DbError> {
        let mut q: QueryBuilder<Sqlite> =
            QueryBuilder::new(format!("SELECT {COLUMNS} FROM sessions WHERE 1 = 1"));
        if !query.is_empty() {
            q.push(" AND title LIKE ")
                .push_bind(format!("%{}%", escape_like(query)))
                .push(" ESCAPE '\\'");
        }
        if let Some(s) = source {
            q.push(" AND source = ").push_bind(s.to_string());
        }
        for t in tags {
            q.push(" AND id IN (SELECT session_id FROM session_tags WHERE tag = ")
                .push_bind(t.clone())
                .push(")");
        }
        q.push(" ORDER BY last_accessed DESC LIMIT ")
            .push_bind(limit);
        Ok(q.build_query_as::<SessionRow>()
            .fetch_all(self.pool())
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::NewSession;

    #[tokio::test]
    async fn tags_are_added_once_counted_searched_and_removed() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(&d.path().join("s.db")).await.unwrap();
        for (id, title) in [("a", "Garden plans"), ("b", "Tax 100% done")] {
            store
                .insert_session(&NewSession {
                    id: id.into(),
                    title: Some(title.into()),
                    module: "chat".into(),
                    source: "parachute".into(),
                    ..Default::default()
                })
                .await
                .unwrap();
        }
        assert!(store.add_session_tag("a", "home").await.unwrap());
        assert!(store.add_session_tag("a", "home").await.unwrap());
        assert!(store.add_session_tag("b", "home").await.unwrap());
        assert!(store.add_session_tag("b", "money").await.unwrap());
        assert!(!store.add_session_tag("missing", "home").await.unwrap());
        assert_eq!(
            store.list_tags().await.unwrap(),
            vec![("home".to_string(), 2), ("money".to_string(), 1)]
        );
        let ids = |rows: Vec<SessionRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
        let home_money = ["home".to_string(), "money".to_string()];
        assert_eq!(
            ids(store
                .search_sessions("", &home_money, None, 10)
                .await
                .unwrap()),
            vec!["b"]
        );
        // `%` is a character, not a wildcard.
        assert_eq!(
            ids(store.search_sessions("100%", &[], None, 10).await.unwrap()),
            vec!["b"]
        );
        assert!(store.remove_session_tag("b", "money").await.unwrap());
        assert!(!store.remove_session_tag("b", "money").await.unwrap());
        assert_eq!(store.session_tags("b").await.unwrap(), vec!["home"]);
        assert_eq!(normalize_tag("  x "), Some("x".into()));
        assert_eq!(normalize_tag(" "), None);
        assert_eq!(normalize_tag(&"t".repeat(101)), None);
    }
}
