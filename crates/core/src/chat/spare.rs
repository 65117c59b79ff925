//! Spare CLI processes: started ahead with exactly what a plain new chat gets (the
//! default prompt, the vault as working directory, the default model, trust level
//! `full`, the same extras), initialized and idle, under a session id chosen now
//! (`--session-id`). A new chat whose request may run on one takes it in `plan` and its
//! id; `acquire` uses it when it matches the turn exactly, so the chat skips the CLI's
//! start-up. Anything else starts a process as before.
//!
//! Spares hold a place under `max_cli_processes`, but only a free one (never while a turn
//! waits), and give it up before any warm process when a turn needs it. They are started
//! in the background after a quiet moment (never on a turn's path), replaced when taken
//! or when they exit, and stopped when the credential, the default prompt or the extras
//! change. Until adopted a spare has no session row and no transcript: the CLI writes
//! one only with its first message.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::error::TurnError;
use super::orchestrator::{process_fingerprint, ChatRequest, ChatService, Plan, Resolved};
use super::pool::Spare;
use super::turns::Turn;
use crate::agent::{AgentProcess, StartMode};
use crate::trust::TrustLevel;

/// How long a starting CLI may take to answer `initialize`.
pub(super) const READY_WITHIN: Duration = Duration::from_secs(30);
/// No spare is started within this long after a turn was asked for (its CLI start-up
/// or first model call would share the cores with it).
const QUIET: Duration = Duration::from_secs(1);
/// How often spares are checked for having exited or for a changed credential.
const CHECK_EVERY: Duration = Duration::from_secs(2);
/// How often spares are checked against the current prompt and extras.
const REFRESH_EVERY: Duration = Duration::from_secs(30);
/// The longest pause after spares failed to start.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Whether a new chat's request may run on a spare: nothing in it asks for another
/// prompt, folder, level or workspace. (`acquire` then compares exactly.)
fn may_use_spare(req: &ChatRequest) -> bool {
    let blank = |s: &Option<String>| s.as_deref().is_none_or(|s| s.trim().is_empty());
    blank(&req.system_prompt)
        && blank(&req.agent_path)
        && blank(&req.working_directory)
        && blank(&req.prior_conversation)
        && blank(&req.workspace_id)
        && req.contexts.as_ref().is_none_or(Vec::is_empty)
        && req.trust_level.as_deref().is_none_or(|t| t == "full")
}

impl ChatService {
    /// Takes a spare for a new chat whose request may run on one, and asks for its
    /// replacement.
    pub(super) fn spare_for(&self, req: &ChatRequest) -> Option<AgentProcess> {
        if self.settings.spare_cli_processes == 0 || !may_use_spare(req) {
            return None;
        }
        let spare = self.pool.take_spare()?;
        self.spare_wanted.notify_one();
        Some(spare.process)
    }

    /// A spare did not match a plain new chat: all of them are rechecked now.
    pub(super) fn spare_out_of_date(&self) {
        self.refresh_spares_now.store(true, Ordering::SeqCst);
        self.spare_wanted.notify_one();
    }

    /// What a plain new chat in session `id` runs with: the same resolution as a turn's
    /// (no hooks fire, its events go nowhere).
    async fn plain_new_chat(&self, id: &str) -> Result<Resolved, TurnError> {
        let plan = Plan {
            req: ChatRequest::default(),
            session_id: id.to_string(),
            row: None,
            resume: false,
            spare: std::sync::Mutex::new(None),
            prewarm: true,
        };
        self.resolve(&plan, &Turn::detached()).await
    }

    /// Starts one spare on a free place under the process cap; `Ok(false)` when there
    /// is none.
    async fn start_spare(&self) -> Result<bool, TurnError> {
        let Some(permit) = self.budget.try_free() else {
            return Ok(false);
        };
        let generation = self.secrets.generation();
        let id = uuid::Uuid::new_v4().to_string();
        // A turn that comes to wait for a place meanwhile gets this one.
        let stopped = self.pool.spare_start_stopped();
        let mut stopped = std::pin::pin!(stopped);
        stopped.as_mut().enable();
        let starting = async {
            let r = self.plain_new_chat(&id).await?;
            if r.level != TrustLevel::Full {
                return Ok(None);
            }
            let spec = self.spawn_spec(&r, StartMode::New(id.clone()));
            self.pool.spares_spawned.fetch_add(1, Ordering::Relaxed);
            let mut process = AgentProcess::spawn(&spec).await?;
            process.hold(permit);
            process.wait_initialized(READY_WITHIN).await?;
            Ok::<_, TurnError>(Some(process))
        };
        let process = tokio::select! {
            p = starting => p?,
            _ = stopped => {
                tracing::debug!(session = %id, "a turn needed the place of a spare being started");
                None
            }
        };
        let Some(process) = process else {
            return Ok(false);
        };
        tracing::debug!(session = %id, "a spare CLI process is ready");
        self.pool.put_spare(Spare {
            process,
            secrets_generation: generation,
        });
        Ok(true)
    }

    /// Stops the spares a plain new chat would no longer run on (prompt, extras or
    /// credential changed).
    async fn refresh_spares(&self) {
        let mut current = Vec::new();
        for (id, fingerprint, cwd) in self.pool.spare_shapes() {
            if let Ok(r) = self.plain_new_chat(&id).await {
                if process_fingerprint(&r) == fingerprint && r.cwd == cwd {
                    current.push(id);
                }
            }
        }
        self.pool
            .drop_spares(|s| !current.contains(&s.process.session_id));
    }

    /// Time left before the server has been quiet long enough to start a spare.
    fn until_quiet(&self) -> Duration {
        self.last_turn_start
            .lock()
            .ok()
            .and_then(|at| *at)
            .map_or(Duration::ZERO, |at| QUIET.saturating_sub(at.elapsed()))
    }

    /// Keeps `spare_cli_processes` spares for as long as the server runs (nothing when
    /// it is 0): replaces those taken or exited, stops out-of-date ones.
    pub async fn keep_spares(self: Arc<Self>) {
        let target = self.settings.spare_cli_processes;
        if target == 0 {
            return;
        }
        let mut refreshed = Instant::now();
        let (mut failures, mut generation) = (0u32, self.secrets.generation());
        loop {
            let now_generation = self.secrets.generation();
            if now_generation != generation {
                // A new credential: what failed for want of one may work now.
                (generation, failures) = (now_generation, 0);
            }
            let mut have = self
                .pool
                .drop_spares(|s| s.secrets_generation != now_generation);
            if refreshed.elapsed() >= REFRESH_EVERY
                || self.refresh_spares_now.swap(false, Ordering::SeqCst)
            {
                self.refresh_spares().await;
                have = self.pool.spare_count();
                refreshed = Instant::now();
            }
            let quiet_in = self.until_quiet();
            let mut wait = CHECK_EVERY;
            if have < target && quiet_in.is_zero() {
                match self.start_spare().await {
                    Ok(true) => {
                        failures = 0;
                        continue;
                    }
                    Ok(false) => {}
                    Err(e) => {
                        failures += 1;
                        wait = (CHECK_EVERY * 2u32.saturating_pow(failures)).min(MAX_BACKOFF);
                        match e {
                            TurnError::NoToken => {
                                tracing::debug!("no spare CLI process: no Claude credential")
                            }
                            e => {
                                tracing::warn!(error = %e, retry_in = ?wait, "a spare CLI process could not be started")
                            }
                        }
                    }
                }
            } else if have < target {
                wait = quiet_in;
            }
            tokio::select! {
                _ = self.spare_wanted.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_requests_may_use_a_spare() {
        let plain = ChatRequest {
            message: "hi".into(),
            ..Default::default()
        };
        assert!(may_use_spare(&plain));
        let with = |f: fn(&mut ChatRequest)| {
            let mut r = plain.clone();
            f(&mut r);
            may_use_spare(&r)
        };
        assert!(
            with(|r| r.model = Some("opus".into())),
            "the model can be switched"
        );
        assert!(with(|r| r.trust_level = Some("full".into())));
        assert!(
            with(|r| r.initial_context = Some("ctx".into())),
            "it goes in the message"
        );
        assert!(
            with(|r| r.system_prompt = Some("  ".into())),
            "blank is none"
        );
        assert!(!with(|r| r.system_prompt = Some("Be terse.".into())));
        assert!(!with(|r| r.agent_path = Some("a.md".into())));
        assert!(!with(|r| r.working_directory = Some("Projects".into())));
        assert!(!with(|r| r.prior_conversation = Some("earlier".into())));
        assert!(!with(|r| r.workspace_id = Some("w".into())));
        assert!(!with(|r| r.contexts = Some(vec!["Notes".into()])));
        assert!(!with(|r| r.trust_level = Some("vault".into())));
    }
}
