//! Scheduled agents: the scheduler's state, reload, runs and history
//! (`/api/scheduler…`), and the daily-agent routes the app calls
//! (`/api/modules/daily/agents…`), both over the extensions' scheduler.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::{Extension, Json};
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use parachute_core::app::AppState;
use parachute_extensions::scheduler::{RunOptions, RunRefused, SchedulerError};
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
            SchedulerError::Db(_) | SchedulerError::Stopped(_) => ApiError::Internal(e.to_string()),
        }
    }
}

/// The scheduler's jobs and agents (the contract's shape, with each agent in full).
#[utoipa::path(get, path = "/api/scheduler", tag = "scheduler",
    responses((status = 200, description = "`{running, jobs: [{id, name, next_run, trigger}], agents: {name: {display_name, enabled, time, …}}, config}`", body = Object)))]
async fn overview(Extension(ext): Extension<Arc<Extensions>>) -> Result<Json<Value>, ApiError> {
    let all = ext.scheduler.status().await?;
    let mut agents = Map::new();
    let mut jobs = Vec::new();
    for a in &all {
        if let Some(next) = a.next_run {
            jobs.push(json!({"id": format!("daily_{}", a.def.name),
                "name": format!("Daily {}", a.def.display_name),
                "next_run": next.to_rfc3339(),
                "trigger": format!("{} ({})", a.def.schedule.as_ref().map(|s| s.text.as_str()).unwrap_or(""), a.def.timezone.name())}));
        }
        agents.insert(a.def.name.clone(), a.to_json());
    }
    let reflection = agents.get("reflection").cloned();
    Ok(Json(json!({
        "running": ext.scheduler.is_running().await,
        "jobs": jobs,
        "agents": agents,
        "config": {"daily_reflection": reflection},
    })))
}

/// Reads the agent definitions again and plans every agent.
#[utoipa::path(post, path = "/api/scheduler/reload", tag = "scheduler",
    responses((status = 200, description = "`{success, agents: {name: {scheduled, next_run}}, daily_reflection_scheduled, next_run}`", body = Object),
        (status = 500, description = "Scheduler not running")))]
async fn reload(Extension(ext): Extension<Arc<Extensions>>) -> Result<Json<Value>, ApiError> {
    if !ext.scheduler.is_running().await {
        return Err(ApiError::Internal("Scheduler not running".into()));
    }
    let all = ext.scheduler.reload().await?;
    let mut agents = Map::new();
    for a in &all {
        agents.insert(
            a.def.name.clone(),
            json!({"scheduled": a.next_run.is_some(), "next_run": a.next_run.map(|t| t.to_rfc3339()),
                "paused": a.paused.is_some(), "problem": a.def.problem}),
        );
    }
    let reflection = all.iter().find(|a| a.def.name == "reflection");
    Ok(Json(json!({
        "success": true,
        "agents": agents,
        "daily_reflection_scheduled": reflection.is_some_and(|a| a.next_run.is_some()),
        "next_run": reflection.and_then(|a| a.next_run).map(|t| t.to_rfc3339()),
    })))
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

/// The result of a run; a run that failed answers 500 with the same body, as the
/// contract does.
fn run_result(v: Value) -> Result<Json<Value>, ApiError> {
    if v["status"] == "error" {
        return Err(ApiError::Internal(
            v["error"].as_str().unwrap_or("the run failed").to_string(),
        ));
    }
    Ok(Json(v))
}

/// Runs an agent now and answers when it ends (the contract's `run_daily_agent` result).
#[utoipa::path(post, path = "/api/scheduler/agents/{agent_name}/trigger", tag = "scheduler",
    params(("agent_name" = String, Path, description = "Agent name")),
    responses((status = 200, description = "`{status: completed|completed_no_output|skipped, agent, date, output_date, sdk_session_id, output_written, output_path, …}`", body = Object),
        (status = 404, description = "No such agent"), (status = 409, description = "Running now"),
        (status = 500, description = "The run failed")))]
async fn trigger(
    Extension(ext): Extension<Arc<Extensions>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    run_result(ext.scheduler.trigger(&name, run_options(None)?).await?)
}

/// Resumes an agent paused after repeated failures.
#[utoipa::path(post, path = "/api/scheduler/agents/{agent_name}/resume", tag = "scheduler",
    params(("agent_name" = String, Path, description = "Agent name")),
    responses((status = 200, description = "`{success, agent, was_paused}`", body = Object), (status = 404, description = "No such agent")))]
async fn resume(
    Extension(ext): Extension<Arc<Extensions>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    resumed(&ext, name).await
}

/// Lifts a pause after failures: `{success, agent, was_paused}`.
async fn resumed(ext: &Extensions, name: String) -> Result<Json<Value>, ApiError> {
    let was = ext.scheduler.resume(&name).await?;
    Ok(Json(
        json!({"success": true, "agent": name, "was_paused": was}),
    ))
}

#[derive(Deserialize, IntoParams)]
struct RunsQuery {
    /// Only this agent's runs.
    agent: Option<String>,
    /// At most this many (1–500, default 50).
    limit: Option<i64>,
}

/// Run history, newest first.
#[utoipa::path(get, path = "/api/scheduler/runs", tag = "scheduler", params(RunsQuery),
    responses((status = 200, description = "`{runs: [{id, agent, trigger, scheduled_for, started_at, finished_at, outcome, session_id, output_path, error}]}`", body = Object)))]
async fn runs(
    Extension(ext): Extension<Arc<Extensions>>,
    ApiQuery(q): ApiQuery<RunsQuery>,
) -> Result<Json<Value>, ApiError> {
    let runs = ext
        .scheduler
        .runs(q.agent.as_deref(), q.limit.unwrap_or(50))
        .await?;
    Ok(Json(json!({"runs": runs})))
}

/// The daily agents.
#[utoipa::path(get, path = "/api/modules/daily/agents", tag = "daily",
    responses((status = 200, description = "`{agents: [...]}`", body = Object)))]
async fn daily_agents(Extension(ext): Extension<Arc<Extensions>>) -> Result<Json<Value>, ApiError> {
    let all = ext.scheduler.status().await?;
    Ok(Json(
        json!({"agents": all.iter().map(|a| a.to_json()).collect::<Vec<_>>()}),
    ))
}

/// Each daily agent's state: running, paused, last and next run.
#[utoipa::path(get, path = "/api/modules/daily/agents/status", tag = "daily",
    responses((status = 200, description = "`{agents: {name: {running, paused, next_run, last_run}}, scheduler_running}`", body = Object)))]
async fn daily_agents_status(
    Extension(ext): Extension<Arc<Extensions>>,
) -> Result<Json<Value>, ApiError> {
    let all = ext.scheduler.status().await?;
    let mut agents = Map::new();
    for a in &all {
        agents.insert(
            a.def.name.clone(),
            json!({"running": a.running, "paused": a.paused.is_some(), "enabled": a.def.enabled,
                "next_run": a.next_run.map(|t| t.to_rfc3339()), "last_run": a.last_run}),
        );
    }
    Ok(Json(
        json!({"agents": agents, "scheduler_running": ext.scheduler.is_running().await}),
    ))
}

/// One daily agent.
#[utoipa::path(get, path = "/api/modules/daily/agents/{name}", tag = "daily",
    params(("name" = String, Path, description = "Agent name")),
    responses((status = 200, description = "`{agent: {...}}`", body = Object), (status = 404, description = "No such agent")))]
async fn daily_agent(
    Extension(ext): Extension<Arc<Extensions>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let all = ext.scheduler.status().await?;
    let a = all
        .iter()
        .find(|a| a.def.name == name)
        .ok_or(SchedulerError::NotFound(name))?;
    Ok(Json(json!({"agent": a.to_json()})))
}

/// Runs a daily agent now (`{date?, force?}`).
#[utoipa::path(post, path = "/api/modules/daily/agents/{name}/run", tag = "daily",
    params(("name" = String, Path, description = "Agent name")),
    request_body(content = RunBody, description = "Optional"),
    responses((status = 200, description = "The run's result", body = Object),
        (status = 404, description = "No such agent"), (status = 409, description = "Running now"),
        (status = 500, description = "The run failed")))]
async fn daily_run(
    Extension(ext): Extension<Arc<Extensions>>,
    Path(name): Path<String>,
    OptionalJson(body): OptionalJson,
) -> Result<Json<Value>, ApiError> {
    run_result(ext.scheduler.trigger(&name, run_options(body)?).await?)
}

/// Resets a daily agent: a pause after failures is lifted.
#[utoipa::path(post, path = "/api/modules/daily/agents/{name}/reset", tag = "daily",
    params(("name" = String, Path, description = "Agent name")),
    responses((status = 200, description = "`{success, agent, was_paused}`", body = Object), (status = 404, description = "No such agent")))]
async fn daily_reset(
    Extension(ext): Extension<Arc<Extensions>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    resumed(&ext, name).await
}

#[derive(Deserialize, IntoParams)]
struct TranscriptQuery {
    /// At most this many messages, the latest (1–500, default 50).
    limit: Option<usize>,
}

/// The messages of a daily agent's latest run.
#[utoipa::path(get, path = "/api/modules/daily/agents/{name}/transcript", tag = "daily",
    params(("name" = String, Path, description = "Agent name"), TranscriptQuery),
    responses((status = 200, description = "`{agent, session_id, messages}`", body = Object), (status = 404, description = "No such agent")))]
async fn daily_transcript(
    State(s): State<AppState>,
    Extension(ext): Extension<Arc<Extensions>>,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<TranscriptQuery>,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!({"agent": name, "session_id": session,
        "messages": messages.into_iter().skip(skip).collect::<Vec<_>>()})))
}
