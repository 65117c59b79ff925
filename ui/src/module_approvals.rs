//! The modules part of the Approvals screen: each module waiting for approval with what
//! it provides and asks for and what changed since its last approval, approved at a
//! chosen level (never above the one it asks for) through the public API
//! (`POST /api/modules/{name}/approve`, bound to the hash shown); invalid modules with
//! their reason; the enabled ones by name.

use leptos::prelude::*;

use parachute_core::trust::TrustLevel;
use parachute_extensions::{ModuleStatus, ModuleView};

fn list_line(label: &'static str, items: &[String]) -> Option<impl IntoView> {
    (!items.is_empty())
        .then(|| view! { <li><span class="muted">{label}": "</span>{items.join(", ")}</li> })
}

fn changes(m: &ModuleView) -> Option<impl IntoView> {
    let c = m.changes.as_ref()?;
    let lines: Vec<String> = [
        ("added", &c.added),
        ("changed", &c.modified),
        ("removed", &c.removed),
    ]
    .into_iter()
    .flat_map(|(kind, files)| files.iter().map(move |f| format!("{kind}: {f}")))
    .take(50)
    .collect();
    let items = lines
        .into_iter()
        .map(|l| view! { <li><code>{l}</code></li> })
        .collect_view();
    Some(view! {
        <p class="muted">"Changed since you last approved it:"</p>
        <ul class="module-changes">{items}</ul>
    })
}

fn waiting_row(m: ModuleView) -> impl IntoView {
    let asked = m.trust_level.unwrap_or(TrustLevel::Vault);
    let select_id = format!("module-level-{}", m.name);
    let options = [TrustLevel::Full, TrustLevel::Vault, TrustLevel::Sandboxed]
        .into_iter()
        .filter(|l| *l >= asked)
        .map(|l| {
            let selected = l == asked;
            view! { <option value=l.as_str() selected=selected>{l.as_str()}</option> }
        })
        .collect_view();
    let what = match m.approval {
        Some("modified") => "changed since its approval",
        _ => "new",
    };
    let about = m.description.clone().unwrap_or_default();
    let version = m
        .version
        .clone()
        .map(|v| format!(" v{v}"))
        .unwrap_or_default();
    let r = &m.requests;
    let asks = view! {
        <ul class="module-asks">
            <li><span class="muted">"Runs at: "</span>{asked.as_str()}</li>
            {list_line("Provides", &m.provides)}
            {list_line("Skills", &r.skills)}
            {list_line("Sub-agents", &r.agents)}
            {list_line("MCP servers", &r.mcp_servers)}
            {list_line("Hooks", &r.hooks)}
            {list_line("Scheduled agents", &r.scheduled_agents)}
        </ul>
    };
    let changed = changes(&m);
    let (name1, name2, sid) = (m.name.clone(), m.name.clone(), select_id.clone());
    view! {
        <li class="module-row" data-module=name1>
            <div class="key-main"><strong>{m.name.clone()}</strong><span class="muted">{version}" · "{what}" · hash "{m.hash.clone().unwrap_or_default()}</span></div>
            <p>{about}</p>
            {asks}
            {changed}
            <div class="inline-form">
                <label for=sid>"Trust level"</label>
                <select id=select_id name="trust_level">{options}</select>
                <button type="button" data-approve-module=name2 data-hash=m.current_hash.unwrap_or_default()>"Approve"</button>
            </div>
        </li>
    }
}

fn invalid_row(m: ModuleView) -> impl IntoView {
    view! {
        <li class="module-row">
            <div class="key-main"><strong>{m.name}</strong><span class="muted">" · cannot be used"</span></div>
            <p class="field-error">{m.error.unwrap_or_default()}</p>
        </li>
    }
}

/// The section for `modules` (or the reason they cannot be read).
pub fn section(modules: Result<Vec<ModuleView>, String>) -> impl IntoView {
    let body = match modules {
        Err(e) => {
            view! { <p class="field-error" role="alert">"The modules cannot be read: "{e}</p> }
                .into_any()
        }
        Ok(list) => {
            let enabled: Vec<String> = list
                .iter()
                .filter(|m| m.status == ModuleStatus::Loaded)
                .map(|m| m.name.clone())
                .collect();
            let waiting: Vec<ModuleView> = list
                .iter()
                .filter(|m| m.status == ModuleStatus::PendingApproval)
                .cloned()
                .collect();
            let invalid: Vec<ModuleView> = list
                .into_iter()
                .filter(|m| m.status == ModuleStatus::Invalid)
                .collect();
            let waiting_view = if waiting.is_empty() {
                view! { <p class="muted" id="no-modules">"No module waits for approval."</p> }
                    .into_any()
            } else {
                let rows = waiting.into_iter().map(waiting_row).collect_view();
                view! { <ul class="keys" id="modules">{rows}</ul> }.into_any()
            };
            let invalid_view = (!invalid.is_empty()).then(|| {
                let rows = invalid.into_iter().map(invalid_row).collect_view();
                view! { <ul class="keys">{rows}</ul> }
            });
            let enabled_text = if enabled.is_empty() {
                "none".to_string()
            } else {
                enabled.join(", ")
            };
            view! {
                {waiting_view}
                {invalid_view}
                <p class="muted" id="modules-enabled">"Enabled: "{enabled_text}</p>
            }
            .into_any()
        }
    };
    view! {
        <section class="card" aria-labelledby="modules-h">
            <h2 id="modules-h">"Vault modules"</h2>
            <p>"A module in "<code>".modules/"</code>" hands skills, sub-agents and MCP servers to your agent, and may run hooks and scheduled agents. A new or changed one stays off until you approve it as it is now."</p>
            {body}
            <p class="field-error" id="modules-error" role="alert" hidden></p>
            <p class="ok" id="modules-done" role="status" hidden></p>
        </section>
    }
}
