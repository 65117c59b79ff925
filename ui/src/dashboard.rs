//! The dashboard: what runs, on which vault, how to reach it, and everything that needs
//! the owner's attention, each with what to do about it.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use leptos::prelude::*;

use parachute_core::app::AppState;
use parachute_core::trust::os_sandbox;
use parachute_extensions::{Extensions, ModuleStatus};

use crate::shell;

/// Something the owner should act on: what is wrong and what fixes it.
struct Attention {
    what: String,
    fix: String,
    /// The screen where it is fixed, if the UI has one.
    link: Option<(&'static str, &'static str)>,
}

/// Text in which `backticked` parts are commands, shown as code.
fn prose(text: String) -> impl IntoView {
    text.split('`')
        .enumerate()
        .map(|(i, part)| {
            let part = part.to_string();
            if i % 2 == 1 {
                view! { <code>{part}</code> }.into_any()
            } else {
                part.into_any()
            }
        })
        .collect_view()
}

/// One line of a status card.
fn row(label: &'static str, value: String) -> impl IntoView {
    view! { <div class="row"><dt>{label}</dt><dd>{value}</dd></div> }
}

fn uptime(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 86_400 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        s => format!("{} d {} h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// Whether `program` (a name or a path) can be run.
fn runnable(program: &std::path::Path) -> bool {
    if program.components().count() > 1 {
        return program.is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

/// Bot users waiting for the owner's decision, as an attention item.
fn pairing_attention(waiting: usize) -> Option<Attention> {
    (waiting > 0).then(|| Attention {
        what: format!(
            "{waiting} bot user{} waiting for your approval.",
            if waiting == 1 { " is" } else { "s are" }
        ),
        fix: "Approve them at a trust level, or deny them.".into(),
        link: Some(("/ui/approvals", "Review requests")),
    })
}

/// Modules waiting for the owner's approval, as an attention item.
fn modules_attention(waiting: usize) -> Option<Attention> {
    (waiting > 0).then(|| Attention {
        what: format!(
            "{waiting} vault module{} waiting for your approval (new or changed).",
            if waiting == 1 { " is" } else { "s are" }
        ),
        fix:
            "Look at what each provides and asks for, then approve it, or remove it from .modules/."
                .into(),
        link: Some(("/ui/approvals", "Review modules")),
    })
}

/// "N enabled, M waiting" for the modules, adding an attention item for those waiting.
async fn modules_summary(
    ext: Option<Extension<Arc<Extensions>>>,
    attention: &mut Vec<Attention>,
) -> String {
    let list = match ext {
        Some(Extension(ext)) => tokio::task::spawn_blocking(move || ext.modules.list())
            .await
            .ok()
            .and_then(Result::ok),
        None => None,
    };
    let Some(list) = list else {
        return "cannot be read.".to_string();
    };
    let enabled = list
        .iter()
        .filter(|m| m.status == ModuleStatus::Loaded)
        .count();
    let pending = list
        .iter()
        .filter(|m| m.status == ModuleStatus::PendingApproval)
        .count();
    attention.extend(modules_attention(pending));
    format!("{enabled} enabled, {pending} waiting for approval.")
}

/// Bots and modules, and what is not in this version yet.
fn later_card(waiting: usize, modules: &str) -> impl IntoView {
    view! {
        <section class="card" aria-labelledby="more-h">
            <h2 id="more-h">"Bots, modules, scheduler, hooks"</h2>
            <p>"Telegram and Discord: set them up in "<code>".parachute/bots.yaml"</code>" or with "<code>"parachute bot"</code>"; "
               {format!("{waiting} pairing request{} waiting.", if waiting == 1 { "" } else { "s" })}</p>
            <p>"Modules: "{modules.to_string()}</p>
            <p class="muted">"The scheduler and hooks are not in this version yet."</p>
        </section>
    }
}

/// The attention items, each with its fix and, where the UI has one, a link to it.
fn attention_list(attention: Vec<Attention>) -> AnyView {
    if attention.is_empty() {
        view! { <p class="ok">"Nothing needs your attention."</p> }.into_any()
    } else {
        let items = attention
            .into_iter()
            .map(|a| {
                let link = a.link.map(|(href, text)| view! { " "<a href=href>{text}</a> });
                view! { <li><strong>{prose(a.what)}</strong>" "<span>{prose(a.fix)}</span>{link}</li> }
            })
            .collect_view();
        view! { <ul class="attention">{items}</ul> }.into_any()
    }
}

/// `GET /ui/`.
pub async fn page(State(s): State<AppState>, ext: Option<Extension<Arc<Extensions>>>) -> Response {
    let settings = s.settings.clone();
    let mut attention = Vec::new();

    let credential = match s.secrets.claude_credential().await {
        Ok(Some(c)) => format!("{} ({})", c.kind.label(), c.location.as_str()),
        Ok(None) => {
            attention.push(Attention {
                what: "No Claude credential: chats cannot run.".into(),
                fix: "Paste an OAuth token from `claude setup-token` (or an API key) in Settings, or run `parachute setup-token` on this machine.".into(),
                link: Some(("/ui/settings#credential", "Set the credential")),
            });
            "not set".into()
        }
        Err(e) => format!("cannot be read: {e}"),
    };
    let cli = settings.claude_cli_path.display().to_string();
    let cli_state = if runnable(&settings.claude_cli_path) {
        format!("{cli} (found)")
    } else {
        attention.push(Attention {
            what: format!("The Claude CLI `{cli}` is not installed."),
            fix: "Install it with `npm install -g @anthropic-ai/claude-code`, or set claude_cli_path.".into(),
            link: None,
        });
        format!("{cli} (not found)")
    };
    let vault_level = match os_sandbox::missing_programs() {
        m if m.is_empty() => "available (OS sandbox)".to_string(),
        m => {
            attention.push(Attention {
                what: "Sessions at trust level 'vault' cannot run: the OS sandbox is missing."
                    .into(),
                fix: os_sandbox::missing_message(&m),
                link: None,
            });
            format!("needs {}", m.join(" and "))
        }
    };
    let docker = parachute_sandbox::engine::status(&settings.sandbox_image).await;
    let sandboxed = match (docker.available, docker.image_exists) {
        (true, true) => "available (Docker)".to_string(),
        (true, false) => {
            attention.push(Attention {
                what: format!(
                    "Sessions at 'sandboxed' cannot run: the image {} is missing.",
                    settings.sandbox_image
                ),
                fix: "Run `parachute sandbox build` (it is built offline; nothing is pulled)."
                    .into(),
                link: None,
            });
            "image missing".into()
        }
        _ => "no Docker engine answers".into(),
    };
    let waiting = s
        .store
        .pending_pairings()
        .await
        .map(|p| p.len())
        .unwrap_or(0);
    attention.extend(pairing_attention(waiting));
    let modules_text = modules_summary(ext, &mut attention).await;
    let sessions = match s.store.session_stats().await {
        Ok(st) => format!("{} ({} archived)", st.total, st.archived),
        Err(e) => format!("unavailable: {e}"),
    };

    let server = view! {
        <section class="card" aria-labelledby="server-h">
            <h2 id="server-h">"Server"</h2>
            <dl>
                {row("Version", env!("CARGO_PKG_VERSION").to_string())}
                {row("Up for", uptime(s.started.elapsed().as_secs()))}
                {row("Vault", settings.paths.vault.display().to_string())}
                {row("Listening on", format!("{}:{}", settings.host, settings.port))}
                {row("Auth mode", s.auth.mode().as_str().to_string())}
                {row("Sessions", sessions)}
            </dl>
        </section>
    };
    let agent = view! {
        <section class="card" aria-labelledby="agent-h">
            <h2 id="agent-h">"Claude"</h2>
            <dl>
                {row("CLI", cli_state)}
                {row("Credential", credential)}
                {row("Default model", settings.default_model.clone().unwrap_or_else(|| "the CLI's default".into()))}
            </dl>
        </section>
    };
    let trust = view! {
        <section class="card" aria-labelledby="trust-h">
            <h2 id="trust-h">"Trust levels"</h2>
            <dl>
                {row("full", "available".to_string())}
                {row("vault", vault_level)}
                {row("sandboxed", sandboxed)}
            </dl>
        </section>
    };
    let later = later_card(waiting, &modules_text);
    let attention_view = attention_list(attention);
    shell::page(
        "Dashboard",
        "dashboard",
        view! {
            <h1>"Dashboard"</h1>
            <section class="card" aria-labelledby="attn-h">
                <h2 id="attn-h">"Needs attention"</h2>
                {attention_view}
            </section>
            <div class="grid">{server}{agent}{trust}{later}</div>
        },
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn uptime_reads_like_a_person_would_say_it() {
        assert_eq!(super::uptime(42), "42 s");
        assert_eq!(super::uptime(3 * 3600 + 120), "3 h 2 min");
        assert_eq!(super::uptime(2 * 86_400 + 3600), "2 d 1 h");
    }
}
