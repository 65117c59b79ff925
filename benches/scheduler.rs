//! Benchmark of scheduled agents and Parachute's MCP server, through the real server
//! binary and the real CLI against a fake model that answers at once.
//!
//! - Scheduler drift: an agent scheduled every 5 seconds for a minute; for each run, its
//!   recorded start minus the occurrence it ran for (p50/max).
//! - MCP tool call latency: `get_journal` called 200 times over streamable HTTP
//!   (`POST /mcp`, loopback) and 200 times over stdio (`parachute mcp`, the rmcp
//!   client); p50/p99 of each call.
//!
//! Figures are printed and written to `target/bench-scheduler.json`. Nothing is
//! asserted. Run with `cargo bench --bench scheduler` (needs the claude CLI:
//! scripts/install-test-deps.sh).

#![allow(clippy::unwrap_used, clippy::too_many_lines)]

mod common;
use common::{ms, percentile, progress, report_path};

#[path = "../tests/it/support/fake_anthropic.rs"]
#[allow(dead_code)]
mod fake_anthropic;

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::{json, Value};
use tokio::process::Command;

const CALLS: usize = 200;
const DRIFT_WINDOW: Duration = Duration::from_secs(62);

fn cmd(vault: &std::path::Path, home: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_parachute"));
    c.arg("--vault")
        .arg(vault)
        .env("PARACHUTE_HOME", home)
        .env("PARACHUTE_KEYRING", "off")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    c
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        println!("scheduler: skipped (run it with `cargo bench --bench scheduler`)");
        return Ok(());
    }
    let tmp = tempfile::tempdir()?;
    let vault = tmp.path().join("vault");
    let home = tmp.path().join("home");
    std::fs::create_dir_all(vault.join("Daily/journals"))?;
    std::fs::create_dir_all(vault.join("Daily/.agents"))?;
    std::fs::create_dir_all(&home)?;
    std::fs::write(
        vault.join("Daily/journals/2026-11-30.md"),
        "# para:daily:a 08:00\nPlanted tulips.\n\n# para:daily:b 19:00\nRead about soil.\n",
    )?;
    std::fs::write(
        vault.join("Daily/.agents/tick.md"),
        "---\nschedule: \"*/5 * * * * *\"\ntimezone: UTC\ntools: []\nmissed: skip\n---\nSay hello.\n",
    )?;
    let fake = fake_anthropic::FakeAnthropic::start().await;
    let port = common::free_port()?;
    let mut server = cmd(&vault, &home);
    server
        .args([
            "server",
            "-f",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ])
        .env("ANTHROPIC_BASE_URL", &fake.url)
        .env("ANTHROPIC_API_KEY", "bench-placeholder-not-a-real-key")
        .env("DISABLE_TELEMETRY", "1")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("CLAUDE_CODE_MAX_RETRIES", "1")
        .env("DISABLE_AUTOUPDATER", "1");
    let mut child = server.spawn()?;
    let http = reqwest::Client::builder().no_proxy().build()?;
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while http.get(format!("{base}/api/health")).send().await.is_err() {
        if started.elapsed() > Duration::from_secs(30) {
            bail!("the server did not start");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // MCP over HTTP, with an API key (as any client but a session's CLI).
    progress(&format!("{CALLS} MCP calls over HTTP"));
    let key: Value = http
        .post(format!("{base}/api/auth/keys"))
        .json(&json!({"label": "bench"}))
        .send()
        .await?
        .json()
        .await?;
    let key = key["key"].as_str().unwrap_or_default().to_string();
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "get_journal", "arguments": {"date": "2026-11-30"}}});
    let mut over_http = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let t = Instant::now();
        let v: Value = http
            .post(format!("{base}/mcp"))
            .header("Accept", "application/json, text/event-stream")
            .header("X-API-Key", &key)
            .json(&call)
            .send()
            .await?
            .json()
            .await?;
        over_http.push(t.elapsed());
        if v["result"]["isError"] != false {
            bail!("MCP over HTTP failed: {v}");
        }
    }
    over_http.sort();

    // MCP over stdio.
    progress(&format!("{CALLS} MCP calls over stdio"));
    let over_stdio = {
        use rmcp::model::CallToolRequestParams;
        use rmcp::ServiceExt;
        let mut c = cmd(&vault, &home);
        c.arg("mcp");
        let client = ().serve(rmcp::transport::TokioChildProcess::new(c)?).await?;
        let args = json!({"date": "2026-11-30"}).as_object().cloned().unwrap();
        let mut times = Vec::with_capacity(CALLS);
        for _ in 0..CALLS {
            let t = Instant::now();
            let r = client
                .call_tool(CallToolRequestParams::new("get_journal").with_arguments(args.clone()))
                .await?;
            times.push(t.elapsed());
            if r.is_error == Some(true) {
                bail!("MCP over stdio failed");
            }
        }
        let _ = client.cancel().await;
        times.sort();
        times
    };

    // Scheduler drift: let the 5-second agent run for a minute.
    progress("scheduler: an agent every 5 s for a minute");
    tokio::time::sleep(DRIFT_WINDOW).await;
    let runs: Value = http
        .get(format!("{base}/api/scheduler/runs?agent=tick&limit=100"))
        .send()
        .await?
        .json()
        .await?;
    let mut drift = Vec::new();
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for r in runs["runs"].as_array().into_iter().flatten() {
        *outcomes
            .entry(r["outcome"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
        let (Some(at), Some(start)) = (r["scheduled_for"].as_str(), r["started_at"].as_str())
        else {
            continue;
        };
        let at = chrono::DateTime::parse_from_rfc3339(at)?;
        let start = chrono::DateTime::parse_from_rfc3339(start)?;
        if let Ok(d) = (start - at).to_std() {
            drift.push(d);
        }
    }
    drift.sort();
    let _ = child.kill().await;

    let report = json!({
        "mcp": {
            "calls": CALLS,
            "http_p50_ms": ms(percentile(&over_http, 50.0)),
            "http_p99_ms": ms(percentile(&over_http, 99.0)),
            "stdio_p50_ms": ms(percentile(&over_stdio, 50.0)),
            "stdio_p99_ms": ms(percentile(&over_stdio, 99.0)),
        },
        "scheduler": {
            "window_s": DRIFT_WINDOW.as_secs(),
            "runs": drift.len(),
            "outcomes": outcomes,
            "drift_p50_ms": ms(percentile(&drift, 50.0)),
            "drift_max_ms": ms(drift.last().copied().unwrap_or_default()),
        },
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    std::fs::write(
        report_path("bench-scheduler.json"),
        serde_json::to_vec_pretty(&report)?,
    )?;
    Ok(())
}
