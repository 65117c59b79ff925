//! Chat-turn benchmark: the `parachute` server driving the real `claude` CLI, compared
//! with the same CLI driven directly, both against a fake Anthropic Messages API that
//! answers at once ("Hello from the fake model.").
//!
//! It measures:
//!
//! - bare CLI, cold: spawn → first `text_delta` stream event (5 fresh processes), with
//!   exactly the flags the server passes (`src/agent/process.rs`), and each one's peak
//!   RSS (`VmHWM`);
//! - bare CLI, warm: in one process, user line written → first `text_delta` (10 turns);
//! - server, cold turn: `POST /api/chat` (new session) → first `text` SSE event (5 runs);
//! - server, warm turn: 20 more turns on one of those sessions, plus `chat.spawned` of
//!   `GET /api/health?detailed=true` before and after (it should not grow);
//! - orchestration overhead: server p50 − bare CLI p50, cold and warm;
//! - memory: the server's VmRSS idle with one warm CLI, that CLI's VmRSS, and the bare
//!   CLI's peak.
//!
//! Figures are printed beside their targets and written as JSON to
//! `target/bench-chat.json`. Nothing is asserted: missing a target is only reported.
//! All traffic goes to 127.0.0.1; every process started is stopped, also on errors.
//!
//! It needs the `claude` CLI (`CLAUDE_BIN`, else `claude` on PATH), e.g. installed by
//! `scripts/install-test-deps.sh`. Run with:
//!
//! ```text
//! cargo bench --bench chat
//! ```
//!
//! Run without `--bench` (e.g. by `cargo test --all-targets`) it only prints how to run it.

// A benchmark reports by failing loudly; its scenarios read top to bottom.
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

#[allow(dead_code)]
#[path = "../tests/it/support/fake_anthropic.rs"]
mod fake_anthropic;

mod common;
#[path = "chat/concurrent.rs"]
mod concurrent;
#[path = "chat/new_chats.rs"]
mod new_chats;
use common::{
    fmt_mb, free_port, mb, ms, percentile, probe_client, progress, report_path, target_json,
    verdict,
};
use parachute_core::util::sys;

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

const CLI_COLD_RUNS: usize = 5;
const CLI_WARM_TURNS: usize = 10;
const SERVER_COLD_RUNS: usize = 5;
const SERVER_WARM_TURNS: usize = 20;

const TURN_DEADLINE: Duration = Duration::from_secs(120);
const CLI_EXIT_GRACE: Duration = Duration::from_secs(5);
const HEALTH_POLL_EVERY: Duration = Duration::from_millis(5);
const HEALTH_DEADLINE: Duration = Duration::from_secs(30);
/// The server gives each warm CLI up to 2 s to exit on shutdown.
const STOP_GRACE: Duration = Duration::from_secs(10);
const IDLE_WAIT: Duration = Duration::from_secs(1);
const LOG_TAIL_LINES: usize = 20;

const TARGET_OVERHEAD_MS: f64 = 10.0;
const TARGET_WARM_FIRST_TEXT_MS: f64 = 150.0;

const API_KEY: &str = "sk-ant-test-key-0123456789";

/// The flags the server starts the CLI with (`--session-id` goes between the two).
const CLI_FLAGS: &[&str] = &[
    "--output-format",
    "stream-json",
    "--verbose",
    "--include-partial-messages",
    "--permission-mode=default",
    "--permission-prompt-tool=stdio",
];
const CLI_INPUT_FLAGS: &[&str] = &["--input-format", "stream-json"];

/// Never inherited from the caller (credentials are set explicitly), as in the server.
const SCRUBBED_ENV: &[&str] = &[
    "ANTHROPIC_API_KEY",
    "CLAUDE_CODE_OAUTH_TOKEN",
    "ANTHROPIC_AUTH_TOKEN",
    "CLAUDECODE",
];

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        println!("chat: skipped (run it with `cargo bench --bench chat`)");
        return Ok(());
    }
    let fixture = Fixture::new()?;
    let cli = cli_path();
    let version = cli_version(&cli, &fixture).await?;
    progress(&format!("CLI: {} ({version})", cli.display()));
    let fake = fake_anthropic::FakeAnthropic::start().await;
    match std::env::var("BENCH_CHAT_ONLY").as_deref() {
        Ok("concurrent") => return concurrent_only(&fixture, &fake).await,
        Ok("new_chats") => return new_chats_only(&fixture, &fake).await,
        _ => {}
    }

    let bare = bare_phase(&fixture, &fake.url).await?;
    let server = server_phase(&fixture, &fake.url).await?;
    let levels = levels_phase(&fixture, &fake.url).await?;
    let new_chats = new_chats::phase(&fixture, &fake.url).await?;

    let report = Report {
        cli: cli.display().to_string(),
        version,
        bare,
        server,
        levels,
        new_chats,
    };
    report.print();
    let path = report_path("bench-chat.json");
    report.write_json(&path)?;
    println!("\nJSON written to {}", path.display());
    concurrent_only(&fixture, &fake).await
}

/// The new-chat series (`benches/chat/new_chats.rs`) with the bare CLI's cold start of
/// the same run as its anchor, written to its own file.
async fn new_chats_only(fixture: &Fixture, fake: &fake_anthropic::FakeAnthropic) -> Result<()> {
    let bare = bare_phase(fixture, &fake.url).await?;
    let anchor = bare.cold.p(50.0);
    println!("\nbare CLI cold start → first text: p50 {anchor:.1} ms");
    let results = new_chats::phase(fixture, &fake.url).await?;
    results.print(anchor);
    let path = report_path("bench-chat-new-chats.json");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&results.to_json(anchor))? + "\n",
    )?;
    println!("\nJSON written to {}", path.display());
    Ok(())
}

/// The 64-at-once series (`benches/chat/concurrent.rs`), written to its own file.
async fn concurrent_only(fixture: &Fixture, fake: &fake_anthropic::FakeAnthropic) -> Result<()> {
    fake.echo(true);
    let result = concurrent::phase(fixture, &fake.url).await?;
    let path = report_path("bench-chat-concurrent.json");
    std::fs::write(&path, serde_json::to_string_pretty(&result)?)?;
    println!("\nJSON written to {}", path.display());
    Ok(())
}

// ---------------------------------------------------------------------------------
// Fixture and environment

/// A temp dir holding the server's vault and home and the bare CLI's cwd and config
/// dir; removed on drop.
struct Fixture {
    dir: tempfile::TempDir,
    vault: PathBuf,
    home: PathBuf,
    bare_vault: PathBuf,
    bare_config: PathBuf,
}

impl Fixture {
    fn new() -> Result<Fixture> {
        let dir = tempfile::Builder::new()
            .prefix("parachute-bench-chat-")
            .tempdir()
            .context("creating the temp dir")?;
        let sub = |name: &str| -> Result<PathBuf> {
            let path = dir.path().join(name);
            std::fs::create_dir_all(&path).with_context(|| format!("creating {name}"))?;
            Ok(path)
        };
        let (vault, home) = (sub("vault")?, sub("home")?);
        let (bare_vault, bare_config) = (sub("bare-vault")?, sub("bare-claude-config")?);
        Ok(Fixture {
            dir,
            vault,
            home,
            bare_vault,
            bare_config,
        })
    }
}

/// The CLI under test: `CLAUDE_BIN`, else `claude` on PATH.
fn cli_path() -> PathBuf {
    std::env::var_os("CLAUDE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("claude"))
}

/// What both the bare CLI and the server (hence its CLI) get: the fake model, offline.
fn model_env(fake_url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("ANTHROPIC_BASE_URL", fake_url.to_string()),
        ("ANTHROPIC_API_KEY", API_KEY.to_string()),
        ("DISABLE_TELEMETRY", "1".to_string()),
        ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1".to_string()),
        ("CLAUDE_CODE_MAX_RETRIES", "1".to_string()),
        ("DISABLE_AUTOUPDATER", "1".to_string()),
    ]
}

/// `claude --version`; also checks early that the CLI can be started at all.
async fn cli_version(cli: &Path, fixture: &Fixture) -> Result<String> {
    let out = Command::new(cli)
        .arg("--version")
        .env("CLAUDE_CONFIG_DIR", &fixture.bare_config)
        .env("DISABLE_TELEMETRY", "1")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("DISABLE_AUTOUPDATER", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| {
            format!(
                "running `{} --version`: install the Claude CLI (scripts/install-test-deps.sh) or set CLAUDE_BIN",
                cli.display()
            )
        })?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

// ---------------------------------------------------------------------------------
// The bare CLI

/// One `claude` process spoken to directly over stream-json; killed on drop unless
/// [`BareCli::close`] was reached.
struct BareCli {
    child: Child,
    pid: u32,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    line: String,
    stderr_log: PathBuf,
}

impl BareCli {
    /// Spawns the CLI as the server would: same flags, a fresh session id.
    fn spawn(fixture: &Fixture, fake_url: &str) -> Result<BareCli> {
        let session = uuid::Uuid::new_v4();
        let stderr_log = fixture.dir.path().join(format!("cli-{session}.stderr"));
        let stderr = std::fs::File::create(&stderr_log).context("creating the CLI's stderr log")?;
        let cli = cli_path();
        let mut cmd = Command::new(&cli);
        cmd.args(CLI_FLAGS)
            .arg(format!("--session-id={session}"))
            .args(CLI_INPUT_FLAGS);
        for key in SCRUBBED_ENV {
            cmd.env_remove(key);
        }
        cmd.envs(model_env(fake_url))
            .env("CLAUDE_CONFIG_DIR", &fixture.bare_config)
            // Both as the server sets them for its CLI.
            .env("PWD", &fixture.bare_vault)
            .env("CLAUDE_CODE_ENTRYPOINT", "sdk-parachute")
            .current_dir(&fixture.bare_vault)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawning {} (set CLAUDE_BIN?)", cli.display()))?;
        let pid = child.id().context("the spawned CLI has no pid")?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("the CLI has no stdout")?;
        Ok(BareCli {
            child,
            pid,
            stdin,
            stdout: BufReader::new(stdout),
            line: String::new(),
            stderr_log,
        })
    }

    /// `initialize`, then the first user message (what the server writes at spawn).
    async fn start_session(&mut self, message: &str) -> Result<()> {
        let init = json!({"type": "control_request", "request_id": "req_1",
            "request": {"subtype": "initialize"}});
        self.write_line(&init).await?;
        self.write_line(&user_line(message)).await
    }

    async fn write_line(&mut self, line: &Value) -> Result<()> {
        let stdin = self.stdin.as_mut().context("the CLI's stdin is closed")?;
        let mut bytes = serde_json::to_vec(line)?;
        bytes.push(b'\n');
        stdin
            .write_all(&bytes)
            .await
            .context("writing to the CLI")?;
        stdin.flush().await.context("writing to the CLI")
    }

    /// The next JSON line on stdout (other lines skipped); `None` at end of output.
    async fn next_json(&mut self) -> Result<Option<Value>> {
        loop {
            self.line.clear();
            let n = self
                .stdout
                .read_line(&mut self.line)
                .await
                .context("reading the CLI's stdout")?;
            if n == 0 {
                return Ok(None);
            }
            let text = self.line.trim();
            if text.starts_with('{') {
                if let Ok(v) = serde_json::from_str(text) {
                    return Ok(Some(v));
                }
            }
        }
    }

    /// Reads one turn up to its `result` line; the time from `started` to the first
    /// text delta.
    async fn finish_turn(&mut self, started: Instant) -> Result<Duration> {
        let outcome = match tokio::time::timeout(TURN_DEADLINE, self.read_turn(started)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(anyhow!("no result line within {TURN_DEADLINE:?}")),
        };
        outcome.with_context(|| {
            format!(
                "a bare CLI turn failed; the CLI's stderr ends with:\n{}",
                log_tail(&self.stderr_log)
            )
        })
    }

    async fn read_turn(&mut self, started: Instant) -> Result<Duration> {
        let mut first_text = None;
        while let Some(line) = self.next_json().await? {
            match line["type"].as_str().unwrap_or("") {
                "stream_event" if first_text.is_none() && is_text_delta(&line) => {
                    first_text = Some(started.elapsed());
                }
                "control_request" => self.answer_control_request(&line).await?,
                "result" if line["is_error"] == true => {
                    bail!("the CLI reported an error: {}", line["result"])
                }
                "result" => return first_text.context("the turn ended without a text delta"),
                _ => {}
            }
        }
        bail!("the CLI closed its stdout before the result line")
    }

    /// Allows any tool the CLI asks about (none with the default fake reply).
    async fn answer_control_request(&mut self, line: &Value) -> Result<()> {
        let request = &line["request"];
        if request["subtype"] != "can_use_tool" {
            return Ok(());
        }
        let answer = json!({"type": "control_response", "response": {"subtype": "success",
            "request_id": line["request_id"],
            "response": {"behavior": "allow", "updatedInput": request["input"]}}});
        self.write_line(&answer).await
    }

    /// Peak resident set size so far, in kB (`VmHWM`).
    fn peak_rss_kb(&self) -> Option<u64> {
        proc_status_kb(self.pid, "VmHWM:")
    }

    /// Closes stdin and waits for the exit (killed after [`CLI_EXIT_GRACE`]).
    async fn close(mut self) -> Result<()> {
        drop(self.stdin.take());
        match tokio::time::timeout(CLI_EXIT_GRACE, self.child.wait()).await {
            Ok(status) => status.map(|_| ()).context("waiting for the CLI"),
            Err(_) => {
                self.child.start_kill().context("killing the CLI")?;
                self.child
                    .wait()
                    .await
                    .map(|_| ())
                    .context("waiting for the killed CLI")
            }
        }
    }
}

impl Drop for BareCli {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.start_kill();
        }
    }
}

fn user_line(content: &str) -> Value {
    json!({"type": "user", "session_id": "", "message": {"role": "user", "content": content},
        "parent_tool_use_id": null})
}

/// A `stream_event` carrying a `content_block_delta` of type `text_delta`.
fn is_text_delta(line: &Value) -> bool {
    let event = &line["event"];
    event["type"] == "content_block_delta" && event["delta"]["type"] == "text_delta"
}

/// One cold run: spawn → first text delta, and the process's peak RSS.
async fn bare_cold_run(fixture: &Fixture, fake_url: &str) -> Result<(Duration, Option<u64>)> {
    let started = Instant::now();
    let mut cli = BareCli::spawn(fixture, fake_url)?;
    cli.start_session("hi").await?;
    let first_text = cli.finish_turn(started).await?;
    let peak = cli.peak_rss_kb();
    cli.close().await?;
    Ok((first_text, peak))
}

/// One process: a first (cold) turn, then `turns` warm ones timed from writing the user
/// line. Returns the first turn's time and the warm times.
async fn bare_warm_turns(
    fixture: &Fixture,
    fake_url: &str,
    turns: usize,
) -> Result<(Duration, Vec<Duration>)> {
    let started = Instant::now();
    let mut cli = BareCli::spawn(fixture, fake_url)?;
    cli.start_session("hi").await?;
    let first = cli.finish_turn(started).await?;
    let mut times = Vec::with_capacity(turns);
    for _ in 0..turns {
        let sent = Instant::now();
        cli.write_line(&user_line("again")).await?;
        times.push(cli.finish_turn(sent).await?);
    }
    cli.close().await?;
    Ok((first, times))
}

struct BareResults {
    /// The very first CLI start of the run (page cache cold); not in `cold`.
    first_start: Duration,
    cold: Series,
    warm: Series,
    peak_kb: Vec<Option<u64>>,
}

impl BareResults {
    fn max_peak_kb(&self) -> Option<u64> {
        self.peak_kb.iter().flatten().copied().max()
    }
}

/// The warm process runs first, so its discarded first start also warms the page cache
/// for the cold runs.
async fn bare_phase(fixture: &Fixture, fake_url: &str) -> Result<BareResults> {
    progress(&format!(
        "bare CLI: one process, 1 + {CLI_WARM_TURNS} turns"
    ));
    let (first_start, warm) = bare_warm_turns(fixture, fake_url, CLI_WARM_TURNS).await?;
    progress(&format!("bare CLI: {CLI_COLD_RUNS} cold runs"));
    let (mut cold, mut peak_kb) = (Vec::new(), Vec::new());
    for _ in 0..CLI_COLD_RUNS {
        let (first_text, peak) = bare_cold_run(fixture, fake_url).await?;
        cold.push(first_text);
        peak_kb.push(peak);
    }
    Ok(BareResults {
        first_start,
        cold: Series::new(cold),
        warm: Series::new(warm),
        peak_kb,
    })
}

// ---------------------------------------------------------------------------------
// The server process

/// A running `parachute server -f`; on drop (if [`Server::stop`] was not reached) it
/// and its CLI children are killed.
struct Server {
    child: Child,
    pid: u32,
    port: u16,
    log: PathBuf,
}

impl Server {
    fn spawn(fixture: &Fixture, fake_url: &str, port: u16) -> Result<Server> {
        Server::spawn_with(fixture, fake_url, port, &[])
    }

    /// A server whose settings `extra` adds to (or replaces) the bench's: no spare CLI
    /// unless asked (`SPARE_CLI_PROCESSES`), `BENCH_WARM_POOL_SIZE` (4) warm ones.
    fn spawn_with(
        fixture: &Fixture,
        fake_url: &str,
        port: u16,
        extra: &[(&str, &str)],
    ) -> Result<Server> {
        let log = fixture.home.join("server.log");
        let stderr = std::fs::File::create(&log).context("creating the server log")?;
        let port_arg = port.to_string();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_parachute"));
        cmd.arg("--vault")
            .arg(&fixture.vault)
            .args([
                "server",
                "-f",
                "--host",
                "127.0.0.1",
                "--port",
                port_arg.as_str(),
            ])
            .current_dir(fixture.dir.path()) // no stray `.env` from the caller's directory
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true);
        // Settings read from the environment would skew the run (VAULT_PATH, AUTH_MODE…).
        for (key, _) in parachute_core::config::KNOWN_KEYS {
            cmd.env_remove(key.to_ascii_uppercase()).env_remove(key);
        }
        for key in SCRUBBED_ENV {
            cmd.env_remove(key);
        }
        cmd.env("PARACHUTE_HOME", &fixture.home)
            .env("PARACHUTE_KEYRING", "off")
            .env("RUST_LOG", "warn")
            .env("CLAUDE_CLI_PATH", cli_path()) // the same CLI as the bare runs
            .env(
                "WARM_POOL_SIZE",
                std::env::var("BENCH_WARM_POOL_SIZE").unwrap_or_else(|_| "4".into()),
            )
            .env("SPARE_CLI_PROCESSES", "0")
            .envs(model_env(fake_url))
            .envs(extra.iter().copied());
        let child = cmd.spawn().context("spawning the parachute binary")?;
        let pid = child.id().context("the spawned server has no pid")?;
        Ok(Server {
            child,
            pid,
            port,
            log,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Polls `/api/health` until it answers 200.
    async fn wait_healthy(&mut self, probe: &reqwest::Client) -> Result<()> {
        let (url, started) = (self.url("/api/health"), Instant::now());
        loop {
            if let Ok(resp) = probe.get(&url).send().await {
                if resp.status() == reqwest::StatusCode::OK {
                    return Ok(());
                }
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("the server exited before becoming healthy ({status})");
            }
            if started.elapsed() > HEALTH_DEADLINE {
                bail!("the server was not healthy within {HEALTH_DEADLINE:?}");
            }
            tokio::time::sleep(HEALTH_POLL_EVERY).await;
        }
    }

    fn rss_kb(&self) -> Option<u64> {
        proc_status_kb(self.pid, "VmRSS:")
    }

    /// The server's child processes (its CLIs), pinned by start time.
    fn cli_children(&self) -> Vec<ProcRef> {
        child_pids(self.pid)
            .into_iter()
            .filter_map(ProcRef::of)
            .collect()
    }

    fn log_tail(&self) -> String {
        format!("the server log ends with:\n{}", log_tail(&self.log))
    }

    /// SIGTERM, then waits for a graceful exit (SIGKILL after [`STOP_GRACE`]); any CLI
    /// child left behind is killed.
    async fn stop(&mut self) -> Result<ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        let clis = self.cli_children();
        // The pid is our unreaped child (try_wait just said it is still running), so it
        // cannot have been reused by another process.
        let sent = sys::send_signal(self.pid, sys::Signal::Term);
        if !sent {
            self.child.start_kill().context("killing the server")?;
        }
        let status = match tokio::time::timeout(STOP_GRACE, self.child.wait()).await {
            Ok(status) => status.context("waiting for the server")?,
            Err(_) => {
                self.child.start_kill().context("killing the server")?;
                self.child
                    .wait()
                    .await
                    .context("waiting for the killed server")?
            }
        };
        let left = clis.iter().filter(|c| c.kill()).count();
        if left > 0 {
            progress(&format!(
                "killed {left} CLI process(es) the server left behind"
            ));
        }
        Ok(status)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let clis = self.cli_children();
            let _ = self.child.start_kill();
            for cli in clis {
                cli.kill();
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// HTTP: chat turns over SSE

/// For chat turns: keep-alive, a timeout covering a whole turn.
fn chat_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .timeout(TURN_DEADLINE)
        .build()
        .context("building the chat client")
}

/// Splits an SSE byte stream into the JSON of its `data:` lines (`id: N\ndata: {…}\n\n`).
#[derive(Default)]
struct SseBuffer {
    pending: Vec<u8>,
}

impl SseBuffer {
    fn push(&mut self, chunk: &[u8]) -> Vec<Value> {
        self.pending.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some(end) = self.pending.windows(2).position(|w| w == b"\n\n") {
            let block: Vec<u8> = self.pending.drain(..end + 2).collect();
            let block = String::from_utf8_lossy(&block);
            let data = block.lines().find_map(|l| l.strip_prefix("data: "));
            if let Some(event) = data.and_then(|d| serde_json::from_str::<Value>(d).ok()) {
                events.push(event);
            }
        }
        events
    }
}

struct ChatTurn {
    first_text: Duration,
    session_id: String,
}

/// One `POST /api/chat`, timed from before sending to the first `text` event; reads
/// the stream to its end (after `done`).
async fn chat_turn(client: &reqwest::Client, url: &str, body: &Value) -> Result<ChatTurn> {
    let started = Instant::now();
    let mut resp = client
        .post(url)
        .json(body)
        .send()
        .await
        .context("POST /api/chat")?;
    if resp.status() != reqwest::StatusCode::OK {
        let status = resp.status();
        bail!(
            "POST /api/chat answered {status}: {}",
            resp.text().await.unwrap_or_default()
        );
    }
    let (mut sse, mut first_text, mut done) = (SseBuffer::default(), None, None);
    while let Some(chunk) = resp.chunk().await.context("reading the chat stream")? {
        for event in sse.push(&chunk) {
            match event["type"].as_str().unwrap_or("") {
                "text" if first_text.is_none() => first_text = Some(started.elapsed()),
                "error" => bail!("the turn failed: {}", event["error"]),
                "done" => done = Some(event.clone()),
                _ => {}
            }
        }
    }
    let done = done.context("the chat stream ended without a `done` event")?;
    let session_id = done["sessionId"]
        .as_str()
        .context("`done` carries no sessionId")?
        .to_string();
    let first_text = first_text.context("the turn streamed no `text` event")?;
    Ok(ChatTurn {
        first_text,
        session_id,
    })
}

/// The `chat` object of `GET /api/health?detailed=true` (`spawned`, `warm`, `active`).
async fn chat_health(client: &reqwest::Client, server: &Server) -> Result<Value> {
    let resp = client
        .get(server.url("/api/health?detailed=true"))
        .send()
        .await
        .context("GET /api/health?detailed=true")?;
    let body: Value = resp.json().await.context("reading the detailed health")?;
    Ok(body["chat"].clone())
}

// ---------------------------------------------------------------------------------
// Server phases

/// Memory with one warm CLI, shortly after the first turn.
struct Memory {
    server_kb: Option<u64>,
    clis: usize,
    cli_kb: Option<u64>,
}

async fn idle_memory(server: &Server) -> Memory {
    tokio::time::sleep(IDLE_WAIT).await;
    let kbs: Vec<u64> = child_pids(server.pid)
        .into_iter()
        .filter_map(|pid| proc_status_kb(pid, "VmRSS:"))
        .collect();
    Memory {
        server_kb: server.rss_kb(),
        clis: kbs.len(),
        cli_kb: (!kbs.is_empty()).then(|| kbs.iter().sum()),
    }
}

/// `SERVER_COLD_RUNS` new sessions; memory is read after the first. Returns the times,
/// the last session's id (the one surely still warm) and the memory.
async fn server_cold_turns(
    client: &reqwest::Client,
    server: &Server,
    trust_level: &str,
    runs: usize,
) -> Result<(Vec<Duration>, String, Memory)> {
    let url = server.url("/api/chat");
    let body = json!({"message": "hi", "trustLevel": trust_level});
    let (mut times, mut session_id, mut memory) = (Vec::new(), String::new(), None);
    for _ in 0..runs {
        let turn = chat_turn(client, &url, &body).await?;
        times.push(turn.first_text);
        session_id = turn.session_id;
        if memory.is_none() {
            memory = Some(idle_memory(server).await);
        }
    }
    let memory = memory.context("no cold run")?;
    Ok((times, session_id, memory))
}

struct WarmRun {
    times: Vec<Duration>,
    spawned_before: Option<u64>,
    spawned_after: Option<u64>,
}

/// `SERVER_WARM_TURNS` turns in sequence on one session.
async fn server_warm_turns(
    client: &reqwest::Client,
    server: &Server,
    session_id: &str,
    turns: usize,
) -> Result<WarmRun> {
    let spawned_before = chat_health(client, server).await?["spawned"].as_u64();
    let url = server.url("/api/chat");
    let body = json!({"message": "again", "sessionId": session_id});
    let mut times = Vec::with_capacity(turns);
    for _ in 0..turns {
        times.push(chat_turn(client, &url, &body).await?.first_text);
    }
    let spawned_after = chat_health(client, server).await?["spawned"].as_u64();
    Ok(WarmRun {
        times,
        spawned_before,
        spawned_after,
    })
}

struct ServerResults {
    cold: Series,
    warm: Series,
    spawned_before: Option<u64>,
    spawned_after: Option<u64>,
    memory: Memory,
    exit: ExitStatus,
}

async fn server_phase(fixture: &Fixture, fake_url: &str) -> Result<ServerResults> {
    let (probe, client) = (probe_client()?, chat_client()?);
    let mut server = Server::spawn(fixture, fake_url, free_port()?)?;
    server
        .wait_healthy(&probe)
        .await
        .with_context(|| server.log_tail())?;
    progress(&format!(
        "server: {SERVER_COLD_RUNS} cold turns (new sessions)"
    ));
    let (cold, session_id, memory) = server_cold_turns(&client, &server, "full", SERVER_COLD_RUNS)
        .await
        .with_context(|| server.log_tail())?;
    progress(&format!(
        "server: {SERVER_WARM_TURNS} warm turns on one session"
    ));
    let warm = server_warm_turns(&client, &server, &session_id, SERVER_WARM_TURNS)
        .await
        .with_context(|| server.log_tail())?;
    drop(client); // closes the keep-alive connections so the graceful shutdown is quick
    let exit = server.stop().await?;
    Ok(ServerResults {
        cold: Series::new(cold),
        warm: Series::new(warm.times),
        spawned_before: warm.spawned_before,
        spawned_after: warm.spawned_after,
        memory,
        exit,
    })
}

/// First-text latency at a confined trust level, or why it was skipped.
struct LevelResults {
    level: &'static str,
    result: std::result::Result<(Series, Series), String>,
}

/// Cold and warm turns at `vault` (the OS sandbox) and `sandboxed` (a container per
/// session; skipped without a Docker engine and the image), next to `full`.
async fn levels_phase(fixture: &Fixture, fake_url: &str) -> Result<Vec<LevelResults>> {
    let mut out = Vec::new();
    for level in ["vault", "sandboxed"] {
        let (probe, client) = (probe_client()?, chat_client()?);
        let mut server = Server::spawn(fixture, fake_url, free_port()?)?;
        server
            .wait_healthy(&probe)
            .await
            .with_context(|| server.log_tail())?;
        if level == "sandboxed" {
            let docker = client
                .get(server.url("/api/sandbox/status"))
                .send()
                .await?
                .json::<Value>()
                .await?;
            if docker["image_exists"] != true {
                out.push(LevelResults {
                    level,
                    result: Err(
                        "no Docker engine or no sandbox image (`parachute sandbox build`)".into(),
                    ),
                });
                drop(client);
                server.stop().await?;
                continue;
            }
        }
        progress(&format!(
            "server at {level}: {LEVEL_COLD_RUNS} cold, {LEVEL_WARM_TURNS} warm turns"
        ));
        let run = async {
            let (cold, id, _) = server_cold_turns(&client, &server, level, LEVEL_COLD_RUNS).await?;
            let warm = server_warm_turns(&client, &server, &id, LEVEL_WARM_TURNS).await?;
            Ok::<_, anyhow::Error>((Series::new(cold), Series::new(warm.times)))
        };
        let result = run.await.map_err(|e| format!("{e:#}"));
        drop(client);
        server.stop().await?;
        out.push(LevelResults { level, result });
    }
    Ok(out)
}

const LEVEL_COLD_RUNS: usize = 3;
const LEVEL_WARM_TURNS: usize = 10;

// ---------------------------------------------------------------------------------
// /proc helpers

/// A `kB` field of `/proc/<pid>/status` (`VmRSS:`, `VmHWM:`); `None` off Linux.
fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The children of `pid`, from `/proc/<pid>/task/*/children`.
fn child_pids(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Start time of a process in clock ticks (field 22 of `/proc/<pid>/stat`).
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, after_comm) = stat.rsplit_once(')')?;
    after_comm.split_whitespace().nth(19)?.parse().ok()
}

/// A process started by our server, identified by pid and start time so that a reused
/// pid is never signalled.
struct ProcRef {
    pid: u32,
    start: u64,
}

impl ProcRef {
    fn of(pid: u32) -> Option<ProcRef> {
        Some(ProcRef {
            pid,
            start: start_ticks(pid)?,
        })
    }

    /// SIGKILL if it still exists; whether it did.
    fn kill(&self) -> bool {
        if start_ticks(self.pid) != Some(self.start) {
            return false;
        }
        // The start time matched: the pid is still the process we saw.
        sys::send_signal(self.pid, sys::Signal::Kill)
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}

// ---------------------------------------------------------------------------------
// Figures and the report

/// Timings in the order taken, plus sorted for percentiles.
struct Series {
    runs: Vec<Duration>,
    sorted: Vec<Duration>,
}

impl Series {
    fn new(runs: Vec<Duration>) -> Series {
        let mut sorted = runs.clone();
        sorted.sort_unstable();
        Series { runs, sorted }
    }

    fn p(&self, pct: f64) -> f64 {
        ms(percentile(&self.sorted, pct))
    }

    fn max(&self) -> f64 {
        ms(self.sorted.last().copied().unwrap_or_default())
    }

    fn runs_ms(&self) -> String {
        let runs: Vec<String> = self.runs.iter().map(|d| format!("{:.1}", ms(*d))).collect();
        runs.join(", ")
    }

    fn to_json(&self) -> Value {
        json!({
            "runs": self.runs.iter().map(|d| ms(*d)).collect::<Vec<_>>(),
            "min": self.p(0.0),
            "p50": self.p(50.0),
            "p99": self.p(99.0),
            "max": self.max(),
        })
    }
}

fn fmt_count(v: Option<u64>) -> String {
    v.map_or_else(|| "n/a".to_string(), |v| v.to_string())
}

struct Report {
    cli: String,
    version: String,
    bare: BareResults,
    server: ServerResults,
    levels: Vec<LevelResults>,
    new_chats: new_chats::Results,
}

impl Report {
    fn overhead_cold_ms(&self) -> f64 {
        self.server.cold.p(50.0) - self.bare.cold.p(50.0)
    }

    fn overhead_warm_ms(&self) -> f64 {
        self.server.warm.p(50.0) - self.bare.warm.p(50.0)
    }

    fn print(&self) {
        println!("parachute chat benchmark — {} ({})", self.cli, self.version);
        println!("fake model API on 127.0.0.1 answering at once");
        self.print_bare();
        self.print_server();
        self.print_overhead();
        self.print_levels();
        self.print_memory();
        self.new_chats.print(self.bare.cold.p(50.0));
        if !self.server.exit.success() {
            println!(
                "\nnote: the server exited with {} on SIGTERM",
                self.server.exit
            );
        }
    }

    fn print_bare(&self) {
        let (cold, warm) = (&self.bare.cold, &self.bare.warm);
        println!(
            "\nbare CLI cold: spawn → first text delta ({} runs: {} ms)",
            cold.runs.len(),
            cold.runs_ms()
        );
        println!(
            "  min / p50 / max                   {:>7.1} / {:>7.1} / {:>7.1} ms",
            cold.p(0.0),
            cold.p(50.0),
            cold.max()
        );
        println!(
            "  first start of run (uncounted)    {:>7.1} ms",
            ms(self.bare.first_start)
        );
        println!(
            "\nbare CLI warm: user line → first text delta ({} turns in one process)",
            warm.runs.len()
        );
        println!(
            "  p50 / p99 / max                   {:>7.1} / {:>7.1} / {:>7.1} ms",
            warm.p(50.0),
            warm.p(99.0),
            warm.max()
        );
    }

    fn print_server(&self) {
        let (cold, warm) = (&self.server.cold, &self.server.warm);
        println!(
            "\nserver cold: request → first text event ({} new sessions: {} ms)",
            cold.runs.len(),
            cold.runs_ms()
        );
        println!(
            "  min / p50 / max                   {:>7.1} / {:>7.1} / {:>7.1} ms",
            cold.p(0.0),
            cold.p(50.0),
            cold.max()
        );
        let p50 = warm.p(50.0);
        println!(
            "\nserver warm: request → first text event ({} turns on one session)",
            warm.runs.len()
        );
        println!(
            "  p50 / p99 / max                   {p50:>7.1} / {:>7.1} / {:>7.1} ms   target p50 < {TARGET_WARM_FIRST_TEXT_MS} ms: {}",
            warm.p(99.0),
            warm.max(),
            verdict(Some(p50), TARGET_WARM_FIRST_TEXT_MS)
        );
        let (before, after) = (self.server.spawned_before, self.server.spawned_after);
        let note = match (before, after) {
            (Some(b), Some(a)) if a == b => "unchanged",
            (Some(_), Some(_)) => "GREW: warm turns spawned CLIs",
            _ => "n/a",
        };
        println!(
            "  CLIs spawned (health chat.spawned) before / after   {} / {}   {note}",
            fmt_count(before),
            fmt_count(after)
        );
    }

    fn print_levels(&self) {
        if self.levels.is_empty() {
            return;
        }
        let (fc, fw) = (self.server.cold.p(50.0), self.server.warm.p(50.0));
        println!(
            "\ntrust levels: request → first text event, p50 (cold new sessions / warm turns)"
        );
        println!("  full        {fc:>7.1} / {fw:>7.1} ms");
        for l in &self.levels {
            match &l.result {
                Ok((cold, warm)) => println!(
                    "  {:<10}  {:>7.1} / {:>7.1} ms   (cold +{:.1} ms over full: the sandbox's start cost)",
                    l.level,
                    cold.p(50.0),
                    warm.p(50.0),
                    cold.p(50.0) - fc
                ),
                Err(why) => println!("  {:<10}  skipped: {why}", l.level),
            }
        }
    }

    fn print_overhead(&self) {
        let (cold, warm) = (self.overhead_cold_ms(), self.overhead_warm_ms());
        println!("\norchestration overhead (server p50 − bare CLI p50)");
        println!(
            "  cold                              {cold:>7.1} ms   target < {TARGET_OVERHEAD_MS} ms: {}",
            verdict(Some(cold), TARGET_OVERHEAD_MS)
        );
        println!(
            "  warm                              {warm:>7.1} ms   target < {TARGET_OVERHEAD_MS} ms: {}",
            verdict(Some(warm), TARGET_OVERHEAD_MS)
        );
        println!(
            "  # cold figures are dominated by the CLI's own ~1 s start-up and are noisy on 2 cores,"
        );
        println!("  # so the warm difference is the cleaner measure of our overhead");
    }

    fn print_memory(&self) {
        let m = &self.server.memory;
        println!("\nmemory");
        println!(
            "  server VmRSS, idle with one warm CLI            {:>10}",
            fmt_mb(mb(m.server_kb))
        );
        println!(
            "  warm CLI VmRSS ({} child process(es) of the server) {:>8}",
            m.clis,
            fmt_mb(mb(m.cli_kb))
        );
        println!(
            "  bare CLI peak VmHWM (max of {} cold runs)       {:>10}",
            self.bare.peak_kb.len(),
            fmt_mb(mb(self.bare.max_peak_kb()))
        );
    }

    fn to_json(&self) -> Value {
        let (cold_overhead, warm_overhead) = (self.overhead_cold_ms(), self.overhead_warm_ms());
        let warm_p50 = self.server.warm.p(50.0);
        let m = &self.server.memory;
        json!({
            "cli": { "path": self.cli, "version": self.version },
            "bare_cli": {
                "first_start_ms": ms(self.bare.first_start),
                "cold_spawn_to_first_text_delta_ms": self.bare.cold.to_json(),
                "warm_user_line_to_first_text_delta_ms": self.bare.warm.to_json(),
                "peak_rss_mb": self.bare.peak_kb.iter().map(|k| mb(*k)).collect::<Vec<_>>(),
            },
            "server": {
                "cold_request_to_first_text_ms": self.server.cold.to_json(),
                "warm_request_to_first_text_ms": self.server.warm.to_json(),
                "spawned_before_warm": self.server.spawned_before,
                "spawned_after_warm": self.server.spawned_after,
                "exit": self.server.exit.to_string(),
            },
            "overhead_ms": { "cold_p50": cold_overhead, "warm_p50": warm_overhead },
            "trust_levels": self.levels.iter().map(|l| match &l.result {
                Ok((cold, warm)) => json!({"level": l.level, "cold_first_text_ms": cold.to_json(),
                    "warm_first_text_ms": warm.to_json()}),
                Err(why) => json!({"level": l.level, "skipped": why}),
            }).collect::<Vec<_>>(),
            "memory_mb": {
                "server_idle_one_warm_cli": mb(m.server_kb),
                "warm_cli": mb(m.cli_kb),
                "warm_cli_processes": m.clis,
                "bare_cli_peak": mb(self.bare.max_peak_kb()),
            },
            "targets": {
                "overhead_cold_p50_ms": target_json(Some(cold_overhead), TARGET_OVERHEAD_MS),
                "overhead_warm_p50_ms": target_json(Some(warm_overhead), TARGET_OVERHEAD_MS),
                "server_warm_first_text_p50_ms": target_json(Some(warm_p50), TARGET_WARM_FIRST_TEXT_MS),
            },
            "new_chats": self.new_chats.to_json(self.bare.cold.p(50.0)),
        })
    }

    fn write_json(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let text = serde_json::to_string_pretty(&self.to_json())?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
    }
}
