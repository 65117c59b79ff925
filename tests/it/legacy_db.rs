//! A Python-era `Chat/sessions.db` (schema v10, before the trust/bot/workspace columns)
//! is adopted in place: its sessions are served, nothing is lost.

use serde_json::json;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::ConnectOptions;

use crate::support::{Dirs, Server};

#[tokio::test]
async fn python_era_database_keeps_its_sessions() {
    let d = Dirs::new();
    std::fs::create_dir_all(d.db_path().parent().unwrap()).unwrap();
    let mut conn = SqliteConnectOptions::new()
        .filename(d.db_path())
        .create_if_missing(true)
        .connect()
        .await
        .unwrap();
    for stmt in [
        "CREATE TABLE sessions (id TEXT PRIMARY KEY, title TEXT, module TEXT NOT NULL DEFAULT 'chat', \
         source TEXT NOT NULL DEFAULT 'parachute', working_directory TEXT, vault_root TEXT, model TEXT, \
         message_count INTEGER DEFAULT 0, archived INTEGER DEFAULT 0, created_at TEXT NOT NULL, \
         last_accessed TEXT NOT NULL, continued_from TEXT, agent_type TEXT, metadata TEXT)",
        "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
        "INSERT INTO schema_version VALUES (10, datetime('now'))",
        "INSERT INTO sessions (id, title, created_at, last_accessed, message_count, metadata) VALUES \
         ('old-1', 'From Python', '2026-02-09T18:06:07.123456+00:00', '2026-02-09T18:07:00.000001+00:00', 4, \
          '{\"imported_at\": \"x\"}')",
    ] {
        sqlx::query(stmt).execute(&mut conn).await.unwrap();
    }
    drop(conn);

    let s = Server::start(&d).await;
    let (st, v) = s.get("/api/chat").await;
    assert_eq!(st, 200, "{v}");
    let one = &v["sessions"][0];
    assert_eq!(one["id"], "old-1");
    assert_eq!(one["title"], "From Python");
    assert_eq!(one["createdAt"], "2026-02-09T18:06:07.123456Z");
    assert_eq!(one["lastAccessed"], "2026-02-09T18:07:00.000001Z");
    assert_eq!(one["messageCount"], 4);
    // The added column takes its default for old rows, as the original's migration did.
    assert_eq!(one["trustLevel"], "full");
    assert_eq!(one["metadata"], json!({"imported_at": "x"}));
    // The added columns work.
    let (st, v) = s
        .send(
            "PATCH",
            "/api/chat/old-1/config",
            Some(json!({"trustLevel": "vault", "workspaceId": "w"})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["session"]["workspaceId"], "w");
}
