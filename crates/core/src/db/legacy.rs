//! Adoption of a Python-era `sessions.db`: its `sessions` table may predate the
//! columns later added by probing migrations, and SQLite has no
//! `ADD COLUMN IF NOT EXISTS`, so missing columns are added here before the sqlx
//! migrations (which are all `IF NOT EXISTS`) run.

use sqlx::SqlitePool;

use super::DbError;

const LATER_COLUMNS: &[(&str, &str)] = &[
    ("vault_root", "TEXT"),
    ("model", "TEXT"),
    ("continued_from", "TEXT"),
    ("agent_type", "TEXT"),
    ("metadata", "TEXT"),
    ("trust_level", "TEXT DEFAULT 'full'"),
    ("linked_bot_platform", "TEXT"),
    ("linked_bot_chat_id", "TEXT"),
    ("linked_bot_chat_type", "TEXT"),
    ("workspace_id", "TEXT"),
];

pub(super) async fn adopt_python_schema(pool: &SqlitePool) -> Result<(), DbError> {
    let exists: Option<(String,)> =
        sqlx::query_as("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'sessions'")
            .fetch_optional(pool)
            .await?;
    if exists.is_none() {
        return Ok(());
    }
    let cols: Vec<(String,)> = sqlx::query_as("SELECT name FROM pragma_table_info('sessions')")
        .fetch_all(pool)
        .await?;
    for (name, ty) in LATER_COLUMNS {
        if !cols.iter().any(|(c,)| c == name) {
            tracing::info!(
                column = name,
                "adding a column missing from an older sessions table"
            );
            sqlx::query(&format!("ALTER TABLE sessions ADD COLUMN {name} {ty}"))
                .execute(pool)
                .await?;
        }
    }
    Ok(())
}
