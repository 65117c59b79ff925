//! One run of a scheduled agent through the one turn interface: its own session
//! (`source: scheduler`), the contract's prompt, the run recorded in the ledger from
//! start to end, and what it wrote.

use chrono::{DateTime, Days, NaiveDate, Utc};
use parachute_core::chat::{ChatRequest, Turn, TurnEvent};
use parachute_core::db::NewSession;
use parachute_core::trust::TrustLevel;
use serde::Serialize;
use serde_json::json;

use super::definition::AgentDef;
use super::{OutputTarget, Scheduler};

/// How a run is asked for.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The journal day to work on (default: yesterday in the agent's zone); the output
    /// is for the day after.
    pub date: Option<NaiveDate>,
    /// Run even if that day was already processed or has no journal.
    pub force: bool,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentRunStatus {
    /// It ran and wrote its output.
    Completed,
    /// It ran without writing its output.
    CompletedNoOutput,
    /// It had nothing to do (see `reason`).
    Skipped,
    /// It failed (see `error`); the API answers 500 then, not this result.
    Error,
}

impl AgentRunStatus {
    /// The name the ledger records.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentRunStatus::Completed => "completed",
            AgentRunStatus::CompletedNoOutput => "completed_no_output",
            AgentRunStatus::Skipped => "skipped",
            AgentRunStatus::Error => "error",
        }
    }
}

/// A run's result (the contract's `run_daily_agent` dictionary). A skipped run adds
/// `reason`; a run that ran adds the session and output keys; a failed one `error`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AgentRunResult {
    /// The agent.
    pub agent: String,
    /// The journal day worked on (`YYYY-MM-DD`).
    pub date: String,
    /// The day the output is for (`YYYY-MM-DD`).
    pub output_date: String,
    /// The same as `date`.
    pub journal_date: String,
    /// The agent's model, if it names one.
    pub model: Option<String>,
    /// The agent's trust level.
    pub trust_level: TrustLevel,
    /// `manual` (asked for through the API), `schedule` or `missed`.
    pub trigger: String,
    /// How it ended.
    pub status: AgentRunStatus,
    /// Why it was skipped; only when skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub reason: Option<String>,
    /// The chat session it ran in; only when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub sdk_session_id: Option<String>,
    /// The same as `sdk_session_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub session_id: Option<String>,
    /// The run's id in the history; only when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub run_id: Option<i64>,
    /// The MCP servers the run had; only when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub mcp_servers: Option<Vec<String>>,
    /// Whether it wrote its output; only when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub output_written: Option<bool>,
    /// Its output's vault-relative path; only when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub output_path: Option<String>,
    /// Why it failed; only when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub error: Option<String>,
}

impl AgentRunResult {
    /// The keys every result has: `def`'s run by `trigger` for `(journal date, output
    /// date)`, ended as `status`.
    fn base(
        def: &AgentDef,
        trigger: &str,
        (journal_date, output_date): (&str, &str),
        status: AgentRunStatus,
    ) -> AgentRunResult {
        AgentRunResult {
            agent: def.name.clone(),
            date: journal_date.to_string(),
            output_date: output_date.to_string(),
            journal_date: journal_date.to_string(),
            model: def.model.clone(),
            trust_level: def.trust_level,
            trigger: trigger.to_string(),
            status,
            reason: None,
            sdk_session_id: None,
            session_id: None,
            run_id: None,
            mcp_servers: None,
            output_written: None,
            output_path: None,
            error: None,
        }
    }
}

/// The contract's default message for a run.
fn message(output_date: &str, journal_date: &str) -> String {
    format!(
        "Today is {output_date}. Please run your daily process based on yesterday ({journal_date}).\n\n\
         Use read_journal to read the journal for {journal_date}, read_chat_log and \
         read_recent_journals for more context, and write_output to save what you produce \
         for {output_date}."
    )
}

/// What the agent knows about its owner: `context/curator.md`, else the profile.
fn user_context(paths: &parachute_core::config::Paths) -> Option<String> {
    [
        paths.vault.join("context/curator.md"),
        paths.vault_dot().join("profile.md"),
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok())
    .filter(|t| !t.trim().is_empty())
}

/// The name in a `**Name**:` line, else the first heading.
fn user_name(context: &str) -> Option<String> {
    context
        .lines()
        .find_map(|l| l.trim().strip_prefix("**Name**:").map(str::trim))
        .or_else(|| parachute_core::vault::frontmatter::first_heading(context))
        .map(str::to_string)
}

/// The body as its system prompt: `{user_name}`/`{user_context}` filled
/// in, else the context appended under `## User Context`.
pub(crate) fn system_prompt(def: &AgentDef, context: Option<&str>) -> String {
    let body = &def.prompt;
    if body.contains("{user_name}") || body.contains("{user_context}") {
        let ctx = context.unwrap_or("");
        return body
            .replace(
                "{user_name}",
                user_name(ctx).as_deref().unwrap_or("the user"),
            )
            .replace("{user_context}", ctx);
    }
    match context {
        Some(c) => format!("{body}\n\n## User Context\n\n{}", c.trim()),
        None => body.clone(),
    }
}

/// Reads the turn to its end: its error, if it failed.
async fn outcome(turn: &Turn) -> Option<String> {
    let (mut seen, mut error) = (0usize, None);
    loop {
        let events = turn.events_after(seen).await;
        if events.is_empty() {
            return error;
        }
        for (i, ev) in events {
            seen = i;
            if let TurnEvent::Error { error: e, .. } = &*ev {
                error = Some(e.clone());
            }
        }
    }
}

/// Removes the agent from the running set however the run ends.
struct RunningGuard<'a> {
    s: &'a Scheduler,
    agent: String,
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.s
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.agent);
    }
}

/// Why a run did not start.
#[derive(Debug, thiserror::Error)]
pub enum RunRefused {
    /// The agent is running now.
    #[error("'{0}' is already running")]
    AlreadyRunning(String),
}

/// The journal day a run works on and the day its output is for: the day before and
/// the day of its occurrence (or of now) in the agent's zone, unless a date was given.
fn days(def: &AgentDef, opts: &RunOptions, at: Option<DateTime<Utc>>) -> (String, String) {
    let today = at
        .unwrap_or_else(Utc::now)
        .with_timezone(&def.timezone)
        .date_naive();
    let (journal, output) = match opts.date {
        Some(d) => (d, d.checked_add_days(Days::new(1)).unwrap_or(d)),
        None => (today.checked_sub_days(Days::new(1)).unwrap_or(today), today),
    };
    (journal.to_string(), output.to_string())
}

impl Scheduler {
    /// Why the run has nothing to do (the contract's skips), unless forced.
    fn skip_reason(
        &self,
        def: &AgentDef,
        opts: &RunOptions,
        journal_date: &str,
        output_path: &str,
    ) -> Option<String> {
        if opts.force {
            return None;
        }
        let gate = self.state.settings.vault_gate();
        if gate.resolve(output_path).is_ok_and(|p| p.exists()) {
            return Some(format!("Already processed {journal_date}"));
        }
        let needs_journal = def.tools.iter().any(|t| t == "read_journal");
        let has_journal = parachute_core::vault::journal::read_day(&gate, journal_date)
            .ok()
            .flatten()
            .is_some();
        (needs_journal && !has_journal).then(|| format!("No journal found for {journal_date}"))
    }

    /// The run's session and ledger row: (session id, run id).
    async fn open_run(
        &self,
        def: &AgentDef,
        trigger: &str,
        occurrence: Option<&str>,
        output_date: &str,
    ) -> Option<(String, i64)> {
        let store = &self.state.store;
        let session_id = uuid::Uuid::new_v4().to_string();
        store
            .insert_session(&NewSession {
                id: session_id.clone(),
                title: Some(format!("{} — {output_date}", def.display_name)),
                module: "daily".into(),
                source: "scheduler".into(),
                model: def.model.clone(),
                trust_level: Some(def.trust_level.as_str().to_string()),
                metadata: Some(
                    json!({"scheduled_agent": def.name, "trigger": trigger}).to_string(),
                ),
                ..Default::default()
            })
            .await
            .ok()?;
        let run_id = store
            .begin_run(&def.name, trigger, occurrence, Some(&session_id))
            .await
            .ok()?;
        Some((session_id, run_id))
    }

    /// Records how the run ended, pauses a failing agent and tells the hooks; the
    /// status and whether it paused.
    async fn close_run(
        &self,
        def: &AgentDef,
        trigger: &str,
        (session_id, run_id): (&str, i64),
        error: Option<&str>,
        written: Option<&str>,
    ) -> (AgentRunStatus, bool) {
        let status = match (error, written) {
            (Some(_), _) => AgentRunStatus::Error,
            (None, Some(_)) => AgentRunStatus::Completed,
            (None, None) => AgentRunStatus::CompletedNoOutput,
        };
        if let Err(e) = self
            .state
            .store
            .finish_run(run_id, status.as_str(), written, error)
            .await
        {
            tracing::warn!(agent = %def.name, error = %e, "the run's end could not be recorded");
        }
        let paused = error.is_some() && self.pause_if_failing(&def.name).await;
        tracing::info!(agent = %def.name, status = status.as_str(), paused, "scheduled agent run finished");
        self.state.events.fire(
            "scheduler.run.finished",
            json!({"agent": def.name, "run_id": run_id, "status": status.as_str(), "trigger": trigger,
                "session_id": session_id, "output_path": written, "error": error,
                "paused": paused}),
        );
        (status, paused)
    }

    /// Runs `def` now. `trigger` is `schedule`, `missed` or `manual`; `scheduled_for`
    /// the occurrence it runs for. The result is the contract's `run_daily_agent`
    /// dictionary.
    pub(crate) async fn run(
        &self,
        def: &AgentDef,
        trigger: &str,
        scheduled_for: Option<DateTime<Utc>>,
        opts: RunOptions,
    ) -> Result<AgentRunResult, RunRefused> {
        let name = def.name.clone();
        if !self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.clone())
        {
            return Err(RunRefused::AlreadyRunning(name));
        }
        let _guard = RunningGuard {
            s: self,
            agent: name.clone(),
        };
        let occurrence = scheduled_for.map(|t| super::stamp(&t));
        let (journal_date, output_date) = days(def, &opts, scheduled_for);
        let output_path = def.output_path(&output_date);
        let dates = (journal_date.as_str(), output_date.as_str());

        if let Some(reason) = self.skip_reason(def, &opts, &journal_date, &output_path) {
            if let Err(e) = self
                .state
                .store
                .record_skipped(&name, trigger, occurrence.as_deref(), &reason)
                .await
            {
                tracing::warn!(agent = %name, error = %e, "the skipped run could not be recorded");
            }
            return Ok(AgentRunResult {
                reason: Some(reason),
                ..AgentRunResult::base(def, trigger, dates, AgentRunStatus::Skipped)
            });
        }
        let Some((session_id, run_id)) = self
            .open_run(def, trigger, occurrence.as_deref(), &output_date)
            .await
        else {
            return Ok(AgentRunResult {
                error: Some("the run could not be recorded in the database".into()),
                ..AgentRunResult::base(def, trigger, dates, AgentRunStatus::Error)
            });
        };
        tracing::info!(agent = %name, trigger, session_id = %session_id, "scheduled agent run started");
        self.targets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                session_id.clone(),
                OutputTarget {
                    agent: name.clone(),
                    path: output_path.clone(),
                    date: output_date.clone(),
                    written: false,
                },
            );
        let paths = self.state.settings.paths.clone();
        let context = tokio::task::spawn_blocking(move || user_context(&paths))
            .await
            .ok()
            .flatten();
        let turn = self
            .state
            .chat
            .start(ChatRequest {
                message: message(&output_date, &journal_date),
                session_id: Some(session_id.clone()),
                module: Some("daily".into()),
                system_prompt: Some(system_prompt(def, context.as_deref())),
                trust_level: Some(def.trust_level.as_str().to_string()),
                model: def.model.clone(),
                ..Default::default()
            })
            .await;
        let error = outcome(&turn).await;
        let written = self
            .targets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&session_id)
            .is_some_and(|t| t.written);
        let (status, _) = self
            .close_run(
                def,
                trigger,
                (&session_id, run_id),
                error.as_deref(),
                written.then_some(output_path.as_str()),
            )
            .await;
        Ok(AgentRunResult {
            sdk_session_id: Some(session_id.clone()),
            session_id: Some(session_id),
            run_id: Some(run_id),
            mcp_servers: Some(vec![
                parachute_core::chat::extras::OWN_MCP_SERVER.to_string()
            ]),
            output_written: Some(written),
            output_path: Some(output_path),
            error,
            ..AgentRunResult::base(def, trigger, dates, status)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::definition::{parse, Origin};
    use parachute_core::trust::TrustLevel;

    #[test]
    fn the_prompt_takes_the_users_context_as_the_contract_says() {
        let d = parse(
            "digest",
            "---\nschedule: \"3:00\"\n---\nHello {user_name}. {user_context}\n",
            Origin::Vault,
            "x".into(),
            TrustLevel::Vault,
        );
        let ctx = "# About me\n**Name**: Ada\nLikes gardens.";
        let p = system_prompt(&d, Some(ctx));
        assert!(p.starts_with("Hello Ada. # About me"), "{p}");
        let d = parse(
            "digest",
            "---\n---\nBe brief.\n",
            Origin::Vault,
            "x".into(),
            TrustLevel::Vault,
        );
        assert_eq!(
            system_prompt(&d, Some("Likes gardens.")),
            "Be brief.\n\n## User Context\n\nLikes gardens."
        );
        assert_eq!(system_prompt(&d, None), "Be brief.");
        assert!(message("2026-12-02", "2026-12-01").starts_with(
            "Today is 2026-12-02. Please run your daily process based on yesterday (2026-12-01)."
        ));
    }
}
