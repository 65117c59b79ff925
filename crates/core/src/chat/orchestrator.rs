//! Runs one agent turn: resolves the session (new under a known id, or resumed), builds
//! the prompt, drives the CLI (warm or freshly spawned), answers its control requests,
//! turns its output into the contract's events, and records the session. HTTP, bots and
//! the scheduler all start turns through [`ChatService::start`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;
use serde_json::{json, Value};
use sha2::Digest;

use super::events::{self, Done, PromptMetadata, TurnEvent};
use super::pending::{self, Answer, PendingPrompts, PromptKind};
use super::pool::WarmPool;
use super::prompt;
use super::transcript;
use super::turns::{Turn, TurnHub};
use crate::agent::protocol::{self, kind};
use crate::agent::{AgentProcess, SpawnSpec, StartMode};
use crate::config::secrets::{SecretName, SecretStore};
use crate::config::Settings;
use crate::db::usage::UsageEntry;
use crate::db::{NewSession, SessionRow, Store};
use crate::trust::TrustLevel;
use crate::workspaces::WorkspaceStore;

/// The body of `POST /api/chat` (contract §1.2); camelCase, snake_case accepted.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatRequest {
    pub message: String,
    #[serde(default, alias = "session_id")]
    pub session_id: Option<String>,
    #[serde(default)]
    pub module: Option<String>,
    #[serde(default, alias = "system_prompt")]
    pub system_prompt: Option<String>,
    #[serde(default, alias = "working_directory")]
    pub working_directory: Option<String>,
    #[serde(default, alias = "initial_context")]
    pub initial_context: Option<String>,
    #[serde(default, alias = "prior_conversation")]
    pub prior_conversation: Option<String>,
    #[serde(default, alias = "continued_from")]
    pub continued_from: Option<String>,
    #[serde(default)]
    pub contexts: Option<Vec<String>>,
    #[serde(default, alias = "recovery_mode")]
    pub recovery_mode: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub attachments: Option<Vec<Value>>,
    #[serde(default, alias = "agent_type")]
    pub agent_type: Option<String>,
    #[serde(default, alias = "trust_level")]
    pub trust_level: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default, alias = "workspace_id")]
    pub workspace_id: Option<String>,
    #[serde(default, alias = "agent_path")]
    pub agent_path: Option<String>,
}

/// Everything a turn needs, shared by all turns.
pub struct ChatService {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub secrets: Arc<SecretStore>,
    pub workspaces: Arc<WorkspaceStore>,
    pub hub: TurnHub,
    pub pool: WarmPool,
    /// The `max_cli_processes` cap over running and warm processes.
    pub budget: super::budget::ProcessBudget,
    pub pending: PendingPrompts,
}

/// How the session of a turn is started.
struct Plan {
    req: ChatRequest,
    session_id: String,
    row: Option<SessionRow>,
    resume: bool,
}

const NO_TOKEN: &str =
    "No Claude token configured: run `parachute setup-token`, add one on the settings page of \
the Parachute UI, or set CLAUDE_CODE_OAUTH_TOKEN (or ANTHROPIC_API_KEY) for the server";

impl ChatService {
    pub fn new(
        settings: Arc<Settings>,
        store: Store,
        secrets: Arc<SecretStore>,
        workspaces: Arc<WorkspaceStore>,
    ) -> ChatService {
        let (pool_size, pool_idle) = (settings.warm_pool_size, settings.warm_idle);
        let budget = super::budget::ProcessBudget::new(
            settings.max_cli_processes,
            settings.max_queued_turns,
        );
        ChatService {
            settings,
            store,
            secrets,
            workspaces,
            hub: TurnHub::default(),
            pool: WarmPool::new(pool_size, pool_idle),
            budget,
            pending: PendingPrompts::default(),
        }
    }

    /// Starts a turn and returns its event log at once; the turn runs on its own task
    /// and finishes even if nobody listens.
    pub async fn start(self: &Arc<Self>, req: ChatRequest) -> Arc<Turn> {
        match self.plan(req).await {
            Ok(plan) => {
                let turn = self.hub.begin(&plan.session_id);
                let me = self.clone();
                let t = turn.clone();
                tokio::spawn(async move {
                    me.run(plan, &t).await;
                    t.finish();
                });
                turn
            }
            Err(event) => {
                let turn = Arc::new(Turn::detached());
                turn.push(&event);
                turn.finish();
                turn
            }
        }
    }

    /// Validates the request and decides new vs resume; an `Err` is the error event.
    async fn plan(&self, req: ChatRequest) -> Result<Plan, TurnEvent> {
        if req.message.trim().is_empty() {
            return Err(events::refusal("message is required"));
        }
        let n = req.message.chars().count();
        if n > self.settings.max_message_length {
            return Err(events::refusal(&format!("Message too long: {n} chars")));
        }
        let requested = req
            .session_id
            .clone()
            .filter(|s| !s.is_empty() && s != "new" && s != "pending");
        let Some(id) = requested else {
            return Ok(Plan {
                req,
                session_id: uuid::Uuid::new_v4().to_string(),
                row: None,
                resume: false,
            });
        };
        let row = self
            .store
            .get_session(&id)
            .await
            .map_err(|e| internal(&e.to_string(), None))?;
        match row {
            Some(row) => {
                let cfg = self.settings.claude_config_dir.clone();
                let sid = id.clone();
                let has_transcript =
                    tokio::task::spawn_blocking(move || transcript::find(&cfg, &sid).is_some())
                        .await
                        .unwrap_or(false);
                let resume = has_transcript && req.recovery_mode.is_none();
                Ok(Plan {
                    req,
                    session_id: id,
                    row: Some(row),
                    resume,
                })
            }
            None => {
                let deleted = self.store.session_was_deleted(&id).await.unwrap_or(false);
                let msg = if deleted {
                    format!("Session {id} was deleted; start a new chat")
                } else {
                    format!("Session not found: {id}")
                };
                Err(events::error(&msg, None))
            }
        }
    }

    // The whole turn in one function; splitting it into plan → resolve → acquire →
    // drive → settle stages (each unit-tested) is the next step of the workspace issue.
    #[allow(clippy::too_many_lines)]
    async fn run(&self, plan: Plan, turn: &Arc<Turn>) {
        let lock = self.hub.session_lock(&plan.session_id);
        let _serial = lock.lock().await;
        self.hub.register(turn);
        let started = Instant::now();
        let Plan {
            req,
            session_id: id,
            row,
            resume,
        } = plan;
        let is_new = row.is_none();
        let prev_count = row.as_ref().and_then(|r| r.message_count).unwrap_or(0);
        let resume_info = if resume {
            events::resume_info("sdk_resume", false, prev_count, true)
        } else {
            events::resume_info("new", true, if is_new { 0 } else { prev_count }, is_new)
        };
        let wd = req.working_directory.clone().filter(|w| !w.is_empty());
        let req_trust = req.trust_level.clone();
        let metadata = row
            .as_ref()
            .map(crate::sessions::metadata_object)
            .unwrap_or_default();
        let trust_mode = metadata
            .get("permissions")
            .and_then(|p| p.get("trustMode"))
            .and_then(Value::as_bool)
            .unwrap_or(true);

        turn.push(&events::session(
            if is_new { None } else { Some(&id) },
            wd.as_deref(),
            &resume_info,
            req_trust.as_deref(),
        ));

        // Effective trust level: the most restricted of session, workspace and request.
        let workspace_id = req
            .workspace_id
            .clone()
            .or_else(|| row.as_ref().and_then(|r| r.workspace_id.clone()));
        let workspace = match workspace_id.as_deref().filter(|w| !w.is_empty()) {
            Some(slug) => match self.workspaces.get(slug).await {
                Ok(w) => Some(w),
                Err(e) => return self.fail(turn, &e.to_string(), Some(&id)),
            },
            None => None,
        };
        let mut levels = Vec::new();
        if let Some(t) = row.as_ref().and_then(|r| r.trust_level.clone()) {
            levels.push(t.parse::<TrustLevel>().unwrap_or(TrustLevel::Full));
        }
        if let Some(w) = &workspace {
            levels.push(w.trust_level);
        }
        if let Some(t) = &req_trust {
            match t.parse::<TrustLevel>() {
                Ok(l) => levels.push(l),
                Err(e) => return self.fail(turn, &e.to_string(), Some(&id)),
            }
        }
        let level = TrustLevel::most_restricted(levels);

        // Working directory: request > workspace > session override > stored > vault root.
        let overrides = metadata
            .get("config_overrides")
            .cloned()
            .unwrap_or(Value::Null);
        let wd_choice = wd
            .clone()
            .or_else(|| workspace.as_ref().and_then(|w| w.working_directory.clone()))
            .or_else(|| {
                overrides
                    .get("working_directory")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .or_else(|| row.as_ref().and_then(|r| r.working_directory.clone()));
        let cwd = match self.resolve_cwd(wd_choice.as_deref()) {
            Ok(c) => c,
            Err(msg) => return self.fail(turn, &msg, Some(&id)),
        };
        let system_prompt = req
            .system_prompt
            .clone()
            .or_else(|| {
                overrides
                    .get("system_prompt")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .filter(|s| !s.trim().is_empty());
        // The prompt: custom or agent system prompt, context sections, prior conversation.
        // A stored row the CLI has no transcript for (imported, bot-created) starts a new
        // CLI session seeded with the history we have for it.
        let inputs = prompt::PromptInputs {
            agent_path: req.agent_path.clone(),
            custom_prompt: system_prompt,
            contexts: req.contexts.clone().unwrap_or_default(),
            prior_conversation: req.prior_conversation.clone(),
            seed_history_of: (!is_new && !resume).then(|| id.clone()),
        };
        let (g, c) = (self.settings.vault_gate(), cwd.clone());
        let prepared = tokio::task::spawn_blocking(move || prompt::prepare(&g, &c, inputs))
            .await
            .unwrap_or_else(|e| Err(prompt::PrepareError::Invalid(e.to_string())));
        let prepared = match prepared {
            Ok(p) => p,
            Err(e) => return self.fail(turn, &e.to_string(), Some(&id)),
        };
        let system_prompt = prepared.system_prompt.clone();
        // The owner's CLAUDE.md instructions first, then what this turn adds.
        let append = match (prepared.instructions.clone(), prepared.built.append.clone()) {
            (Some(i), Some(a)) => Some(format!("{i}\n\n{a}")),
            (i, a) => i.or(a),
        };
        turn.push(&events::prompt_metadata(&PromptMetadata {
            prompt_source: prepared.source(),
            prompt_source_path: prepared.agent.as_ref().map(|a| a.path.as_str()),
            agent_name: prepared.agent_name(),
            context_files: prepared.built.files.clone(),
            context_tokens: prepared.built.tokens,
            context_truncated: prepared.built.truncated,
            total_prompt_tokens: prepared.total_tokens(),
            trust_mode,
            working_directory_claude_md: prepared.working_directory_claude_md.clone(),
        }));
        turn.push(&events::user_message(&req.message));
        if is_new {
            turn.push(&events::session(
                Some(&id),
                wd.as_deref(),
                &resume_info,
                req_trust.as_deref(),
            ));
        }
        if level != TrustLevel::Full {
            // Never run a restricted session with less confinement than it asked for.
            let msg = format!(
                "Trust level '{}' needs its sandbox, which this server does not provide yet; use 'full' or try again after updating",
                level.as_str()
            );
            return self.fail(turn, &msg, Some(&id));
        }

        let credential = match self.secrets.get(SecretName::ClaudeOauthToken).await {
            Ok(Some((s, _))) => Some(("CLAUDE_CODE_OAUTH_TOKEN", s)),
            _ => match self.secrets.get(SecretName::AnthropicApiKey).await {
                Ok(Some((s, _))) => Some(("ANTHROPIC_API_KEY", s)),
                _ => None,
            },
        };
        let Some((cred_var, cred)) = credential else {
            return self.fail(turn, NO_TOKEN, Some(&id));
        };
        let model = req
            .model
            .clone()
            .or_else(|| workspace.as_ref().and_then(|w| w.model.clone()))
            .or_else(|| self.settings.default_model.clone());

        // A warm process is reused unless it runs elsewhere; a dead one is replaced by a
        // fresh process that resumes the transcript.
        // What the process was started with: a turn with another prompt or credential
        // needs a fresh process (resuming the same transcript).
        let fingerprint = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (&system_prompt, &append, cred_var).hash(&mut h);
            sha2::Sha256::digest(cred.expose().as_bytes())
                .as_slice()
                .hash(&mut h);
            h.finish()
        };
        let warm = self
            .pool
            .take(&id)
            .filter(|p| p.cwd == cwd && p.fingerprint == fingerprint);
        // The CLI keeps a resumed session's system prompt: text appended for this turn
        // then travels with the message instead (see `prompt` below).
        let mut resumed_with_append = false;
        let mut process = match warm {
            Some(mut p) => {
                if model.is_some() && p.model != model {
                    if let Err(e) = p.set_model(model.as_deref()).await {
                        return self.fail(turn, &e.to_string(), Some(&id));
                    }
                }
                p
            }
            None => {
                let mut env = vec![
                    (cred_var.to_string(), cred.expose().to_string()),
                    (
                        "CLAUDE_CONFIG_DIR".to_string(),
                        self.settings.claude_config_dir.display().to_string(),
                    ),
                ];
                if let Some(u) = &self.settings.anthropic_base_url {
                    env.push(("ANTHROPIC_BASE_URL".into(), u.clone()));
                }
                let spec = SpawnSpec {
                    cli: self.settings.claude_cli_path.clone(),
                    cwd: cwd.clone(),
                    start: if resume {
                        StartMode::Resume(id.clone())
                    } else {
                        StartMode::New(id.clone())
                    },
                    model: model.clone(),
                    permission_mode: "default".into(),
                    system_prompt: system_prompt.clone(),
                    append_system_prompt: append.clone(),
                    env,
                    fingerprint,
                    scratch_dir: self.settings.paths.home.join("tmp"),
                };
                resumed_with_append = resume && append.is_some();
                // Never beyond `max_cli_processes`: a free place, an idle warm
                // process's place, a bounded wait, or a clear busy error.
                let permit = match self
                    .budget
                    .acquire(&self.pool, |q| {
                        turn.push(&events::queued(q.position, q.in_use, q.max));
                    })
                    .await
                {
                    Ok(p) => p,
                    Err(e) => return self.fail(turn, &e.to_string(), Some(&id)),
                };
                self.pool.count_spawn();
                match AgentProcess::spawn(&spec).await {
                    Ok(mut p) => {
                        p.hold(permit);
                        p
                    }
                    Err(e) => return self.fail(turn, &e.to_string(), Some(&id)),
                }
            }
        };

        let mut prompt = req.message.clone();
        if resumed_with_append {
            if let Some(a) = &append {
                prompt = format!("<context>\n{a}\n</context>\n\n{prompt}");
            }
        }
        if is_new {
            if let Some(ctx) = req
                .initial_context
                .as_ref()
                .filter(|c| !c.trim().is_empty())
            {
                prompt = format!(
                    "## Context\n\n{ctx}\n\n---\n\n## Request\n\n{}",
                    req.message
                );
            }
        }
        if let Some(atts) = req.attachments.clone().filter(|a| !a.is_empty()) {
            let g = self.settings.vault_gate();
            let extra = tokio::task::spawn_blocking(move || prompt::save_attachments(&g, &atts))
                .await
                .unwrap_or_default();
            prompt.push_str(&extra);
        }
        if let Err(e) = process.send_user(&prompt).await {
            return self.fail(turn, &e.to_string(), Some(&id));
        }

        let mut st = StreamState::default();
        let mut interrupted = false;
        let outcome = loop {
            let line = tokio::select! {
                l = process.next_line() => l,
                _ = turn.abort.notified(), if !interrupted => {
                    interrupted = true;
                    let _ = process.interrupt().await;
                    continue;
                }
            };
            let Some(line) = line else {
                let tail = process.stderr_tail();
                let detail = if tail.is_empty() {
                    String::new()
                } else {
                    format!(": {}", last_line(&tail))
                };
                break Err(format!("The Claude CLI stopped unexpectedly{detail}"));
            };
            match kind(&line) {
                ("control_request", _) => {
                    let answer = self
                        .answer_control(&line, &id, trust_mode, &cwd, turn)
                        .await;
                    if let Err(e) = process.write(&answer).await {
                        break Err(e.to_string());
                    }
                }
                ("system", "init") => {
                    if is_new && !st.row_written {
                        let new = NewSession {
                            id: id.clone(),
                            title: events::title_from_message(&req.message),
                            module: req.module.clone().unwrap_or_else(|| "chat".into()),
                            source: "parachute".into(),
                            working_directory: wd.clone(),
                            model: line
                                .get("model")
                                .and_then(Value::as_str)
                                .map(str::to_string)
                                .or(model.clone()),
                            message_count: 0,
                            trust_level: req_trust.clone(),
                            workspace_id: workspace_id.clone(),
                            metadata: None,
                            created_at: None,
                        };
                        if let Err(e) = self.store.insert_session(&new).await {
                            break Err(format!("could not save the session: {e}"));
                        }
                        st.row_written = true;
                    }
                    turn.push(&events::init(
                        line.get("tools").unwrap_or(&Value::Null),
                        line.get("permissionMode").unwrap_or(&Value::Null),
                    ));
                }
                ("stream_event", _) => st.on_stream_event(&line, turn),
                ("assistant", _) => st.on_assistant(&line, turn),
                ("user", _) => st.on_user(&line, turn),
                ("result", _) => break Ok(line),
                _ => {}
            }
        };

        self.pending.forget_session(&id);
        let interrupted = interrupted || turn.abort_requested();
        if let Ok(result) = &outcome {
            // `total_cost_usd` is the process's running total: this turn's cost is the
            // increase since the last result of the same process.
            let total = result
                .get("total_cost_usd")
                .and_then(Value::as_f64)
                .unwrap_or(0.0);
            let cost = if total >= process.reported_cost_usd {
                total - process.reported_cost_usd
            } else {
                total
            };
            process.reported_cost_usd = total;
            let mut entries = st.usage.clone();
            // The CLI reports cost for the whole turn; attribute it to the models used,
            // in proportion to their output tokens.
            let outs: i64 = entries.iter().map(|e| e.output_tokens.max(1)).sum();
            for e in entries.iter_mut() {
                e.cost_usd = cost * e.output_tokens.max(1) as f64 / outs.max(1) as f64;
            }
            if !entries.is_empty() {
                if let Err(e) = self.store.record_usage(&id, &entries).await {
                    tracing::error!(error = %e, "could not record usage");
                }
            }
        }
        match outcome {
            Ok(result) => {
                let is_error = result
                    .get("is_error")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let text = result
                    .get("result")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                if is_error && !interrupted {
                    self.pool.put(&id, process);
                    let msg = if text.is_empty() {
                        "The model request failed".to_string()
                    } else {
                        text
                    };
                    return self.fail(turn, &msg, Some(&id));
                }
                let response = if interrupted || text.is_empty() {
                    st.block.clone()
                } else {
                    text
                };
                if !interrupted && !response.is_empty() {
                    let delta = response
                        .strip_prefix(st.block.as_str())
                        .unwrap_or(&response)
                        .to_string();
                    turn.push(&events::text(&response, &delta));
                }
                let stored_model = st.model.clone().or(model);
                let count = match self
                    .store
                    .record_turn(&id, stored_model.as_deref(), 2)
                    .await
                {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::error!(error = %e, "could not update the session after a turn");
                        prev_count + 2
                    }
                };
                let denials: Vec<Value> = result
                    .get("permission_denials")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                turn.push(&events::done(&Done {
                    response: &response,
                    session_id: &id,
                    working_directory: wd.as_deref(),
                    message_count: count,
                    model: stored_model.as_deref(),
                    duration_ms: started.elapsed().as_millis(),
                    tool_calls: &st.tool_calls,
                    permission_denials: &denials,
                    resume: &resume_info,
                }));
                // A session deleted during its turn does not keep a warm CLI.
                if !self.store.session_was_deleted(&id).await.unwrap_or(false) {
                    self.pool.put(&id, process);
                }
            }
            Err(msg) => {
                drop(process);
                if resume && msg.contains("No conversation found") {
                    // The transcript vanished between planning and spawning.
                    turn.push(&TurnEvent::SessionUnavailable {
                        reason: "sdk_session_not_found".into(),
                        session_id: id.clone(),
                        has_markdown_history: false,
                        message_count: prev_count,
                        message:
                            "The conversation's history is no longer available; start a new chat."
                                .into(),
                    });
                } else {
                    self.fail(turn, &msg, Some(&id));
                }
            }
        }
    }

    fn fail(&self, turn: &Turn, msg: &str, session_id: Option<&str>) {
        tracing::warn!(session = ?session_id, error = %msg, "chat turn failed");
        turn.push(&events::error(msg, session_id));
    }

    /// Answers a control request from the CLI; questions and (outside trust mode) tool
    /// permissions wait for the owner, up to the permission timeout.
    async fn answer_control(
        &self,
        line: &Value,
        session_id: &str,
        trust_mode: bool,
        cwd: &Path,
        turn: &Turn,
    ) -> Value {
        let rid = line.get("request_id").and_then(Value::as_str).unwrap_or("");
        let req = line.get("request").cloned().unwrap_or(Value::Null);
        match req.get("subtype").and_then(Value::as_str).unwrap_or("") {
            "can_use_tool" => {
                let input = req.get("input").cloned().unwrap_or(json!({}));
                let tool = req.get("tool_name").and_then(Value::as_str).unwrap_or("");
                let tool_use_id = req.get("tool_use_id").and_then(Value::as_str).unwrap_or("");
                let tool_use_id = if tool_use_id.is_empty() {
                    uuid::Uuid::new_v4().to_string()
                } else {
                    tool_use_id.to_string()
                };
                let decision = if tool == "AskUserQuestion" {
                    let pid = format!("{session_id}-q-{tool_use_id}");
                    let rx =
                        self.pending
                            .register(&pid, session_id, PromptKind::Question, json!({}));
                    turn.push(&TurnEvent::UserQuestion {
                        request_id: pid.clone(),
                        session_id: session_id.to_string(),
                        questions: input.get("questions").cloned().unwrap_or(json!([])),
                    });
                    match self.wait_for_owner(&pid, rx, turn).await {
                        Some(Answer::Answers(a)) => {
                            let mut updated = input.clone();
                            updated["answers"] = a;
                            protocol::allow(&updated)
                        }
                        Some(_) => protocol::deny("The user declined to answer."),
                        None => protocol::deny_interrupt(
                            "The user did not answer the question.",
                            turn.abort_requested(),
                        ),
                    }
                } else if let Some(refusal) = self.protected_write(tool, &input, cwd) {
                    // The agent's own file tools pass the same gate as the API: it never
                    // edits the server's or the CLI's settings, whatever the trust mode.
                    protocol::deny(&refusal)
                } else if trust_mode {
                    protocol::allow(&input)
                } else {
                    let pid = format!("{session_id}-p-{tool_use_id}");
                    let ts = crate::util::time::now_session();
                    let request = pending::permission_request(&pid, tool, &input, &ts);
                    let event = TurnEvent::PermissionRequest(Box::new(request));
                    let info = serde_json::to_value(&event).unwrap_or(Value::Null);
                    let rx = self
                        .pending
                        .register(&pid, session_id, PromptKind::Permission, info);
                    turn.push(&event);
                    match self.wait_for_owner(&pid, rx, turn).await {
                        Some(Answer::Grant(_)) => protocol::allow(&input),
                        Some(_) => protocol::deny("The owner denied this tool call."),
                        None => protocol::deny_interrupt(
                            "No answer from the owner in time; the tool call was denied.",
                            turn.abort_requested(),
                        ),
                    }
                };
                protocol::control_success(rid, decision)
            }
            "hook_callback" => protocol::control_success(rid, json!({})),
            "mcp_message" => {
                let mid = req
                    .get("message")
                    .and_then(|m| m.get("id"))
                    .cloned()
                    .unwrap_or(Value::Null);
                protocol::control_success(
                    rid,
                    json!({"mcp_response": {"jsonrpc": "2.0", "id": mid, "error": {"code": -32601, "message": "unknown server"}}}),
                )
            }
            other => protocol::control_error(rid, &format!("unsupported control request: {other}")),
        }
    }

    /// Why a file tool's write must be refused: its target is inside the vault and on
    /// the protected list (or not a path the gate accepts). `None` lets it through.
    fn protected_write(&self, tool: &str, input: &Value, cwd: &Path) -> Option<String> {
        let key = match tool {
            "Write" | "Edit" | "MultiEdit" => "file_path",
            "NotebookEdit" => "notebook_path",
            _ => return None,
        };
        let named = input.get(key).and_then(Value::as_str)?;
        let abs = cwd.join(named);
        let gate = self.settings.vault_gate();
        let root = gate.root().canonicalize().ok()?;
        // Outside the vault the trust level decides (`full` allows it), not this gate.
        let inside = abs.starts_with(&root) || abs.starts_with(gate.root());
        if !inside {
            return None;
        }
        match gate.resolve(&abs.to_string_lossy()) {
            Ok(_) => None,
            Err(e) => Some(format!(
                "{named} cannot be changed by the agent: {e}. Parachute's settings change only through its own settings pages and commands."
            )),
        }
    }

    /// Waits for the owner's answer; `None` on timeout or abort.
    async fn wait_for_owner(
        &self,
        id: &str,
        rx: tokio::sync::oneshot::Receiver<Answer>,
        turn: &Turn,
    ) -> Option<Answer> {
        if turn.abort_requested() {
            self.pending.forget(id);
            return None;
        }
        let answer = tokio::select! {
            a = rx => a.ok(),
            _ = tokio::time::sleep(self.settings.permission_timeout) => None,
            _ = turn.abort.notified() => None,
        };
        self.pending.forget(id);
        answer
    }

    fn resolve_cwd(&self, wd: Option<&str>) -> Result<PathBuf, String> {
        let vault = &self.settings.paths.vault;
        let p = match wd.filter(|w| !w.trim().is_empty()) {
            None => vault
                .canonicalize()
                .map_err(|e| format!("The vault is not accessible: {e}"))?,
            Some(w) => self
                .settings
                .vault_gate()
                .resolve(w)
                .map_err(|e| format!("Invalid working directory '{w}': {e}"))?,
        };
        if !p.is_dir() {
            return Err(format!(
                "Working directory does not exist: {}",
                wd.unwrap_or("")
            ));
        }
        Ok(p)
    }
}

fn internal(msg: &str, session_id: Option<&str>) -> TurnEvent {
    tracing::error!(error = %msg, "chat turn could not start");
    events::error(
        "Internal error starting the turn; see the server log",
        session_id,
    )
}

fn last_line(s: &str) -> &str {
    s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("")
}

/// What the stream has shown so far in this turn.
#[derive(Default)]
struct StreamState {
    row_written: bool,
    model: Option<String>,
    model_sent: bool,
    /// Text of the current text block (the contract's accumulator).
    block: String,
    /// Message ids whose text was streamed through partial events.
    streamed: std::collections::HashSet<String>,
    current_message: Option<String>,
    tool_calls: Vec<Value>,
    /// Tokens of this turn's API calls, per model, summed from the stream.
    usage: Vec<UsageEntry>,
    last_usage_model: Option<String>,
}

impl StreamState {
    fn usage_for(&mut self, model: &str) -> &mut UsageEntry {
        if let Some(i) = self.usage.iter().position(|u| u.model == model) {
            return &mut self.usage[i];
        }
        self.usage.push(UsageEntry {
            model: model.to_string(),
            ..Default::default()
        });
        self.usage.last_mut().expect("just pushed")
    }

    fn send_model(&mut self, model: Option<&str>, turn: &Turn) {
        if let Some(m) = model.filter(|m| !m.is_empty() && *m != "<synthetic>") {
            self.model = Some(m.to_string());
            if !self.model_sent {
                self.model_sent = true;
                turn.push(&events::model(m));
            }
        }
    }

    fn on_stream_event(&mut self, line: &Value, turn: &Turn) {
        if line.get("parent_tool_use_id").is_some_and(|p| !p.is_null()) {
            return;
        }
        let ev = line.get("event").unwrap_or(&Value::Null);
        match ev.get("type").and_then(Value::as_str).unwrap_or("") {
            "message_start" => {
                let msg = ev.get("message").unwrap_or(&Value::Null);
                self.current_message = msg.get("id").and_then(Value::as_str).map(str::to_string);
                self.send_model(msg.get("model").and_then(Value::as_str), turn);
                let model = msg
                    .get("model")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
                    .to_string();
                let u = msg.get("usage").unwrap_or(&Value::Null);
                let n = |k: &str| u.get(k).and_then(Value::as_i64).unwrap_or(0);
                let e = self.usage_for(&model);
                e.input_tokens += n("input_tokens");
                e.cache_creation_input_tokens += n("cache_creation_input_tokens");
                e.cache_read_input_tokens += n("cache_read_input_tokens");
                self.last_usage_model = Some(model);
            }
            "message_delta" => {
                let out = ev
                    .pointer("/usage/output_tokens")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                let model = self
                    .last_usage_model
                    .clone()
                    .unwrap_or_else(|| "unknown".into());
                self.usage_for(&model).output_tokens += out;
            }
            "content_block_start"
                if ev.pointer("/content_block/type").and_then(Value::as_str) == Some("text") =>
            {
                self.block.clear();
            }
            "content_block_delta" => {
                if let Some(t) = ev.pointer("/delta/text").and_then(Value::as_str) {
                    if ev.pointer("/delta/type").and_then(Value::as_str) == Some("text_delta")
                        && !t.is_empty()
                    {
                        self.block.push_str(t);
                        if let Some(m) = &self.current_message {
                            self.streamed.insert(m.clone());
                        }
                        turn.push(&events::text(&self.block, t));
                    }
                }
            }
            _ => {}
        }
    }

    fn on_assistant(&mut self, line: &Value, turn: &Turn) {
        if line.get("parent_tool_use_id").is_some_and(|p| !p.is_null()) {
            return;
        }
        let msg = line.get("message").unwrap_or(&Value::Null);
        self.send_model(msg.get("model").and_then(Value::as_str), turn);
        let streamed = msg
            .get("id")
            .and_then(Value::as_str)
            .is_some_and(|id| self.streamed.contains(id));
        for block in msg
            .get("content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            match block.get("type").and_then(Value::as_str).unwrap_or("") {
                "text" if !streamed => {
                    let t = block.get("text").and_then(Value::as_str).unwrap_or("");
                    self.block = t.to_string();
                    turn.push(&events::text(t, t));
                }
                "thinking" => {
                    let t = block.get("thinking").and_then(Value::as_str).unwrap_or("");
                    if !t.is_empty() {
                        turn.push(&events::thinking(t));
                    }
                }
                "tool_use" => {
                    let (id, name, input) = (
                        block.get("id").unwrap_or(&Value::Null),
                        block.get("name").unwrap_or(&Value::Null),
                        block.get("input").unwrap_or(&Value::Null),
                    );
                    self.tool_calls
                        .push(json!({"id": id, "name": name, "input": input}));
                    turn.push(&events::tool_use(id, name, input));
                    self.block.clear();
                }
                _ => {}
            }
        }
    }

    fn on_user(&mut self, line: &Value, turn: &Turn) {
        if line.get("parent_tool_use_id").is_some_and(|p| !p.is_null()) {
            return;
        }
        let content = line.pointer("/message/content").and_then(Value::as_array);
        for block in content.into_iter().flatten() {
            if block.get("type").and_then(Value::as_str) == Some("tool_result") {
                let text = events::tool_result_text(block.get("content").unwrap_or(&Value::Null));
                let is_error = block
                    .get("is_error")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                turn.push(&events::tool_result(
                    block.get("tool_use_id").unwrap_or(&Value::Null),
                    &text,
                    is_error,
                ));
            }
        }
    }
}
