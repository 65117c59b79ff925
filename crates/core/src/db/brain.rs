//! Queries on the Brain index (`brain_entities` and its full-text table `brain_fts`).
//! The entity files are the truth; the extensions crate keeps this in step with them.

use sqlx::FromRow;

use super::{DbError, Store};

/// One indexed entity.
#[derive(Debug, Clone, FromRow, PartialEq)]
pub struct BrainEntityRow {
    /// Vault-relative path of its file.
    pub path: String,
    /// Its id (`para_id`, or the path under `Brain/entities/` without `.md`).
    pub para_id: String,
    /// Its name.
    pub name: String,
    /// Its tags, a JSON array.
    pub tags: String,
    /// Its other frontmatter keys, a JSON object.
    pub frontmatter: String,
    /// The file's size when indexed.
    pub size: i64,
    /// The file's modification time when indexed (ns since the epoch).
    pub mtime_ns: i64,
}

/// An entity to index, with its body text.
#[derive(Debug, Clone)]
pub struct BrainEntityDoc {
    /// The row.
    pub row: BrainEntityRow,
    /// The body (Markdown without frontmatter), for full-text search.
    pub body: String,
}

/// A search hit.
#[derive(Debug, Clone, FromRow, PartialEq)]
pub struct BrainHit {
    /// Its id.
    pub para_id: String,
    /// Its name.
    pub name: String,
    /// Its tags, a JSON array.
    pub tags: String,
    /// The matching part of the body.
    pub snippet: String,
    /// Its file.
    pub path: String,
}

impl Store {
    /// `(path, size, mtime_ns)` of every indexed file.
    pub async fn brain_files(&self) -> Result<Vec<(String, i64, i64)>, DbError> {
        Ok(
            sqlx::query_as("SELECT path, size, mtime_ns FROM brain_entities")
                .fetch_all(self.pool())
                .await?,
        )
    }

    /// Upserts `docs` and removes the files in `removed`, in one transaction.
    pub async fn brain_apply(
        &self,
        docs: &[BrainEntityDoc],
        removed: &[String],
    ) -> Result<(), DbError> {
        let mut tx = self.pool().begin().await?;
        for path in removed {
            sqlx::query("DELETE FROM brain_fts WHERE rowid = (SELECT id FROM brain_entities WHERE path = ?)")
                .bind(path)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM brain_entities WHERE path = ?")
                .bind(path)
                .execute(&mut *tx)
                .await?;
        }
        for d in docs {
            let r = &d.row;
            let (id,): (i64,) = sqlx::query_as(
                "INSERT INTO brain_entities (path, para_id, name, name_lower, tags, frontmatter, size, mtime_ns)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT(path) DO UPDATE SET para_id = excluded.para_id, name = excluded.name,
                   name_lower = excluded.name_lower, tags = excluded.tags,
                   frontmatter = excluded.frontmatter, size = excluded.size, mtime_ns = excluded.mtime_ns
                 RETURNING id",
            )
            .bind(&r.path)
            .bind(&r.para_id)
            .bind(&r.name)
            .bind(r.name.to_lowercase())
            .bind(&r.tags)
            .bind(&r.frontmatter)
            .bind(r.size)
            .bind(r.mtime_ns)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM brain_fts WHERE rowid = ?")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let tags: Vec<String> = serde_json::from_str(&r.tags).unwrap_or_default();
            sqlx::query("INSERT INTO brain_fts (rowid, name, tags, body) VALUES (?, ?, ?, ?)")
                .bind(id)
                .bind(&r.name)
                .bind(tags.join(" "))
                .bind(&d.body)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Entities matching the FTS5 expression `fts_query`, best first: a match in the
    /// name weighs ten times one in the body, one in the tags five times.
    pub async fn brain_search(
        &self,
        fts_query: &str,
        limit: i64,
    ) -> Result<Vec<BrainHit>, DbError> {
        Ok(sqlx::query_as(
            "SELECT e.para_id, e.name, e.tags, e.path,
                    snippet(brain_fts, 2, '', '', '…', 24) AS snippet
             FROM brain_fts JOIN brain_entities e ON e.id = brain_fts.rowid
             WHERE brain_fts MATCH ?
             ORDER BY bm25(brain_fts, 10.0, 5.0, 1.0), e.path
             LIMIT ?",
        )
        .bind(fts_query)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// The entity with id `para_id` (the first by path if several share it).
    pub async fn brain_by_id(&self, para_id: &str) -> Result<Option<BrainEntityRow>, DbError> {
        Ok(sqlx::query_as(
            "SELECT path, para_id, name, tags, frontmatter, size, mtime_ns FROM brain_entities
             WHERE para_id = ? ORDER BY path LIMIT 1",
        )
        .bind(para_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// The entities whose lowercased name is one of `names_lower`.
    pub async fn brain_by_names(
        &self,
        names_lower: &[String],
    ) -> Result<Vec<BrainEntityRow>, DbError> {
        let mut out = Vec::new();
        for chunk in names_lower.chunks(200) {
            let marks = vec!["?"; chunk.len()].join(",");
            let sql = format!(
                "SELECT path, para_id, name, tags, frontmatter, size, mtime_ns FROM brain_entities
                 WHERE name_lower IN ({marks}) ORDER BY path"
            );
            let mut q = sqlx::query_as(&sql);
            for n in chunk {
                q = q.bind(n);
            }
            let rows: Vec<BrainEntityRow> = q.fetch_all(self.pool()).await?;
            out.extend(rows);
        }
        Ok(out)
    }

    /// How many entities are indexed.
    pub async fn brain_count(&self) -> Result<i64, DbError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM brain_entities")
            .fetch_one(self.pool())
            .await?;
        Ok(n)
    }

    /// Empties the index.
    pub async fn brain_clear(&self) -> Result<(), DbError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM brain_fts")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM brain_entities")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
