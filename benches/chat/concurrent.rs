//! 64 chats streaming at once through one server, then 64 follow-ups, with the process
//! cap and the warm pool sized for them (`max_cli_processes` = `warm_pool_size` = 64),
//! and API traffic on the side. Every stream is checked whole (ids 1, 2, 3… with none
//! lost or repeated, the deltas adding up to the answer, each chat its own answer), and
//! the server's memory is read before, right after, and after 60 s idle ("flat": at most
//! 20 MB above where it started). `BENCH_CONCURRENT_CLI=stand-in` runs the same against
//! the stand-in stream-json program of the tests instead of the real CLI.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::common::{free_port, mb, probe_client, progress};
use super::{chat_client, child_pids, proc_status_kb, Fixture, Series, Server};

const CHATS: usize = 64;
const IDLE: Duration = Duration::from_secs(60);
const FLAT_MB: f64 = 20.0;

/// One turn's stream, checked.
struct Checked {
    session_id: String,
    first_text: Duration,
    done: Duration,
    events: usize,
}

/// Reads a whole chat stream and checks it; an error says what broke.
async fn turn(client: &reqwest::Client, url: &str, body: Value, expect: &str) -> Result<Checked> {
    let started = Instant::now();
    let resp = client
        .post(url)
        .json(&body)
        .send()
        .await
        .context("POST /api/chat")?;
    if resp.status() != reqwest::StatusCode::OK {
        bail!("POST /api/chat answered {}", resp.status());
    }
    let (mut text, mut first_text) = (String::new(), None);
    let mut resp = resp;
    while let Some(chunk) = resp.chunk().await.context("reading the stream")? {
        if first_text.is_none() && String::from_utf8_lossy(&chunk).contains("\"type\":\"text\"") {
            first_text = Some(started.elapsed());
        }
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let done_at = started.elapsed();
    let mut ids = Vec::new();
    let mut events = Vec::new();
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let id = block
            .lines()
            .find_map(|l| l.strip_prefix("id: "))
            .and_then(|v| v.trim().parse::<u64>().ok());
        // A block without data is a comment (the keep-alive), not an event.
        let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: ")) else {
            continue;
        };
        let event: Value = serde_json::from_str(data)?;
        ids.push(id.context("an event without an id")?);
        events.push(event);
    }
    if ids != (1..=ids.len() as u64).collect::<Vec<_>>() {
        bail!("ids not 1, 2, 3…: {ids:?}");
    }
    let last = events.last().context("an empty stream")?;
    if last["type"] != "done" {
        bail!("the stream ended with {last}");
    }
    let deltas: String = events
        .iter()
        .filter(|e| e["type"] == "text")
        .filter_map(|e| e["delta"].as_str())
        .collect();
    if deltas != expect || last["response"] != expect {
        bail!(
            "expected {expect:?}, streamed {deltas:?}, done with {}",
            last["response"]
        );
    }
    Ok(Checked {
        session_id: last["sessionId"]
            .as_str()
            .context("done without sessionId")?
            .to_string(),
        first_text: first_text.unwrap_or(done_at),
        done: done_at,
        events: events.len(),
    })
}

/// Side traffic until `stop`: (requests, failures, latencies). A request may take
/// long while 64 CLIs start on two cores; only an answer other than 200, or none
/// within 30 s, is a failure.
async fn side_traffic(server_url: String, stop: Arc<AtomicBool>) -> (usize, usize, Vec<Duration>) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let paths = [
        "/api/chat?limit=20",
        "/api/health?detailed=true",
        "/api/chat/active-streams",
        "/api/chat/stats",
    ];
    let (mut n, mut failed, mut took) = (0, 0, Vec::new());
    while !stop.load(Ordering::Relaxed) {
        let t0 = Instant::now();
        let ok = matches!(client.get(format!("{server_url}{}", paths[n % paths.len()])).send().await, Ok(r) if r.status() == 200);
        took.push(t0.elapsed());
        failed += usize::from(!ok);
        n += 1;
    }
    (n, failed, took)
}

fn clis_mb(server: &Server) -> f64 {
    let kb: u64 = child_pids(server.pid)
        .into_iter()
        .filter_map(|p| proc_status_kb(p, "VmRSS:"))
        .sum();
    kb as f64 / 1024.0
}

pub async fn phase(fixture: &Fixture, fake_url: &str) -> Result<Value> {
    let stand_in = std::env::var("BENCH_CONCURRENT_CLI").is_ok_and(|v| v == "stand-in");
    let cli = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/it/support/stand_in_cli.py"
    );
    let mut extra = vec![("MAX_CLI_PROCESSES", "64"), ("WARM_POOL_SIZE", "64")];
    if stand_in {
        extra.push(("CLAUDE_CLI_PATH", cli));
    }
    progress(&format!(
        "{CHATS} chats at once ({})",
        if stand_in { "stand-in CLI" } else { "real CLI" }
    ));
    let mut server = Server::spawn_with(fixture, fake_url, free_port()?, &extra)?;
    server.wait_healthy(&probe_client()?).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = mb(server.rss_kb());
    let stop = Arc::new(AtomicBool::new(false));
    let side = tokio::spawn(side_traffic(server.url(""), stop.clone()));
    let client = chat_client()?;
    let url = server.url("/api/chat");
    let sessions: Arc<Mutex<Vec<Option<String>>>> = Arc::new(Mutex::new(vec![None; CHATS]));
    let mut rounds = Vec::new();
    for round in 1..=2 {
        let t0 = Instant::now();
        let tasks: Vec<_> = (0..CHATS)
            .map(|i| {
                let (client, url, sessions) = (client.clone(), url.clone(), sessions.clone());
                tokio::spawn(async move {
                    let message = format!("chat {i} round {round}");
                    let expect = if stand_in {
                        format!("Answer {round} to [{message}] from the stand-in.")
                    } else {
                        format!("echo: {message}")
                    };
                    let mut body = json!({"message": message});
                    if let Some(id) = sessions.lock().unwrap()[i].clone() {
                        body["sessionId"] = json!(id);
                    }
                    turn(&client, &url, body, &expect).await
                })
            })
            .collect();
        let (mut first, mut done, mut events, mut errors) = (Vec::new(), Vec::new(), 0, Vec::new());
        for (i, t) in tasks.into_iter().enumerate() {
            match t.await? {
                Ok(c) => {
                    let mut s = sessions.lock().unwrap();
                    if round == 2 && s[i].as_deref() != Some(c.session_id.as_str()) {
                        errors.push(format!("chat {i}: the follow-up left its session"));
                    }
                    s[i] = Some(c.session_id);
                    first.push(c.first_text);
                    done.push(c.done);
                    events += c.events;
                }
                Err(e) => errors.push(format!("chat {i}: {e:#}")),
            }
        }
        let wall = t0.elapsed();
        progress(&format!(
            "round {round}: {} ok, {} failed in {:.1} s",
            done.len(),
            errors.len(),
            wall.as_secs_f64()
        ));
        for e in errors.iter().take(5) {
            progress(&format!("  {e}"));
        }
        rounds.push(json!({
            "round": round, "ok": done.len(), "failed": errors.len(), "events": events,
            "wall_s": wall.as_secs_f64(), "first_text_ms": Series::new(first).to_json(),
            "done_ms": Series::new(done).to_json(),
        }));
    }
    stop.store(true, Ordering::Relaxed);
    let (side_n, side_failed, mut side_took) = side.await?;
    side_took.sort_unstable();
    let after = mb(server.rss_kb());
    let clis = clis_mb(&server);
    let health = probe_client()?
        .get(server.url("/api/health?detailed=true"))
        .send()
        .await?
        .json::<Value>()
        .await?;
    progress(&format!("{} s idle", IDLE.as_secs()));
    tokio::time::sleep(IDLE).await;
    let idle = mb(server.rss_kb());
    let flat = matches!((before, idle), (Some(b), Some(i)) if i <= b + FLAT_MB);
    server.stop().await?;
    let side_p = |pct: f64| super::common::ms(super::common::percentile(&side_took, pct));
    let result = json!({
        "cli": if stand_in { "stand-in" } else { "claude" },
        "chats": CHATS,
        "rounds": rounds,
        "side_requests": {"count": side_n, "failed": side_failed, "p50_ms": side_p(50.0), "p99_ms": side_p(99.0), "max_ms": side_p(100.0)},
        "spawned": health["chat"]["spawned"],
        "server_rss_mb": {"before": before, "after": after, "after_60s_idle": idle, "flat": flat},
        "cli_rss_total_mb": clis,
    });
    println!(
        "\n{CHATS} chats at once, twice ({} CLI)",
        if stand_in { "stand-in" } else { "real" }
    );
    for r in result["rounds"].as_array().into_iter().flatten() {
        println!(
            "  round {}: {} ok / {} failed, {} events, wall {:.1} s, first text p50 {:.0} ms p99 {:.0} ms, done p99 {:.0} ms",
            r["round"], r["ok"], r["failed"], r["events"], r["wall_s"].as_f64().unwrap_or(0.0),
            r["first_text_ms"]["p50"].as_f64().unwrap_or(0.0), r["first_text_ms"]["p99"].as_f64().unwrap_or(0.0),
            r["done_ms"]["p99"].as_f64().unwrap_or(0.0)
        );
    }
    println!(
        "  side requests: {side_n}, failed {side_failed}, p50 {:.1} ms p99 {:.1} ms max {:.1} ms; CLIs spawned {}",
        side_p(50.0), side_p(99.0), side_p(100.0), health["chat"]["spawned"]
    );
    println!(
        "  server RSS: before {:.1} MB, after {:.1} MB, after {} s idle {:.1} MB (flat: {flat}); the CLIs {clis:.0} MB",
        before.unwrap_or(0.0), after.unwrap_or(0.0), IDLE.as_secs(), idle.unwrap_or(0.0)
    );
    Ok(result)
}
