//! Start-up warmth (`prewarm_recent`): when the server starts, the CLIs of the most
//! recently active sessions are resumed in the background and kept warm, so the first
//! turn after a restart skips the CLI's start-up. Each is resolved exactly as its next
//! plain turn would be (a turn that asks for something else starts its own process), on
//! a free place under the process cap only; sessions at `sandboxed` (a container each)
//! and those without a transcript are left cold.

use std::sync::atomic::Ordering;

use super::error::TurnError;
use super::orchestrator::{ChatRequest, ChatService, Plan};
use super::spare::READY_WITHIN;
use super::turns::Turn;
use crate::agent::{AgentProcess, StartMode};
use crate::db::{ListFilter, SessionRow};
use crate::trust::TrustLevel;

/// Why a session was not pre-warmed (for the log).
enum Skipped {
    Busy,
    Deleted,
    Warm,
    NoTranscript,
    Sandboxed,
    NoPlace,
}

impl ChatService {
    /// Resumes the CLIs of the `prewarm_recent` most recently active sessions; returns
    /// how many are warm now.
    pub async fn prewarm_recent(&self) -> usize {
        let n = self
            .settings
            .prewarm_recent
            .min(self.settings.warm_pool_size);
        if n == 0 {
            return 0;
        }
        let filter = ListFilter {
            limit: n as i64,
            ..Default::default()
        };
        let rows = match self.store.list_sessions(&filter).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "no session could be pre-warmed");
                return 0;
            }
        };
        let mut warmed = 0;
        for row in rows {
            let id = row.id.clone();
            match self.prewarm(row).await {
                Ok(Ok(())) => warmed += 1,
                Ok(Err(Skipped::NoPlace)) => break,
                Ok(Err(why)) => {
                    tracing::debug!(session = %id, reason = why.as_str(), "not pre-warmed")
                }
                Err(e) => {
                    tracing::warn!(session = %id, error = %e, "a session could not be pre-warmed")
                }
            }
        }
        tracing::info!(sessions = warmed, "pre-warmed recent sessions");
        warmed
    }

    async fn prewarm(&self, row: SessionRow) -> Result<Result<(), Skipped>, TurnError> {
        let id = row.id.clone();
        // A session whose turn already runs is warm soon enough.
        let lock = self.hub.session_lock(&id);
        let Ok(_serial) = lock.try_lock() else {
            return Ok(Err(Skipped::Busy));
        };
        if self.pool.contains(&id) {
            return Ok(Err(Skipped::Warm));
        }
        let dir = self.settings.claude_config_dir.clone();
        let sid = id.clone();
        let has_transcript =
            tokio::task::spawn_blocking(move || super::transcript::find(&dir, &sid).is_some())
                .await
                .unwrap_or(false);
        if !has_transcript {
            return Ok(Err(Skipped::NoTranscript));
        }
        let plan = Plan {
            req: ChatRequest {
                session_id: Some(id.clone()),
                ..Default::default()
            },
            session_id: id.clone(),
            row: Some(row),
            resume: true,
            spare: std::sync::Mutex::new(None),
            prewarm: true,
        };
        let r = self.resolve(&plan, &Turn::detached()).await?;
        if r.level == TrustLevel::Sandboxed {
            return Ok(Err(Skipped::Sandboxed));
        }
        let Some(permit) = self.budget.try_free() else {
            return Ok(Err(Skipped::NoPlace));
        };
        let spec = self.spawn_spec(&r, StartMode::Resume(id.clone()));
        self.pool.prewarmed.fetch_add(1, Ordering::Relaxed);
        let mut process = AgentProcess::spawn(&spec).await?;
        process.hold(permit);
        process.append_in_message = r.append.is_some();
        process.wait_ready(READY_WITHIN).await?;
        // Deleted meanwhile (deleting takes no session lock): no warm CLI for it.
        if self.store.session_was_deleted(&id).await? {
            return Ok(Err(Skipped::Deleted));
        }
        self.pool.put(&id, process);
        Ok(Ok(()))
    }
}

impl Skipped {
    fn as_str(&self) -> &'static str {
        match self {
            Skipped::Busy => "a turn is running",
            Skipped::Deleted => "deleted",
            Skipped::Warm => "already warm",
            Skipped::NoTranscript => "no CLI transcript",
            Skipped::Sandboxed => "sandboxed",
            Skipped::NoPlace => "no free place under max_cli_processes",
        }
    }
}
