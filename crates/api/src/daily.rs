//! The daily-agent routes the app calls. They need the scheduler,
//! which has not landed yet: until then they answer an honest 503 saying so, rather
//! than a 404 the app would read as "no such server feature".

use axum::extract::Path;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use utoipa_axum::{router::OpenApiRouter, routes};

use parachute_core::app::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(agents))
        .routes(routes!(agents_status))
        .routes(routes!(agent))
        .routes(routes!(run_agent))
        .routes(routes!(reset_agent))
        .routes(routes!(agent_transcript))
}

type Unavailable = (StatusCode, Json<Value>);

fn unavailable() -> Unavailable {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(
            json!({"detail": "Daily agents need the scheduler, which this server does not have yet"}),
        ),
    )
}

/// Daily agents (503 until the scheduler lands).
#[utoipa::path(get, path = "/api/modules/daily/agents", tag = "daily",
    responses((status = 503, description = "Scheduler not available yet")))]
async fn agents() -> Unavailable {
    unavailable()
}

/// Daily agents' status (503 until the scheduler lands).
#[utoipa::path(get, path = "/api/modules/daily/agents/status", tag = "daily",
    responses((status = 503, description = "Scheduler not available yet")))]
async fn agents_status() -> Unavailable {
    unavailable()
}

/// One daily agent (503 until the scheduler lands).
#[utoipa::path(get, path = "/api/modules/daily/agents/{name}", tag = "daily",
    params(("name" = String, Path, description = "Agent name")),
    responses((status = 503, description = "Scheduler not available yet")))]
async fn agent(Path(_name): Path<String>) -> Unavailable {
    unavailable()
}

/// Run a daily agent (503 until the scheduler lands).
#[utoipa::path(post, path = "/api/modules/daily/agents/{name}/run", tag = "daily",
    params(("name" = String, Path, description = "Agent name")),
    responses((status = 503, description = "Scheduler not available yet")))]
async fn run_agent(Path(_name): Path<String>) -> Unavailable {
    unavailable()
}

/// Reset a daily agent (503 until the scheduler lands).
#[utoipa::path(post, path = "/api/modules/daily/agents/{name}/reset", tag = "daily",
    params(("name" = String, Path, description = "Agent name")),
    responses((status = 503, description = "Scheduler not available yet")))]
async fn reset_agent(Path(_name): Path<String>) -> Unavailable {
    unavailable()
}

/// A daily agent's transcript (503 until the scheduler lands).
#[utoipa::path(get, path = "/api/modules/daily/agents/{name}/transcript", tag = "daily",
    params(("name" = String, Path, description = "Agent name")),
    responses((status = 503, description = "Scheduler not available yet")))]
async fn agent_transcript(Path(_name): Path<String>) -> Unavailable {
    unavailable()
}
