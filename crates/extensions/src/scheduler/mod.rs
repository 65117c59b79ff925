//! Scheduled agents: definitions ([`definition`]), when they run ([`schedule`]), and
//! each run through the one turn interface ([`run`]), recorded in the
//! `scheduled_runs` ledger.
//!
//! - Each agent's next occurrence is computed in its own time zone and handed to
//!   tokio-cron-scheduler as a one-shot job at that instant (its own cron jobs turn a
//!   zone into a fixed offset when created, which would drift an hour across a
//!   daylight-saving change); after it fires, the next one is planned.
//! - A run never overlaps itself: an occurrence that comes while the previous run is
//!   still going is recorded as skipped.
//! - Missed occurrences (the server was off, the machine slept, a run was cut off by a
//!   crash) follow the agent's `missed` policy: `run_once` runs it once as soon as the
//!   server notices, `skip` records it as skipped.
//! - After 3 failed runs in a row the agent is paused, visibly, until resumed.

pub mod definition;
pub mod run;
pub mod schedule;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};

use chrono::{DateTime, Utc};
use parachute_core::app::AppState;
use parachute_core::db::RunRow;
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::modules::Modules;
pub use definition::{AgentDef, Missed, Origin};
pub use run::{AgentRunResult, AgentRunStatus, RunOptions, RunRefused};

/// Failed runs in a row after which an agent is paused.
pub const PAUSE_AFTER_FAILURES: usize = 3;

/// How late a scheduled run may start and still count as on time (beyond it, the
/// machine slept or the server was stopped: the `missed` policy decides).
const ON_TIME: std::time::Duration = std::time::Duration::from_secs(90);

/// The form times take in the ledger.
pub(crate) fn stamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Where a running scheduled session writes its output (`write_output`).
#[derive(Debug, Clone)]
pub struct OutputTarget {
    /// The agent.
    pub agent: String,
    /// The vault-relative path.
    pub path: String,
    /// The output date.
    pub date: String,
    /// Whether it wrote.
    pub written: bool,
}

/// What the scheduler says about one agent.
#[derive(Debug, Clone)]
pub struct AgentStatus {
    /// Its definition.
    pub def: AgentDef,
    /// Its next scheduled run, if it has one.
    pub next_run: Option<DateTime<Utc>>,
    /// When it was paused and why.
    pub paused: Option<(String, Option<String>)>,
    /// Whether it is running now.
    pub running: bool,
    /// Its latest run.
    pub last_run: Option<RunRow>,
}

/// Why the scheduler could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// No agent of that name.
    #[error("Agent '{0}' not found in Daily/.agents/ or an approved module")]
    NotFound(String),
    /// It cannot run as written.
    #[error("Agent '{name}' cannot run: {problem}")]
    Invalid {
        /// The agent.
        name: String,
        /// Why.
        problem: String,
    },
    /// It is running.
    #[error(transparent)]
    Refused(#[from] RunRefused),
    /// The ledger failed.
    #[error("the scheduler's ledger failed: {0}")]
    Db(#[from] parachute_core::db::DbError),
    /// The run's task ended abnormally.
    #[error("the run stopped: {0}")]
    Stopped(String),
}

/// An agent's schedule as it decides its times: the text, the zone, on or off.
fn schedule_sig(def: &AgentDef) -> String {
    format!(
        "{}|{}|{}",
        def.schedule.as_ref().map_or("", |s| s.text.as_str()),
        def.timezone.name(),
        def.enabled
    )
}

/// What of the definitions decides the plan: names, schedules, zones, on/off, problems.
fn signature(defs: &[AgentDef]) -> Vec<String> {
    defs.iter()
        .map(|d| {
            format!(
                "{}|{:?}|{}|{}|{:?}|{:?}",
                d.name,
                d.schedule.as_ref().map(|s| &s.text),
                d.timezone.name(),
                d.enabled,
                d.missed,
                d.problem
            )
        })
        .collect()
}

/// Where the engine's jobs send the occurrence they fire (agent, instant).
type Fired = tokio::sync::mpsc::UnboundedSender<(String, DateTime<Utc>)>;

/// A planned one-shot job.
struct Planned {
    next: DateTime<Utc>,
    job: uuid::Uuid,
}

/// The scheduler of one server.
pub struct Scheduler {
    state: AppState,
    modules: Arc<Modules>,
    engine: tokio::sync::Mutex<Option<JobScheduler>>,
    planned: Mutex<HashMap<String, Planned>>,
    running: Mutex<HashSet<String>>,
    targets: Mutex<HashMap<String, OutputTarget>>,
    /// Occurrences the engine fired, handled one by one by the task [`start`] spawns.
    ///
    /// [`start`]: Scheduler::start
    fired: Mutex<Option<Fired>>,
    /// Per agent, the latest occurrence taken (by its job or by catch-up): each is
    /// handled once, whatever fires or reloads in between.
    claimed: Mutex<HashMap<String, DateTime<Utc>>>,
    me: Weak<Scheduler>,
}

impl Scheduler {
    /// The scheduler over `state`'s vault and `modules` (nothing runs until [`start`]).
    ///
    /// [`start`]: Scheduler::start
    pub fn new(state: AppState, modules: Arc<Modules>) -> Arc<Scheduler> {
        Arc::new_cyclic(|me| Scheduler {
            state,
            modules,
            engine: tokio::sync::Mutex::new(None),
            planned: Mutex::default(),
            running: Mutex::default(),
            targets: Mutex::default(),
            fired: Mutex::default(),
            claimed: Mutex::default(),
            me: me.clone(),
        })
    }

    /// Takes occurrence `at` of `agent`: false when it (or a later one) was taken.
    fn claim(&self, agent: &str, at: DateTime<Utc>) -> bool {
        let mut claimed = self.claimed.lock().unwrap_or_else(|p| p.into_inner());
        match claimed.get(agent) {
            Some(last) if *last >= at => false,
            _ => {
                claimed.insert(agent.to_string(), at);
                true
            }
        }
    }

    /// The latest occurrence of `agent` taken, if any.
    fn last_claimed(&self, agent: &str) -> Option<DateTime<Utc>> {
        self.claimed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(agent)
            .copied()
    }

    /// Whether it has been started.
    pub async fn is_running(&self) -> bool {
        self.engine.lock().await.is_some()
    }

    /// Start-up: runs cut off by a stop are recorded as interrupted, the engine starts,
    /// and every agent is planned (missed occurrences follow their policy).
    pub async fn start(&self) -> Result<(), SchedulerError> {
        let n = self.state.store.interrupt_unfinished_runs().await?;
        if n > 0 {
            tracing::warn!(
                runs = n,
                "scheduled runs cut off by a stop are recorded as interrupted"
            );
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, DateTime<Utc>)>();
        *self.fired.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
        let me = self.me.clone();
        tokio::spawn(async move {
            while let Some((name, at)) = rx.recv().await {
                let Some(s) = me.upgrade() else {
                    break;
                };
                s.fire(&name, at).await;
            }
        });
        match JobScheduler::new().await {
            Ok(engine) => {
                if let Err(e) = engine.start().await {
                    tracing::warn!(error = %e, "the scheduler could not start");
                    return Ok(());
                }
                *self.engine.lock().await = Some(engine);
            }
            Err(e) => {
                tracing::warn!(error = %e, "the scheduler could not start");
                return Ok(());
            }
        }
        self.reload().await?;
        // Edited definitions take effect without a reload call: every 30 s the files
        // are read again, and the agents planned anew if their schedules changed.
        let me = self.me.clone();
        let mut seen = Some(signature(&self.definitions().await));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                let Some(s) = me.upgrade() else {
                    break;
                };
                if !s.is_running().await {
                    break;
                }
                let now = signature(&s.definitions().await);
                if seen.as_ref().is_some_and(|old| *old != now) {
                    tracing::info!("scheduled agent definitions changed; planning again");
                    if let Err(e) = s.reload().await {
                        tracing::warn!(error = %e, "the scheduler could not reload");
                    }
                }
                seen = Some(now);
            }
        });
        Ok(())
    }

    /// Stops firing (runs in progress end with the server).
    pub async fn shutdown(&self) {
        if let Some(mut engine) = self.engine.lock().await.take() {
            let _ = engine.shutdown().await;
        }
        self.fired.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    /// Every definition (blocking reads on a worker thread).
    pub async fn definitions(&self) -> Vec<AgentDef> {
        let vault = self.state.settings.paths.vault.clone();
        let modules = self.modules.clone();
        tokio::task::spawn_blocking(move || definition::load_all(&vault, &modules.enabled()))
            .await
            .unwrap_or_default()
    }

    /// One definition.
    pub async fn definition(&self, name: &str) -> Result<AgentDef, SchedulerError> {
        if !definition::valid_name(name) {
            return Err(SchedulerError::NotFound(name.to_string()));
        }
        self.definitions()
            .await
            .into_iter()
            .find(|d| d.name == name)
            .ok_or_else(|| SchedulerError::NotFound(name.to_string()))
    }

    /// Whether `def` runs on its schedule now (enabled, valid, not paused).
    async fn schedulable(&self, def: &AgentDef) -> Result<bool, SchedulerError> {
        Ok(def.enabled
            && def.problem.is_none()
            && def.schedule.is_some()
            && self
                .state
                .store
                .agent_state(&def.name)
                .await?
                .paused_at
                .is_none())
    }

    /// Reads the definitions again and plans every agent; missed occurrences follow
    /// their policy. Returns each agent with its next run.
    pub async fn reload(&self) -> Result<Vec<AgentStatus>, SchedulerError> {
        let defs = self.definitions().await;
        let old: Vec<uuid::Uuid> = self
            .planned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, p)| p.job)
            .collect();
        if let Some(engine) = self.engine.lock().await.as_ref() {
            for job in old {
                let _ = engine.remove(&job).await;
            }
        }
        for def in &defs {
            // A changed schedule (or one switched back on) holds from now: what its new
            // times would have run before is not "missed".
            let since = self
                .state
                .store
                .note_schedule(&def.name, &schedule_sig(def))
                .await?;
            if self.schedulable(def).await? {
                self.catch_up(def, &since).await?;
                self.plan(def, Utc::now()).await;
            }
        }
        self.statuses(defs).await
    }

    /// Deals with the agent's last occurrence if it was missed: one after its current
    /// schedule began to hold (`since`) and after any resume, not run or skipped (a run
    /// cut off by a stop counts as missed).
    async fn catch_up(&self, def: &AgentDef, since: &str) -> Result<(), SchedulerError> {
        let Some(schedule) = &def.schedule else {
            return Ok(());
        };
        let state = self.state.store.agent_state(&def.name).await?;
        let now = Utc::now();
        let Some(last) = schedule.last_at_or_before(now, def.timezone) else {
            return Ok(());
        };
        let parse = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .ok()
        };
        let holds_from = [
            Some(state.first_seen.as_str()),
            Some(since),
            state.resumed_at.as_deref(),
        ]
        .into_iter()
        .flatten()
        .filter_map(parse)
        .max()
        .unwrap_or(now);
        if last <= holds_from
            || self
                .state
                .store
                .occurrence_handled(&def.name, &stamp(&last))
                .await?
            || !self.claim(&def.name, last)
        {
            return Ok(());
        }
        self.missed(def.clone(), last).await;
        Ok(())
    }

    /// Applies the `missed` policy to the occurrence `at`.
    async fn missed(&self, def: AgentDef, at: DateTime<Utc>) {
        match def.missed {
            Missed::Skip => {
                tracing::info!(agent = %def.name, occurrence = %stamp(&at), "missed run skipped (missed: skip)");
                if let Err(e) = self
                    .state
                    .store
                    .record_skipped(
                        &def.name,
                        "missed",
                        Some(&stamp(&at)),
                        "missed: Parachute was not running or the machine slept at that time (missed: skip)",
                    )
                    .await
                {
                    tracing::warn!(agent = %def.name, error = %e, "the skipped run could not be recorded");
                }
            }
            Missed::RunOnce => {
                tracing::info!(agent = %def.name, occurrence = %stamp(&at), "missed run runs now (missed: run_once)");
                self.spawn_run(def, "missed", Some(at));
            }
        }
    }

    fn spawn_run(&self, def: AgentDef, trigger: &'static str, at: Option<DateTime<Utc>>) {
        let Some(me) = self.me.upgrade() else {
            return;
        };
        tokio::spawn(async move {
            match me.run(&def, trigger, at, RunOptions::default()).await {
                Ok(_) => {}
                Err(RunRefused::AlreadyRunning(_)) => {
                    let at = at.map(|t| stamp(&t));
                    let _ = me
                        .state
                        .store
                        .record_skipped(
                            &def.name,
                            trigger,
                            at.as_deref(),
                            "the previous run was still going",
                        )
                        .await;
                }
            }
        });
    }

    /// Plans the agent's first occurrence after `after` (and after any occurrence
    /// already taken) as a one-shot job.
    async fn plan(&self, def: &AgentDef, after: DateTime<Utc>) {
        let Some(schedule) = &def.schedule else {
            return;
        };
        let after = self.last_claimed(&def.name).map_or(after, |c| c.max(after));
        let Some(next) = schedule.next_after(after, def.timezone) else {
            return;
        };
        let engine = self.engine.lock().await;
        let Some(engine) = engine.as_ref() else {
            return;
        };
        // The engine keeps whole seconds of the wait (and ticks twice a second): a job
        // may come up to a second early, and `fire` waits out the rest, so a run starts
        // at its time.
        let wait = (next - Utc::now()).to_std().unwrap_or_default();
        let wait =
            std::time::Duration::from_secs(wait.as_secs() + u64::from(wait.subsec_nanos() > 0));
        let Some(tx) = self.fired.lock().unwrap_or_else(|p| p.into_inner()).clone() else {
            return;
        };
        let name = def.name.clone();
        let job =
            Job::new_one_shot_at_instant_async(std::time::Instant::now() + wait, move |_, _| {
                let _ = tx.send((name.clone(), next));
                Box::pin(async {})
            });
        match job {
            Ok(job) => match engine.add(job).await {
                Ok(id) => {
                    let old = self
                        .planned
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(def.name.clone(), Planned { next, job: id });
                    if let Some(old) = old {
                        let _ = engine.remove(&old.job).await;
                    }
                }
                Err(e) => {
                    tracing::warn!(agent = %def.name, error = %e, "the next run could not be planned")
                }
            },
            Err(e) => {
                tracing::warn!(agent = %def.name, error = %e, "the next run could not be planned")
            }
        }
    }

    /// An occurrence came: run it (or apply the `missed` policy if it comes late), and
    /// plan the next.
    async fn fire(&self, name: &str, at: DateTime<Utc>) {
        // Taken at once (a reload or catch-up in the meantime leaves it alone); a second
        // job for the same occurrence does nothing.
        if !self.claim(name, at) {
            return;
        }
        let Ok(def) = self.definition(name).await else {
            // Gone (deleted, or renamed: a reload plans what is there now).
            return;
        };
        match self.schedulable(&def).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                // The ledger could not be read now: this occurrence is lost, the next
                // one is still planned.
                tracing::warn!(agent = %name, error = %e, "a scheduled run was not started");
                self.plan(&def, at).await;
                return;
            }
        }
        // Never before its time.
        if let Ok(early) = (at - Utc::now()).to_std() {
            tokio::time::sleep(early).await;
        }
        let now = Utc::now();
        let late = (now - at).to_std().unwrap_or_default();
        self.plan(&def, now.max(at)).await;
        if late > ON_TIME {
            self.missed(def, at).await;
        } else {
            self.spawn_run(def, "schedule", Some(at));
        }
    }

    /// After a failed run: pauses the agent if it failed too often in a row; whether it did.
    async fn pause_if_failing(&self, name: &str) -> bool {
        let failures = self
            .state
            .store
            .consecutive_failures(name)
            .await
            .unwrap_or(0);
        if failures < PAUSE_AFTER_FAILURES {
            return false;
        }
        let reason = format!("{failures} runs in a row failed; resume it once the cause is fixed");
        if self.state.store.pause_agent(name, &reason).await.is_err() {
            return false;
        }
        tracing::warn!(
            agent = name,
            failures,
            "scheduled agent paused after repeated failures"
        );
        let planned = self
            .planned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        if let (Some(p), Some(engine)) = (planned, self.engine.lock().await.as_ref()) {
            let _ = engine.remove(&p.job).await;
        }
        true
    }

    /// Resumes a paused agent and plans it again; whether it was paused.
    pub async fn resume(&self, name: &str) -> Result<bool, SchedulerError> {
        let def = self.definition(name).await?;
        let was = self.state.store.resume_agent(name).await?;
        if self.schedulable(&def).await? {
            self.plan(&def, Utc::now()).await;
        }
        Ok(was)
    }

    /// Runs agent `name` now (however it is scheduled, paused included).
    pub async fn trigger(
        &self,
        name: &str,
        opts: RunOptions,
    ) -> Result<AgentRunResult, SchedulerError> {
        let def = self.definition(name).await?;
        if let Some(problem) = &def.problem {
            return Err(SchedulerError::Invalid {
                name: name.to_string(),
                problem: problem.clone(),
            });
        }
        // Its own task: a caller that stops waiting (a closed HTTP request) does not
        // cut the run off.
        let Some(me) = self.me.upgrade() else {
            return Err(SchedulerError::NotFound(name.to_string()));
        };
        let run = tokio::spawn(async move { me.run(&def, "manual", None, opts).await });
        match run.await {
            Ok(result) => Ok(result?),
            Err(e) => Err(SchedulerError::Stopped(e.to_string())),
        }
    }

    /// Every agent with its next run, pause state and latest run.
    pub async fn status(&self) -> Result<Vec<AgentStatus>, SchedulerError> {
        let defs = self.definitions().await;
        self.statuses(defs).await
    }

    async fn statuses(&self, defs: Vec<AgentDef>) -> Result<Vec<AgentStatus>, SchedulerError> {
        let mut out = Vec::with_capacity(defs.len());
        for def in defs {
            let state = self.state.store.agent_state(&def.name).await?;
            let last_run = self
                .state
                .store
                .list_runs(Some(&def.name), 1)
                .await?
                .into_iter()
                .next();
            let next_run = self
                .planned
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&def.name)
                .map(|p| p.next);
            let running = self
                .running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&def.name);
            out.push(AgentStatus {
                next_run,
                paused: state.paused_at.map(|at| (at, state.pause_reason)),
                running,
                last_run,
                def,
            });
        }
        Ok(out)
    }

    /// Runs, newest first (of `agent` if given).
    pub async fn runs(
        &self,
        agent: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RunRow>, SchedulerError> {
        Ok(self
            .state
            .store
            .list_runs(agent, limit.clamp(1, 500))
            .await?)
    }

    /// Where the scheduled session `session_id` writes its output, while it runs.
    pub fn output_target(&self, session_id: &str) -> Option<OutputTarget> {
        self.targets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(session_id)
            .cloned()
    }

    /// Notes that the session wrote its output.
    pub fn mark_written(&self, session_id: &str) {
        if let Some(t) = self
            .targets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(session_id)
        {
            t.written = true;
        }
    }
}
