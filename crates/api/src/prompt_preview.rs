//! `GET /api/prompt/preview`: what the agent would receive, built by
//! the same `chat::prompt::prepare` the chat turn uses.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::error::ApiError;
use super::extract::ApiQuery;
use parachute_core::app::AppState;
use parachute_core::chat::prompt::{self, PrepareError, PromptInputs};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(preview))
}

#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct PreviewQuery {
    working_directory: Option<String>,
    agent_path: Option<String>,
    /// Comma-separated contexts (an empty element = the vault root).
    contexts: Option<String>,
    custom_prompt: Option<String>,
}

/// The prompt a chat with these settings would use.
#[utoipa::path(get, path = "/api/prompt/preview", tag = "prompts", params(PreviewQuery),
    responses((status = 200, description = "`{prompt, promptSource, …, workingDirectoryClaudeMd}`", body = Object),
        (status = 404, description = "Agent not found"), (status = 400, description = "Invalid path")))]
async fn preview(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<PreviewQuery>,
) -> Result<Json<Value>, ApiError> {
    let gate = s.settings.vault_gate();
    let vault = gate.root().to_path_buf();
    let wd = q.working_directory.clone().filter(|w| !w.is_empty());
    let cwd = match &wd {
        Some(w) => gate
            .resolve(w)
            .map_err(|e| ApiError::BadRequest(format!("Invalid working directory '{w}': {e}")))?,
        None => vault
            .canonicalize()
            .map_err(|e| ApiError::Internal(e.to_string()))?,
    };
    let inputs = PromptInputs {
        agent_path: q.agent_path.clone(),
        custom_prompt: q.custom_prompt.clone(),
        contexts: q
            .contexts
            .as_deref()
            .map(|c| c.split(',').map(|x| x.trim().to_string()).collect())
            .unwrap_or_default(),
        ..Default::default()
    };
    let p = tokio::task::spawn_blocking(move || prompt::prepare(&gate, &cwd, inputs))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| match e {
            PrepareError::AgentNotFound(m) => ApiError::NotFound(m),
            PrepareError::Invalid(m) => ApiError::BadRequest(m),
        })?;
    let prompt = p
        .system_prompt
        .clone()
        .or_else(|| p.built.append.clone())
        .unwrap_or_default();
    Ok(Json(json!({
        "prompt": prompt, "promptSource": p.source(), "promptSourcePath": p.agent.as_ref().map(|a| a.path.clone()),
        "contextFiles": p.built.files, "contextTokens": p.built.tokens, "contextTruncated": p.built.truncated,
        "agentName": p.agent_name(), "availableAgents": [], "basePromptTokens": 0,
        "totalPromptTokens": prompt.len() / 4, "workingDirectory": wd,
        "workingDirectoryClaudeMd": p.working_directory_claude_md,
    })))
}
