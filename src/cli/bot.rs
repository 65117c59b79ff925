//! `parachute bot …`: the bot connectors of the running server, through its API
//! (`/api/bots/*`): status, start/stop/test a platform, pending pairing requests,
//! approve or deny one, and the allowlists.

use std::process::ExitCode;

use serde_json::{json, Value};

use parachute_core::config::{Overrides, Settings};

use super::server_api::{call, detail};
use super::BotAction;

pub async fn run(ov: &Overrides, action: BotAction) -> anyhow::Result<ExitCode> {
    let s = Settings::load(ov)?;
    let port = super::daemon::running_server(&s)
        .map(|i| i.port)
        .unwrap_or(s.port);
    let (method, path, body) = match &action {
        BotAction::Status => ("GET", "/api/bots/status".to_string(), None),
        BotAction::Start { platform } => ("POST", format!("/api/bots/{platform}/start"), None),
        BotAction::Stop { platform } => ("POST", format!("/api/bots/{platform}/stop"), None),
        BotAction::Test { platform } => ("POST", format!("/api/bots/{platform}/test"), None),
        BotAction::Pairing => ("GET", "/api/bots/pairing".to_string(), None),
        BotAction::Approve { id, trust } => (
            "POST",
            format!("/api/bots/pairing/{id}/approve"),
            Some(json!({"trust_level": trust})),
        ),
        BotAction::Deny { id } => ("POST", format!("/api/bots/pairing/{id}/deny"), None),
        BotAction::Users => ("GET", "/api/bots/config".to_string(), None),
    };
    let (status, v) = call(port, method, &path, body).await?;
    if status != 200 {
        eprintln!("error: {}", detail(&v));
        return Ok(ExitCode::FAILURE);
    }
    match action {
        BotAction::Status => print_status(&v),
        BotAction::Pairing => print_pairing(&v),
        BotAction::Approve { .. } | BotAction::Deny { .. } => {
            let r = &v["request"];
            println!(
                "{} {} user {}{}",
                r["status"].as_str().unwrap_or(""),
                r["platform"].as_str().unwrap_or(""),
                r["platformUserId"].as_str().unwrap_or(""),
                r["approvedTrustLevel"]
                    .as_str()
                    .map(|l| format!(" at trust level {l}"))
                    .unwrap_or_default(),
            );
        }
        BotAction::Users => print_users(&v),
        BotAction::Start { .. } | BotAction::Stop { .. } | BotAction::Test { .. } => {
            if v["success"] == false {
                eprintln!("error: {}", detail(&v));
                return Ok(ExitCode::FAILURE);
            }
            match v.get("message").and_then(Value::as_str) {
                Some(m) => println!("{m}"),
                None => println!(
                    "ok: {} (@{})",
                    v["bot_name"].as_str().unwrap_or(""),
                    v["bot_username"].as_str().unwrap_or("")
                ),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_status(v: &Value) {
    for (name, c) in v["connectors"].as_object().into_iter().flatten() {
        println!(
            "{name}: {}, {}, token {}, {} allowed users, restarts {}{}",
            if c["enabled"] == true {
                "enabled"
            } else {
                "disabled"
            },
            if c["running"] == true {
                "running"
            } else {
                "stopped"
            },
            if c["has_token"] == true {
                "set"
            } else {
                "missing"
            },
            c["allowed_users_count"],
            c["restarts"],
            c["last_error"]
                .as_str()
                .map(|e| format!(", last error: {e}"))
                .unwrap_or_default(),
        );
    }
    if let Some(e) = v["config_error"].as_str() {
        println!("bots.yaml: {e}");
    }
}

fn print_pairing(v: &Value) {
    let list = v["requests"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        println!("no pending pairing requests");
    }
    for r in list {
        println!(
            "{}  {} user {} ({}) in chat {}, asked {}",
            r["id"].as_str().unwrap_or(""),
            r["platform"].as_str().unwrap_or(""),
            r["platformUserId"].as_str().unwrap_or(""),
            r["platformUserDisplay"].as_str().unwrap_or(""),
            r["platformChatId"].as_str().unwrap_or(""),
            r["createdAt"].as_str().unwrap_or(""),
        );
    }
}

fn print_users(v: &Value) {
    for (name, c) in v.as_object().into_iter().flatten() {
        let users: Vec<String> = c["allowed_users"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|u| {
                u.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| u.to_string())
            })
            .collect();
        println!(
            "{name}: {}",
            if users.is_empty() {
                "(nobody)".into()
            } else {
                users.join(", ")
            }
        );
    }
}
