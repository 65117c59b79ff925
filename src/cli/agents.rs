//! `parachute agents …`: the running server's scheduled agents, through its API: list
//! them (schedule, next run, paused), run one now, show the run history, resume one
//! paused after failures.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;

use parachute_core::config::{Overrides, Settings};

use super::server_api::{call, call_within, detail};
use super::AgentsAction;

/// How long `agents run` waits for a run to end.
const RUN_WAIT: Duration = Duration::from_secs(30 * 60);

/// A field as text for the terminal: control characters (escape sequences) shown as
/// `?`, since agent files and model errors are not ours.
fn s(v: &Value, k: &str) -> String {
    printable(v.get(k).and_then(Value::as_str).unwrap_or("-"))
}

fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn agent_line(a: &Value) -> String {
    let state = if a["running"] == true {
        "running".to_string()
    } else if a["paused"] == true {
        format!("PAUSED ({})", s(a, "pause_reason"))
    } else if a["problem"].is_string() {
        format!("invalid: {}", s(a, "problem"))
    } else if a["enabled"] == false {
        "disabled".to_string()
    } else {
        format!("next {}", s(a, "next_run"))
    };
    format!(
        "{:<20} {:<16} {:<18} {:<10} {}",
        s(a, "name"),
        s(a, "schedule"),
        s(a, "timezone"),
        s(a, "trust_level"),
        state
    )
}

fn run_line(r: &Value) -> String {
    format!(
        "{:<6} {:<20} {:<9} {:<24} {:<20} {}",
        r["id"],
        s(r, "agent"),
        s(r, "trigger"),
        s(r, "started_at"),
        s(r, "outcome"),
        printable(
            r.get("error")
                .and_then(Value::as_str)
                .or_else(|| r.get("output_path").and_then(Value::as_str))
                .unwrap_or("")
        )
    )
}

pub async fn run(ov: &Overrides, action: AgentsAction) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(ov)?;
    if let AgentsAction::Run { name } | AgentsAction::Resume { name } = &action {
        if !parachute_extensions::scheduler::definition::valid_name(name) {
            anyhow::bail!("'{name}' is not an agent name (letters, digits, - and _)");
        }
    }
    if let AgentsAction::Runs { agent: Some(a), .. } = &action {
        if !parachute_extensions::scheduler::definition::valid_name(a) {
            anyhow::bail!("'{a}' is not an agent name (letters, digits, - and _)");
        }
    }
    let port = super::daemon::running_server(&settings)
        .map(|i| i.port)
        .unwrap_or(settings.port);
    match action {
        AgentsAction::List => {
            let (status, v) = call(port, "GET", "/api/modules/daily/agents", None).await?;
            if status != 200 {
                anyhow::bail!("{}", detail(&v));
            }
            let agents = v["agents"].as_array().cloned().unwrap_or_default();
            if agents.is_empty() {
                println!("No scheduled agents (put one in Daily/.agents/NAME.md).");
            }
            for a in &agents {
                println!("{}", agent_line(a));
            }
            Ok(ExitCode::SUCCESS)
        }
        AgentsAction::Run { name } => {
            println!("Running {name}…");
            let (status, v) = call_within(
                port,
                "POST",
                &format!("/api/scheduler/agents/{name}/trigger"),
                None,
                RUN_WAIT,
            )
            .await?;
            if status != 200 {
                eprintln!("{name}: {}", detail(&v));
                return Ok(ExitCode::FAILURE);
            }
            match s(&v, "status").as_str() {
                "skipped" => println!("{name}: skipped ({})", s(&v, "reason")),
                st => println!(
                    "{name}: {st}; output {}{}",
                    s(&v, "output_path"),
                    if v["output_written"] == true {
                        ""
                    } else {
                        " (not written)"
                    }
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
        AgentsAction::Runs { agent, limit } => {
            let mut path = format!("/api/scheduler/runs?limit={limit}");
            if let Some(a) = &agent {
                path.push_str(&format!("&agent={a}"));
            }
            let (status, v) = call(port, "GET", &path, None).await?;
            if status != 200 {
                anyhow::bail!("{}", detail(&v));
            }
            for r in v["runs"].as_array().into_iter().flatten() {
                println!("{}", run_line(r));
            }
            Ok(ExitCode::SUCCESS)
        }
        AgentsAction::Resume { name } => {
            let (status, v) = call(
                port,
                "POST",
                &format!("/api/scheduler/agents/{name}/resume"),
                None,
            )
            .await?;
            if status != 200 {
                anyhow::bail!("{}", detail(&v));
            }
            println!(
                "{name}: {}",
                if v["was_paused"] == true {
                    "resumed"
                } else {
                    "was not paused"
                }
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
