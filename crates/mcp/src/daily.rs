//! The daily-agent tools: the journal and chat log of a day, the recent
//! ones, and `write_output`, which only a scheduled run's session has (it writes that
//! run's output file, through the vault gate).

use chrono::{Days, NaiveDate, Utc};
use parachute_core::vault::journal;
use serde_json::{json, Value};

use crate::server::{DateArg, DaysArg, ToolOutcome, WriteOutput};
use crate::Vault;

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}\n\n[… truncated]", &text[..i]),
        None => text.to_string(),
    }
}

fn date_of(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("'{s}' is not a date (YYYY-MM-DD)"))
}

/// The chat log of `date` (`Daily/chat-log/{date}.md`), if any (blocking).
fn chat_log(v: &Vault, date: &str) -> Option<String> {
    let path = v
        .state
        .settings
        .vault_gate()
        .resolve(&format!("Daily/chat-log/{date}.md"))
        .ok()?;
    std::fs::read_to_string(path).ok()
}

/// The last `days` days up to `today`, newest first.
fn recent_days(days: i64, today: NaiveDate) -> Vec<String> {
    (0..days.clamp(1, 30) as u64)
        .filter_map(|n| today.checked_sub_days(Days::new(n)))
        .map(|d| d.to_string())
        .collect()
}

pub(crate) async fn read_journal(v: &Vault, p: DateArg) -> ToolOutcome {
    let date = date_of(&p.date)?.to_string();
    let gate = v.state.settings.vault_gate();
    let d = date.clone();
    let day = tokio::task::spawn_blocking(move || journal::read_day(&gate, &d))
        .await
        .map_err(|_| "The read stopped".to_string())?
        .map_err(|e| e.to_string())?;
    match day {
        Some(content) => Ok(json!({"date": date, "content": content})),
        None => Err(format!("No journal found for {date}")),
    }
}

pub(crate) async fn read_chat_log(v: &Vault, p: DateArg) -> ToolOutcome {
    let date = date_of(&p.date)?.to_string();
    match chat_log(v, &date) {
        Some(text) => Ok(json!({"date": date, "content": truncate(&text, 10_000)})),
        None => Err(format!("No chat log for {date}")),
    }
}

/// "Today" for the caller: a scheduled run's output day (its agent's zone), else this
/// machine's date.
fn today(v: &Vault, session: Option<&str>) -> NaiveDate {
    session
        .and_then(|s| v.ext.scheduler.output_target(s))
        .and_then(|t| date_of(&t.date).ok())
        .unwrap_or_else(|| chrono::Local::now().date_naive())
}

pub(crate) async fn read_recent_journals(
    v: &Vault,
    p: DaysArg,
    session: Option<&str>,
) -> ToolOutcome {
    let gate = v.state.settings.vault_gate();
    let days = recent_days(p.days, today(v, session));
    let out = tokio::task::spawn_blocking(move || {
        days.into_iter()
            .filter_map(|d| {
                journal::read_day(&gate, &d)
                    .ok()
                    .flatten()
                    .map(|c| json!({"date": d, "content": truncate(&c, 5_000)}))
            })
            .collect::<Vec<Value>>()
    })
    .await
    .map_err(|_| "The read stopped".to_string())?;
    Ok(Value::Array(out))
}

pub(crate) async fn read_recent_sessions(
    v: &Vault,
    p: DaysArg,
    session: Option<&str>,
) -> ToolOutcome {
    Ok(Value::Array(
        recent_days(p.days, today(v, session))
            .into_iter()
            .filter_map(|d| {
                chat_log(v, &d).map(|c| json!({"date": d, "content": truncate(&c, 3_000)}))
            })
            .collect(),
    ))
}

pub(crate) async fn write_output(v: &Vault, p: WriteOutput, session: Option<&str>) -> ToolOutcome {
    let Some(session) = session else {
        return Err("write_output is for scheduled agents' runs".into());
    };
    let Some(target) = v.ext.scheduler.output_target(session) else {
        return Err("write_output is for scheduled agents' runs".into());
    };
    let date = if p.date.trim().is_empty() {
        target.date.clone()
    } else {
        date_of(&p.date)?.to_string()
    };
    let gate = v.state.settings.vault_gate();
    let path = gate
        .resolve(&target.path)
        .map_err(|e| format!("Cannot write '{}': {e}", target.path))?;
    let doc = format!(
        "---\ndate: {date}\nagent: {}\ngenerated_at: {}\n---\n\n{}\n",
        target.agent,
        Utc::now().to_rfc3339(),
        p.content.trim()
    );
    let written = tokio::task::spawn_blocking(move || {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        parachute_core::util::fs::write_atomic(&path, doc.as_bytes(), None)
    })
    .await
    .map_err(|_| "The write stopped".to_string())?;
    written.map_err(|e| {
        tracing::warn!(error = %e, "write_output failed");
        format!("Cannot write '{}'", target.path)
    })?;
    v.ext.scheduler.mark_written(session);
    Ok(json!({"success": true, "path": target.path, "date": date}))
}
