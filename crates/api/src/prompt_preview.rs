//! `GET /api/prompt/preview`: what the agent would receive, built by
//! the same `chat::prompt::prepare` the chat turn uses.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
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

/// What the agent would receive; the same figures as a turn's `prompt_metadata` event.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct PromptPreview {
    /// The system prompt (custom prompt or agent body), else the text appended to the
    /// Claude Code preset; empty when there is neither.
    prompt: String,
    /// Where the system prompt comes from: `agent`, `custom` or `claude_code_preset`.
    prompt_source: &'static str,
    /// The agent file's vault-relative path; null unless the source is `agent`.
    prompt_source_path: Option<String>,
    /// Vault-relative paths of the context files loaded into the prompt.
    context_files: Vec<String>,
    /// Estimated tokens of the loaded context files (4 characters a token).
    context_tokens: usize,
    /// Whether some context was cut or left out to fit its token budget.
    context_truncated: bool,
    /// The agent's name; `vault-agent` unless an agent file was used.
    agent_name: String,
    /// Other agents the client could pick; always empty.
    available_agents: Vec<String>,
    /// Tokens of the base system prompt; always 0 (not measured).
    base_prompt_tokens: usize,
    /// `prompt`'s length in bytes / 4.
    total_prompt_tokens: usize,
    /// The working directory as asked; null when none was.
    working_directory: Option<String>,
    /// Vault-relative path of the `AGENTS.md`/`CLAUDE.md` in the working directory;
    /// null when there is none.
    working_directory_claude_md: Option<String>,
}

/// The prompt a chat with these settings would use.
#[utoipa::path(get, path = "/api/prompt/preview", tag = "prompts", params(PreviewQuery),
    responses((status = 200, body = PromptPreview),
        (status = 404, description = "Agent not found"), (status = 400, description = "Invalid path")))]
async fn preview(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<PreviewQuery>,
) -> Result<Json<PromptPreview>, ApiError> {
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
    Ok(Json(PromptPreview {
        total_prompt_tokens: prompt.len() / 4,
        prompt,
        prompt_source: p.source(),
        prompt_source_path: p.agent.as_ref().map(|a| a.path.clone()),
        agent_name: p.agent_name().to_string(),
        context_files: p.built.files,
        context_tokens: p.built.tokens,
        context_truncated: p.built.truncated,
        available_agents: Vec::new(),
        base_prompt_tokens: 0,
        working_directory: wd,
        working_directory_claude_md: p.working_directory_claude_md,
    }))
}
