//! Migrations whose files were later edited in their comments only. sqlx checks every
//! applied migration's checksum (SHA-384 of its file), so a store created before such an
//! edit would refuse to open. Before migrating, a stored checksum that matches the
//! earlier text exactly is replaced by the current one. Any other mismatch still fails.

use sqlx::migrate::Migrator;
use sqlx::SqlitePool;

use super::DbError;

/// (version, SHA-384 of the file as it was first applied), for comment-only edits.
const REWORDED: &[(i64, &str)] = &[
    (
        1,
        "f85f11a733a03b040c024594c6aa4b180339e1bded8bd87ba78b4b688036be01b39fd2128499dda48ebf387b665d35a7",
    ),
    (
        2,
        "79cd92c469e66f3575cf5de4d1f28b440cf086d66375498ba94a83c9f4a45dae17ff132fbc17d36649037cdd7461f074",
    ),
];

/// Accepts the earlier text of the reworded migrations in an existing store.
pub async fn accept_reworded(pool: &SqlitePool, migrator: &Migrator) -> Result<(), DbError> {
    let table: Option<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_optional(pool)
    .await?;
    if table.is_none() {
        return Ok(());
    }
    for (version, earlier) in REWORDED {
        let Some(current) = migrator.iter().find(|m| m.version == *version) else {
            continue;
        };
        let Ok(earlier) = hex::decode(earlier) else {
            continue;
        };
        sqlx::query("UPDATE _sqlx_migrations SET checksum = ? WHERE version = ? AND checksum = ?")
            .bind(current.checksum.as_ref())
            .bind(version)
            .bind(earlier)
            .execute(pool)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::db::Store;

    #[tokio::test]
    async fn a_store_migrated_before_a_comment_edit_still_opens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessions.db");
        let store = Store::open(&path).await.unwrap();
        // As a store created before the edit has it.
        sqlx::query("UPDATE _sqlx_migrations SET checksum = ? WHERE version = 2")
            .bind(hex::decode(super::REWORDED[1].1).unwrap())
            .execute(store.pool())
            .await
            .unwrap();
        store.close().await;
        let again = Store::open(&path)
            .await
            .expect("reopens after the comment edit");
        again.close().await;
        // Any other change to an applied migration still refuses to open.
        let store = Store::open(&path).await.unwrap();
        sqlx::query("UPDATE _sqlx_migrations SET checksum = x'00' WHERE version = 2")
            .execute(store.pool())
            .await
            .unwrap();
        store.close().await;
        assert!(Store::open(&path).await.is_err());
    }
}
