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
use super::spare_store::Spare;
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
        let spare = self.pool.spares.take()?;
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
    /// is none, or a turn wanted the place meanwhile.
    async fn start_spare(&self) -> Result<bool, TurnError> {
        // Without a credential there is nothing to start (and no files to make).
        self.credential().await?;
        // Registered before the place is taken: a turn may take it from here on.
        let stopped = self.pool.spares.start_stopped();
        let mut stopped = std::pin::pin!(stopped);
        stopped.as_mut().enable();
        let Some(permit) = self.budget.try_free() else {
            return Ok(false);
        };
        self.pool.spares.begin_start(permit);
        let generation = self.secrets.generation();
        let id = uuid::Uuid::new_v4().to_string();
        let started = self.spawn_spare(&id, stopped).await;
        let place = self.pool.spares.finish_start();
        match (started, place) {
            (Ok(Some(mut process)), Some(permit)) if self.budget.waiting() == 0 => {
                tracing::debug!(session = %id, "a spare CLI process is ready");
                process.hold(permit);
                self.pool.put_spare(Spare {
                    process,
                    secrets_generation: generation,
                    ready_at: Instant::now(),
                });
                Ok(true)
            }
            // A turn wants the place.
            (Ok(Some(process)), _) => {
                self.pool.spares.retire(process);
                Ok(false)
            }
            (Ok(None), _) => {
                self.pool.spares.note_unused(id);
                Ok(false)
            }
            (Err(e), _) => {
                self.pool.spares.note_unused(id);
                Err(e)
            }
        }
    }

    /// Starts the CLI of spare `id` and waits until it is initialized; `None` when a
    /// turn took its place meanwhile (the CLI is then stopped).
    async fn spawn_spare(
        &self,
        id: &str,
        stopped: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>,
    ) -> Result<Option<AgentProcess>, TurnError> {
        let r = self.plain_new_chat(id).await?;
        if r.level != TrustLevel::Full {
            return Ok(None);
        }
        let spec = self.spawn_spec(&r, StartMode::New(id.to_string()));
        self.pool.spares.spawned.fetch_add(1, Ordering::Relaxed);
        let mut process = AgentProcess::spawn(&spec).await?;
        let ready = tokio::select! {
            biased;
            _ = stopped => None,
            r = process.wait_initialized(READY_WITHIN) => Some(r),
        };
        match ready {
            Some(Ok(())) => Ok(Some(process)),
            Some(Err(e)) => {
                super::pool::retire(process);
                Err(e.into())
            }
            None => {
                tracing::debug!(session = %id, "a turn took the place of a spare being started");
                super::pool::retire(process);
                Ok(None)
            }
        }
    }

    /// Removes the files made for spares that no chat adopted.
    async fn forget_unused_spares(&self) {
        let ids = self.pool.spares.take_retired();
        let Some(source) = self.extras_source().filter(|_| !ids.is_empty()) else {
            return;
        };
        let _ = tokio::task::spawn_blocking(move || {
            for id in ids {
                source.forget(&id);
            }
        })
        .await;
    }

    /// Stops the spares a plain new chat would no longer run on (prompt, extras or
    /// credential changed).
    async fn refresh_spares(&self) {
        let mut current = Vec::new();
        for (id, fingerprint, cwd) in self.pool.spares.shapes() {
            if let Ok(r) = self.plain_new_chat(&id).await {
                if process_fingerprint(&r) == fingerprint && r.cwd == cwd {
                    current.push(id);
                }
            }
        }
        self.pool
            .spares
            .drop_where(|s| !current.contains(&s.process.session_id));
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
    /// it is 0): replaces those taken or exited, stops out-of-date ones. Spares that
    /// fail to start, or exit soon after, are retried less and less often.
    pub async fn keep_spares(self: Arc<Self>) {
        let target = self.settings.spare_cli_processes;
        if target == 0 {
            return;
        }
        let mut refreshed = Instant::now();
        let mut generation = self.secrets.generation();
        let mut trouble = Trouble::default();
        loop {
            let now_generation = self.secrets.generation();
            if now_generation != generation {
                // A new credential: what failed for want of one may work now.
                generation = now_generation;
                trouble = Trouble::default();
            }
            let dropped = self
                .pool
                .spares
                .drop_where(|s| s.secrets_generation != now_generation);
            if dropped.died_young > 0 {
                trouble.failed("a spare CLI process exited soon after it started");
            } else if dropped.left >= target {
                trouble = Trouble::default();
            }
            if refreshed.elapsed() >= REFRESH_EVERY
                || self.refresh_spares_now.swap(false, Ordering::SeqCst)
            {
                self.refresh_spares().await;
                refreshed = Instant::now();
            }
            self.forget_unused_spares().await;
            let wait = self.until_quiet().max(trouble.wait());
            if self.pool.spares.count() < target && wait.is_zero() {
                match self.start_spare().await {
                    Ok(true) if trouble.failures == 0 => continue,
                    Ok(_) => {}
                    Err(TurnError::NoToken) => {
                        tracing::debug!("no spare CLI process: no Claude credential");
                        trouble.failures += 1;
                        trouble.since = Some(Instant::now());
                    }
                    Err(e) => trouble.failed(&e.to_string()),
                }
            }
            let wait = self.until_quiet().max(trouble.wait());
            tokio::select! {
                _ = self.spare_wanted.notified() => {}
                _ = tokio::time::sleep(if wait.is_zero() { CHECK_EVERY } else { wait.min(CHECK_EVERY) }) => {}
            }
        }
    }
}

/// Failed spare starts: how many in a row, since when, and the last error (logged as a
/// warning once, then at debug level while it repeats).
#[derive(Default)]
struct Trouble {
    failures: u32,
    since: Option<Instant>,
    last_error: Option<String>,
}

impl Trouble {
    fn failed(&mut self, error: &str) {
        self.failures += 1;
        self.since = Some(Instant::now());
        let wait = self.backoff();
        if self.last_error.as_deref() == Some(error) {
            tracing::debug!(error, retry_in = ?wait, "a spare CLI process could not be started");
        } else {
            tracing::warn!(error, retry_in = ?wait, "a spare CLI process could not be started");
            self.last_error = Some(error.to_string());
        }
    }

    fn backoff(&self) -> Duration {
        if self.failures == 0 {
            return Duration::ZERO;
        }
        (CHECK_EVERY * 2u32.saturating_pow(self.failures)).min(MAX_BACKOFF)
    }

    /// Time left before the next start may be tried.
    fn wait(&self) -> Duration {
        self.since.map_or(Duration::ZERO, |at| {
            self.backoff().saturating_sub(at.elapsed())
        })
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
