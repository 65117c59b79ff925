//! A hook's settings: a sidecar `NAME.yaml` beside the executable, or else a header
//! comment line in its first 20 lines:
//!
//! ```text
//! # parachute-hook: events=session.completed,message.sent timeout=10 blocking=false
//! ```
//!
//! Sidecar keys: `events` (a list, required), `timeout` (seconds, 1–300, default 30),
//! `blocking` (default false; always true for `server.stopping` and
//! `context.approaching_limit`), `enabled` (default true), `description`.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Every event a hook can listen to.
pub const EVENTS: &[&str] = &[
    "server.started",
    "server.stopping",
    "session.created",
    "session.completed",
    "session.resumed",
    "message.received",
    "message.sent",
    "daily.entry.created",
    "daily.entry.updated",
    "bot.message.received",
    "bot.message.sent",
    "module.loaded",
    "module.unloaded",
    "context.approaching_limit",
    "pairing.requested",
    "scheduler.run.finished",
];

/// Events whose hooks always block (the caller waits for them).
pub const BLOCKING_EVENTS: &[&str] = &["server.stopping", "context.approaching_limit"];

/// Longest timeout a hook may ask for.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(300);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A hook's checked settings.
#[derive(Debug, Clone, PartialEq)]
pub struct HookConfig {
    /// The events it runs for.
    pub events: Vec<String>,
    /// Whether the caller waits for it.
    pub blocking: bool,
    /// When it is killed.
    pub timeout: Duration,
    /// Off when false.
    pub enabled: bool,
    /// What it does.
    pub description: Option<String>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    events: Vec<String>,
    #[serde(default)]
    blocking: Option<bool>,
    #[serde(default)]
    timeout: Option<f64>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    description: Option<String>,
}

fn check(raw: Raw) -> Result<HookConfig, String> {
    if raw.events.is_empty() {
        return Err("it names no events".into());
    }
    if let Some(bad) = raw.events.iter().find(|e| !EVENTS.contains(&e.as_str())) {
        return Err(format!(
            "unknown event '{}'",
            bad.chars().take(60).collect::<String>()
        ));
    }
    let timeout = match raw.timeout {
        None => DEFAULT_TIMEOUT,
        Some(t) if t > 0.0 && t <= MAX_TIMEOUT.as_secs_f64() => Duration::from_secs_f64(t),
        Some(_) => {
            return Err(format!(
                "timeout must be above 0 and at most {} seconds",
                MAX_TIMEOUT.as_secs()
            ))
        }
    };
    let forced = raw
        .events
        .iter()
        .any(|e| BLOCKING_EVENTS.contains(&e.as_str()));
    Ok(HookConfig {
        blocking: forced || raw.blocking.unwrap_or(false),
        events: raw.events,
        timeout,
        enabled: raw.enabled.unwrap_or(true),
        description: raw.description,
    })
}

/// Parses a sidecar's YAML.
pub fn parse_sidecar(text: &str) -> Result<HookConfig, String> {
    let raw: Raw = serde_saphyr::from_str(text).map_err(|e| {
        format!(
            "its settings do not parse: {}",
            e.to_string().lines().next().unwrap_or("invalid YAML")
        )
    })?;
    check(raw)
}

/// Parses a `parachute-hook:` header line from the start of a script.
pub fn parse_header(script_start: &str) -> Option<Result<HookConfig, String>> {
    let line = script_start
        .lines()
        .take(20)
        .find_map(|l| l.split_once("parachute-hook:").map(|(_, rest)| rest.trim()))?;
    let mut raw = Raw {
        events: Vec::new(),
        blocking: None,
        timeout: None,
        enabled: None,
        description: None,
    };
    for pair in line.split_whitespace() {
        let Some((k, v)) = pair.split_once('=') else {
            return Some(Err(format!("'{pair}' in its header is not key=value")));
        };
        match k {
            "events" => {
                raw.events = v
                    .split(',')
                    .filter(|e| !e.is_empty())
                    .map(str::to_string)
                    .collect()
            }
            "blocking" => raw.blocking = Some(v == "true"),
            "enabled" => raw.enabled = Some(v != "false"),
            "timeout" => match v.parse() {
                Ok(t) => raw.timeout = Some(t),
                Err(_) => return Some(Err(format!("timeout '{v}' is not a number"))),
            },
            other => return Some(Err(format!("unknown key '{other}' in its header"))),
        }
    }
    Some(check(raw))
}

/// The settings of the hook executable at `path`: its sidecar, else its header.
pub fn load(path: &Path) -> Result<HookConfig, String> {
    for ext in ["yaml", "yml"] {
        let side = path.with_extension(ext);
        if side != path && side.is_file() {
            let text = std::fs::read_to_string(&side).map_err(|e| e.to_string())?;
            return parse_sidecar(&text);
        }
    }
    let mut head = vec![0u8; 4096];
    let n = std::io::Read::read(
        &mut std::fs::File::open(path).map_err(|e| e.to_string())?,
        &mut head,
    )
    .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&head[..n]);
    parse_header(&text).unwrap_or_else(|| {
        Err(
            "it has no settings: add NAME.yaml beside it, or a `# parachute-hook: events=…` line"
                .into(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecar_and_header() {
        let c = parse_sidecar("events: [session.completed]\ntimeout: 5\ndescription: log it\n")
            .unwrap();
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert!(!c.blocking && c.enabled);
        let c = parse_header(
            "#!/bin/sh\n# parachute-hook: events=server.stopping,message.sent timeout=2.5\n",
        )
        .unwrap()
        .unwrap();
        assert!(c.blocking, "server.stopping forces blocking");
        assert_eq!(c.events, vec!["server.stopping", "message.sent"]);
        assert!(parse_header("#!/bin/sh\necho hi\n").is_none());
    }

    #[test]
    fn bad_settings_say_why() {
        assert!(parse_sidecar("events: []\n")
            .unwrap_err()
            .contains("no events"));
        assert!(parse_sidecar("events: [rocket.launched]\n")
            .unwrap_err()
            .contains("unknown event"));
        assert!(parse_sidecar("events: [message.sent]\ntimeout: 9999\n")
            .unwrap_err()
            .contains("timeout"));
        assert!(parse_sidecar("events: [message.sent]\ncolour: red\n").is_err());
        assert!(
            parse_header("# parachute-hook: events=message.sent when=now")
                .unwrap()
                .is_err()
        );
    }
}
