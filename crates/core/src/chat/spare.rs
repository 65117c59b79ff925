//! Spare CLI processes: started ahead with exactly what a plain new chat gets (the
//! default prompt, the vault as working directory, the default model, the same
//! extras), at `full` (`spare_cli_processes`) and at `vault`
//! (`spare_vault_cli_processes`), initialized and idle, under a session id chosen now
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

/// The level of spare a new chat's request may run on: none when it asks for another
/// prompt, folder or workspace, or a level spares are not kept at. (`acquire` then
/// compares exactly.)
fn spare_level(req: &ChatRequest) -> Option<TrustLevel> {
    let blank = |s: &Option<String>| s.as_deref().is_none_or(|s| s.trim().is_empty());
    let plain = blank(&req.system_prompt)
        && blank(&req.agent_path)
        && blank(&req.working_directory)
        && blank(&req.prior_conversation)
        && blank(&req.workspace_id)
        && req.contexts.as_ref().is_none_or(Vec::is_empty);
    match req.trust_level.as_deref() {
        _ if !plain => None,
        None => Some(TrustLevel::Full),
        Some(t) => t
            .parse::<TrustLevel>()
            .ok()
            .filter(|l| *l != TrustLevel::Sandboxed),
    }
}

impl ChatService {
    /// Takes a spare for a new chat whose request may run on one, and asks for its
    /// replacement.
    pub(super) fn spare_for(&self, req: &ChatRequest) -> Option<AgentProcess> {
        let level = spare_level(req)?;
        let spare = self.pool.spares.take(level)?;
        self.spare_wanted.notify_one();
        Some(spare.process)
    }

    /// A spare did not match a plain new chat: all of them are rechecked now.
    pub(super) fn spare_out_of_date(&self) {
        self.refresh_spares_now.store(true, Ordering::SeqCst);
        self.spare_wanted.notify_one();
    }

    /// How many spares are kept at each level.
    fn spare_targets(&self) -> [(TrustLevel, usize); 2] {
        [
            (TrustLevel::Full, self.settings.spare_cli_processes),
            (TrustLevel::Vault, self.settings.spare_vault_cli_processes),
        ]
    }

    /// What a plain new chat at `level` in session `id` runs with: the same resolution
    /// as a turn's (no hooks fire, its events go nowhere).
    async fn plain_new_chat(&self, id: &str, level: TrustLevel) -> Result<Resolved, TurnError> {
        let plan = Plan {
            req: ChatRequest {
                trust_level: (level != TrustLevel::Full).then(|| level.as_str().to_string()),
                ..Default::default()
            },
            session_id: id.to_string(),
            row: None,
            resume: false,
            spare: std::sync::Mutex::new(None),
            prewarm: true,
        };
        self.resolve(&plan, &Turn::detached()).await
    }

    /// Starts one spare at `level` on a free place under the process cap; `Ok(false)`
    /// when there is none, or a turn wanted the place meanwhile.
    async fn start_spare(&self, level: TrustLevel) -> Result<bool, TurnError> {
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
        let started = self.spawn_spare(&id, level, stopped).await;
        let place = self.pool.spares.finish_start();
        match (started, place) {
            (Ok(Some(mut process)), Some(permit)) if self.budget.waiting() == 0 => {
                tracing::debug!(session = %id, "a spare CLI process is ready");
                process.hold(permit);
                self.pool.put_spare(Spare {
                    process,
                    secrets_generation: generation,
                    ready_at: Instant::now(),
                    level,
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
        level: TrustLevel,
        stopped: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>,
    ) -> Result<Option<AgentProcess>, TurnError> {
        let r = self.plain_new_chat(id, level).await?;
        if r.level != level {
            return Ok(None);
        }
        let spec = self.spawn_spec(&r, StartMode::New(id.to_string()));
        self.pool.spares.spawned.fetch_add(1, Ordering::Relaxed);
        let mut process = AgentProcess::spawn(&spec).await?;
        let ready = tokio::select! {
            biased;
            _ = stopped => None,
            r = process.wait_ready(READY_WITHIN) => Some(r),
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
        for (id, level, fingerprint, cwd) in self.pool.spares.shapes() {
            if let Ok(r) = self.plain_new_chat(&id, level).await {
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
        let targets = self.spare_targets();
        if targets.iter().all(|(_, n)| *n == 0) {
            return;
        }
        let mut refreshed = Instant::now();
        let mut generation = self.secrets.generation();
        // Per level: failures at one (no OS sandbox for `vault`) never hold up another.
        let mut trouble: [Trouble; 2] = Default::default();
        let short = |i: usize| self.pool.spares.count_at(targets[i].0) < targets[i].1;
        loop {
            let now_generation = self.secrets.generation();
            if now_generation != generation {
                // A new credential: what failed for want of one may work now.
                generation = now_generation;
                trouble = Default::default();
            }
            let dropped = self
                .pool
                .spares
                .drop_where(|s| s.secrets_generation != now_generation);
            for (i, t) in trouble.iter_mut().enumerate() {
                let level = targets[i].0;
                if dropped.died_young.contains(&level) {
                    t.failed("a spare CLI process exited soon after it started");
                } else if self.pool.spares.settled_at(level) >= targets[i].1 {
                    // Only spares that lived past their start clear the record.
                    *t = Trouble::default();
                }
            }
            if refreshed.elapsed() >= REFRESH_EVERY
                || self.refresh_spares_now.swap(false, Ordering::SeqCst)
            {
                self.refresh_spares().await;
                refreshed = Instant::now();
            }
            self.forget_unused_spares().await;
            let next = (0..targets.len()).find(|&i| short(i) && trouble[i].wait().is_zero());
            if let (Some(i), true) = (next, self.until_quiet().is_zero()) {
                let t = &mut trouble[i];
                match self.start_spare(targets[i].0).await {
                    Ok(true) if t.failures == 0 => continue,
                    Ok(_) => {}
                    Err(TurnError::NoToken) => {
                        tracing::debug!("no spare CLI process: no Claude credential");
                        t.failures += 1;
                        t.since = Some(Instant::now());
                    }
                    Err(e) => {
                        t.failed(&e.to_string());
                        // Another level may start at once: this one's trouble is its own.
                        if (0..targets.len())
                            .any(|j| j != i && short(j) && trouble[j].wait().is_zero())
                        {
                            continue;
                        }
                    }
                }
            }
            // Until a level short of spares may start one (at most CHECK_EVERY).
            let wait = (0..targets.len())
                .filter(|&i| short(i))
                .map(|i| trouble[i].wait())
                .min()
                .map_or(CHECK_EVERY, |w| w.max(self.until_quiet()));
            let wait = if wait.is_zero() {
                CHECK_EVERY
            } else {
                wait.min(CHECK_EVERY)
            };
            tokio::select! {
                _ = self.spare_wanted.notified() => {}
                _ = tokio::time::sleep(wait) => {}
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
    fn failed_starts_back_off_up_to_a_minute() {
        let mut t = Trouble::default();
        assert_eq!(t.wait(), Duration::ZERO);
        t.failed("no bwrap");
        assert_eq!(t.backoff(), CHECK_EVERY * 2);
        assert!(t.wait() > CHECK_EVERY, "{:?}", t.wait());
        for _ in 0..10 {
            t.failed("no bwrap");
        }
        assert_eq!(t.backoff(), MAX_BACKOFF);
        assert_eq!(t.last_error.as_deref(), Some("no bwrap"));
    }

    #[test]
    fn only_plain_requests_may_use_a_spare() {
        let plain = ChatRequest {
            message: "hi".into(),
            ..Default::default()
        };
        assert_eq!(spare_level(&plain), Some(TrustLevel::Full));
        let with = |f: fn(&mut ChatRequest)| {
            let mut r = plain.clone();
            f(&mut r);
            spare_level(&r)
        };
        let full = Some(TrustLevel::Full);
        assert_eq!(
            with(|r| r.model = Some("opus".into())),
            full,
            "the model can be switched"
        );
        assert_eq!(with(|r| r.trust_level = Some("full".into())), full);
        assert_eq!(
            with(|r| r.initial_context = Some("ctx".into())),
            full,
            "it goes in the message"
        );
        assert_eq!(
            with(|r| r.system_prompt = Some("  ".into())),
            full,
            "blank is none"
        );
        assert_eq!(
            with(|r| r.trust_level = Some("vault".into())),
            Some(TrustLevel::Vault)
        );
        assert_eq!(
            with(|r| r.trust_level = Some(" Vault ".into())),
            Some(TrustLevel::Vault)
        );
        assert_eq!(with(|r| r.trust_level = Some("sandboxed".into())), None);
        assert_eq!(with(|r| r.trust_level = Some("root".into())), None);
        assert_eq!(with(|r| r.system_prompt = Some("Be terse.".into())), None);
        assert_eq!(with(|r| r.agent_path = Some("a.md".into())), None);
        assert_eq!(
            with(|r| r.working_directory = Some("Projects".into())),
            None
        );
        assert_eq!(
            with(|r| r.prior_conversation = Some("earlier".into())),
            None
        );
        assert_eq!(with(|r| r.workspace_id = Some("w".into())), None);
        assert_eq!(with(|r| r.contexts = Some(vec!["Notes".into()])), None);
    }
}
