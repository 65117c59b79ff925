//! One live `claude` process: spawned with the SDK flags, fed user messages and control
//! responses over stdin, read line by line from stdout by a task that forwards parsed
//! JSON. It stays alive between turns (the warm path); dropping it kills the child.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use std::future::Future;
use std::pin::Pin;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use super::protocol;
use super::AgentError;

/// Whether the CLI starts a new session under a known id or resumes one.
#[derive(Debug, Clone)]
pub enum StartMode {
    /// A new CLI session under this id (`--session-id`).
    New(String),
    /// The CLI resumes this session's transcript (`--resume`).
    Resume(String),
}

/// Everything needed to start a CLI for a session.
#[derive(Debug, Clone)]
pub struct SpawnSpec {
    /// The `claude` program.
    pub cli: PathBuf,
    /// The working directory (inside the vault).
    pub cwd: PathBuf,
    /// New session or resume.
    pub start: StartMode,
    /// `--model`, when the turn names one.
    pub model: Option<String>,
    /// `default` with the stdio prompt tool, for `full`.
    pub permission_mode: String,
    /// Replaces the Claude Code system prompt.
    pub system_prompt: Option<String>,
    /// Appended to the Claude Code system prompt.
    pub append_system_prompt: Option<String>,
    /// Set in the child's environment (credential, base URL, config dir…).
    pub env: Vec<(String, String)>,
    /// Identifies the prompt and credential the process runs with.
    pub fingerprint: u64,
    /// Where private temporary files (the system prompt) go.
    pub scratch_dir: PathBuf,
    /// Extra settings for this process (`--settings`): the OS sandbox and deny rules of a
    /// confined level.
    pub settings: Option<Value>,
    /// Tools (a matcher such as `Read|Write|Bash`) whose calls the CLI first puts to the
    /// host as a PreToolUse `hook_callback` with id [`PRE_TOOL_USE_HOOK`].
    pub pre_tool_use: Option<&'static str>,
    /// Skills, sub-agents and MCP servers from the vault and its approved modules.
    pub extras: crate::chat::extras::SessionExtras,
}

/// The callback id of the PreToolUse hook registered by [`SpawnSpec::pre_tool_use`].
pub const PRE_TOOL_USE_HOOK: &str = "parachute_tool_gate";

/// Environment variables never inherited by the CLI: credentials are set explicitly.
const SCRUBBED_ENV: &[&str] = &[
    "ANTHROPIC_API_KEY",
    "CLAUDE_CODE_OAUTH_TOKEN",
    "ANTHROPIC_AUTH_TOKEN",
    "CLAUDECODE",
];
const STDERR_TAIL: usize = 20;
/// The only settings source the CLI loads: `user` = `$CLAUDE_CONFIG_DIR/settings.json`,
/// the server's own directory under `PARACHUTE_HOME` (never the vault).
pub const SETTING_SOURCES: &str = "user";

/// What runs a CLI: a local child process, or a container (the sandbox crate).
/// Dropping it stops the CLI.
pub trait Runner: Send {
    /// Whether the CLI still runs.
    fn is_running(&mut self) -> bool;
    /// The local process id, when there is one.
    fn pid(&self) -> Option<u32>;
    /// Waits for the CLI to end by itself.
    fn wait(&mut self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
    /// Stops the CLI now.
    fn kill(&mut self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// The standard streams of a started CLI and what runs it.
pub struct AgentIo {
    /// The CLI's standard input.
    pub stdin: Box<dyn AsyncWrite + Send + Unpin>,
    /// The CLI's standard output (stream-json lines).
    pub stdout: Box<dyn AsyncRead + Send + Unpin>,
    /// The CLI's standard error, when it is separate.
    pub stderr: Option<Box<dyn AsyncRead + Send + Unpin>>,
    /// What runs it.
    pub runner: Box<dyn Runner>,
}

/// A local child process as a [`Runner`] (killed when dropped).
struct LocalChild(Child);

impl Runner for LocalChild {
    fn is_running(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }
    fn pid(&self) -> Option<u32> {
        self.0.id()
    }
    fn wait(&mut self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            let _ = self.0.wait().await;
        })
    }
    fn kill(&mut self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            let _ = self.0.kill().await;
        })
    }
}

/// A running Claude Code CLI speaking stream-json with the control protocol.
pub struct AgentProcess {
    runner: Box<dyn Runner>,
    /// Set when its standard output ends.
    closed: Arc<std::sync::atomic::AtomicBool>,
    stdin: Box<dyn AsyncWrite + Send + Unpin>,
    lines: mpsc::Receiver<protocol::CliMessage>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    next_request: u64,
    /// The CLI session id it runs.
    pub session_id: String,
    /// The working directory it runs in.
    pub cwd: PathBuf,
    /// [`SpawnSpec::fingerprint`] of its start.
    pub fingerprint: u64,
    /// The system prompt file, removed with the process.
    prompt_file: Option<PathBuf>,
    /// The model it was started with or last switched to.
    pub model: Option<String>,
    /// The CLI reports `total_cost_usd` cumulatively per process: the last value seen.
    pub reported_cost_usd: f64,
    /// Its place under the `max_cli_processes` cap, released when the process goes.
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    /// The id of its `initialize` request.
    init_request: String,
    /// Started with `--resume` and an appended prompt the resumed CLI does not take:
    /// its first turn carries that text in the message.
    pub append_in_message: bool,
}

/// The command-line arguments of a CLI for `spec`, the way the Agent SDKs start it;
/// `prompt_file` is where the CLI finds the system prompt (as it sees the file system).
pub fn cli_args(spec: &SpawnSpec, prompt_file: Option<&std::path::Path>) -> Vec<String> {
    let mut args: Vec<String> = [
        "--output-format",
        "stream-json",
        "--verbose",
        "--include-partial-messages",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(format!("--permission-mode={}", spec.permission_mode));
    args.push("--permission-prompt-tool=stdio".into());
    // Vault content is data, never configuration: the CLI reads settings only from the
    // server's own config dir (`CLAUDE_CONFIG_DIR`), never `.claude/` or `.mcp.json` in
    // the working directory, whose hooks would run commands and whose `env` would send
    // the credential elsewhere. MCP servers come only from `--mcp-config`, which the
    // server validates.
    args.push(format!("--setting-sources={SETTING_SOURCES}"));
    args.push("--strict-mcp-config".into());
    match &spec.start {
        StartMode::New(id) => args.push(format!("--session-id={id}")),
        StartMode::Resume(id) => args.push(format!("--resume={id}")),
    }
    if let Some(m) = &spec.model {
        args.push(format!("--model={m}"));
    }
    if let Some(f) = prompt_file {
        args.push(format!("--system-prompt-file={}", f.display()));
    }
    if let Some(settings) = &spec.settings {
        args.push(format!("--settings={settings}"));
    }
    for dir in &spec.extras.plugin_dirs {
        args.push(format!("--plugin-dir={}", dir.display()));
    }
    // A file, not the JSON itself: server configs may carry secrets, and a command
    // line is visible to every user of the machine.
    if let Some(f) = &spec.extras.mcp_config {
        args.push(format!("--mcp-config={}", f.display()));
    }
    args.extend(["--input-format".to_string(), "stream-json".to_string()]);
    args
}

/// The `initialize` request: the appended system prompt and the PreToolUse hook.
fn initialize_request(spec: &SpawnSpec) -> Value {
    let mut req = json!({"subtype": "initialize"});
    if let Some(a) = &spec.append_system_prompt {
        req["appendSystemPrompt"] = json!(a);
    }
    if !spec.extras.agents.is_empty() {
        req["agents"] = Value::Object(spec.extras.agents.clone());
    }
    if let Some(matcher) = spec.pre_tool_use {
        req["hooks"] = json!({"PreToolUse": [
            {"matcher": matcher, "hookCallbackIds": [PRE_TOOL_USE_HOOK]}
        ]});
    }
    req
}

/// How long a warm-up may take before the CLI is used without it (it answers in about
/// 40 ms; MCP servers slow to connect can hold it up).
pub const WARM_UP_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

/// How the CLI answered a control request it was waited on for.
enum Answer {
    /// It did it.
    Done,
    /// It answered that it failed, and why.
    Failed(String),
    /// No answer in the time allowed.
    TimedOut,
}

impl AgentProcess {
    /// Spawns the CLI as a local process and sends `initialize`.
    pub async fn spawn(spec: &SpawnSpec) -> Result<AgentProcess, AgentError> {
        let spawn_error = |e: std::io::Error| AgentError::Spawn {
            cli: spec.cli.display().to_string(),
            reason: e.to_string(),
        };
        // Prompts never travel in argv: it is visible to other users (`ps`) and Linux
        // caps one argument at 128 KiB. The system prompt goes in a private file, the
        // appended text in the `initialize` request.
        let prompt_file = match &spec.system_prompt {
            Some(p) => {
                let f = spec
                    .scratch_dir
                    .join(format!("prompt-{}.md", uuid::Uuid::new_v4()));
                crate::util::fs::write_atomic(&f, p.as_bytes(), Some(0o600))
                    .map_err(spawn_error)?;
                Some(f)
            }
            None => None,
        };
        let mut cmd = Command::new(&spec.cli);
        cmd.args(cli_args(spec, prompt_file.as_deref()));
        for k in SCRUBBED_ENV {
            cmd.env_remove(k);
        }
        cmd.envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        // The CLI never updates itself under a running server: its version changes only
        // when the owner reinstalls it.
        cmd.env("PWD", &spec.cwd)
            .env("CLAUDE_CODE_ENTRYPOINT", "sdk-parachute")
            .env("DISABLE_AUTOUPDATER", "1");
        cmd.current_dir(&spec.cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(spawn_error)?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| AgentError::Exited(": no stdin".into()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| AgentError::Exited(": no stdout".into()))?;
        let stderr = child
            .stderr
            .take()
            .map(|e| Box::new(e) as Box<dyn AsyncRead + Send + Unpin>);
        let io = AgentIo {
            stdin: Box::new(stdin),
            stdout: Box::new(stdout),
            stderr,
            runner: Box::new(LocalChild(child)),
        };
        Self::start(spec, io, prompt_file).await
    }

    /// Takes over a started CLI (local or in a container): reads its output, and sends
    /// `initialize`. `cleanup` is a file removed with the process.
    pub async fn start(
        spec: &SpawnSpec,
        io: AgentIo,
        cleanup: Option<PathBuf>,
    ) -> Result<AgentProcess, AgentError> {
        let session_id = match &spec.start {
            StartMode::New(id) | StartMode::Resume(id) => id.clone(),
        };
        let closed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let rx = read_stdout_lines(io.stdout, closed.clone());
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(stderr) = io.stderr {
            keep_stderr_tail(stderr, stderr_tail.clone());
        }
        let mut p = AgentProcess {
            runner: io.runner,
            closed,
            stdin: io.stdin,
            lines: rx,
            stderr_tail,
            next_request: 0,
            session_id,
            reported_cost_usd: 0.0,
            cwd: spec.cwd.clone(),
            fingerprint: spec.fingerprint,
            prompt_file: cleanup,
            model: spec.model.clone(),
            permit: None,
            init_request: String::new(),
            append_in_message: false,
        };
        p.init_request = p.request_id();
        p.write(&protocol::control_request(
            &p.init_request.clone(),
            initialize_request(spec),
        ))
        .await?;
        Ok(p)
    }

    /// Waits until the CLI is initialized (for at most `within`) and then warmed up
    /// (see [`AgentProcess::warm_up`]; at most [`WARM_UP_WITHIN`]): loaded, idle, and
    /// with its first turn's own preparation done. A warm-up the CLI refuses or is
    /// slow to answer leaves it merely initialized (a late answer is ignored by the
    /// turn that reads it).
    pub async fn wait_ready(&mut self, within: std::time::Duration) -> Result<(), AgentError> {
        self.wait_initialized(within).await?;
        match self.warm_up(WARM_UP_WITHIN).await? {
            Answer::Done => {}
            Answer::Failed(e) => {
                tracing::debug!(error = %e, "the CLI refused the warm-up; it stays merely initialized")
            }
            Answer::TimedOut => {
                tracing::debug!("the CLI's warm-up is slow; it is used merely initialized")
            }
        }
        Ok(())
    }

    /// Has the idle CLI assemble its system prompt and tool list once, as its first
    /// turn would: `get_context_usage` with `detail: "summary"`, which counts locally
    /// (no API call, nothing written to a transcript). A spare's first turn then
    /// reaches its first text about a fifth sooner.
    async fn warm_up(&mut self, within: std::time::Duration) -> Result<Answer, AgentError> {
        let id = self.request_id();
        self.write(&protocol::control_request(
            &id,
            json!({"subtype": "get_context_usage", "detail": "summary"}),
        ))
        .await?;
        self.wait_for_answer(&id, "get_context_usage", within).await
    }

    /// Waits for the CLI's answer to `initialize` (it is then loaded and idle), for at
    /// most `within`.
    async fn wait_initialized(&mut self, within: std::time::Duration) -> Result<(), AgentError> {
        let id = self.init_request.clone();
        match self.wait_for_answer(&id, "initialize", within).await? {
            Answer::Done => Ok(()),
            Answer::Failed(e) => Err(AgentError::NotReady(e)),
            Answer::TimedOut => Err(AgentError::NotReady(
                "no answer to initialize in time".into(),
            )),
        }
    }

    /// Waits for the answer to the control request `request_id` (named `what` in
    /// errors), for at most `within`. Anything else the CLI prints first is skipped; its
    /// exit, or a control request from it (it is not a plain idle CLI), is an error.
    async fn wait_for_answer(
        &mut self,
        request_id: &str,
        what: &str,
        within: std::time::Duration,
    ) -> Result<Answer, AgentError> {
        let wait = async {
            loop {
                match self.lines.recv().await {
                    None => {
                        return Err(AgentError::NotReady(format!(
                            "it exited: {}",
                            self.stderr_tail()
                        )))
                    }
                    Some(protocol::CliMessage::ControlResponse(r)) => {
                        if r.get("request_id").and_then(Value::as_str) != Some(request_id) {
                            continue;
                        }
                        return Ok(match r.get("subtype").and_then(Value::as_str) {
                            Some("success") => Answer::Done,
                            _ => Answer::Failed(format!(
                                "{what} failed: {}",
                                r.get("error")
                                    .and_then(Value::as_str)
                                    .unwrap_or("no reason")
                            )),
                        });
                    }
                    Some(protocol::CliMessage::ControlRequest { request, .. }) => {
                        return Err(AgentError::NotReady(format!(
                            "it asked {} before it answered {what}",
                            request
                                .get("subtype")
                                .and_then(Value::as_str)
                                .unwrap_or("?")
                        )))
                    }
                    Some(_) => {}
                }
            }
        };
        tokio::time::timeout(within, wait)
            .await
            .unwrap_or(Ok(Answer::TimedOut))
    }

    fn request_id(&mut self) -> String {
        self.next_request += 1;
        format!("req_{}_{:08x}", self.next_request, rand::random::<u32>())
    }

    /// Writes one JSON line.
    pub async fn write(&mut self, line: &Value) -> Result<(), AgentError> {
        let mut bytes = serde_json::to_vec(line).map_err(|e| AgentError::Write(e.to_string()))?;
        bytes.push(b'\n');
        self.stdin
            .write_all(&bytes)
            .await
            .map_err(|e| AgentError::Write(e.to_string()))?;
        self.stdin
            .flush()
            .await
            .map_err(|e| AgentError::Write(e.to_string()))
    }

    /// Sends the user's message for a turn.
    pub async fn send_user(&mut self, content: &str) -> Result<(), AgentError> {
        self.write(&protocol::user_message(content)).await
    }

    /// Asks the CLI to stop the current turn.
    pub async fn interrupt(&mut self) -> Result<(), AgentError> {
        let id = self.request_id();
        self.write(&protocol::control_request(
            &id,
            json!({"subtype": "interrupt"}),
        ))
        .await
    }

    /// Switches the model for later turns (`set_model`).
    pub async fn set_model(&mut self, model: Option<&str>) -> Result<(), AgentError> {
        let id = self.request_id();
        self.write(&protocol::control_request(
            &id,
            json!({"subtype": "set_model", "model": model}),
        ))
        .await?;
        self.model = model.map(str::to_string);
        Ok(())
    }

    /// The next output line, typed; `None` once the process has closed stdout.
    pub async fn next_line(&mut self) -> Option<protocol::CliMessage> {
        self.lines.recv().await
    }

    /// Whether the child is still running.
    /// Holds `permit` (its place under the process cap) for as long as it lives.
    pub fn hold(&mut self, permit: tokio::sync::OwnedSemaphorePermit) {
        self.permit = Some(permit);
    }

    /// Gives up its place under the process cap (it is being stopped).
    pub fn take_permit(&mut self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.permit.take()
    }

    /// Whether the CLI still runs (its output has not ended).
    pub fn is_alive(&mut self) -> bool {
        !self.closed.load(std::sync::atomic::Ordering::Relaxed) && self.runner.is_running()
    }

    /// The last lines the CLI wrote on stderr (for error messages; never contains our
    /// credentials, which only travel in the environment).
    pub fn stderr_tail(&self) -> String {
        self.stderr_tail
            .lock()
            .map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }

    /// The local process id, when the CLI runs as a local process.
    pub fn pid(&self) -> Option<u32> {
        self.runner.pid()
    }

    /// Closes stdin and waits briefly, then kills.
    pub async fn shutdown(mut self) {
        let _ = self.stdin.shutdown().await;
        if tokio::time::timeout(std::time::Duration::from_secs(2), self.runner.wait())
            .await
            .is_err()
        {
            self.runner.kill().await;
        }
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        if let Some(f) = self.prompt_file.take() {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// Forwards each JSON line the CLI prints on stdout; other lines are skipped (some
/// builds print diagnostics there). The channel closes when stdout does.
fn read_stdout_lines(
    stdout: Box<dyn AsyncRead + Send + Unpin>,
    closed: Arc<std::sync::atomic::AtomicBool>,
) -> mpsc::Receiver<protocol::CliMessage> {
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(async move {
        let _mark = MarkClosed(closed);
        let mut reader = BufReader::new(stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let Some(message) = protocol::parse_line(&buf) else {
                continue;
            };
            if tx.send(message).await.is_err() {
                break;
            }
        }
    });
    rx
}

/// Sets the flag when the output reader ends, however it ends.
struct MarkClosed(Arc<std::sync::atomic::AtomicBool>);

impl Drop for MarkClosed {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Logs the CLI's stderr at debug level and keeps its last lines for error messages.
fn keep_stderr_tail(stderr: Box<dyn AsyncRead + Send + Unpin>, tail: Arc<Mutex<VecDeque<String>>>) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            tracing::debug!(target: "parachute::agent::stderr", "{l}");
            if let Ok(mut t) = tail.lock() {
                if t.len() == STDERR_TAIL {
                    t.pop_front();
                }
                t.push_back(l);
            }
        }
    });
}
