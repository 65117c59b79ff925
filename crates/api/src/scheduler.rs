//! Scheduled agents: the scheduler's state, reload, runs and history
//! (`/api/scheduler…`), and the daily-agent routes the app calls
//! (`/api/modules/daily/agents…`), both over the extensions' scheduler.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::{Extension, Json};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use parachute_core::app::AppState;
use parachute_core::db::RunRow;
use parachute_core::trust::TrustLevel;
use parachute_extensions::scheduler::{
    AgentRunResult, AgentRunStatus, AgentStatus, Missed, Origin, RunOptions, RunRefused,
    SchedulerError,
};
use parachute_extensions::Extensions;

use crate::error::ApiError;
use crate::extract::{ApiQuery, OptionalJson};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(overview))
        .routes(routes!(reload))
        .routes(routes!(trigger))
        .routes(routes!(resume))
        .routes(routes!(runs))
        .routes(routes!(daily_agents))
        .routes(routes!(daily_agents_status))
        .routes(routes!(daily_agent))
        .routes(routes!(daily_run))
        .routes(routes!(daily_reset))
        .routes(routes!(daily_transcript))
}

impl From<SchedulerError> for ApiError {
    fn from(e: SchedulerError) -> Self {
        match e {
            SchedulerError::NotFound(_) => ApiError::NotFound(e.to_string()),
            SchedulerError::Invalid { .. } => ApiError::BadRequest(e.to_string()),
            SchedulerError::Refused(RunRefused::AlreadyRunning(_)) => {
                ApiError::Conflict(e.to_string())
            }
            SchedulerError::Db(_) | SchedulerError::Stopped(_) => ApiError::internal(e),
        }
    }
}

/// Values by name, serialized as one JSON object in insertion order; inserting a name
/// again replaces its value in place, as a JSON map does.
struct Named<T>(Vec<(String, T)>);

impl<T> Named<T> {
    fn new() -> Self {
        Named(Vec::new())
    }

    fn insert(&mut self, name: String, value: T) {
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name, value)),
        }
    }

    fn get(&self, name: &str) -> Option<&T> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

impl<T: Serialize> Serialize for Named<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// A scheduled agent as the API shows it: its definition, plan, pause state and
/// latest run.
#[derive(Clone, Serialize, ToSchema)]
struct ScheduledAgent {
    /// The file stem.
    name: String,
    display_name: String,
    description: Option<String>,
    /// `vault`, or `module:{module name}`.
    source: String,
    /// Whether it runs on its schedule.
    enabled: bool,
    /// The schedule as written (`3:00`, `0 7 * * 1-5`); null: only when triggered.
    schedule: Option<String>,
    /// The same as `schedule`.
    time: Option<String>,
    /// The IANA zone its schedule is read in.
    timezone: String,
    trust_level: TrustLevel,
    model: Option<String>,
    missed: Missed,
    /// Output path template (`{name}`, `{date}`).
    output: String,
    /// Why it cannot run, if it cannot.
    problem: Option<String>,
    /// RFC 3339.
    next_run: Option<String>,
    paused: bool,
    paused_at: Option<String>,
    pause_reason: Option<String>,
    running: bool,
    last_run: Option<RunRow>,
}

impl From<&AgentStatus> for ScheduledAgent {
    fn from(a: &AgentStatus) -> Self {
        let d = &a.def;
        ScheduledAgent {
            name: d.name.clone(),
            display_name: d.display_name.clone(),
            description: d.description.clone(),
            source: match &d.origin {
                Origin::Vault => "vault".to_string(),
                Origin::Module(m) => format!("module:{m}"),
            },
            enabled: d.enabled,
            schedule: d.schedule.as_ref().map(|s| s.text.clone()),
            time: d.schedule.as_ref().map(|s| s.text.clone()),
            timezone: d.timezone.name().to_string(),
            trust_level: d.trust_level,
            model: d.model.clone(),
            missed: d.missed,
            output: d.output.clone(),
            problem: d.problem.clone(),
            next_run: a.next_run.map(|t| t.to_rfc3339()),
            paused: a.paused.is_some(),
            paused_at: a.paused.as_ref().map(|p| p.0.clone()),
            pause_reason: a.paused.as_ref().and_then(|p| p.1.clone()),
            running: a.running,
            last_run: a.last_run.clone(),
        }
    }
}

/// A planned run.
#[derive(Serialize, ToSchema)]
struct SchedulerJob {
    /// `daily_{agent}`.
    id: String,
    /// `Daily {display name}`.
    name: String,
    /// RFC 3339.
    next_run: String,
    /// `{schedule} ({timezone})`.
    trigger: String,
}

/// The contract's `config`.
#[derive(Serialize, ToSchema)]
struct SchedulerConfig {
    /// The `reflection` agent, if there is one.
    daily_reflection: Option<ScheduledAgent>,
}

/// The scheduler's state.
#[derive(Serialize, ToSchema)]
struct SchedulerOverview {
    running: bool,
    jobs: Vec<SchedulerJob>,
    /// Every agent, by name.
    #[schema(value_type = std::collections::HashMap<String, ScheduledAgent>)]
    agents: Named<ScheduledAgent>,
    config: SchedulerConfig,
}

/// The scheduler's jobs and agents (the contract's shape, with each agent in full).
#[utoipa::path(get, path = "/api/scheduler", tag = "scheduler",
    responses((status = 200, description = "The jobs and agents", body = SchedulerOverview)))]
async fn overview(
    Extension(ext): Extension<Arc<Extensions>>,
) -> Result<Json<SchedulerOverview>, ApiError> {
    let all = ext.scheduler.status().await?;
    let mut agents = Named::new();
    let mut jobs = Vec::new();
    for a in &all {
        if let Some(next) = a.next_run {
            jobs.push(SchedulerJob {
                id: format!("daily_{}", a.def.name),
                name: format!("Daily {}", a.def.display_name),
                next_run: next.to_rfc3339(),
                trigger: format!(
                    "{} ({})",
                    a.def
                        .schedule
                        .as_ref()
                        .map(|s| s.text.as_str())
                        .unwrap_or(""),
                    a.def.timezone.name()
                ),
            });
        }
        agents.insert(a.def.name.clone(), ScheduledAgent::from(a));
    }
    let daily_reflection = agents.get("reflection").cloned();
    Ok(Json(SchedulerOverview {
        running: ext.scheduler.is_running().await,
        jobs,
        agents,
        config: SchedulerConfig { daily_reflection },
    }))
}

/// One agent after a reload.
#[derive(Serialize, ToSchema)]
struct ReloadedAgent {
    /// Whether it has a next run.
    scheduled: bool,
    /// RFC 3339.
    next_run: Option<String>,
    paused: bool,
    /// Why it cannot run, if it cannot.
    problem: Option<String>,
}

/// The reload's result.
#[derive(Serialize, ToSchema)]
struct SchedulerReloaded {
    success: bool,
    /// Every agent, by name.
    #[schema(value_type = std::collections::HashMap<String, ReloadedAgent>)]
    agents: Named<ReloadedAgent>,
    /// Whether the `reflection` agent has a next run.
    daily_reflection_scheduled: bool,
    /// The `reflection` agent's next run (RFC 3339).
    next_run: Option<String>,
}

/// Reads the agent definitions again and plans every agent.
#[utoipa::path(post, path = "/api/scheduler/reload", tag = "scheduler",
    responses((status = 200, description = "Each agent's plan", body = SchedulerReloaded),
        (status = 500, description = "Scheduler not running")))]
async fn reload(
    Extension(ext): Extension<Arc<Extensions>>,
) -> Result<Json<SchedulerReloaded>, ApiError> {
    if !ext.scheduler.is_running().await {
        return Err(ApiError::Internal("Scheduler not running".into()));
    }
    let all = ext.scheduler.reload().await?;
    let mut agents = Named::new();
    for a in &all {
        agents.insert(
            a.def.name.clone(),
            ReloadedAgent {
                scheduled: a.next_run.is_some(),
                next_run: a.next_run.map(|t| t.to_rfc3339()),
                paused: a.paused.is_some(),
                problem: a.def.problem.clone(),
            },
        );
    }
    let reflection = all.iter().find(|a| a.def.name == "reflection");
    Ok(Json(SchedulerReloaded {
        success: true,
        agents,
        daily_reflection_scheduled: reflection.is_some_and(|a| a.next_run.is_some()),
        next_run: reflection.and_then(|a| a.next_run).map(|t| t.to_rfc3339()),
    }))
}

/// How a manual run is asked for.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
struct RunBody {
    /// The journal day to work on (`YYYY-MM-DD`; default yesterday).
    date: Option<String>,
    /// Run even if that day was already processed or has no journal (default true for
    /// a manual run).
    force: Option<bool>,
}

fn run_options(body: Option<Value>) -> Result<RunOptions, ApiError> {
    let body: RunBody = match body {
        None => RunBody::default(),
        Some(v) => crate::extract::from_value_with_loc(v, "body")?,
    };
    let date = match body.date {
        Some(d) => Some(NaiveDate::parse_from_str(&d, "%Y-%m-%d").map_err(|_| {
            ApiError::invalid(
                "date_from_datetime_parsing",
                vec![json!("body"), json!("date")],
                "Input should be a valid date (YYYY-MM-DD)",
                json!(d),
                None,
            )
        })?),
        None => None,
    };
    Ok(RunOptions {
        date,
        force: body.force.unwrap_or(true),
    })
}

/// The result of a run; a run that failed answers 500 with its error, as the contract
/// does.
fn run_result(r: AgentRunResult) -> Result<Json<AgentRunResult>, ApiError> {
    if r.status == AgentRunStatus::Error {
        return Err(ApiError::Internal(
            r.error.unwrap_or_else(|| "the run failed".to_string()),
        ));
    }
    Ok(Json(r))
}

/// Runs an agent now and answers when it ends (the contract's `run_daily_agent` result).
#[utoipa::path(post, path = "/api/scheduler/agents/{agent_name}/trigger", tag = "scheduler",
    params(("agent_name" = String, Path, description = "Agent name")),
    responses((status = 200, description = "The run's result", body = AgentRunResult),
        (status = 404, description = "No such agent"), (status = 409, description = "Running now"),
        (status = 500, description = "The run failed")))]
async fn trigger(
    Extension(ext): Extension<Arc<Extensions>>,
    Path(name): Path<String>,
) -> Result<Json<AgentRunResult>, ApiError> {
    run_result(ext.scheduler.trigger(&name, run_options(None)?).await?)
}

/// Resumes an agent paused after repeated failures.
#[utoipa::path(post, path = "/api/scheduler/agents/{agent_name}/resume", tag = "scheduler",
    params(("agent_name" = String, Path, description = "Agent name")),
    responses((status = 200, body = AgentResumed), (status = 404, description = "No such agent")))]
async fn resume(
    Extension(ext): Extension<Arc<Extensions>>,
    Path(name): Path<String>,
) -> Result<Json<AgentResumed>, ApiError> {
    resumed(&ext, name).await
}

/// A lifted pause.
#[derive(Serialize, ToSchema)]
struct AgentResumed {
    success: bool,
    agent: String,
    /// Whether it was paused.
    was_paused: bool,
}

/// Lifts a pause after failures: `{success, agent, was_paused}`.
async fn resumed(ext: &Extensions, name: String) -> Result<Json<AgentResumed>, ApiError> {
    let was_paused = ext.scheduler.resume(&name).await?;
    Ok(Json(AgentResumed {
        success: true,
        agent: name,
        was_paused,
    }))
}

#[derive(Deserialize, IntoParams)]
struct RunsQuery {
    /// Only this agent's runs.
    agent: Option<String>,
    /// At most this many (1–500, default 50).
    limit: Option<i64>,
}

/// Run history.
#[derive(Serialize, ToSchema)]
struct SchedulerRuns {
    runs: Vec<RunRow>,
}

/// Run history, newest first.
#[utoipa::path(get, path = "/api/scheduler/runs", tag = "scheduler", params(RunsQuery),
    responses((status = 200, body = SchedulerRuns)))]
async fn runs(
    Extension(ext): Extension<Arc<Extensions>>,
    ApiQuery(q): ApiQuery<RunsQuery>,
) -> Result<Json<SchedulerRuns>, ApiError> {
    let runs = ext
        .scheduler
        .runs(q.agent.as_deref(), q.limit.unwrap_or(50))
        .await?;
    Ok(Json(SchedulerRuns { runs }))
}

/// The daily agents.
#[derive(Serialize, ToSchema)]
struct DailyAgentList {
    agents: Vec<ScheduledAgent>,
}

/// The daily agents.
#[utoipa::path(get, path = "/api/modules/daily/agents", tag = "daily",
    responses((status = 200, body = DailyAgentList)))]
async fn daily_agents(
    Extension(ext): Extension<Arc<Extensions>>,
) -> Result<Json<DailyAgentList>, ApiError> {
    let all = ext.scheduler.status().await?;
    Ok(Json(DailyAgentList {
        agents: all.iter().map(ScheduledAgent::from).collect(),
    }))
}

/// One daily agent's state.
#[derive(Serialize, ToSchema)]
struct DailyAgentState {
    running: bool,
    paused: bool,
    enabled: bool,
    /// RFC 3339.
    next_run: Option<String>,
    last_run: Option<RunRow>,
}

/// Every daily agent's state.
#[derive(Serialize, ToSchema)]
struct DailyAgentsStatus {
    /// By agent name.
    #[schema(value_type = std::collections::HashMap<String, DailyAgentState>)]
    agents: Named<DailyAgentState>,
    scheduler_running: bool,
}

/// Each daily agent's state: running, paused, last and next run.
#[utoipa::path(get, path = "/api/modules/daily/agents/status", tag = "daily",
    responses((status = 200, body = DailyAgentsStatus)))]
async fn daily_agents_status(
    Extension(ext): Extension<Arc<Extensions>>,
) -> Result<Json<DailyAgentsStatus>, ApiError> {
    let all = ext.scheduler.status().await?;
    let mut agents = Named::new();
    for a in &all {
        agents.insert(
            a.def.name.clone(),
            DailyAgentState {
                running: a.running,
                paused: a.paused.is_some(),
                enabled: a.def.enabled,
                next_run: a.next_run.map(|t| t.to_rfc3339()),
                last_run: a.last_run.clone(),
            },
        );
    }
    Ok(Json(DailyAgentsStatus {
        agents,
        scheduler_running: ext.scheduler.is_running().await,
    }))
}

/// `{agent}`.
#[derive(Serialize, ToSchema)]
struct DailyAgentBody {
    agent: ScheduledAgent,
}

/// One daily agent.
#[utoipa::path(get, path = "/api/modules/daily/agents/{name}", tag = "daily",
    params(("name" = String, Path, description = "Agent name")),
    responses((status = 200, body = DailyAgentBody), (status = 404, description = "No such agent")))]
async fn daily_agent(
    Extension(ext): Extension<Arc<Extensions>>,
    Path(name): Path<String>,
) -> Result<Json<DailyAgentBody>, ApiError> {
    let all = ext.scheduler.status().await?;
    let a = all
        .iter()
        .find(|a| a.def.name == name)
        .ok_or(SchedulerError::NotFound(name))?;
    Ok(Json(DailyAgentBody { agent: a.into() }))
}

/// Runs a daily agent now (`{date?, force?}`).
#[utoipa::path(post, path = "/api/modules/daily/agents/{name}/run", tag = "daily",
    params(("name" = String, Path, description = "Agent name")),
    request_body(content = RunBody, description = "Optional"),
    responses((status = 200, description = "The run's result", body = AgentRunResult),
        (status = 404, description = "No such agent"), (status = 409, description = "Running now"),
        (status = 500, description = "The run failed")))]
async fn daily_run(
    Extension(ext): Extension<Arc<Extensions>>,
    Path(name): Path<String>,
    OptionalJson(body): OptionalJson,
) -> Result<Json<AgentRunResult>, ApiError> {
    run_result(ext.scheduler.trigger(&name, run_options(body)?).await?)
}

/// Resets a daily agent: a pause after failures is lifted.
#[utoipa::path(post, path = "/api/modules/daily/agents/{name}/reset", tag = "daily",
    params(("name" = String, Path, description = "Agent name")),
    responses((status = 200, body = AgentResumed), (status = 404, description = "No such agent")))]
async fn daily_reset(
    Extension(ext): Extension<Arc<Extensions>>,
    Path(name): Path<String>,
) -> Result<Json<AgentResumed>, ApiError> {
    resumed(&ext, name).await
}

#[derive(Deserialize, IntoParams)]
struct TranscriptQuery {
    /// At most this many messages, the latest (1–500, default 50).
    limit: Option<usize>,
}

/// A daily agent's latest transcript.
#[derive(Serialize, ToSchema)]
struct DailyTranscript {
    agent: String,
    /// The session of its latest run that had one.
    session_id: Option<String>,
    /// The latest messages, oldest first.
    messages: Vec<parachute_core::chat::transcript::TranscriptMessage>,
}

/// The messages of a daily agent's latest run.
#[utoipa::path(get, path = "/api/modules/daily/agents/{name}/transcript", tag = "daily",
    params(("name" = String, Path, description = "Agent name"), TranscriptQuery),
    responses((status = 200, body = DailyTranscript), (status = 404, description = "No such agent")))]
async fn daily_transcript(
    State(s): State<AppState>,
    Extension(ext): Extension<Arc<Extensions>>,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<TranscriptQuery>,
) -> Result<Json<DailyTranscript>, ApiError> {
    ext.scheduler.definition(&name).await?;
    let session = ext
        .scheduler
        .runs(Some(&name), 20)
        .await?
        .into_iter()
        .find_map(|r| r.session_id);
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let config_dir = s.settings.claude_config_dir.clone();
    let sid = session.clone();
    let messages = tokio::task::spawn_blocking(move || {
        use parachute_core::chat::transcript;
        sid.and_then(|id| transcript::find(&config_dir, &id))
            .and_then(|p| transcript::read_events(&p).ok())
            .map(|e| transcript::messages(&e))
            .unwrap_or_default()
    })
    .await
    .unwrap_or_default();
    let skip = messages.len().saturating_sub(limit);
    Ok(Json(DailyTranscript {
        agent: name,
        session_id: session,
        messages: messages.into_iter().skip(skip).collect(),
    }))
}
