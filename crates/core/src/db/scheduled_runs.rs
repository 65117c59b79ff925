//! The scheduler's ledger (`scheduled_runs`) and each agent's pause state
//! (`scheduled_agents`).

use sqlx::FromRow;

use super::{DbError, Store};

/// One run of a scheduled agent.
#[derive(Debug, Clone, FromRow, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct RunRow {
    /// Its id.
    pub id: i64,
    /// The agent.
    pub agent: String,
    /// `schedule`, `manual` or `missed`.
    pub trigger: String,
    /// The occurrence it ran for (RFC 3339, UTC); null for manual runs.
    pub scheduled_for: Option<String>,
    /// When it started (RFC 3339, UTC).
    pub started_at: String,
    /// When it ended.
    pub finished_at: Option<String>,
    /// `running`, `completed`, `completed_no_output`, `error`, `interrupted` or `skipped`.
    pub outcome: String,
    /// The chat session it ran in.
    pub session_id: Option<String>,
    /// What it wrote (vault-relative).
    pub output_path: Option<String>,
    /// Why it failed or was skipped.
    pub error: Option<String>,
}

/// An agent's pause state.
#[derive(Debug, Clone, FromRow, PartialEq)]
pub struct AgentStateRow {
    /// The agent.
    pub name: String,
    /// When the scheduler first saw it.
    pub first_seen: String,
    /// When it was paused, if it is.
    pub paused_at: Option<String>,
    /// Why.
    pub pause_reason: Option<String>,
    /// When it was last resumed.
    pub resumed_at: Option<String>,
    /// Since when its current schedule holds (its first sighting, a schedule change).
    pub planned_since: Option<String>,
}

const RUN_COLUMNS: &str = "id, agent, trigger, scheduled_for, started_at, finished_at, outcome, \
    session_id, output_path, error";

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Store {
    /// Records a run that starts now; its id.
    pub async fn begin_run(
        &self,
        agent: &str,
        trigger: &str,
        scheduled_for: Option<&str>,
        session_id: Option<&str>,
    ) -> Result<i64, DbError> {
        let id = sqlx::query_scalar::<_, i64>(
            "INSERT INTO scheduled_runs (agent, trigger, scheduled_for, started_at, outcome, session_id) \
             VALUES (?, ?, ?, ?, 'running', ?) RETURNING id",
        )
        .bind(agent)
        .bind(trigger)
        .bind(scheduled_for)
        .bind(now())
        .bind(session_id)
        .fetch_one(self.pool())
        .await?;
        Ok(id)
    }

    /// Records how run `id` ended.
    pub async fn finish_run(
        &self,
        id: i64,
        outcome: &str,
        output_path: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE scheduled_runs SET finished_at = ?, outcome = ?, output_path = ?, error = ? WHERE id = ?",
        )
        .bind(now())
        .bind(outcome)
        .bind(output_path)
        .bind(error)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records an occurrence that was not run, and why.
    pub async fn record_skipped(
        &self,
        agent: &str,
        trigger: &str,
        scheduled_for: Option<&str>,
        reason: &str,
    ) -> Result<i64, DbError> {
        let id = self.begin_run(agent, trigger, scheduled_for, None).await?;
        self.finish_run(id, "skipped", None, Some(reason)).await?;
        Ok(id)
    }

    /// Marks every run still `running` (the server stopped during it) as interrupted;
    /// how many.
    pub async fn interrupt_unfinished_runs(&self) -> Result<u64, DbError> {
        let r = sqlx::query(
            "UPDATE scheduled_runs SET outcome = 'interrupted', finished_at = ?, \
             error = 'the server stopped during the run' WHERE outcome = 'running'",
        )
        .bind(now())
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected())
    }

    /// Whether the occurrence `scheduled_for` of `agent` was dealt with (run, running,
    /// failed or skipped — an interrupted run does not count).
    pub async fn occurrence_handled(
        &self,
        agent: &str,
        scheduled_for: &str,
    ) -> Result<bool, DbError> {
        let n = sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM scheduled_runs WHERE agent = ? AND scheduled_for = ? \
             AND outcome <> 'interrupted'",
        )
        .bind(agent)
        .bind(scheduled_for)
        .fetch_one(self.pool())
        .await?;
        Ok(n > 0)
    }

    /// Runs, newest first: of `agent` if given.
    pub async fn list_runs(&self, agent: Option<&str>, limit: i64) -> Result<Vec<RunRow>, DbError> {
        let rows = match agent {
            Some(a) => {
                sqlx::query_as::<_, RunRow>(&format!(
                "SELECT {RUN_COLUMNS} FROM scheduled_runs WHERE agent = ? ORDER BY id DESC LIMIT ?"
            ))
                .bind(a)
                .bind(limit)
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query_as::<_, RunRow>(&format!(
                    "SELECT {RUN_COLUMNS} FROM scheduled_runs ORDER BY id DESC LIMIT ?"
                ))
                .bind(limit)
                .fetch_all(self.pool())
                .await?
            }
        };
        Ok(rows)
    }

    /// The run that happens in session `session_id`, if any.
    pub async fn run_of_session(&self, session_id: &str) -> Result<Option<RunRow>, DbError> {
        Ok(sqlx::query_as::<_, RunRow>(&format!(
            "SELECT {RUN_COLUMNS} FROM scheduled_runs WHERE session_id = ? ORDER BY id DESC LIMIT 1"
        ))
        .bind(session_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// The agent's state, created (first seen now) if new.
    pub async fn agent_state(&self, name: &str) -> Result<AgentStateRow, DbError> {
        sqlx::query("INSERT OR IGNORE INTO scheduled_agents (name, first_seen) VALUES (?, ?)")
            .bind(name)
            .bind(now())
            .execute(self.pool())
            .await?;
        Ok(sqlx::query_as::<_, AgentStateRow>(
            "SELECT name, first_seen, paused_at, pause_reason, resumed_at, planned_since \
             FROM scheduled_agents WHERE name = ?",
        )
        .bind(name)
        .fetch_one(self.pool())
        .await?)
    }

    /// Records the agent's schedule as planned now (`sig`: its text, zone, on/off); when
    /// it differs from the last one, the schedule holds from now. Returns since when the
    /// current schedule holds.
    pub async fn note_schedule(&self, name: &str, sig: &str) -> Result<String, DbError> {
        self.agent_state(name).await?;
        sqlx::query(
            "UPDATE scheduled_agents SET schedule_sig = ?, planned_since = ? \
             WHERE name = ? AND (schedule_sig IS NULL OR schedule_sig <> ?)",
        )
        .bind(sig)
        .bind(now())
        .bind(name)
        .bind(sig)
        .execute(self.pool())
        .await?;
        Ok(sqlx::query_scalar::<_, Option<String>>(
            "SELECT planned_since FROM scheduled_agents WHERE name = ?",
        )
        .bind(name)
        .fetch_one(self.pool())
        .await?
        .unwrap_or_else(now))
    }

    /// Pauses the agent.
    pub async fn pause_agent(&self, name: &str, reason: &str) -> Result<(), DbError> {
        self.agent_state(name).await?;
        sqlx::query("UPDATE scheduled_agents SET paused_at = ?, pause_reason = ? WHERE name = ?")
            .bind(now())
            .bind(reason)
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Resumes the agent; whether it was paused.
    pub async fn resume_agent(&self, name: &str) -> Result<bool, DbError> {
        let was = self.agent_state(name).await?.paused_at.is_some();
        sqlx::query(
            "UPDATE scheduled_agents SET paused_at = NULL, pause_reason = NULL, resumed_at = ?, \
             resumed_after_run = (SELECT COALESCE(MAX(id), 0) FROM scheduled_runs WHERE agent = ?) \
             WHERE name = ?",
        )
        .bind(now())
        .bind(name)
        .bind(name)
        .execute(self.pool())
        .await?;
        Ok(was)
    }

    /// How many of the agent's most recent finished runs since it was last resumed
    /// failed in a row.
    pub async fn consecutive_failures(&self, name: &str) -> Result<usize, DbError> {
        self.agent_state(name).await?;
        let outcomes = sqlx::query_scalar::<_, String>(
            "SELECT outcome FROM scheduled_runs WHERE agent = ? \
             AND id > (SELECT resumed_after_run FROM scheduled_agents WHERE name = ?) \
             AND outcome IN ('completed', 'completed_no_output', 'error') ORDER BY id DESC LIMIT 20",
        )
        .bind(name)
        .bind(name)
        .fetch_all(self.pool())
        .await?;
        Ok(outcomes.iter().take_while(|o| *o == "error").count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_ledger_records_runs_interruptions_and_pauses() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(&d.path().join("s.db")).await.unwrap();
        let at = "2026-12-01T03:00:00Z";
        let a = store
            .begin_run("digest", "schedule", Some(at), Some("s1"))
            .await
            .unwrap();
        assert!(store.occurrence_handled("digest", at).await.unwrap());
        assert_eq!(store.interrupt_unfinished_runs().await.unwrap(), 1);
        // An interrupted run leaves its occurrence to the missed policy.
        assert!(!store.occurrence_handled("digest", at).await.unwrap());
        let runs = store.list_runs(Some("digest"), 10).await.unwrap();
        assert_eq!(runs[0].id, a);
        assert_eq!(runs[0].outcome, "interrupted");
        assert!(runs[0].finished_at.is_some());
        assert_eq!(
            store.run_of_session("s1").await.unwrap().map(|r| r.id),
            Some(a)
        );

        for _ in 0..3 {
            let id = store
                .begin_run("digest", "manual", None, None)
                .await
                .unwrap();
            store
                .finish_run(id, "error", None, Some("model said 500"))
                .await
                .unwrap();
        }
        assert_eq!(store.consecutive_failures("digest").await.unwrap(), 3);
        store.pause_agent("digest", "3 failures").await.unwrap();
        assert!(store
            .agent_state("digest")
            .await
            .unwrap()
            .paused_at
            .is_some());
        assert!(store.resume_agent("digest").await.unwrap());
        assert_eq!(store.consecutive_failures("digest").await.unwrap(), 0);
        store
            .record_skipped("digest", "missed", Some(at), "policy: skip")
            .await
            .unwrap();
        assert!(store.occurrence_handled("digest", at).await.unwrap());

        // A schedule holds from when it was first planned; a change starts it anew.
        let since = store.note_schedule("digest", "3:00|UTC|on").await.unwrap();
        assert_eq!(
            store.note_schedule("digest", "3:00|UTC|on").await.unwrap(),
            since
        );
        let changed = store.note_schedule("digest", "4:00|UTC|on").await.unwrap();
        assert!(changed >= since);
        assert_eq!(
            store.agent_state("digest").await.unwrap().planned_since,
            Some(changed)
        );
    }
}
