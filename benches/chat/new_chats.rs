//! New chats: request → first `text` event for a new session, with spare CLIs
//! (`spare_cli_processes`) and without, one at a time and four at a time; cold starts
//! with no warm CLI resident against four resident; the memory a spare costs; and the
//! event log a 100 KB answer leaves.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::common::{fmt_mb, free_port, mb, probe_client, progress};
use super::{chat_client, chat_health, chat_turn, idle_memory, Fixture, Memory, Series, Server};

/// New chats one after the other, per series.
const SEQUENTIAL: usize = 20;
/// Rounds of four new chats at once.
const ROUNDS: usize = 5;
const AT_ONCE: usize = 4;
/// Between two sequential new chats (people do not start chats back to back; it also
/// lets the last CLI finish its after-turn work).
const PAUSE: Duration = Duration::from_secs(1);
const SPARES_DEADLINE: Duration = Duration::from_secs(60);
/// New chats at `vault`, per series.
const VAULT_CHATS: usize = 10;
/// Cold new chats made before the "four warm CLIs resident" series counts.
const WARM_RESIDENT: usize = 4;

/// New chats at `vault`: cold, with a `vault` spare, and how many adopted it.
struct Vault {
    cold: Series,
    spare: Series,
    adopted: u64,
}

pub struct Results {
    /// No spare, no warm pool: every new chat a cold start, nothing else resident.
    cold_none_resident: Series,
    /// No spare, warm pool of 4: cold starts once four warm CLIs are resident.
    cold_four_resident: Series,
    /// One spare, waited for before each chat.
    with_spare: Series,
    /// From the previous chat's end to its replacement spare being ready (at least the
    /// server's quiet second, then the CLI's start).
    spare_ready: Series,
    /// Four at a time, no spare.
    at_once_cold: Series,
    /// Four at a time, four spares waited for before each round.
    at_once_spares: Series,
    /// At `vault`: cold, and with a `vault` spare ready.
    /// `None` without the OS sandbox's programs.
    vault: Option<Vault>,
    /// Spares adopted / new chats made in the spare series.
    adopted: (u64, usize),
    /// Idle with one spare and no warm CLI.
    memory_spare: Memory,
    /// Bytes stored for a 100 KB answer streamed as 1,000 `text` events, and the bytes
    /// those events take on the wire.
    log_bytes: (usize, usize),
}

/// Every series, each on its own server over the same vault.
pub async fn phase(fixture: &Fixture, fake_url: &str) -> Result<Results> {
    progress(&format!(
        "new chats: {SEQUENTIAL} cold with no warm CLI resident"
    ));
    let plain = json!({"message": "hi"});
    let none = sequential(
        fixture,
        fake_url,
        &[("WARM_POOL_SIZE", "0")],
        0,
        SEQUENTIAL,
        &plain,
    )
    .await?;
    progress(&format!(
        "new chats: {SEQUENTIAL} cold with up to {WARM_RESIDENT} warm CLIs resident"
    ));
    let four = sequential(
        fixture,
        fake_url,
        &[("WARM_POOL_SIZE", "4")],
        0,
        SEQUENTIAL,
        &plain,
    )
    .await?;
    progress(&format!("new chats: {SEQUENTIAL} with a spare CLI ready"));
    let spare = sequential(
        fixture,
        fake_url,
        &[("WARM_POOL_SIZE", "4"), ("SPARE_CLI_PROCESSES", "1")],
        1,
        SEQUENTIAL,
        &plain,
    )
    .await?;
    let vault = vault_phase(fixture, fake_url).await?;
    progress(&format!(
        "new chats: {ROUNDS} rounds of {AT_ONCE} at once, without and with spares"
    ));
    let at_once_cold = at_once(fixture, fake_url, &[("MAX_CLI_PROCESSES", "8")], 0).await?;
    let at_once_spares = at_once(
        fixture,
        fake_url,
        &[("SPARE_CLI_PROCESSES", "4"), ("MAX_CLI_PROCESSES", "8")],
        AT_ONCE as u64,
    )
    .await?;
    Ok(Results {
        cold_none_resident: Series::new(none.times),
        cold_four_resident: Series::new(four.times.into_iter().skip(WARM_RESIDENT).collect()),
        with_spare: Series::new(spare.times),
        spare_ready: Series::new(spare.ready),
        at_once_cold: Series::new(at_once_cold),
        at_once_spares: Series::new(at_once_spares),
        vault,
        adopted: (spare.adopted, SEQUENTIAL),
        memory_spare: spare.memory.context("no memory reading")?,
        log_bytes: event_log_of_a_long_answer(),
    })
}

/// New chats at `vault`, cold and with a `vault` spare; skipped without the OS
/// sandbox's programs.
async fn vault_phase(fixture: &Fixture, fake_url: &str) -> Result<Option<Vault>> {
    let missing = parachute_core::trust::os_sandbox::missing_programs();
    if !missing.is_empty() {
        progress(&format!(
            "new chats at vault: skipped ({} missing)",
            missing.join(", ")
        ));
        return Ok(None);
    }
    progress(&format!(
        "new chats at vault: {VAULT_CHATS} cold, {VAULT_CHATS} with a vault spare"
    ));
    let body = json!({"message": "hi", "trustLevel": "vault"});
    let cold = sequential(fixture, fake_url, &[], 0, VAULT_CHATS, &body).await?;
    let spare = sequential(
        fixture,
        fake_url,
        &[("SPARE_VAULT_CLI_PROCESSES", "1")],
        1,
        VAULT_CHATS,
        &body,
    )
    .await?;
    Ok(Some(Vault {
        cold: Series::new(cold.times),
        spare: Series::new(spare.times),
        adopted: spare.adopted,
    }))
}

struct Sequential {
    times: Vec<Duration>,
    ready: Vec<Duration>,
    adopted: u64,
    memory: Option<Memory>,
}

/// Waits until the server has `n` spares ready.
async fn spares_ready(client: &reqwest::Client, server: &Server, n: u64) -> Result<()> {
    let deadline = Instant::now() + SPARES_DEADLINE;
    loop {
        let h = chat_health(client, server).await?;
        if h["spares"].as_u64() >= Some(n) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{n} spare CLIs were not ready in time: {h}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `f` against a fresh server with `env`, then stops the server (its log's tail
/// is added to an error).
async fn on_server<T>(
    fixture: &Fixture,
    fake_url: &str,
    env: &[(&str, &str)],
    f: impl AsyncFnOnce(&reqwest::Client, &Server) -> Result<T>,
) -> Result<T> {
    let (probe, client) = (probe_client()?, chat_client()?);
    let mut server = Server::spawn_with(fixture, fake_url, free_port()?, env)?;
    server
        .wait_healthy(&probe)
        .await
        .with_context(|| server.log_tail())?;
    let result = f(&client, &server).await.with_context(|| server.log_tail());
    drop(client); // closes the keep-alive connections so the graceful shutdown is quick
    server.stop().await?;
    result
}

/// `chats` new chats with `body`, one after the other; with `spares`, each once that
/// many spares are ready.
async fn sequential(
    fixture: &Fixture,
    fake_url: &str,
    env: &[(&str, &str)],
    spares: u64,
    chats: usize,
    body: &Value,
) -> Result<Sequential> {
    on_server(fixture, fake_url, env, async |client, server| {
        let url = server.url("/api/chat");
        let mut out = Sequential {
            times: Vec::new(),
            ready: Vec::new(),
            adopted: 0,
            memory: None,
        };
        if spares > 0 {
            spares_ready(client, server, spares).await?;
            // One spare, no warm CLI yet: what a spare costs.
            out.memory = Some(idle_memory(server).await);
        }
        for i in 0..chats {
            let since = Instant::now();
            if spares > 0 {
                spares_ready(client, server, spares).await?;
                if i > 0 {
                    out.ready.push(since.elapsed());
                }
            }
            tokio::time::sleep(PAUSE.saturating_sub(since.elapsed())).await;
            let turn = chat_turn(client, &url, body).await?;
            out.times.push(turn.first_text);
        }
        out.adopted = chat_health(client, server).await?["spareAdopted"]
            .as_u64()
            .unwrap_or(0);
        Ok(out)
    })
    .await
}

/// `ROUNDS` rounds of `AT_ONCE` new chats at once; with `spares`, each round once that
/// many spares are ready.
async fn at_once(
    fixture: &Fixture,
    fake_url: &str,
    env: &[(&str, &str)],
    spares: u64,
) -> Result<Vec<Duration>> {
    on_server(fixture, fake_url, env, async |client, server| {
        let url = server.url("/api/chat");
        let mut times = Vec::new();
        for _ in 0..ROUNDS {
            tokio::time::sleep(PAUSE).await;
            if spares > 0 {
                spares_ready(client, server, spares).await?;
            }
            let body = json!({"message": "hi"});
            let round = (0..AT_ONCE).map(|_| chat_turn(client, &url, &body));
            for turn in futures_util::future::join_all(round).await {
                times.push(turn?.first_text);
            }
        }
        Ok(times)
    })
    .await
}

/// A 100 KB answer streamed as 1,000 `text` events, each carrying the block so far as
/// the contract has it: the bytes the turn's log keeps, and those the events take.
fn event_log_of_a_long_answer() -> (usize, usize) {
    use parachute_core::chat::{Turn, TurnEvent};
    let turn = Turn::detached();
    let piece = "0123456789".repeat(10);
    let (mut content, mut wire) = (String::new(), 0);
    for _ in 0..1000 {
        content.push_str(&piece);
        let event = TurnEvent::Text {
            content: content.clone(),
            delta: piece.clone(),
        };
        wire += serde_json::to_string(&event).map_or(0, |s| s.len());
        turn.push(&event);
    }
    (turn.stored_bytes(), wire)
}

impl Results {
    pub fn print(&self, bare_cold_p50: f64) {
        let line = |label: &str, s: &Series| {
            println!(
                "  {label:<38} p50 {:>7.1}  p99 {:>7.1}  max {:>7.1} ms  ({} chats)",
                s.p(50.0),
                s.p(99.0),
                s.max(),
                s.runs.len()
            );
        };
        println!("\nnew chats: request → first text event");
        line("cold, no warm CLI resident", &self.cold_none_resident);
        line("cold, 4 warm CLIs resident", &self.cold_four_resident);
        line("with a spare ready", &self.with_spare);
        line("4 at once, cold", &self.at_once_cold);
        line("4 at once, 4 spares ready", &self.at_once_spares);
        match &self.vault {
            Some(v) => {
                line("at vault, cold", &v.cold);
                line("at vault, with a vault spare ready", &v.spare);
                println!(
                    "  vault spares adopted                   {} of {VAULT_CHATS}",
                    v.adopted
                );
            }
            None => println!("  at vault: skipped (no OS sandbox programs)"),
        }
        let spare = self.with_spare.p(50.0);
        println!(
            "  bare CLI cold p50 (this run)           {bare_cold_p50:>7.1} ms: a spare's new chat is {:.1}× faster (target ≥ 5×, ≤ 150 ms p50)",
            bare_cold_p50 / spare
        );
        let (none, four) = (
            self.cold_none_resident.p(50.0),
            self.cold_four_resident.p(50.0),
        );
        println!(
            "  cold with 4 warm resident vs none      {:+.1} % (target within 15 %)",
            (four - none) / none * 100.0
        );
        println!(
            "  spares adopted                         {} of {} new chats; replacement ready p50 {:.0} ms after the chat",
            self.adopted.0,
            self.adopted.1,
            self.spare_ready.p(50.0)
        );
        let m = &self.memory_spare;
        println!(
            "  memory, idle with one spare            server {}, spare CLI {} ({} process)",
            fmt_mb(mb(m.server_kb)),
            fmt_mb(mb(m.cli_kb)),
            m.clis
        );
        println!(
            "  event log of a 100 KB answer in 1,000 text events: {} bytes stored ({} bytes as sent)",
            self.log_bytes.0, self.log_bytes.1
        );
    }

    pub fn to_json(&self, bare_cold_p50: f64) -> Value {
        let m = &self.memory_spare;
        json!({
            "cold_none_resident_ms": self.cold_none_resident.to_json(),
            "cold_four_warm_resident_ms": self.cold_four_resident.to_json(),
            "with_spare_ms": self.with_spare.to_json(),
            "spare_replacement_ready_ms": self.spare_ready.to_json(),
            "four_at_once_cold_ms": self.at_once_cold.to_json(),
            "four_at_once_with_spares_ms": self.at_once_spares.to_json(),
            "vault": self.vault.as_ref().map(|v| json!({
                "cold_ms": v.cold.to_json(),
                "with_spare_ms": v.spare.to_json(),
                "spares_adopted": v.adopted,
            })),
            "bare_cli_cold_p50_ms": bare_cold_p50,
            "speedup_vs_bare_cold": bare_cold_p50 / self.with_spare.p(50.0),
            "spares_adopted": self.adopted.0,
            "memory_mb_idle_one_spare": {"server": mb(m.server_kb), "spare_cli": mb(m.cli_kb)},
            "event_log_100kb_answer_bytes": {"stored": self.log_bytes.0, "as_sent": self.log_bytes.1},
        })
    }
}
