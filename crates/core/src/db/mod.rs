//! The session store: one SQLite file (WAL, `foreign_keys=ON`, `synchronous=FULL`),
//! migrated at start from `migrations/`. This folder is the only place with SQL;
//! functions are named for what they return.

mod brain;
mod legacy;
mod pairing;
mod reworded;
mod scheduled_runs;
mod session_contexts;
mod sessions;
mod tags;
mod usage;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

pub use brain::{BrainEntityDoc, BrainEntityRow, BrainHit};
pub use pairing::{PairingRow, PairingStatus};
pub use scheduled_runs::{AgentStateRow, RunRow};
pub use sessions::{LinkedBot, ListFilter, NewSession, SessionChanges, SessionRow, SessionStats};
pub use tags::{normalize_tag, MAX_TAG_CHARS};
pub use usage::{UsageEntry, UsageTotals};

/// A store failure. The HTTP layer logs it and answers a generic 500-free message.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database file or its folder could not be created or opened.
    #[error("cannot open the database at {path}: {reason}")]
    Open {
        /// The database file.
        path: String,
        /// The underlying error, as text.
        reason: String,
    },
    /// Bringing the schema up to date failed; holds the migrator's error text.
    #[error("database migration failed: {0}")]
    Migrate(String),
    /// A query failed.
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
}

/// The connection pool, cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Store, DbError> {
        let err = |reason: String| DbError::Open {
            path: path.display().to_string(),
            reason,
        };
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| err(e.to_string()))?;
        }
        let opts = SqliteConnectOptions::from_str("sqlite://")
            .map_err(|e| err(e.to_string()))?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .connect_with(opts)
            .await
            .map_err(|e| err(e.to_string()))?;
        legacy::adopt_python_schema(&pool).await?;
        let migrator = sqlx::migrate!("../../migrations");
        reworded::accept_reworded(&pool, &migrator).await?;
        migrator
            .run(&pool)
            .await
            .map_err(|e| DbError::Migrate(e.to_string()))?;
        Ok(Store { pool })
    }

    /// The underlying SQLite connection pool.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// `PRAGMA quick_check`: `Ok(true)` when the file is sound (used by `doctor`).
    pub async fn quick_check(&self) -> Result<bool, DbError> {
        let r: (String,) = sqlx::query_as("PRAGMA quick_check")
            .fetch_one(&self.pool)
            .await?;
        Ok(r.0 == "ok")
    }

    /// Closes the pool, checkpointing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
