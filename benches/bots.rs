//! Telegram bot benchmark: the `parachute` server with its Telegram connector, the real
//! `claude` CLI against the fake model API (answering at once, echoing), and the
//! `telegram-test-api` emulator behind the test proxy (`tests/it/support/telegram.rs`),
//! all on 127.0.0.1.
//!
//! It measures, with a warm session:
//!
//! - user message → ack reaction (`setMessageReaction` reaches the API), 30 messages;
//! - user message → first draft (`sendMessage` of the reply), the same messages;
//! - a burst of 50 messages in one chat: time until all 50 are answered, in order;
//! - memory: the server's VmRSS before and after `BENCH_BOT_MESSAGES` (default 1,000)
//!   messages over `BENCH_BOT_CHATS` (default 50) chats (and how many chats got every
//!   answer in the order sent), and again after 60 s idle. The
//!   server may keep one warm CLI per chat (about 200 MB each), so the turns are warm.
//!
//! Figures are printed beside their targets and written to `target/bench-bots.json`.
//! Nothing is asserted. It needs the `claude` CLI and the emulator
//! (`scripts/install-test-deps.sh`). Run with `cargo bench --bench bots`.

#![allow(clippy::unwrap_used, clippy::too_many_lines, dead_code)]

#[path = "../tests/it/support/fake_anthropic.rs"]
mod fake_anthropic;
#[path = "../tests/it/support/telegram.rs"]
mod telegram;

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::{json, Value};

use common::{ms, percentile, progress, report_path};

const OWNER: i64 = 1001;

struct Server {
    child: Child,
    port: u16,
    http: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn url(&self, p: &str) -> String {
        format!("http://127.0.0.1:{}{p}", self.port)
    }
    /// GET as JSON; `null` while the server is not answering yet.
    async fn get(&self, p: &str) -> Value {
        match self.http.get(self.url(p)).send().await {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(_) => Value::Null,
        }
    }
    async fn post(&self, p: &str, body: Value) -> Value {
        self.http
            .post(self.url(p))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or_default()
    }
    fn rss_mb(&self) -> Option<f64> {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let kb: f64 = s
            .lines()
            .find(|l| l.starts_with("VmRSS:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        Some(kb / 1024.0)
    }
}

async fn start_server(
    dir: &std::path::Path,
    fake: &str,
    tg: &telegram::Telegram,
    users: &[i64],
) -> Result<Server> {
    let vault = dir.join("vault");
    let home = dir.join("home");
    std::fs::create_dir_all(vault.join(".parachute"))?;
    std::fs::create_dir_all(&home)?;
    let list: Vec<String> = users.iter().map(i64::to_string).collect();
    std::fs::write(
        vault.join(".parachute/bots.yaml"),
        format!(
            "telegram:\n  enabled: true\n  api_url: {}\n  allowed_users: [{}]\n  dm_trust_level: full\n  group_trust_level: full\n",
            tg.url,
            list.join(", ")
        ),
    )?;
    let port = common::free_port()?;
    let child = Command::new(env!("CARGO_BIN_EXE_parachute"))
        .arg("--vault")
        .arg(&vault)
        .args([
            "server",
            "-f",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ])
        .current_dir(dir)
        .env("PARACHUTE_HOME", &home)
        .env("PARACHUTE_KEYRING", "off")
        .env("RUST_LOG", "warn")
        .env("TELEGRAM_BOT_TOKEN", telegram::TOKEN)
        // One warm CLI per chat, so the figures are the connector's, not cold spawns.
        .env("MAX_CLI_PROCESSES", (users.len() + 2).to_string())
        .env("WARM_POOL_SIZE", (users.len() + 2).to_string())
        .env("ANTHROPIC_BASE_URL", fake)
        .env("ANTHROPIC_API_KEY", "bench-placeholder-not-a-real-key")
        .env("DISABLE_TELEMETRY", "1")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("CLAUDE_CODE_MAX_RETRIES", "1")
        .env("DISABLE_AUTOUPDATER", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let s = Server {
        child,
        port,
        http: reqwest::Client::new(),
    };
    let started = Instant::now();
    loop {
        if s.get("/api/bots/status").await["connectors"]["telegram"]["last_ok_at"].is_string() {
            return Ok(s);
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("the Telegram connector did not start");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends "hello", activates the chat's session, and waits for the activation notice.
async fn activate(s: &Server, tg: &telegram::Telegram, chat: i64) -> Result<()> {
    tg.send(chat, chat, "User", "hello", Value::Null).await;
    let n = tg.bot_texts(chat).await.len();
    let started = Instant::now();
    let id = loop {
        let list = s.get("/api/chat?limit=200").await;
        let found = list["sessions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|x| x["linkedBotChatId"].as_str() == Some(chat.to_string().as_str()));
        if let Some(f) = found {
            break f["id"].as_str().unwrap().to_string();
        }
        if started.elapsed() > Duration::from_secs(20) {
            bail!("no session for chat {chat}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    s.post(
        &format!("/api/chat/{id}/activate"),
        json!({"trustLevel": "full"}),
    )
    .await;
    tg.wait_texts(chat, n.max(1) + 1, Duration::from_secs(20))
        .await;
    Ok(())
}

fn stats(mut v: Vec<Duration>) -> Value {
    v.sort();
    json!({"n": v.len(), "p50_ms": ms(percentile(&v, 50.0)), "p99_ms": ms(percentile(&v, 99.0))})
}

#[tokio::main]
async fn main() -> Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        println!("bots: skipped (run it with `cargo bench --bench bots`)");
        return Ok(());
    }
    let chats: i64 = std::env::var("BENCH_BOT_CHATS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let total: i64 = std::env::var("BENCH_BOT_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let dir = tempfile::tempdir()?;
    let fake = fake_anthropic::FakeAnthropic::start().await;
    fake.echo(true);
    let tg = telegram::Telegram::start().await;
    let users: Vec<i64> = std::iter::once(OWNER)
        .chain((0..chats).map(|i| 5000 + i))
        .collect();
    let s = start_server(dir.path(), &fake.url, &tg, &users).await?;
    progress("server and connector up");
    activate(&s, &tg, OWNER).await?;
    // Warm the session's CLI.
    tg.send(OWNER, OWNER, "Owner", "warm up", Value::Null).await;
    let mut have = tg.bot_texts(OWNER).await.len() + 1;
    tg.wait_texts(OWNER, have, Duration::from_secs(60)).await;

    progress("ack and first-draft latency (30 messages, one at a time)");
    let (mut acks, mut drafts) = (Vec::new(), Vec::new());
    for i in 0..30 {
        let (reactions, sends) = (
            tg.calls("setMessageReaction").len(),
            tg.calls("sendMessage").len(),
        );
        let t0 = Instant::now();
        tg.send(OWNER, OWNER, "Owner", &format!("latency {i}"), Value::Null)
            .await;
        have += 1;
        tg.wait_texts(OWNER, have, Duration::from_secs(60)).await;
        if let Some(c) = tg.calls("setMessageReaction").get(reactions) {
            acks.push(c.at.duration_since(t0));
        }
        if let Some(c) = tg.calls("sendMessage").get(sends) {
            drafts.push(c.at.duration_since(t0));
        }
    }

    progress("a burst of 50 messages in one chat");
    let t0 = Instant::now();
    for i in 0..50 {
        tg.send(OWNER, OWNER, "Owner", &format!("burst {i}"), Value::Null)
            .await;
    }
    have += 50;
    let texts = tg.wait_texts(OWNER, have, Duration::from_secs(600)).await;
    let burst = t0.elapsed();
    let tail: Vec<&String> = texts.iter().rev().take(50).rev().collect();
    let in_order = tail
        .iter()
        .enumerate()
        .all(|(i, t)| **t == format!("echo: burst {i}"));

    acks.sort();
    drafts.sort();
    progress(&format!(
        "ack p50 {:.1} ms p99 {:.1} ms; first draft p50 {:.1} ms p99 {:.1} ms; burst {:.0} ms (in order: {in_order})",
        ms(percentile(&acks, 50.0)),
        ms(percentile(&acks, 99.0)),
        ms(percentile(&drafts, 50.0)),
        ms(percentile(&drafts, 99.0)),
        ms(burst)
    ));
    progress(&format!("{total} messages over {chats} chats"));
    let before = s.rss_mb();
    for c in 0..chats {
        activate(&s, &tg, 5000 + c).await?;
    }
    let per_chat = (total / chats.max(1)).max(1);
    let t0 = Instant::now();
    for round in 0..per_chat {
        for c in 0..chats {
            tg.send(
                5000 + c,
                5000 + c,
                "User",
                &format!("round {round}"),
                Value::Null,
            )
            .await;
        }
    }
    let (mut answered, mut chats_in_order) = (0, 0);
    for c in 0..chats {
        let t = tg
            .wait_texts(5000 + c, (2 + per_chat) as usize, Duration::from_secs(900))
            .await;
        let rounds: Vec<i64> = t
            .iter()
            .filter_map(|x| x.strip_prefix("echo: round ")?.parse().ok())
            .collect();
        answered += rounds.len();
        // Each chat's answers come in the order its messages were sent.
        if rounds == (0..per_chat).collect::<Vec<_>>() {
            chats_in_order += 1;
        }
    }
    let many = t0.elapsed();
    let after = s.rss_mb();
    progress("60 s idle");
    tokio::time::sleep(Duration::from_secs(60)).await;
    let idle = s.rss_mb();

    let report = json!({
        "ack_latency": stats(acks.clone()),
        "first_draft_latency": stats(drafts.clone()),
        "burst_50": {"total_ms": ms(burst), "in_order": in_order},
        "many_chats": {"chats": chats, "messages": per_chat * chats, "answered": answered, "chats_in_order": chats_in_order, "total_ms": ms(many),
            "rss_before_mb": before, "rss_after_mb": after, "rss_after_60s_idle_mb": idle},
    });
    println!("\nTelegram bot (through the emulator, real CLI, warm session)");
    println!(
        "  update → ack reaction        p50 {:>7.1} ms  p99 {:>7.1} ms  (target < 100 ms)",
        report["ack_latency"]["p50_ms"].as_f64().unwrap_or(0.0),
        report["ack_latency"]["p99_ms"].as_f64().unwrap_or(0.0)
    );
    println!(
        "  message → first draft        p50 {:>7.1} ms  p99 {:>7.1} ms",
        report["first_draft_latency"]["p50_ms"]
            .as_f64()
            .unwrap_or(0.0),
        report["first_draft_latency"]["p99_ms"]
            .as_f64()
            .unwrap_or(0.0)
    );
    println!(
        "  50-message burst             {:>7.0} ms, in order: {in_order}",
        ms(burst)
    );
    println!(
        "  {} messages over {chats} chats   {:>7.0} ms, {answered} answered, {chats_in_order} of {chats} chats in order",
        per_chat * chats,
        ms(many)
    );
    println!("  server RSS before / after / after 60 s idle: {before:?} / {after:?} / {idle:?} MB");
    let path = report_path("bench-bots.json");
    std::fs::create_dir_all(path.parent().unwrap())?;
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
    println!("\nJSON written to {}", path.display());
    Ok(())
}
