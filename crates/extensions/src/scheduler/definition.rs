//! Scheduled agent definitions: Markdown files whose frontmatter says when and how the
//! agent runs and whose body is its system prompt. They live in `Daily/.agents/` (vault
//! content anyone with a key can write, so capped at `vault` whatever they say) and in
//! approved modules' `scheduled/` folders (capped at the level the module was approved
//! for).
//!
//! ```yaml
//! ---
//! displayName: Morning digest
//! schedule: "7:30"          # or {enabled: true, time: "7:30"}, or a cron expression
//! timezone: Europe/Berlin   # IANA name; default the machine's
//! trust_level: vault        # full | vault | sandboxed (never above the cap)
//! model: claude-sonnet-4-5
//! enabled: true
//! missed: run_once          # or skip: what a run missed while the server was off does
//! output: Daily/digest/{date}.md
//! tools: [read_journal, read_chat_log, read_recent_journals]
//! ---
//! You are my morning digest. …
//! ```

use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use parachute_core::trust::TrustLevel;
use parachute_core::vault::frontmatter;
use serde_json::Value;

use super::schedule::{local_zone, parse_clock, Schedule};
use crate::modules::EnabledModule;

/// Largest definition file read.
const MAX_DEFINITION_BYTES: u64 = 256 * 1024;

/// What happens to an occurrence missed while the server was not running (or the
/// machine slept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Missed {
    /// Nothing: it is recorded as skipped.
    Skip,
    /// It runs once, as soon as the server notices.
    RunOnce,
}

/// Where a definition comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `Daily/.agents/`.
    Vault,
    /// An approved module's `scheduled/`.
    Module(String),
}

/// One scheduled agent.
#[derive(Debug, Clone)]
pub struct AgentDef {
    /// The file stem.
    pub name: String,
    /// `displayName`, else the name title-cased.
    pub display_name: String,
    /// `description`.
    pub description: Option<String>,
    /// Where it comes from.
    pub origin: Origin,
    /// Its file.
    pub path: PathBuf,
    /// When it runs (none: only when triggered).
    pub schedule: Option<Schedule>,
    /// The zone its schedule is read in.
    pub timezone: Tz,
    /// Whether it runs on its schedule.
    pub enabled: bool,
    /// The level its runs use (already capped).
    pub trust_level: TrustLevel,
    /// The model, if it names one.
    pub model: Option<String>,
    /// What a missed occurrence does.
    pub missed: Missed,
    /// Output path template (`{name}`, `{date}`).
    pub output: String,
    /// The tools it lists (the daily tools are offered whatever it lists).
    pub tools: Vec<String>,
    /// The body: its system prompt.
    pub prompt: String,
    /// Why it cannot run, if it cannot.
    pub problem: Option<String>,
}

impl AgentDef {
    /// The vault-relative output path for `date`.
    pub fn output_path(&self, date: &str) -> String {
        self.output
            .replace("{name}", &self.name)
            .replace("{date}", date)
    }
}

fn title_case(name: &str) -> String {
    name.split(['-', '_', ' '])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `name` may name an agent (a file stem, and a URL path segment).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Parses a definition; `cap` is the least restricted level it may run at.
pub fn parse(name: &str, text: &str, origin: Origin, path: PathBuf, cap: TrustLevel) -> AgentDef {
    let (front, body) = frontmatter::parse(text);
    let mut problems = Vec::new();
    let str_of = |k: &str| {
        front
            .get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let mut enabled = front
        .get("enabled")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let schedule_text = match front.get("schedule") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Object(o)) => {
            if o.get("enabled").and_then(Value::as_bool) == Some(false) {
                enabled = false;
            }
            // The contract's object form: an unreadable time means 3:00.
            let time = o.get("time").and_then(Value::as_str).unwrap_or("3:00");
            Some(if parse_clock(time).is_some() {
                time.to_string()
            } else {
                "3:00".to_string()
            })
        }
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::Null) | None => None,
        Some(_) => {
            problems.push("schedule must be \"H:MM\", {enabled, time} or a cron expression".into());
            None
        }
    };
    let schedule =
        schedule_text.and_then(|t| Schedule::parse(&t).map_err(|e| problems.push(e)).ok());
    let timezone = match str_of("timezone") {
        Some(z) => z.parse::<Tz>().unwrap_or_else(|_| {
            problems.push(format!(
                "unknown time zone '{z}' (an IANA name such as Europe/Berlin)"
            ));
            Tz::UTC
        }),
        None => local_zone(),
    };
    let asked = match str_of("trust_level") {
        Some(l) => l.parse::<TrustLevel>().unwrap_or_else(|_| {
            problems.push(format!("unknown trust_level '{l}'"));
            cap
        }),
        None => TrustLevel::Vault,
    };
    let missed = match str_of("missed").as_deref() {
        None | Some("run_once") => Missed::RunOnce,
        Some("skip") => Missed::Skip,
        Some(other) => {
            problems.push(format!("missed must be skip or run_once, not '{other}'"));
            Missed::Skip
        }
    };
    let output = match front.get("output") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(o)) => o
            .get("path")
            .and_then(Value::as_str)
            .unwrap_or("Daily/{name}/{date}.md")
            .to_string(),
        _ => "Daily/{name}/{date}.md".to_string(),
    };
    let tools = match front.get("tools") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => vec![
            "read_journal".into(),
            "read_chat_log".into(),
            "read_recent_journals".into(),
        ],
    };
    if body.trim().is_empty() {
        problems.push("the body (the agent's prompt) is empty".into());
    }
    AgentDef {
        name: name.to_string(),
        display_name: str_of("displayName")
            .or_else(|| str_of("display_name"))
            .unwrap_or_else(|| title_case(name)),
        description: str_of("description"),
        origin,
        path,
        schedule,
        timezone,
        enabled,
        // The most restricted of what it asks and what its place allows.
        trust_level: TrustLevel::most_restricted([asked, cap]),
        model: str_of("model"),
        missed,
        output,
        tools,
        prompt: body.trim().to_string(),
        problem: (!problems.is_empty()).then(|| problems.join("; ")),
    }
}

fn read_dir_defs(dir: &Path, origin: &Origin, cap: TrustLevel, out: &mut Vec<AgentDef>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".md"))
        else {
            continue;
        };
        if !valid_name(name) || out.iter().any(|d| d.name == name) {
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let def = if meta.len() > MAX_DEFINITION_BYTES {
            let mut d = parse(name, "", origin.clone(), path.clone(), cap);
            d.problem = Some("the file is larger than 256 KB".into());
            d
        } else {
            match std::fs::read_to_string(&path) {
                Ok(text) => parse(name, &text, origin.clone(), path.clone(), cap),
                Err(_) => {
                    let mut d = parse(name, "", origin.clone(), path.clone(), cap);
                    d.problem = Some("the file is not readable UTF-8 text".into());
                    d
                }
            }
        };
        out.push(def);
    }
}

/// Every definition: the vault's first, then each enabled module's (the first of a
/// name wins). Blocking file reads.
pub fn load_all(vault: &Path, modules: &[EnabledModule]) -> Vec<AgentDef> {
    let mut out = Vec::new();
    let dir = vault.join("Daily/.agents");
    // A symlinked folder could lead out of the vault.
    if std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
        read_dir_defs(&dir, &Origin::Vault, TrustLevel::Vault, &mut out);
    }
    for m in modules {
        if !crate::modules::contents::unchanged_under(m, "scheduled") {
            tracing::warn!(module = %m.name, "the module's scheduled agents changed since its approval; not loaded");
            continue;
        }
        read_dir_defs(
            &m.dir.join("scheduled"),
            &Origin::Module(m.name.clone()),
            m.trust_level,
            &mut out,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(text: &str, cap: TrustLevel) -> AgentDef {
        parse(
            "morning-digest",
            text,
            Origin::Vault,
            PathBuf::from("x.md"),
            cap,
        )
    }

    #[test]
    fn reads_every_form_and_caps_the_level() {
        let d = def(
            "---\nschedule: \"7:30\"\ntimezone: Asia/Tokyo\ntrust_level: full\nmissed: skip\nmodel: m1\n---\nDigest my day.\n",
            TrustLevel::Vault,
        );
        assert_eq!(d.problem, None);
        assert_eq!(d.display_name, "Morning Digest");
        assert_eq!(d.schedule.as_ref().unwrap().text, "7:30");
        assert_eq!(d.timezone, chrono_tz::Asia::Tokyo);
        // Vault content never runs above vault.
        assert_eq!(d.trust_level, TrustLevel::Vault);
        assert_eq!(d.missed, Missed::Skip);
        assert_eq!(d.model.as_deref(), Some("m1"));
        assert_eq!(
            d.output_path("2026-12-02"),
            "Daily/morning-digest/2026-12-02.md"
        );
        assert_eq!(d.prompt, "Digest my day.");

        let d = def(
            "---\nschedule: {enabled: false, time: nonsense}\ntrust_level: sandboxed\n---\nx\n",
            TrustLevel::Full,
        );
        assert!(!d.enabled);
        assert_eq!(d.schedule.as_ref().unwrap().text, "3:00");
        assert_eq!(d.trust_level, TrustLevel::Sandboxed);
        assert_eq!(d.missed, Missed::RunOnce);

        let d = def("---\nschedule: \"0 7 * * 1-5\"\n---\nx\n", TrustLevel::Full);
        assert_eq!(d.trust_level, TrustLevel::Vault);
        assert!(d.schedule.is_some());

        let d = def(
            "---\nschedule: sometimes\ntimezone: Mars/Olympus\nmissed: maybe\n---\n",
            TrustLevel::Full,
        );
        let p = d.problem.unwrap();
        for part in ["sometimes", "Mars/Olympus", "maybe", "empty"] {
            assert!(p.contains(part), "{p}");
        }
        assert!(!valid_name("../x") && !valid_name("") && valid_name("digest_2"));
    }
}
