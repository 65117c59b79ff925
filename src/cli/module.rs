//! `parachute module …`: the vault's modules, read and approved on the vault directly
//! (no server needed; a running server re-reads the approvals on its next use).

use std::process::ExitCode;

use parachute_core::config::{Overrides, Settings};
use parachute_core::trust::TrustLevel;
use parachute_extensions::{ModuleStatus, ModuleView, Modules};

use super::ModuleAction;

pub fn run(ov: &Overrides, action: ModuleAction) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(ov)?;
    let modules = Modules::for_paths(&settings.paths);
    match action {
        ModuleAction::List => {
            let list = modules.list()?;
            if list.is_empty() {
                println!("No modules in {}", modules.dir().display());
            }
            for m in &list {
                println!("{}", printable(&line(m)));
            }
            if list
                .iter()
                .any(|m| m.status == ModuleStatus::PendingApproval)
            {
                println!("\nSee one with `parachute module status NAME`; enable it with `parachute module approve NAME`.");
            }
            Ok(ExitCode::SUCCESS)
        }
        ModuleAction::Status { name } => {
            print!("{}", printable(&details(&modules.get(&name)?)));
            Ok(ExitCode::SUCCESS)
        }
        ModuleAction::Approve { name, trust } => {
            let level = trust
                .map(|t| t.parse::<TrustLevel>())
                .transpose()
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let shown = modules.get(&name)?;
            print!("{}", printable(&details(&shown)));
            let view = modules.approve(&name, level, shown.current_hash.as_deref())?;
            println!(
                "\nApproved '{}' at trust level {}: it is enabled.",
                view.name,
                view.approved_trust_level.map(|l| l.as_str()).unwrap_or("?")
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn status_text(m: &ModuleView) -> String {
    match (m.status, m.approval) {
        (ModuleStatus::Loaded, _) => "enabled".into(),
        (ModuleStatus::PendingApproval, Some(kind)) => format!("waiting for approval ({kind})"),
        (ModuleStatus::PendingApproval, None) => "waiting for approval".into(),
        (ModuleStatus::Invalid, _) => "invalid".into(),
    }
}

/// `text` with control characters (escape sequences, carriage returns) shown as `?`:
/// a module's description or file names cannot redraw what the approver reads.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() && c != '\n' { '?' } else { c })
        .collect()
}

fn line(m: &ModuleView) -> String {
    let mut s = format!(
        "{:<16} {:<34} v{:<8} {:<10} {}",
        m.name,
        status_text(m),
        m.version.as_deref().unwrap_or("-"),
        m.approved_trust_level
            .or(m.trust_level)
            .map(|l| l.as_str())
            .unwrap_or("-"),
        m.hash.as_deref().unwrap_or("-"),
    );
    if let Some(e) = &m.error {
        s.push_str(&format!("\n{:<16} {e}", ""));
    }
    s
}

fn details(m: &ModuleView) -> String {
    let mut out = format!("Module:      {}\nStatus:      {}\n", m.name, status_text(m));
    if let Some(e) = &m.error {
        out.push_str(&format!("Problem:     {e}\n"));
    }
    if let Some(v) = &m.version {
        out.push_str(&format!("Version:     {v}\n"));
    }
    if let Some(d) = &m.description {
        out.push_str(&format!("About:       {d}\n"));
    }
    if m.bundled {
        out.push_str("Bundled:     yes (shipped with Parachute)\n");
    }
    if let Some(l) = m.trust_level {
        out.push_str(&format!("Asks to run: {l}\n"));
    }
    if let Some(l) = m.approved_trust_level {
        out.push_str(&format!("Approved at: {l}\n"));
    }
    if !m.provides.is_empty() {
        out.push_str(&format!("Provides:    {}\n", m.provides.join(", ")));
    }
    let r = &m.requests;
    for (label, items) in [
        ("Skills", &r.skills),
        ("Sub-agents", &r.agents),
        ("MCP servers", &r.mcp_servers),
        ("Hooks", &r.hooks),
        ("Scheduled", &r.scheduled_agents),
    ] {
        if !items.is_empty() {
            out.push_str(&format!(
                "{:<13}{}\n",
                format!("{label}:"),
                items.join(", ")
            ));
        }
    }
    if let Some(h) = &m.current_hash {
        out.push_str(&format!("Hash:        {h}\n"));
    }
    if let (Some(k), true) = (&m.known_hash, m.status != ModuleStatus::Loaded) {
        out.push_str(&format!("Approved:    {k}\n"));
    }
    if let Some(c) = &m.changes {
        out.push_str("Changed since the last approval:\n");
        for (mark, list) in [("+", &c.added), ("~", &c.modified), ("-", &c.removed)] {
            for p in list {
                out.push_str(&format!("  {mark} {p}\n"));
            }
        }
    }
    out
}
