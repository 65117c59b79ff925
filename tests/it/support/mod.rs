//! Shared fixtures: temp vault + home, the real server binary on a free port, seeding
//! the SQLite store, the fake model API, and test hosts in network namespaces.

#![allow(dead_code)]

pub mod discord;
pub mod fake_anthropic;
pub mod telegram;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use parachute_core::db::{NewSession, Store};
use parachute_core::util::sys;
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_parachute");

/// A temp folder holding a vault and a PARACHUTE_HOME.
pub struct Dirs {
    pub tmp: tempfile::TempDir,
    pub vault: PathBuf,
    pub home: PathBuf,
    /// A command the server is started through (e.g. `nsenter` into a mount
    /// namespace); empty for none.
    pub run_via: Vec<String>,
}

impl Dirs {
    pub fn new() -> Dirs {
        let tmp = tempfile::tempdir().expect("temp dir");
        let vault = tmp.path().join("vault");
        let home = tmp.path().join("home");
        std::fs::create_dir_all(&vault).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        Dirs {
            tmp,
            vault,
            home,
            run_via: Vec::new(),
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.vault.join("Chat").join("sessions.db")
    }

    /// A `parachute` command with this vault and home, keychain off.
    pub fn cmd(&self) -> Command {
        let mut c = match self.run_via.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        c.env("PARACHUTE_HOME", &self.home)
            .env("PARACHUTE_KEYRING", "off")
            // No CLI started ahead unless a test asks (`tests/it/spare.rs`): most tests
            // count processes or use a stand-in CLI.
            .env("SPARE_CLI_PROCESSES", "0")
            .env_remove("VAULT_PATH")
            .env_remove("AUTH_MODE")
            .env_remove("HOST")
            .env_remove("CLAUDE_CONFIG_DIR")
            .env_remove("CLAUDE_CODE_OAUTH_TOKEN")
            .env_remove("ANTHROPIC_API_KEY")
            .current_dir(self.tmp.path())
            .arg("--vault")
            .arg(&self.vault);
        c
    }
}

/// Options for starting a server.
#[derive(Default, Clone)]
pub struct Opts {
    pub host: Option<String>,
    pub env: Vec<(String, String)>,
}

/// The real server binary, stopped (SIGKILL) on drop.
pub struct Server {
    pub child: Option<Child>,
    pub port: u16,
    pub host: String,
    pub log: PathBuf,
    pub client: reqwest::Client,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    pub async fn start(d: &Dirs) -> Server {
        Server::start_with(d, Opts::default()).await
    }

    pub async fn start_with(d: &Dirs, o: Opts) -> Server {
        let host = o.host.clone().unwrap_or_else(|| "127.0.0.1".into());
        for _ in 0..5 {
            let port = free_port();
            let log = d.home.join(format!("server-{port}.log"));
            let mut cmd = d.cmd();
            cmd.args(["server", "-f", "--host", &host, "--port", &port.to_string()])
                .env("RUST_LOG", "info")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap());
            for (k, v) in &o.env {
                cmd.env(k, v);
            }
            let child = cmd.spawn().expect("spawn parachute");
            let mut s = Server {
                child: Some(child),
                port,
                host: host.clone(),
                log,
                client: client(),
            };
            if s.wait_healthy(Duration::from_secs(20)).await {
                return s;
            }
            let log_text = s.log_text();
            s.kill9();
            if !log_text.contains("Address already in use") {
                panic!("server did not become healthy; its log:\n{log_text}");
            }
        }
        panic!("could not find a free port");
    }

    async fn wait_healthy(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                return false;
            }
            if let Ok(r) = self.client.get(self.url("/api/health")).send().await {
                if r.status() == 200 {
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .client
            .get(self.url(path))
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn send(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut rb = self.client.request(m, self.url(path));
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, no chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            sys::send_signal(c.id(), sys::Signal::Term);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = c.kill();
            let _ = c.wait();
            panic!("server did not stop on SIGTERM");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Inserts `n` sessions, one second apart (newest last), returning their ids.
pub async fn seed_sessions(d: &Dirs, n: usize, f: impl Fn(usize, &mut NewSession)) -> Vec<String> {
    let store = Store::open(&d.db_path()).await.expect("open store");
    let mut ids = Vec::new();
    for i in 0..n {
        let mut s = NewSession {
            id: uuid::Uuid::new_v4().to_string(),
            title: Some(format!("Session number {i}")),
            module: "chat".into(),
            source: "parachute".into(),
            message_count: 2,
            created_at: Some(format!(
                "2026-01-01T00:{:02}:{:02}.000000Z",
                i / 60 % 60,
                i % 60
            )),
            ..Default::default()
        };
        f(i, &mut s);
        store.insert_session(&s).await.expect("insert");
        ids.push(s.id);
    }
    store.close().await;
    ids
}

/// A test host in its own network namespace, linked to this host by a veth pair, so
/// requests from it reach the server from a real non-loopback address.
pub struct NetNs {
    pub name: String,
    pub host_ip: String,
    pub ns_ip: String,
}

static NS_COUNTER: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("run ip (iproute2)");
    assert!(
        out.status.success(),
        "`ip {}` failed: {} (these tests need root and iproute2)",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl NetNs {
    pub fn create() -> NetNs {
        let n = NS_COUNTER.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let name = format!("pcns{pid}x{n}");
        let veth_host = format!("pch{}x{n}", pid % 100_000);
        let veth_ns = format!("pcn{}x{n}", pid % 100_000);
        let (a, b) = (100 + (pid % 100) as u8, (n % 250) as u8 + 1);
        let host_ip = format!("10.{a}.{b}.1");
        let ns_ip = format!("10.{a}.{b}.2");
        ip(&["netns", "add", &name]);
        let ns = NetNs {
            name: name.clone(),
            host_ip: host_ip.clone(),
            ns_ip: ns_ip.clone(),
        };
        ip(&[
            "link", "add", &veth_host, "type", "veth", "peer", "name", &veth_ns,
        ]);
        ip(&["link", "set", &veth_ns, "netns", &name]);
        ip(&["addr", "add", &format!("{host_ip}/24"), "dev", &veth_host]);
        ip(&["link", "set", &veth_host, "up"]);
        ip(&[
            "netns",
            "exec",
            &name,
            "ip",
            "addr",
            "add",
            &format!("{ns_ip}/24"),
            "dev",
            &veth_ns,
        ]);
        ip(&["netns", "exec", &name, "ip", "link", "set", &veth_ns, "up"]);
        ip(&["netns", "exec", &name, "ip", "link", "set", "lo", "up"]);
        ns
    }

    /// Runs curl inside the namespace against the server's non-loopback address;
    /// returns status and body.
    pub fn curl(
        &self,
        method: &str,
        port: u16,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> (u16, String) {
        let url = format!("http://{}:{port}{path}", self.host_ip);
        let mut args: Vec<String> = vec![
            "netns".into(),
            "exec".into(),
            self.name.clone(),
            "curl".into(),
            "-s".into(),
            "-m".into(),
            "10".into(),
        ];
        args.extend([
            "-X".into(),
            method.into(),
            "-w".into(),
            "\n%{http_code}".into(),
        ]);
        for (k, v) in headers {
            args.extend(["-H".into(), format!("{k}: {v}")]);
        }
        if let Some(b) = body {
            args.extend([
                "-H".into(),
                "Content-Type: application/json".into(),
                "--data-binary".into(),
                b.into(),
            ]);
        }
        args.push(url);
        let out = Command::new("ip")
            .args(&args)
            .output()
            .expect("curl in netns");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Deleting the namespace destroys the veth pair with it.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Waits until `cond` holds, checking every 50 ms, for at most `within`; returns
/// whether it held (tests wait on conditions, never on fixed sleeps).
pub async fn wait_until(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// [`wait_until`] for blocking tests.
pub fn wait_until_blocking(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A zip archive of `(name, bytes)` entries, with the crate's default options.
pub fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data) in entries {
        w.start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// A Claude.ai-style export zip: `export/users.json` and `export/conversations.json`
/// holding `conversations_json`.
pub fn export_zip(conversations_json: &str) -> Vec<u8> {
    zip_of(&[
        ("export/users.json", b"[]"),
        ("export/conversations.json", conversations_json.as_bytes()),
    ])
}

/// Uploads an export to `POST /api/import/file` as `name`; status and JSON body.
pub async fn upload_export(s: &Server, bytes: Vec<u8>, name: &str) -> (u16, Value) {
    let part = reqwest::multipart::Part::bytes(bytes).file_name(name.to_string());
    let form = reqwest::multipart::Form::new().part("file", part);
    let r = s
        .client
        .post(s.url("/api/import/file?archived=false"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    (st, r.json().await.unwrap_or(Value::Null))
}

/// Reads a JSON file.
pub fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// At most two real CLI processes start at once across the whole test run (each costs
/// ~0.9 CPU-s and ~200 MB to start).
pub static CLI_SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// Environment for a server whose CLI talks to `fake`, offline.
pub fn chat_env(fake: &fake_anthropic::FakeAnthropic) -> Vec<(String, String)> {
    [
        ("ANTHROPIC_BASE_URL", fake.url.as_str()),
        ("ANTHROPIC_API_KEY", "sk-ant-test-key-0123456789"),
        ("DISABLE_TELEMETRY", "1"),
        ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
        ("CLAUDE_CODE_MAX_RETRIES", "1"),
        ("DISABLE_AUTOUPDATER", "1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// A server whose CLI talks to `fake`, offline; `extra` adds to or replaces the
/// environment of [`chat_env`].
pub async fn chat_server(
    d: &Dirs,
    fake: &fake_anthropic::FakeAnthropic,
    extra: &[(&str, &str)],
) -> Server {
    start_with_env(d, chat_env(fake), extra).await
}

/// A server with `env`, which `extra` adds to or replaces.
async fn start_with_env(
    d: &Dirs,
    mut env: Vec<(String, String)>,
    extra: &[(&str, &str)],
) -> Server {
    env.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Server::start_with(
        d,
        Opts {
            env,
            ..Default::default()
        },
    )
    .await
}

/// A server whose CLI talks to `fake`, with no Claude credential in its environment
/// (none at all, or one stored later through the API); `extra` adds settings.
pub async fn chat_server_without_credential(
    d: &Dirs,
    fake: &fake_anthropic::FakeAnthropic,
    extra: &[(&str, &str)],
) -> Server {
    let env = chat_env(fake)
        .into_iter()
        .filter(|(k, _)| k != "ANTHROPIC_API_KEY")
        .collect();
    start_with_env(d, env, extra).await
}

/// The text of every tool result the CLI sent back to the model — not the tool calls,
/// which repeat the commands and paths.
pub fn tool_results(fake: &fake_anthropic::FakeAnthropic) -> String {
    let mut out = String::new();
    for r in fake.turn_requests() {
        for m in r["body"]["messages"].as_array().into_iter().flatten() {
            for block in m["content"].as_array().into_iter().flatten() {
                if block["type"] == "tool_result" {
                    out.push_str(&block["content"].to_string());
                    out.push('\n');
                }
            }
        }
    }
    out
}

/// Parses an SSE body into `(id, event)` pairs (comments skipped).
pub fn parse_sse(text: &str) -> Vec<(Option<u64>, Value)> {
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let mut id = None;
        let mut data = None;
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("id: ") {
                id = v.trim().parse().ok();
            } else if let Some(v) = line.strip_prefix("data: ") {
                data = serde_json::from_str(v).ok();
            }
        }
        if let Some(d) = data {
            out.push((id, d));
        }
    }
    out
}

impl Server {
    /// Posts a chat message and returns the response unread (status not checked).
    pub async fn open_chat(&self, body: Value) -> reqwest::Response {
        let r = self
            .client
            .post(self.url("/api/chat"))
            .json(&body)
            .send()
            .await
            .expect("chat request");
        r
    }

    /// Posts a chat message and reads the whole SSE stream.
    pub async fn chat(&self, body: Value) -> Vec<Value> {
        let r = self
            .client
            .post(self.url("/api/chat"))
            .json(&body)
            .send()
            .await
            .expect("chat request");
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap();
        parse_sse(&text).into_iter().map(|(_, v)| v).collect()
    }
}

/// The `type`s of a list of events.
pub fn types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// Reads a streaming response until an event of `kind` has arrived; returns it.
pub async fn read_until(r: &mut reqwest::Response, seen: &mut String, kind: &str) -> Value {
    loop {
        if let Some((_, e)) = parse_sse(seen).into_iter().find(|(_, e)| e["type"] == kind) {
            return e;
        }
        let chunk = r
            .chunk()
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("stream ended before a {kind} event: {seen}"));
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}

pub async fn read_rest(r: &mut reqwest::Response, seen: &mut String) -> Vec<Value> {
    while let Some(chunk) = r.chunk().await.unwrap() {
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    parse_sse(seen).into_iter().map(|(_, e)| e).collect()
}

/// A stand-in `claude` in `d`'s temp folder: a shell script running `body`, in which
/// `$REAL` is the real CLI (found on PATH). Returns its path, as text for
/// `CLAUDE_CLI_PATH`.
pub fn cli_shim(d: &Dirs, body: &str) -> String {
    let real = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v claude"])
            .output()
            .expect("sh")
            .stdout,
    )
    .expect("a path");
    let path = d.tmp.path().join("claude-shim");
    std::fs::write(
        &path,
        format!("#!/bin/sh\nREAL='{}'\n{body}\n", real.trim()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

/// Every message of a request to the model, as JSON text: what the CLI sent as history.
pub fn last_user_text(req: &Value) -> String {
    let msgs = req["body"]["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    msgs.iter()
        .map(|m| m.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The server's child processes (its CLIs), zombies included.
pub fn cli_children(server_pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{server_pid}/task"))
        .unwrap()
        .flatten()
    {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        out.extend(
            children
                .split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    out
}

/// Whether a process has exited (gone, or a zombie waiting to be reaped).
pub fn exited(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|st| st.contains(") Z"))
        .unwrap_or(true)
}
