//! Queries on `usage`: one row per turn and model.

use sqlx::FromRow;

use super::{DbError, Store};
use crate::util::time::now_session;

/// Tokens and cost of one model in one turn.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UsageEntry {
    /// Model id as reported by the CLI.
    pub model: String,
    /// Input tokens not read from or written to the prompt cache.
    pub input_tokens: i64,
    /// Output tokens.
    pub output_tokens: i64,
    /// Input tokens written to the prompt cache.
    pub cache_creation_input_tokens: i64,
    /// Input tokens read from the prompt cache.
    pub cache_read_input_tokens: i64,
    /// Cost in US dollars: the turn's total, split over its models by output tokens.
    pub cost_usd: f64,
}

/// Totals over some turns.
#[derive(Debug, Clone, Default, FromRow)]
pub struct UsageTotals {
    /// The session the rows belong to.
    pub session_id: String,
    /// The model; empty in per-session totals over all models.
    pub model: String,
    /// Number of rows summed (one per turn and model).
    pub turns: i64,
    /// Sum of uncached input tokens.
    pub input_tokens: i64,
    /// Sum of output tokens.
    pub output_tokens: i64,
    /// Sum of input tokens written to the prompt cache.
    pub cache_creation_input_tokens: i64,
    /// Sum of input tokens read from the prompt cache.
    pub cache_read_input_tokens: i64,
    /// Total cost in US dollars.
    pub cost_usd: f64,
    /// Time of the latest row summed, in the session timestamp format.
    pub last_at: String,
}

const SUMS: &str = "COUNT(*) AS turns, COALESCE(SUM(input_tokens),0) AS input_tokens, \
    COALESCE(SUM(output_tokens),0) AS output_tokens, \
    COALESCE(SUM(cache_creation_input_tokens),0) AS cache_creation_input_tokens, \
    COALESCE(SUM(cache_read_input_tokens),0) AS cache_read_input_tokens, \
    COALESCE(SUM(cost_usd),0.0) AS cost_usd, MAX(created_at) AS last_at";

impl Store {
    /// Records a turn's usage, one row per model.
    pub async fn record_usage(
        &self,
        session_id: &str,
        entries: &[UsageEntry],
    ) -> Result<(), DbError> {
        let now = now_session();
        let mut tx = self.pool().begin().await?;
        for e in entries {
            sqlx::query(
                "INSERT INTO usage (session_id, model, input_tokens, output_tokens, cache_creation_input_tokens, \
                 cache_read_input_tokens, cost_usd, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(session_id)
            .bind(&e.model)
            .bind(e.input_tokens)
            .bind(e.output_tokens)
            .bind(e.cache_creation_input_tokens)
            .bind(e.cache_read_input_tokens)
            .bind(e.cost_usd)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Per-session totals (all models), most recent first.
    pub async fn usage_by_session(
        &self,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<UsageTotals>, DbError> {
        Ok(sqlx::query_as::<_, UsageTotals>(&format!(
            "SELECT session_id, '' AS model, {SUMS} FROM usage GROUP BY session_id ORDER BY last_at DESC LIMIT ? OFFSET ?"
        ))
        .bind(limit)
        .bind(offset)
        .fetch_all(self.pool())
        .await?)
    }

    /// One session's totals per model.
    pub async fn usage_of_session(&self, session_id: &str) -> Result<Vec<UsageTotals>, DbError> {
        Ok(sqlx::query_as::<_, UsageTotals>(&format!(
            "SELECT session_id, model, {SUMS} FROM usage WHERE session_id = ? GROUP BY model ORDER BY model"
        ))
        .bind(session_id)
        .fetch_all(self.pool())
        .await?)
    }
}
