//! Load benchmark of the `parachute` server binary against a 10,000-session store.
//!
//! It seeds a fresh vault's SQLite store with 10,000 sessions, then measures:
//!
//! - cold start to healthy: spawn → first `200` from `GET /api/health` (5 starts);
//! - resident memory (VmRSS) when idle and again after the load runs;
//! - closed-loop load with 32 concurrent clients on `GET /api/health`, `GET /api/chat`
//!   and `GET /api/chat?limit=20&search=topic%2042` (throughput, p50/p99/max latency);
//! - a sequential pass of 2,000 `GET /api/chat` (the "list p99 under 5 ms" target);
//! - the web UI's dashboard (`GET /ui/`) and chat screen (`GET /ui/chat`, the newest 50
//!   of the sessions) over the same sessions: their HTML size and
//!   sequential render times.
//!
//! Figures are printed beside their targets and written as JSON to
//! `target/bench-load.json`. Nothing is asserted: missing a target is only reported.
//! All traffic goes to 127.0.0.1; every server started is stopped, also on errors.
//!
//! Run with:
//!
//! ```text
//! cargo bench --bench load
//! ```
//!
//! Run without `--bench` (e.g. by `cargo test --all-targets`) it only prints how to run it.

// A benchmark reports by failing loudly; its scenarios read top to bottom.
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

mod common;
use common::{
    fmt_mb, free_port, mb, ms, percentile, probe_client, progress, report_path, target_json,
    verdict,
};

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::{TimeDelta, Utc};
use parachute_core::db::{NewSession, Store};
use serde_json::{json, Value};
use tokio::process::{Child, Command};

const SESSIONS: usize = 10_000;
const COLD_START_RUNS: usize = 5;
const HEALTH_POLL_EVERY: Duration = Duration::from_millis(2);
const HEALTH_DEADLINE: Duration = Duration::from_secs(30);
const STOP_GRACE: Duration = Duration::from_secs(5);
const IDLE_WAIT: Duration = Duration::from_secs(1);
const CONCURRENCY: usize = 32;
const WARM_UP: Duration = Duration::from_secs(1);
const RUN_FOR: Duration = Duration::from_secs(5);
const SEQUENTIAL_REQUESTS: usize = 2_000;
const SEQUENTIAL_WARM_UP: usize = 100;

const TARGET_IDLE_RSS_MB: f64 = 30.0;
const TARGET_COLD_START_MS: f64 = 150.0;
const TARGET_LIST_P99_MS: f64 = 5.0;

/// The loaded endpoints: (label, path and query).
const SCENARIOS: &[(&str, &str)] = &[
    ("GET /api/health", "/api/health"),
    ("GET /api/chat", "/api/chat"),
    (
        "GET /api/chat?limit=20&search=topic%2042",
        "/api/chat?limit=20&search=topic%2042",
    ),
];
const LIST_PATH: &str = "/api/chat";
/// The web UI's screens measured, rendered on the server: (name, path).
const UI_PAGES: &[(&str, &str)] = &[("dashboard", "/ui/"), ("chat", "/ui/chat")];
const DASHBOARD_REQUESTS: usize = 200;

#[tokio::main]
async fn main() -> Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        println!("load: skipped (run it with `cargo bench --bench load`)");
        return Ok(());
    }
    let fixture = Fixture::new()?;
    progress(&format!(
        "seeding {SESSIONS} sessions into {}",
        fixture.db_path().display()
    ));
    let seed_time = seed(&fixture.db_path(), SESSIONS).await?;

    progress(&format!("{COLD_START_RUNS} cold starts"));
    let probe = probe_client()?;
    let cold = measure_cold_starts(&fixture, &probe, COLD_START_RUNS).await?;

    let mut server = Server::spawn(&fixture, free_port()?)?;
    server.wait_healthy(&probe, Instant::now()).await?;
    tokio::time::sleep(IDLE_WAIT).await;
    let idle_rss = server.rss_kb();

    let client = load_client()?;
    let visible = count_listed(&client, &server.url(LIST_PATH)).await?;
    let loads = load_scenarios(&client, &server).await?;
    progress(&format!(
        "sequential: {SEQUENTIAL_REQUESTS} x GET {LIST_PATH}"
    ));
    let sequential = run_sequential(&client, &server.url(LIST_PATH), SEQUENTIAL_REQUESTS)
        .await
        .named("GET /api/chat");
    // The UI's screens over the same 10,000 sessions: their size and render time.
    let mut ui_pages = Vec::new();
    for (name, path) in UI_PAGES {
        let bytes = client
            .get(server.url(path))
            .send()
            .await?
            .bytes()
            .await?
            .len();
        progress(&format!(
            "sequential: {DASHBOARD_REQUESTS} x GET {path} ({bytes} bytes of HTML)"
        ));
        let samples = run_sequential(&client, &server.url(path), DASHBOARD_REQUESTS)
            .await
            .named(&format!("GET {path} ({name})"));
        ui_pages.push((*name, *path, bytes, samples));
    }
    let after_rss = server.rss_kb();
    drop(client); // closes the keep-alive connections so the graceful shutdown is quick
    let status = server.stop().await?;

    let report = Report {
        seed_time,
        cold,
        idle_rss,
        after_rss,
        visible,
        loads,
        sequential,
        ui_pages,
    };
    report.print();
    if !status.success() {
        println!("\nnote: the server exited with {status} on SIGTERM");
    }
    let path = report_path("bench-load.json");
    report.write_json(&path)?;
    println!("\nJSON written to {}", path.display());
    Ok(())
}

// ---------------------------------------------------------------------------------
// Fixture and seeding

/// A temp dir holding the vault and the server home; removed on drop.
struct Fixture {
    dir: tempfile::TempDir,
    vault: PathBuf,
    home: PathBuf,
}

impl Fixture {
    fn new() -> Result<Fixture> {
        let dir = tempfile::Builder::new()
            .prefix("parachute-bench-")
            .tempdir()
            .context("creating the temp dir")?;
        let vault = dir.path().join("vault");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&vault).context("creating the vault")?;
        std::fs::create_dir_all(&home).context("creating PARACHUTE_HOME")?;
        Ok(Fixture { dir, vault, home })
    }

    /// The server's default store location (`{vault}/Chat/sessions.db`).
    fn db_path(&self) -> PathBuf {
        self.vault.join("Chat/sessions.db")
    }
}

/// Inserts `n` sessions with distinct, increasing timestamps; returns the insert time.
async fn seed(db: &Path, n: usize) -> Result<Duration> {
    let store = Store::open(db)
        .await
        .context("opening the store to seed it")?;
    let base = Utc::now() - TimeDelta::seconds(n as i64 + 60);
    let started = Instant::now();
    for i in 0..n {
        let created = base + TimeDelta::seconds(i as i64) + TimeDelta::microseconds(i as i64);
        let session = NewSession {
            id: uuid::Uuid::new_v4().to_string(),
            title: Some(format!("Session {i} about topic {}", i % 97)),
            module: "chat".into(),
            source: "parachute".into(),
            message_count: 2,
            created_at: Some(created.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()),
            ..Default::default()
        };
        store
            .insert_session(&session)
            .await
            .with_context(|| format!("inserting session {i}"))?;
    }
    let took = started.elapsed();
    store.close().await;
    Ok(took)
}

// ---------------------------------------------------------------------------------
// The server process

/// A running `parachute server -f`; killed on drop if [`Server::stop`] was not reached.
struct Server {
    child: Child,
    pid: u32,
    port: u16,
}

impl Server {
    fn spawn(fixture: &Fixture, port: u16) -> Result<Server> {
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
            .env("PARACHUTE_HOME", &fixture.home)
            .env("PARACHUTE_KEYRING", "off")
            .env("RUST_LOG", "warn")
            .env_remove("VAULT_PATH")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        // Settings read from the environment would skew the run (e.g. DB_PATH).
        for (key, _) in parachute_core::config::KNOWN_KEYS {
            cmd.env_remove(key.to_ascii_uppercase()).env_remove(key);
        }
        let child = cmd.spawn().context("spawning the parachute binary")?;
        let pid = child.id().context("the spawned server has no pid")?;
        Ok(Server { child, pid, port })
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Polls `/api/health` until it answers 200; returns the time since `started`.
    async fn wait_healthy(
        &mut self,
        probe: &reqwest::Client,
        started: Instant,
    ) -> Result<Duration> {
        let url = self.url("/api/health");
        loop {
            if let Ok(resp) = probe.get(&url).send().await {
                if resp.status() == reqwest::StatusCode::OK {
                    return Ok(started.elapsed());
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

    /// Resident set size in kB (`VmRSS` of `/proc/<pid>/status`); `None` off Linux.
    fn rss_kb(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// SIGTERM, then waits for a graceful exit (SIGKILL after [`STOP_GRACE`]).
    async fn stop(&mut self) -> Result<ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        // The pid is our unreaped child (try_wait just said it is still running), so it
        // cannot have been reused by another process.
        let sent = parachute_core::util::sys::send_signal(
            self.pid,
            parachute_core::util::sys::Signal::Term,
        );
        if !sent {
            self.child.start_kill().context("killing the server")?;
        }
        match tokio::time::timeout(STOP_GRACE, self.child.wait()).await {
            Ok(status) => status.context("waiting for the server"),
            Err(_) => {
                self.child.start_kill().context("killing the server")?;
                self.child
                    .wait()
                    .await
                    .context("waiting for the killed server")
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.start_kill();
        }
    }
}

/// Starts and stops the server `runs` times; the time to healthy of each start.
async fn measure_cold_starts(
    fixture: &Fixture,
    probe: &reqwest::Client,
    runs: usize,
) -> Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let port = free_port()?;
        let started = Instant::now();
        let mut server = Server::spawn(fixture, port)?;
        let took = server.wait_healthy(probe, started).await?;
        server.stop().await?;
        times.push(took);
    }
    Ok(times)
}

// ---------------------------------------------------------------------------------
// HTTP clients and load

/// For load: one shared pool of keep-alive connections.
fn load_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(CONCURRENCY * 2)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(10))
        .build()
        .context("building the load client")
}

/// How many sessions `GET /api/chat` returns (a sanity check that the seed is seen).
async fn count_listed(client: &reqwest::Client, url: &str) -> Result<usize> {
    let resp = client.get(url).send().await.context("GET /api/chat")?;
    if resp.status() != reqwest::StatusCode::OK {
        bail!("GET /api/chat answered {}", resp.status());
    }
    let body: Value = resp.json().await.context("reading the session list")?;
    Ok(body["sessions"].as_array().map_or(0, Vec::len))
}

/// One GET timed from before sending to after the whole body; `None` on any failure
/// or a status other than 200.
async fn timed_get(client: &reqwest::Client, url: &str) -> Option<Duration> {
    let started = Instant::now();
    let resp = client.get(url).send().await.ok()?;
    let ok = resp.status() == reqwest::StatusCode::OK;
    let body = resp.bytes().await;
    let took = started.elapsed();
    (ok && body.is_ok()).then_some(took)
}

/// Latencies of the successful requests of one run (sorted), its errors and length.
#[derive(Default)]
struct Samples {
    label: String,
    concurrency: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    errors: u64,
}

impl Samples {
    fn named(mut self, label: &str) -> Samples {
        self.label = label.to_string();
        self
    }

    fn requests(&self) -> u64 {
        self.latencies.len() as u64 + self.errors
    }

    /// Successful responses per second.
    fn throughput(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.latencies.len() as f64 / secs
        } else {
            0.0
        }
    }

    fn p(&self, pct: f64) -> Duration {
        percentile(&self.latencies, pct)
    }

    fn max(&self) -> Duration {
        self.latencies.last().copied().unwrap_or_default()
    }

    fn to_json(&self) -> Value {
        json!({
            "endpoint": self.label,
            "concurrency": self.concurrency,
            "duration_s": self.elapsed.as_secs_f64(),
            "requests": self.requests(),
            "errors": self.errors,
            "throughput_rps": self.throughput(),
            "p50_ms": ms(self.p(50.0)),
            "p99_ms": ms(self.p(99.0)),
            "max_ms": ms(self.max()),
        })
    }
}

/// Each of [`SCENARIOS`]: a warm-up run (discarded), then the measured run.
async fn load_scenarios(client: &reqwest::Client, server: &Server) -> Result<Vec<Samples>> {
    let mut loads = Vec::with_capacity(SCENARIOS.len());
    for (label, path) in SCENARIOS {
        progress(&format!("load: {label}"));
        let url = server.url(path);
        closed_loop(client, &url, CONCURRENCY, WARM_UP).await?;
        loads.push(
            closed_loop(client, &url, CONCURRENCY, RUN_FOR)
                .await?
                .named(label),
        );
    }
    Ok(loads)
}

/// `concurrency` tasks each sending one request after another until `run_for` is up.
async fn closed_loop(
    client: &reqwest::Client,
    url: &str,
    concurrency: usize,
    run_for: Duration,
) -> Result<Samples> {
    let started = Instant::now();
    let deadline = started + run_for;
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, url) = (client.clone(), url.to_string());
            tokio::spawn(async move {
                let (mut latencies, mut errors) = (Vec::new(), 0u64);
                while Instant::now() < deadline {
                    match timed_get(&client, &url).await {
                        Some(took) => latencies.push(took),
                        None => errors += 1,
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut samples = Samples {
        concurrency,
        ..Samples::default()
    };
    for task in tasks {
        let (latencies, errors) = task.await.context("a load task panicked")?;
        samples.latencies.extend(latencies);
        samples.errors += errors;
    }
    samples.elapsed = started.elapsed();
    samples.latencies.sort_unstable();
    Ok(samples)
}

/// `n` requests one at a time (after a short unmeasured warm-up).
async fn run_sequential(client: &reqwest::Client, url: &str, n: usize) -> Samples {
    for _ in 0..SEQUENTIAL_WARM_UP {
        let _ = timed_get(client, url).await;
    }
    let mut samples = Samples {
        concurrency: 1,
        latencies: Vec::with_capacity(n),
        ..Samples::default()
    };
    let started = Instant::now();
    for _ in 0..n {
        match timed_get(client, url).await {
            Some(took) => samples.latencies.push(took),
            None => samples.errors += 1,
        }
    }
    samples.elapsed = started.elapsed();
    samples.latencies.sort_unstable();
    samples
}

// ---------------------------------------------------------------------------------
// Figures and the report

struct Report {
    seed_time: Duration,
    cold: Vec<Duration>,
    idle_rss: Option<u64>,
    after_rss: Option<u64>,
    visible: usize,
    loads: Vec<Samples>,
    sequential: Samples,
    /// Sequential renders of each UI screen: (name, path, HTML bytes, samples).
    ui_pages: Vec<(&'static str, &'static str, usize, Samples)>,
}

impl Report {
    fn cold_sorted(&self) -> Vec<Duration> {
        let mut sorted = self.cold.clone();
        sorted.sort_unstable();
        sorted
    }

    fn cold_median_ms(&self) -> f64 {
        ms(percentile(&self.cold_sorted(), 50.0))
    }

    fn list_p99_ms(&self) -> f64 {
        ms(self.sequential.p(99.0))
    }

    fn print(&self) {
        println!("parachute load benchmark — {SESSIONS} sessions");
        let secs = self.seed_time.as_secs_f64();
        println!(
            "seeding: {SESSIONS} inserts in {secs:.2} s ({:.0}/s)",
            SESSIONS as f64 / secs.max(f64::EPSILON)
        );
        self.print_cold_start();
        self.print_memory();
        self.print_load();
        self.print_sequential();
    }

    fn print_cold_start(&self) {
        let cold = self.cold_sorted();
        let first = self.cold.first().copied().unwrap_or_default();
        let median = self.cold_median_ms();
        let runs: Vec<String> = self.cold.iter().map(|d| format!("{:.1}", ms(*d))).collect();
        println!(
            "\ncold start to healthy ({} starts: {} ms)",
            self.cold.len(),
            runs.join(", ")
        );
        println!(
            "  first start (10k-session DB, just seeded) {:>8.1} ms",
            ms(first)
        );
        println!(
            "  min / median                      {:>6.1} / {median:>6.1} ms   target < {TARGET_COLD_START_MS} ms: {}",
            ms(percentile(&cold, 0.0)),
            verdict(Some(median), TARGET_COLD_START_MS)
        );
    }

    fn print_memory(&self) {
        let (idle, after) = (mb(self.idle_rss), mb(self.after_rss));
        println!("\nmemory (VmRSS)");
        println!(
            "  idle (1 s after start)            {:>15}   target < {TARGET_IDLE_RSS_MB} MB: {}",
            fmt_mb(idle),
            verdict(idle, TARGET_IDLE_RSS_MB)
        );
        println!("  after the load runs               {:>15}", fmt_mb(after));
    }

    fn print_load(&self) {
        println!(
            "\nload: {CONCURRENCY} concurrent clients, {} s after a {} s warm-up (GET /api/chat lists {} sessions)",
            RUN_FOR.as_secs(),
            WARM_UP.as_secs(),
            self.visible
        );
        println!(
            "  {:<42} {:>9} {:>7} {:>10} {:>8} {:>8} {:>8}",
            "endpoint", "requests", "errors", "req/s", "p50 ms", "p99 ms", "max ms"
        );
        for s in &self.loads {
            println!(
                "  {:<42} {:>9} {:>7} {:>10.0} {:>8.2} {:>8.2} {:>8.2}",
                s.label,
                s.requests(),
                s.errors,
                s.throughput(),
                ms(s.p(50.0)),
                ms(s.p(99.0)),
                ms(s.max())
            );
        }
    }

    fn print_sequential(&self) {
        let s = &self.sequential;
        let p99 = self.list_p99_ms();
        println!(
            "\nsequential GET /api/chat over {SESSIONS} sessions ({} requests, {} errors)",
            s.requests(),
            s.errors
        );
        println!(
            "  p50 / p99                         {:>6.2} / {p99:>6.2} ms   target p99 < {TARGET_LIST_P99_MS} ms: {}",
            ms(s.p(50.0)),
            verdict(Some(p99), TARGET_LIST_P99_MS)
        );
        for (name, path, bytes, d) in &self.ui_pages {
            println!(
                "\nsequential GET {path} (the {name} screen) over {SESSIONS} sessions ({} requests, {} errors, {bytes} bytes of HTML)",
                d.requests(),
                d.errors,
            );
            println!(
                "  p50 / p99                         {:>6.2} / {:>6.2} ms",
                ms(d.p(50.0)),
                ms(d.p(99.0))
            );
        }
    }

    fn to_json(&self) -> Value {
        let cold = self.cold_sorted();
        let idle = mb(self.idle_rss);
        let (median, p99) = (self.cold_median_ms(), self.list_p99_ms());
        json!({
            "sessions": SESSIONS,
            "seed_s": self.seed_time.as_secs_f64(),
            "listed_sessions": self.visible,
            "cold_start_ms": {
                "first": self.cold.first().map(|d| ms(*d)),
                "min": ms(percentile(&cold, 0.0)),
                "median": median,
                "runs": self.cold.iter().map(|d| ms(*d)).collect::<Vec<_>>(),
            },
            "rss_mb": { "idle": idle, "after_load": mb(self.after_rss) },
            "load": self.loads.iter().map(Samples::to_json).collect::<Vec<_>>(),
            "sequential_list": self.sequential.to_json(),
            "ui": self.ui_pages.iter().map(|(name, path, bytes, d)| {
                json!({"screen": name, "path": path, "bytes": bytes, "sequential": d.to_json()})
            }).collect::<Vec<_>>(),
            "targets": {
                "idle_rss_mb": target_json(idle, TARGET_IDLE_RSS_MB),
                "cold_start_median_ms": target_json(Some(median), TARGET_COLD_START_MS),
                "list_p99_ms": target_json(Some(p99), TARGET_LIST_P99_MS),
            },
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
