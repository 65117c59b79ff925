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

use super::clocks::Clocks;
use super::error::TurnError;
use super::events::{self, Done, PromptMetadata, TurnEvent};
use super::model_failure;
use super::pending::{self, Answer, PendingPrompts, PromptKind};
use super::pool::WarmPool;
use super::prompt;
use super::stream_state::StreamState;
use super::transcript;
use super::turns::{Turn, TurnHub};
use crate::agent::protocol::{self, CliMessage, TurnResult};
use crate::agent::{
    AgentProcess, ContainerLauncher, ContainerLimits, ContainerRequest, SpawnSpec, StartMode,
};
use crate::config::secrets::SecretStore;
use crate::config::Settings;
use crate::db::{NewSession, SessionRow, Store};
use crate::trust::TrustLevel;
use crate::workspaces::WorkspaceStore;

/// The body of `POST /api/chat`; camelCase, snake_case accepted.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatRequest {
    /// The user's message; must not be blank, and at most `max_message_length` characters.
    pub message: String,
    /// The session to continue; absent, empty, `new` or `pending` starts a new one.
    #[serde(default, alias = "session_id")]
    pub session_id: Option<String>,
    /// The module a new session is filed under; `chat` when absent.
    #[serde(default)]
    pub module: Option<String>,
    /// A system prompt replacing Claude Code's (an agent file's body wins); else the
    /// session's `config_overrides.system_prompt`.
    #[serde(default, alias = "system_prompt")]
    pub system_prompt: Option<String>,
    /// Vault-relative working directory; wins over the workspace's, the session's
    /// override and the stored one. When none names one, the vault root.
    #[serde(default, alias = "working_directory")]
    pub working_directory: Option<String>,
    /// Context wrapped around the first message of a new session.
    #[serde(default, alias = "initial_context")]
    pub initial_context: Option<String>,
    /// Earlier conversation added to the system prompt.
    #[serde(default, alias = "prior_conversation")]
    pub prior_conversation: Option<String>,
    /// The session this one continues; accepted but not used by the turn.
    #[serde(default, alias = "continued_from")]
    pub continued_from: Option<String>,
    /// Vault paths loaded into the prompt: folders (their `AGENTS.md`/`CLAUDE.md`) and `.md` files.
    #[serde(default)]
    pub contexts: Option<Vec<String>>,
    /// When set (any value), the CLI transcript is not resumed: the turn starts a new CLI
    /// session for the stored session.
    #[serde(default, alias = "recovery_mode")]
    pub recovery_mode: Option<String>,
    /// Files sent with the message (`fileName`, `mimeType`, `base64Data`): saved in the
    /// vault and linked in the message; executables are refused.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub attachments: Option<Vec<Value>>,
    /// Accepted but not used by the turn.
    #[serde(default, alias = "agent_type")]
    pub agent_type: Option<String>,
    /// The trust level asked for; the turn runs at the most restricted of this, the
    /// session's and the workspace's. An unknown level is refused, and so for now is
    /// any level but `full`.
    #[serde(default, alias = "trust_level")]
    pub trust_level: Option<String>,
    /// The model to use; else the workspace's, else the server's default.
    #[serde(default)]
    pub model: Option<String>,
    /// The workspace (by slug) to run in; else the session's stored one.
    #[serde(default, alias = "workspace_id")]
    pub workspace_id: Option<String>,
    /// A vault-relative agent file (`.md`) whose body becomes the system prompt.
    #[serde(default, alias = "agent_path")]
    pub agent_path: Option<String>,
}

impl ChatRequest {
    /// The first attachment of a refused type (executables), with its index: the
    /// policy every turn applies, whoever starts it.
    pub fn blocked_attachment(&self) -> Option<(usize, String)> {
        self.attachments
            .iter()
            .flatten()
            .enumerate()
            .find_map(|(i, a)| {
                let name = a.get("fileName").and_then(Value::as_str).unwrap_or("");
                prompt::blocked_attachment(name).then(|| (i, name.to_string()))
            })
    }
}

/// Everything a turn needs, shared by all turns.
pub struct ChatService {
    /// The server's settings.
    pub settings: Arc<Settings>,
    /// The database: sessions and usage.
    pub store: Store,
    /// Stored secrets; each turn reads the Claude credential from here.
    pub secrets: Arc<SecretStore>,
    /// Workspaces, which can set a turn's working directory, model and trust level.
    pub workspaces: Arc<WorkspaceStore>,
    /// Running and recently finished turns, and the lock that runs a session's turns one at a time.
    pub hub: TurnHub,
    /// CLI processes kept warm between turns.
    pub pool: WarmPool,
    /// The `max_cli_processes` cap over running and warm processes.
    pub budget: super::budget::ProcessBudget,
    /// Questions and permission prompts waiting for the owner.
    pub pending: PendingPrompts,
    /// Starts CLIs in containers for the `sandboxed` level, once the server has one.
    container_launcher: std::sync::OnceLock<Arc<dyn ContainerLauncher>>,
    /// Decides skills, sub-agents and MCP servers per session, once the server has it.
    extras_source: std::sync::OnceLock<Arc<dyn super::extras::ExtrasSource>>,
    /// Where the turn's events for hooks are fired.
    events: std::sync::OnceLock<Arc<crate::notify::EventBus>>,
    /// Wakes the task that keeps the spares (one was taken, or found out of date).
    pub(super) spare_wanted: tokio::sync::Notify,
    /// Set when a spare was found out of date: all are rechecked at once.
    pub(super) refresh_spares_now: std::sync::atomic::AtomicBool,
    /// When the last turn was asked for: spares are started only after a quiet moment.
    pub(super) last_turn_start: std::sync::Mutex<Option<tokio::time::Instant>>,
}

/// How the session of a turn is started.
pub(super) struct Plan {
    pub(super) req: ChatRequest,
    pub(super) session_id: String,
    pub(super) row: Option<SessionRow>,
    pub(super) resume: bool,
    /// The spare a new chat took (its id is `session_id`); used when it matches.
    pub(super) spare: std::sync::Mutex<Option<AgentProcess>>,
    /// Only starting a CLI ahead of any turn (a spare, a pre-warmed session): no
    /// hooks fire.
    pub(super) prewarm: bool,
}

pub(crate) const NO_TOKEN: &str =
    "No Claude credential configured: run `parachute setup-token` (it takes an OAuth token from \
`claude setup-token` or an Anthropic API key), or set CLAUDE_CODE_OAUTH_TOKEN or ANTHROPIC_API_KEY \
for the server";

impl ChatService {
    /// The service for `settings`: the warm pool and the process budget are sized from
    /// them; no turns are running yet.
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
            container_launcher: std::sync::OnceLock::new(),
            extras_source: std::sync::OnceLock::new(),
            events: std::sync::OnceLock::new(),
            spare_wanted: tokio::sync::Notify::new(),
            refresh_spares_now: std::sync::atomic::AtomicBool::new(false),
            last_turn_start: std::sync::Mutex::new(None),
        }
    }

    /// Gives the service the bus its hook events go to (set once).
    pub fn set_events(&self, events: Arc<crate::notify::EventBus>) {
        let _ = self.events.set(events);
    }

    /// `message.received`, and `session.resumed` for an existing session.
    /// Blocking hooks of these run before the CLI gets the message.
    async fn fire_turn_start(&self, id: &str, message: &str, is_new: bool, level: TrustLevel) {
        self.fire_wait(
            "message.received",
            serde_json::json!({"session_id": id, "message": message, "is_new": is_new,
                "trust_level": level.as_str()}),
        )
        .await;
        if !is_new {
            self.fire_wait("session.resumed", serde_json::json!({"session_id": id}))
                .await;
        }
    }

    /// Fires a hook event and waits for its blocking hooks (within their timeouts).
    async fn fire_wait(&self, event: &'static str, data: Value) {
        if let Some(bus) = self.events.get() {
            bus.fire_blocking(event, data).await;
        }
    }

    /// Fires a hook event (nothing when no bus is set).
    fn fire(&self, event: &'static str, data: Value) {
        if let Some(bus) = self.events.get() {
            bus.fire(event, data);
        }
    }

    /// Gives the service what decides each session's skills, sub-agents and MCP
    /// servers (the extensions crate's). Without one, sessions get none. Set once.
    pub fn set_extras_source(&self, source: Arc<dyn super::extras::ExtrasSource>) {
        let _ = self.extras_source.set(source);
    }

    /// What decides each session's extras, once the server has it.
    pub(super) fn extras_source(&self) -> Option<Arc<dyn super::extras::ExtrasSource>> {
        self.extras_source.get().cloned()
    }

    /// Gives the service its container launcher (the sandbox crate's): turns at
    /// `sandboxed` run through it. Without one they are refused. Set once.
    pub fn set_container_launcher(&self, launcher: Arc<dyn ContainerLauncher>) {
        let _ = self.container_launcher.set(launcher);
    }

    /// Where a sandboxed session keeps its own files on the host: the CLI's transcripts
    /// (so it resumes), the relay's socket and its system prompt.
    pub fn sandbox_session_dir(&self, session_id: &str) -> PathBuf {
        self.settings
            .paths
            .home
            .join("sandbox")
            .join("sessions")
            .join(session_id)
    }

    /// The CLI's transcript of a session: in the server's CLI config dir, or for a
    /// sandboxed session in its own folder. Reads the file system: call it off the
    /// async runtime.
    pub fn transcript_path(&self, session_id: &str) -> Option<PathBuf> {
        transcript::find(&self.settings.claude_config_dir, session_id).or_else(|| {
            transcript::find(
                &self.sandbox_session_dir(session_id).join("claude"),
                session_id,
            )
        })
    }

    /// A session's stored messages (user and assistant text), from its transcript;
    /// none when it has no transcript.
    pub async fn stored_messages(
        self: &Arc<Self>,
        session_id: &str,
    ) -> Vec<transcript::TranscriptMessage> {
        let this = self.clone();
        let id = session_id.to_string();
        tokio::task::spawn_blocking(move || {
            this.transcript_path(&id)
                .and_then(|p| transcript::read_events(&p).ok())
                .map(|ev| transcript::messages(&ev))
                .unwrap_or_default()
        })
        .await
        .unwrap_or_default()
    }

    /// Starts a turn and returns its event log at once; the turn runs on its own task
    /// and finishes even if nobody listens.
    pub async fn start(self: &Arc<Self>, req: ChatRequest) -> Arc<Turn> {
        if let Ok(mut at) = self.last_turn_start.lock() {
            *at = Some(tokio::time::Instant::now());
        }
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
            return Err(events::refusal(&format!(
                "Message too long: {n} chars (the limit is {} characters, max_message_length)",
                self.settings.max_message_length
            )));
        }
        if let Some((_, name)) = req.blocked_attachment() {
            return Err(events::refusal(&format!("File type not allowed: {name}")));
        }
        let requested = req
            .session_id
            .clone()
            .filter(|s| !s.is_empty() && s != "new" && s != "pending");
        let Some(id) = requested else {
            // A new chat: under a spare's id when it may run on that spare.
            let spare = self.spare_for(&req);
            let session_id = spare.as_ref().map_or_else(
                || uuid::Uuid::new_v4().to_string(),
                |s| s.session_id.clone(),
            );
            return Ok(Plan {
                req,
                session_id,
                row: None,
                resume: false,
                spare: std::sync::Mutex::new(spare),
                prewarm: false,
            });
        };
        let row = self
            .store
            .get_session(&id)
            .await
            .map_err(|e| internal(&e.to_string(), None))?;
        match row {
            Some(row) => {
                // The CLI's transcript: in the server's CLI config dir, or for a
                // sandboxed session in its own folder.
                let dirs = [
                    self.settings.claude_config_dir.clone(),
                    self.sandbox_session_dir(&id).join("claude"),
                ];
                let sid = id.clone();
                let has_transcript = tokio::task::spawn_blocking(move || {
                    dirs.iter().any(|d| transcript::find(d, &sid).is_some())
                })
                .await
                .map_err(|e| internal(&format!("transcript lookup failed: {e}"), None))?;
                let resume = has_transcript && req.recovery_mode.is_none();
                Ok(Plan {
                    req,
                    session_id: id,
                    row: Some(row),
                    resume,
                    spare: std::sync::Mutex::new(None),
                    prewarm: false,
                })
            }
            None => {
                let deleted = self
                    .store
                    .session_was_deleted(&id)
                    .await
                    .map_err(|e| internal(&e.to_string(), None))?;
                let msg = if deleted {
                    format!("Session {id} was deleted; start a new chat")
                } else {
                    format!("Session not found: {id}")
                };
                Err(events::error(&msg, None))
            }
        }
    }

    /// The turn in stages: resolve (trust, workspace, working directory, prompt) →
    /// acquire a process (warm, or spawned under the process cap) → send the message →
    /// drive the stream → settle (usage, the session row, `done`, the warm pool).
    async fn run(&self, plan: Plan, turn: &Arc<Turn>) {
        let lock = self.hub.session_lock(&plan.session_id);
        let _serial = lock.lock().await;
        self.hub.register(turn);
        let started = Instant::now();
        let id = plan.session_id.clone();
        let r = match self.resolve(&plan, turn).await {
            Ok(r) => r,
            Err(e) => {
                // A spare taken for this chat serves no one now.
                if let Some(p) = plan.spare.lock().unwrap_or_else(|p| p.into_inner()).take() {
                    self.pool.spares.retire(p);
                }
                return self.fail(turn, &e.message(), Some(&id));
            }
        };
        let (mut process, resumed_with_append) = match self.acquire(&plan, &r, turn).await {
            Ok(p) => p,
            Err(e) => return self.fail(turn, &e.message(), Some(&id)),
        };
        let req = &plan.req;
        let attached = match req.attachments.clone().filter(|a| !a.is_empty()) {
            Some(atts) => {
                let g = self.settings.vault_gate();
                tokio::task::spawn_blocking(move || prompt::save_attachments(&g, &atts))
                    .await
                    .unwrap_or_default()
            }
            None => String::new(),
        };
        // What the CLI gets; a resumed process also gets the appended prompt text.
        let message_for = |resumed_with_append: bool| {
            let mut m = compose_message(
                &req.message,
                r.is_new.then_some(req.initial_context.as_deref()).flatten(),
                resumed_with_append.then_some(r.append.as_deref()).flatten(),
            );
            m.push_str(&attached);
            m
        };
        let mut driven = self
            .send_and_drive(
                &mut process,
                &message_for(resumed_with_append),
                &plan,
                &r,
                turn,
            )
            .await;
        if driven.died_before_init() {
            // The CLI was gone before it started this turn: a warm process that died
            // (its exit not yet noticed), or a fresh one that exited at once. One more
            // try with a freshly spawned process (resuming the transcript); a second
            // failure is reported as usual.
            tracing::warn!(session = %id, "the Claude CLI was gone before the turn started; trying once more");
            drop(process);
            let resumed_with_append;
            (process, resumed_with_append) = match self.acquire(&plan, &r, turn).await {
                Ok(p) => p,
                Err(e) => return self.fail(turn, &e.message(), Some(&id)),
            };
            driven = self
                .send_and_drive(
                    &mut process,
                    &message_for(resumed_with_append),
                    &plan,
                    &r,
                    turn,
                )
                .await;
        }
        self.settle(process, driven, &plan, &r, started, turn).await;
    }

    /// Sends the message, then drives the stream; a failed send ends it at once.
    async fn send_and_drive(
        &self,
        process: &mut AgentProcess,
        message: &str,
        plan: &Plan,
        r: &Resolved,
        turn: &Turn,
    ) -> Driven {
        match process.send_user(message).await {
            Ok(()) => self.drive(process, plan, r, turn).await,
            Err(e) => Driven {
                outcome: Err(e.into()),
                st: StreamState::default(),
                interrupted: false,
            },
        }
    }

    /// Decides everything the turn runs with, and sends the events that come before
    /// the CLI: `session`, `prompt_metadata`, `user_message`, the second `session`.
    pub(super) async fn resolve(&self, plan: &Plan, turn: &Turn) -> Result<Resolved, TurnError> {
        let Plan {
            req,
            session_id: id,
            row,
            resume,
            ..
        } = plan;
        let (id, resume) = (id.clone(), *resume);
        let is_new = row.is_none();
        let prev_count = row.as_ref().and_then(|r| r.message_count).unwrap_or(0);
        let resume_info = resume_info_for(resume, is_new, prev_count);
        let wd = req.working_directory.clone().filter(|w| !w.is_empty());
        let req_trust = req.trust_level.clone();
        let metadata = row
            .as_ref()
            .map(crate::sessions::metadata_object)
            .unwrap_or_default();
        let trust_mode = trust_mode_of(&metadata);

        let (workspace_id, workspace, level) = self.level_of(plan).await?;
        if !plan.prewarm {
            self.fire_turn_start(&id, &req.message, is_new, level).await;
        }
        turn.push(&events::session(
            if is_new { None } else { Some(&id) },
            wd.as_deref(),
            &resume_info,
            Some(level.as_str()),
        ));

        // Working directory: request > workspace > session override > stored > vault root.
        let overrides = metadata
            .get("config_overrides")
            .cloned()
            .unwrap_or(Value::Null);
        let wd_choice = choose_working_directory([
            wd.as_deref(),
            workspace
                .as_ref()
                .and_then(|w| w.working_directory.as_deref()),
            overrides.get("working_directory").and_then(Value::as_str),
            row.as_ref().and_then(|r| r.working_directory.as_deref()),
        ]);
        let cwd = self.resolve_cwd(wd_choice.as_deref())?;
        let custom_prompt = req
            .system_prompt
            .clone()
            .or_else(|| {
                overrides
                    .get("system_prompt")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .filter(|s| !s.trim().is_empty());
        // A stored row the CLI has no transcript for (imported, bot-created) starts a new
        // CLI session seeded with the history we have for it.
        let seed_history_of = (!is_new && !resume).then(|| id.clone());
        let prepared = self
            .prepare_prompt(req, &cwd, custom_prompt, seed_history_of)
            .await?;
        let system_prompt = prepared.system_prompt.clone();
        let append = prepared.append();
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
                Some(level.as_str()),
            ));
        }
        // Never run a session with less confinement than its level asks for.
        crate::trust::can_confine(level, self.container_launcher.get().is_some())
            .map_err(TurnError::Refused)?;
        let writable = workspace
            .as_ref()
            .and_then(|w| w.sandbox.as_ref())
            .map(|sb| sb.writable.clone())
            .unwrap_or_default();
        let container_limits = (level == TrustLevel::Sandboxed).then(|| {
            let own = workspace.as_ref().and_then(|w| w.sandbox.as_ref());
            own.and_then(|l| l.container_limits(self.settings.sandbox_limits.pids))
                .unwrap_or_else(|| self.settings.sandbox_limits.clone())
        });

        let extras = self.extras_for(&id, level, workspace.as_ref()).await;
        let (cred_var, cred) = self.credential().await?;
        let model = req
            .model
            .clone()
            .or_else(|| workspace.as_ref().and_then(|w| w.model.clone()))
            .or_else(|| self.settings.default_model.clone());

        Ok(Resolved {
            is_new,
            prev_count,
            resume_info,
            wd,
            req_trust,
            workspace_id,
            trust_mode,
            level,
            container_limits,
            writable,
            cwd,
            system_prompt,
            append,
            cred_var,
            cred,
            model,
            extras,
        })
    }

    /// The turn's workspace (request, else the session's) and its effective trust level:
    /// the most restricted of the session's, the workspace floor and the request's (a
    /// request only restricts).
    async fn level_of(
        &self,
        plan: &Plan,
    ) -> Result<
        (
            Option<String>,
            Option<crate::workspaces::Workspace>,
            TrustLevel,
        ),
        TurnError,
    > {
        let (req, row) = (&plan.req, &plan.row);
        let workspace_id = req
            .workspace_id
            .clone()
            .or_else(|| row.as_ref().and_then(|r| r.workspace_id.clone()));
        let workspace = self.workspace(workspace_id.as_deref()).await?;
        let floors: Vec<TrustLevel> = workspace.iter().map(|w| w.trust_level).collect();
        let level = crate::trust::effective_level(
            row.as_ref().and_then(|r| r.trust_level.as_deref()),
            &floors,
            req.trust_level.as_deref(),
        )
        .map_err(|e| TurnError::Refused(e.to_string()))?;
        Ok((workspace_id, workspace, level))
    }

    /// The prompt for `cwd`: custom or agent system prompt, context sections, prior
    /// conversation, the vault's CLAUDE.md instructions (file work off the runtime).
    async fn prepare_prompt(
        &self,
        req: &ChatRequest,
        cwd: &Path,
        custom_prompt: Option<String>,
        seed_history_of: Option<String>,
    ) -> Result<prompt::Prepared, TurnError> {
        let inputs = prompt::PromptInputs {
            agent_path: req.agent_path.clone(),
            custom_prompt,
            contexts: req.contexts.clone().unwrap_or_default(),
            prior_conversation: req.prior_conversation.clone(),
            seed_history_of,
        };
        let (g, c) = (self.settings.vault_gate(), cwd.to_path_buf());
        tokio::task::spawn_blocking(move || prompt::prepare(&g, &c, inputs))
            .await
            .unwrap_or_else(|e| Err(prompt::PrepareError::Invalid(e.to_string())))
            .map_err(|e| TurnError::Refused(e.to_string()))
    }

    /// The session's skills, sub-agents and MCP servers at `level`, filtered by its
    /// workspace's capabilities (none without an extras source).
    async fn extras_for(
        &self,
        session_id: &str,
        level: TrustLevel,
        workspace: Option<&crate::workspaces::Workspace>,
    ) -> super::extras::SessionExtras {
        let Some(source) = self.extras_source.get() else {
            return super::extras::SessionExtras::default();
        };
        source
            .extras(super::extras::ExtrasQuery {
                session_id: session_id.to_string(),
                level,
                capabilities: workspace
                    .map(|w| w.capabilities.clone())
                    .unwrap_or_default(),
            })
            .await
    }

    /// The session's workspace, if it names one (a missing one is an error).
    async fn workspace(
        &self,
        slug: Option<&str>,
    ) -> Result<Option<crate::workspaces::Workspace>, TurnError> {
        match slug.filter(|w| !w.is_empty()) {
            Some(slug) => self
                .workspaces
                .get(slug)
                .await
                .map(Some)
                .map_err(TurnError::from),
            None => Ok(None),
        }
    }

    /// The Claude credential and the variable the CLI reads it from (by the kind the
    /// value is): the OAuth token, else an API key; none is an error that says how to set
    /// one.
    pub(super) async fn credential(
        &self,
    ) -> Result<(&'static str, crate::config::secrets::Secret), TurnError> {
        match self.secrets.claude_credential().await {
            Ok(Some(c)) => Ok((c.kind.secret_name().env_var(), c.secret)),
            Ok(None) => Err(TurnError::NoToken),
            Err(e) => Err(TurnError::Refused(format!(
                "The Claude credential cannot be read: {e}"
            ))),
        }
    }

    /// The session's process: its warm one if it still fits (same working directory,
    /// prompt and credential), else a new one spawned under the process cap. The flag
    /// says a resumed process needs this turn's appended text in the message.
    async fn acquire(
        &self,
        plan: &Plan,
        r: &Resolved,
        turn: &Turn,
    ) -> Result<(AgentProcess, bool), TurnError> {
        let (id, resume) = (&plan.session_id, plan.resume);
        let (cwd, model) = (&r.cwd, &r.model);
        // A warm process is reused unless it runs elsewhere or with another prompt,
        // credential, level or extras; a dead one is replaced by a fresh process that
        // resumes the transcript. A new chat's spare is used on the same terms.
        let fingerprint = process_fingerprint(r);
        let fits = |p: &AgentProcess| p.cwd == *cwd && p.fingerprint == fingerprint;
        let spare = plan.spare.lock().unwrap_or_else(|p| p.into_inner()).take();
        // The place of a spare that does not fit goes to the fresh process.
        let mut spare_place = None;
        let warm = match spare {
            Some(p) if fits(&p) => {
                self.pool
                    .spares
                    .adopted
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::debug!(session = %id, "a new chat adopted a spare CLI process");
                Some(p)
            }
            Some(mut p) => {
                // Started before the prompt, credential or extras changed: the other
                // spares are as old.
                tracing::info!(session = %id, "a spare CLI process was out of date; starting a fresh one");
                spare_place = p.take_permit();
                // Not `spares.retire`: the chat keeps the id, and the files made for it.
                super::pool::retire(p);
                self.spare_out_of_date();
                None
            }
            None => self.pool.take(id).filter(fits),
        };
        // The CLI keeps a resumed session's system prompt: text appended for this turn
        // then travels with the message instead (see `prompt` below).
        let resumed_with_append;
        let process = match warm {
            Some(mut p) => {
                resumed_with_append = std::mem::take(&mut p.append_in_message);
                if model.is_some() && p.model != *model {
                    p.set_model(model.as_deref()).await?;
                }
                p
            }
            None => {
                let spec = self.spawn_spec(
                    r,
                    if resume {
                        StartMode::Resume(id.clone())
                    } else {
                        StartMode::New(id.clone())
                    },
                );
                resumed_with_append = resume && r.append.is_some();
                // Never beyond `max_cli_processes`: a free place, an idle warm
                // process's place, a bounded wait, or a clear busy error.
                let permit = match spare_place {
                    Some(p) => p,
                    None => self
                        .budget
                        .acquire(&self.pool, |q| {
                            turn.push(&events::queued(q.position, q.in_use, q.max));
                        })
                        .await
                        .map_err(TurnError::from)?,
                };
                self.pool.count_spawn();
                let spawned = match &r.container_limits {
                    None => AgentProcess::spawn(&spec).await,
                    Some(limits) => self.launch_container(&spec, r, limits).await,
                };
                match spawned {
                    Ok(mut p) => {
                        p.hold(permit);
                        p
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };

        Ok((process, resumed_with_append))
    }

    /// How to start the CLI for what `r` decided.
    pub(super) fn spawn_spec(&self, r: &Resolved, start: StartMode) -> SpawnSpec {
        let mut env = vec![
            (r.cred_var.to_string(), r.cred.expose().to_string()),
            (
                "CLAUDE_CONFIG_DIR".to_string(),
                self.settings.claude_config_dir.display().to_string(),
            ),
        ];
        if let Some(u) = &self.settings.anthropic_base_url {
            env.push(("ANTHROPIC_BASE_URL".into(), u.clone()));
        }
        SpawnSpec {
            cli: self.settings.claude_cli_path.clone(),
            cwd: r.cwd.clone(),
            start,
            model: r.model.clone(),
            permission_mode: "default".into(),
            system_prompt: r.system_prompt.clone(),
            append_system_prompt: r.append.clone(),
            env,
            fingerprint: process_fingerprint(r),
            scratch_dir: self.settings.paths.home.join("tmp"),
            settings: (r.level == TrustLevel::Vault).then(|| self.vault_settings()),
            pre_tool_use: (r.level == TrustLevel::Vault)
                .then_some(crate::trust::tool_gate::GATED_TOOLS),
            extras: r.extras.clone(),
        }
    }

    /// Starts the CLI of a sandboxed turn in a container; the credential stays with the
    /// relay outside it.
    async fn launch_container(
        &self,
        spec: &SpawnSpec,
        r: &Resolved,
        limits: &ContainerLimits,
    ) -> Result<AgentProcess, crate::agent::AgentError> {
        let launcher = self.container_launcher.get().ok_or_else(|| {
            crate::agent::AgentError::Sandbox("this server has no container sandbox".into())
        })?;
        let vault = self
            .settings
            .paths
            .vault
            .canonicalize()
            .map_err(|e| crate::agent::AgentError::Sandbox(format!("the vault: {e}")))?;
        let kind = crate::config::secrets::TokenKind::detect(r.cred.expose()).unwrap_or(
            if r.cred_var == "ANTHROPIC_API_KEY" {
                crate::config::secrets::TokenKind::ApiKey
            } else {
                crate::config::secrets::TokenKind::OAuth
            },
        );
        let session_id = match &spec.start {
            StartMode::New(id) | StartMode::Resume(id) => id.clone(),
        };
        // Writable folders pass the gate again: the vault may have changed since.
        let gate = self.settings.vault_gate();
        let writable = r
            .writable
            .iter()
            .map(|f| {
                gate.resolve(f).map_err(|e| {
                    crate::agent::AgentError::Sandbox(format!("sandbox.writable '{f}': {e}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        launcher
            .launch(ContainerRequest {
                spec,
                vault,
                writable,
                session_dir: self.sandbox_session_dir(&session_id),
                credential: (kind, r.cred.clone()),
                base_url: self.settings.anthropic_base_url.clone(),
                limits: limits.clone(),
            })
            .await
    }

    /// Reads the CLI's output until its `result`: answers control requests, writes the
    /// session row at `init`, and turns the stream into events. An abort interrupts the
    /// CLI and reads on to its `result`.
    async fn drive(
        &self,
        process: &mut AgentProcess,
        plan: &Plan,
        r: &Resolved,
        turn: &Turn,
    ) -> Driven {
        let (req, id) = (&plan.req, &plan.session_id);
        let mut st = StreamState::default();
        let mut interrupted = false;
        // The model's clock runs while the turn waits on the model; a sandboxed turn also
        // has a wall clock. Past either, the CLI (or its container) is stopped.
        let mut clocks = Clocks::start(
            self.settings.model_timeout,
            r.container_limits.as_ref().map(|l| l.timeout),
            self.settings.anthropic_base_url.clone(),
        );
        let outcome = loop {
            let line = tokio::select! {
                l = process.next_line() => l,
                _ = turn.abort.notified(), if !interrupted => {
                    interrupted = true;
                    let _ = process.interrupt().await;
                    continue;
                }
                e = clocks.expired(!st.tool_running()) => break Err(e),
            };
            let progress = matches!(
                line,
                Some(
                    CliMessage::Init { .. }
                        | CliMessage::StreamEvent { .. }
                        | CliMessage::Assistant { .. }
                        | CliMessage::User { .. }
                        | CliMessage::ControlRequest { .. }
                )
            );
            let Some(line) = line else {
                let tail = process.stderr_tail();
                let detail = if tail.is_empty() {
                    String::new()
                } else {
                    format!(": {}", last_line(&tail))
                };
                break Err(TurnError::Stream(format!(
                    "The Claude CLI stopped unexpectedly{detail}"
                )));
            };
            match line {
                CliMessage::ControlRequest {
                    request_id,
                    request,
                } => {
                    let answer = self
                        .answer_control(&request_id, &request, id, r, turn)
                        .await;
                    if let Err(e) = process.write(&answer).await {
                        break Err(e.into());
                    }
                }
                CliMessage::Init {
                    model,
                    tools,
                    permission_mode,
                } => {
                    if r.is_new && !st.row_written {
                        let new = NewSession {
                            id: id.clone(),
                            title: events::title_from_message(&req.message),
                            module: req.module.clone().unwrap_or_else(|| "chat".into()),
                            source: "parachute".into(),
                            working_directory: r.wd.clone(),
                            model: model.or(r.model.clone()),
                            message_count: 0,
                            trust_level: r.req_trust.clone(),
                            workspace_id: r.workspace_id.clone(),
                            metadata: None,
                            created_at: None,
                            linked_bot: None,
                        };
                        if let Err(e) = self.store.insert_session(&new).await {
                            break Err(e.into());
                        }
                        st.row_written = true;
                        self.fire(
                            "session.created",
                            serde_json::json!({"session_id": id, "title": new.title,
                                "module": new.module, "working_directory": new.working_directory,
                                "trust_level": r.level.as_str(), "workspace_id": new.workspace_id}),
                        );
                    }
                    st.saw_init = true;
                    turn.push(&events::init(&tools, &permission_mode));
                }
                // Subagents' output stays inside their tool call.
                CliMessage::StreamEvent {
                    event,
                    from_subagent: false,
                } => st.on_stream_event(&event, turn),
                CliMessage::Assistant {
                    message,
                    from_subagent: false,
                } => st.on_assistant(&message, turn),
                CliMessage::User {
                    message,
                    from_subagent: false,
                } => st.on_user(&message, turn),
                CliMessage::ApiRetry(retry) => {
                    turn.push(&events::retrying(&retry));
                    clocks.last_retry = Some(retry);
                }
                // The failure ends the turn as an error `result`; sent once, as `error`.
                CliMessage::ApiErrorMessage(_) => {}
                CliMessage::Result(result) => break Ok(result),
                _ => {}
            }
            if progress {
                // Counted from now: an answered prompt's wait is the owner's, not the model's.
                clocks.progress();
            }
        };

        Driven {
            outcome,
            st,
            interrupted,
        }
    }

    /// Records a turn's usage; a conversation near the end of its context window fires
    /// `context.approaching_limit` (blocking, as the contract has it), so hooks may act
    /// before the next turn.
    async fn record_usage(&self, id: &str, entries: &[crate::db::UsageEntry]) {
        if entries.is_empty() {
            return;
        }
        if let Err(e) = self.store.record_usage(id, entries).await {
            tracing::error!(error = %e, "could not record usage");
        }
        let used = context_tokens(entries);
        if used * 100 >= CONTEXT_WINDOW_TOKENS * APPROACHING_LIMIT_PERCENT {
            self.fire_wait(
                "context.approaching_limit",
                serde_json::json!({"session_id": id, "tokens_used": used,
                    "context_window": CONTEXT_WINDOW_TOKENS,
                    "percent": used * 100 / CONTEXT_WINDOW_TOKENS,
                    "model": entries.last().map(|e| e.model.clone())}),
            )
            .await;
        }
    }

    /// After the stream: usage and cost, the session row, the final `text` and `done`
    /// (or the error), and the process back to the warm pool.
    async fn settle(
        &self,
        mut process: AgentProcess,
        driven: Driven,
        plan: &Plan,
        r: &Resolved,
        started: Instant,
        turn: &Turn,
    ) {
        let Driven {
            outcome,
            st,
            interrupted,
        } = driven;
        let (id, resume, prev_count) = (plan.session_id.clone(), plan.resume, r.prev_count);
        let (wd, model, resume_info) = (&r.wd, r.model.clone(), &r.resume_info);
        self.pending.forget_session(&id);
        let interrupted = interrupted || turn.abort_requested();
        if let Ok(result) = &outcome {
            let total = result.total_cost_usd;
            let cost = turn_cost(total.unwrap_or(0.0), process.reported_cost_usd);
            process.reported_cost_usd = total.unwrap_or(0.0);
            self.record_usage(&id, &st.usage_with_cost(cost)).await;
        }
        match outcome {
            Ok(result) => {
                let TurnResult {
                    is_error,
                    result: text,
                    permission_denials: denials,
                    api_error_status,
                    ..
                } = result;
                if is_error && !interrupted {
                    self.pool.put(&id, process);
                    let msg = model_failure::failed_result(
                        &text,
                        api_error_status,
                        self.settings.anthropic_base_url.as_deref(),
                    );
                    return self.fail(turn, &msg, Some(&id));
                }
                let response = if interrupted || text.is_empty() {
                    st.block.clone()
                } else {
                    text
                };
                // The final text only when the stream has not shown all of it already.
                let delta = response
                    .strip_prefix(st.block.as_str())
                    .unwrap_or(&response)
                    .to_string();
                if !interrupted && !delta.is_empty() {
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
                turn.push(&events::done(&Done {
                    response: &response,
                    session_id: &id,
                    working_directory: wd.as_deref(),
                    message_count: count,
                    model: stored_model.as_deref(),
                    duration_ms: started.elapsed().as_millis(),
                    tool_calls: &st.tool_calls,
                    permission_denials: &denials,
                    resume: resume_info,
                }));
                // Blocking hooks run before the session takes its next turn.
                self.fire_wait(
                    "message.sent",
                    serde_json::json!({"session_id": id, "response": response, "model": stored_model}),
                )
                .await;
                self.fire_wait(
                    "session.completed",
                    serde_json::json!({"session_id": id, "message_count": count,
                        "duration_ms": started.elapsed().as_millis() as u64,
                        "tool_calls": st.tool_calls.len(), "model": stored_model}),
                )
                .await;
                // A session deleted during its turn does not keep a warm CLI.
                match self.store.session_was_deleted(&id).await {
                    Ok(false) => self.pool.put(&id, process),
                    Ok(true) => {}
                    // Unknown: keep no warm process rather than guess.
                    Err(e) => {
                        tracing::error!(error = %e, "could not check whether the session was deleted")
                    }
                }
            }
            Err(err) => {
                drop(process);
                let msg = err.message();
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
        rid: &str,
        req: &Value,
        session_id: &str,
        r: &Resolved,
        turn: &Turn,
    ) -> Value {
        let (trust_mode, cwd, level) = (r.trust_mode, r.cwd.as_path(), r.level);
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
                } else if let Err(refusal) = crate::trust::tool_gate::check(
                    &self.settings.vault_gate(),
                    level,
                    cwd,
                    tool,
                    &input,
                ) {
                    // The agent's own tools pass the same gate as the API: it never edits
                    // the server's or the CLI's settings, whatever the trust mode, and at
                    // `vault` never leaves the vault. Refused outright, never offered as a
                    // grantable prompt.
                    protocol::deny(&refusal)
                } else if trust_mode || is_own_mcp_tool(tool) {
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
            "hook_callback" => {
                let input = req.get("input").cloned().unwrap_or(json!({}));
                let tool = input.get("tool_name").and_then(Value::as_str).unwrap_or("");
                let args = input.get("tool_input").cloned().unwrap_or(json!({}));
                let gate = self.settings.vault_gate();
                let out = match crate::trust::tool_gate::check(&gate, level, cwd, tool, &args) {
                    Ok(()) => json!({}),
                    Err(reason) => json!({"hookSpecificOutput": {
                        "hookEventName": "PreToolUse",
                        "permissionDecision": "deny",
                        "permissionDecisionReason": reason,
                    }}),
                };
                protocol::control_success(rid, out)
            }
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

    /// The `--settings` of a CLI at `vault`: its OS sandbox and deny rules.
    fn vault_settings(&self) -> Value {
        let private = crate::trust::os_sandbox::PrivatePlaces {
            home: std::env::var_os("HOME").map(PathBuf::from),
            parachute_home: self.settings.paths.home.clone(),
            claude_config_dir: self.settings.claude_config_dir.clone(),
        };
        crate::trust::os_sandbox::cli_settings(
            &self.settings.vault_gate(),
            &self.settings.db_path,
            &private,
        )
    }

    fn resolve_cwd(&self, wd: Option<&str>) -> Result<PathBuf, TurnError> {
        let vault = &self.settings.paths.vault;
        let p =
            match wd.filter(|w| !w.trim().is_empty()) {
                None => vault
                    .canonicalize()
                    .map_err(|e| TurnError::Stream(format!("The vault is not accessible: {e}")))?,
                Some(w) => self.settings.vault_gate().resolve(w).map_err(|e| {
                    TurnError::Refused(format!("Invalid working directory '{w}': {e}"))
                })?,
            };
        if !p.is_dir() {
            return Err(TurnError::Refused(format!(
                "Working directory does not exist: {}",
                wd.unwrap_or("")
            )));
        }
        Ok(p)
    }
}

/// What a process is started with, as one number: a turn with another prompt,
/// credential, trust level or extras needs another process (the working directory and
/// the model are compared apart: the model can be switched).
pub(super) fn process_fingerprint(r: &Resolved) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (
        &r.system_prompt,
        &r.append,
        r.cred_var,
        r.level,
        &r.extras.digest,
    )
        .hash(&mut h);
    sha2::Sha256::digest(r.cred.expose().as_bytes())
        .as_slice()
        .hash(&mut h);
    h.finish()
}

/// What [`ChatService::resolve`] decided for a turn.
pub(super) struct Resolved {
    is_new: bool,
    prev_count: i64,
    resume_info: events::ResumeInfo,
    /// The working directory as the request named it (for events and the row).
    wd: Option<String>,
    req_trust: Option<String>,
    workspace_id: Option<String>,
    /// The session's `metadata.permissions.trustMode` (guarded calls auto-allowed).
    trust_mode: bool,
    /// The effective trust level the turn runs at.
    pub(super) level: TrustLevel,
    /// The container's limits, for a turn at `sandboxed`.
    container_limits: Option<ContainerLimits>,
    /// Vault folders a sandboxed turn's container may write (the workspace's).
    writable: Vec<String>,
    pub(super) cwd: PathBuf,
    system_prompt: Option<String>,
    pub(super) append: Option<String>,
    cred_var: &'static str,
    cred: crate::config::secrets::Secret,
    model: Option<String>,
    /// Skills, sub-agents and MCP servers for the process.
    extras: super::extras::SessionExtras,
}

/// What [`ChatService::drive`] ends with.
struct Driven {
    /// The CLI's `result` line, or why the stream ended without one.
    outcome: Result<TurnResult, TurnError>,
    st: StreamState,
    interrupted: bool,
}

impl Driven {
    /// The CLI's output ended before it even reported `init`.
    /// (Its output ended, or the message could not be written, and nobody asked to
    /// stop.)
    fn died_before_init(&self) -> bool {
        matches!(
            self.outcome,
            Err(TurnError::Stream(_) | TurnError::Agent(_))
        ) && !self.st.saw_init
            && !self.interrupted
    }
}

/// How the session starts: the CLI resumes its transcript, or a new CLI session
/// begins (for a stored row without a transcript, seeded with its history).
fn resume_info_for(resume: bool, is_new: bool, prev_count: i64) -> events::ResumeInfo {
    if resume {
        events::resume_info("sdk_resume", false, prev_count, true)
    } else {
        events::resume_info("new", true, if is_new { 0 } else { prev_count }, is_new)
    }
}

/// Whether guarded tool calls are allowed automatically: yes, unless the owner turned
/// it off in the session's `permissions.trustMode`.
fn trust_mode_of(metadata: &serde_json::Map<String, Value>) -> bool {
    metadata
        .get("permissions")
        .and_then(|p| p.get("trustMode"))
        .and_then(Value::as_bool)
        .unwrap_or(true)
}

/// The working directory by precedence: request > workspace > session override >
/// stored; `None` = the vault root.
fn choose_working_directory(candidates: [Option<&str>; 4]) -> Option<String> {
    candidates.into_iter().flatten().next().map(str::to_string)
}

/// The user message the CLI gets: `initialContext` around a new session's first
/// message, and the appended prompt text for a resumed process (the CLI keeps a
/// resumed session's system prompt, so this turn's additions travel with the message).
fn compose_message(
    message: &str,
    initial_context: Option<&str>,
    resumed_append: Option<&str>,
) -> String {
    let mut out = message.to_string();
    if let Some(a) = resumed_append {
        out = format!("<context>\n{a}\n</context>\n\n{out}");
    }
    if let Some(ctx) = initial_context.filter(|c| !c.trim().is_empty()) {
        out = format!("## Context\n\n{ctx}\n\n---\n\n## Request\n\n{message}");
    }
    out
}

/// This turn's cost: the CLI reports `total_cost_usd` as the process's running
/// total, so a turn costs the increase since the process's last result (a total
/// below the last one means a new process: all of it is this turn's).
fn turn_cost(total: f64, reported_before: f64) -> f64 {
    if total >= reported_before {
        total - reported_before
    } else {
        total
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

/// The context window of the Claude models, in tokens.
const CONTEXT_WINDOW_TOKENS: i64 = 200_000;

/// At what share of the window (percent) `context.approaching_limit` fires.
const APPROACHING_LIMIT_PERCENT: i64 = 80;

/// The tokens the conversation filled at its last model call: that call's whole input
/// (cached or not) and its output.
fn context_tokens(entries: &[crate::db::UsageEntry]) -> i64 {
    entries.last().map_or(0, |e| {
        e.input_tokens + e.cache_creation_input_tokens + e.cache_read_input_tokens + e.output_tokens
    })
}

/// Whether `tool` is one of Parachute's own MCP server's tools.
fn is_own_mcp_tool(tool: &str) -> bool {
    tool.strip_prefix("mcp__")
        .and_then(|r| r.split_once("__"))
        .is_some_and(|(server, _)| server == super::extras::OWN_MCP_SERVER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn working_directory_precedence() {
        assert_eq!(
            choose_working_directory([None, Some("W"), Some("O"), Some("S")]),
            Some("W".into())
        );
        assert_eq!(
            choose_working_directory([Some("R"), Some("W"), None, None]),
            Some("R".into())
        );
        assert_eq!(
            choose_working_directory([None, None, None, Some("S")]),
            Some("S".into())
        );
        assert_eq!(choose_working_directory([None; 4]), None);
    }

    #[test]
    fn composed_messages() {
        assert_eq!(compose_message("hi", None, None), "hi");
        assert_eq!(
            compose_message("hi", Some("trip"), None),
            "## Context\n\ntrip\n\n---\n\n## Request\n\nhi"
        );
        assert_eq!(compose_message("hi", Some("  "), None), "hi");
        assert_eq!(
            compose_message("hi", None, Some("notes")),
            "<context>\nnotes\n</context>\n\nhi"
        );
    }

    #[test]
    fn turn_cost_is_the_increase_of_the_running_total() {
        assert!((turn_cost(0.5, 0.2) - 0.3).abs() < 1e-12);
        assert!((turn_cost(0.1, 0.4) - 0.1).abs() < 1e-12, "a new process");
        assert_eq!(turn_cost(0.0, 0.0), 0.0);
    }

    #[test]
    fn resume_info_per_start() {
        assert_eq!(resume_info_for(true, false, 4).method, "sdk_resume");
        let fresh = resume_info_for(false, true, 0);
        assert!(fresh.is_new_session && fresh.sdk_session_available);
        let seeded = resume_info_for(false, false, 6);
        assert_eq!(seeded.previous_message_count, 6);
        assert!(!seeded.sdk_session_available);
    }
}
