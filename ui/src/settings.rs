//! Settings: the values people change most, each saved through `PUT /api/settings` with
//! refusals shown next to the field, and the Claude credential, which can be set or
//! cleared but is never shown (`/api/settings/claude-credential`).

use axum::extract::State;
use axum::response::Response;
use leptos::prelude::*;

use parachute_core::app::AppState;
use parachute_core::config::{setting_views, SettingView};

use crate::shell;

/// The settings on this screen, in order: (key, label, input type).
const FIELDS: &[(&str, &str, &str)] = &[
    ("vault_path", "Vault folder", "text"),
    ("host", "Listen on (host)", "text"),
    ("port", "Port", "number"),
    ("default_model", "Default model", "text"),
    ("warm_pool_size", "Warm CLI processes", "number"),
    (
        "warm_idle_secs",
        "Keep an idle CLI warm for (seconds)",
        "number",
    ),
    ("max_cli_processes", "Most CLI processes at once", "number"),
    (
        "model_timeout_secs",
        "Model answer timeout (seconds)",
        "number",
    ),
];

fn field(v: &SettingView, label: &'static str, kind: &'static str) -> impl IntoView {
    let id = format!("s-{}", v.key);
    let err = format!("err-{}", v.key);
    let shown = v.saved.clone().unwrap_or_else(|| v.value.clone());
    let pending = v.saved.as_ref().map(|_| {
        view! { <p class="note">"Saved; in force after the next start (now: "<code>{v.value.clone()}</code>")."</p> }
    });
    let hint = format!("{} · from {}", v.description, v.source.as_str());
    view! {
        <div class="field" data-key=v.key>
            <label for=id.clone()>{label}</label>
            <input id=id name=v.key type=kind value=shown.clone() data-initial=shown
                aria-describedby=err.clone() autocomplete="off"/>
            <p class="hint">{hint}</p>
            {pending}
            <p class="field-error" id=err role="alert" hidden></p>
        </div>
    }
}

/// What the credential is now, in words (never its value).
pub(crate) async fn credential_state(s: &AppState) -> String {
    match s.secrets.claude_credential().await {
        Ok(Some(c)) => format!("Set: {} (in the {}).", c.kind.label(), c.location.as_str()),
        Ok(None) => "Not set: chats cannot run until it is.".to_string(),
        Err(e) => format!("Cannot be read: {e}"),
    }
}

/// The write-only credential form (saved by the page script through the API).
pub(crate) fn credential_form(state: String) -> impl IntoView {
    view! {
    <form id="credential" class="card" aria-labelledby="cred-h" autocomplete="off">
        <h2 id="cred-h">"Claude credential"</h2>
        <p id="credential-state">{state}</p>
        <p class="muted">"An OAuth token from "<code>"claude setup-token"</code>" or an Anthropic API key. "
            "It is stored in the OS keychain (or a private file) and never shown again."</p>
        <div class="field">
            <label for="token">"New token or key"</label>
            <input id="token" type="password" autocomplete="new-password"
                aria-describedby="err-token" spellcheck="false"/>
            <p class="field-error" id="err-token" role="alert" hidden></p>
        </div>
        <div class="actions">
            <button type="submit">"Save credential"</button>
            <button type="button" id="clear-credential" class="danger">"Remove stored credential"</button>
        </div>
    </form>
    }
}

/// The desktop app's "Start at login" (saved through `/api/desktop/login-item`).
fn login_item(s: &AppState) -> impl IntoView {
    let body = match s.desktop.get().map(|d| d.login_item()) {
        Some(Ok(on)) => view! {
            <div class="field checkbox">
                <label for="login-item">
                    <input id="login-item" type="checkbox" checked=on aria-describedby="err-login-item"/>
                    " Start Parachute when I log in"
                </label>
                <p class="field-error" id="err-login-item" role="alert" hidden></p>
            </div>
        }
        .into_any(),
        Some(Err(e)) => view! { <p class="field-error">{format!("The login item cannot be read: {e}")}</p> }
            .into_any(),
        None => view! {
            <p class="muted">"Start at login is a setting of the desktop app (in its tray menu and here, "
                "when this page is opened from it)."</p>
        }
        .into_any(),
    };
    view! {
        <section class="card" aria-labelledby="desktop-h">
            <h2 id="desktop-h">"Desktop app"</h2>
            {body}
        </section>
    }
}

/// `GET /ui/settings`.
pub async fn page(State(s): State<AppState>) -> Response {
    let current = s.settings.clone();
    let views = tokio::task::spawn_blocking(move || setting_views(&current))
        .await
        .unwrap_or_default();
    let fields = FIELDS
        .iter()
        .filter_map(|(key, label, kind)| {
            let v = views.iter().find(|v| v.key == *key)?;
            Some(field(v, label, kind))
        })
        .collect_view();
    let credential = credential_state(&s).await;
    shell::page(
        "Settings",
        "settings",
        view! {
            <h1>"Settings"</h1>
            <form id="settings" class="card" aria-labelledby="server-h" novalidate>
                <h2 id="server-h">"Server"</h2>
                <p class="muted">"Saved to "<code>{s.settings.paths.vault_config_file().display().to_string()}</code>
                    ". Changes take effect when Parachute next starts."</p>
                {fields}
                <div class="actions">
                    <button type="submit">"Save settings"</button>
                    <p class="ok" id="settings-saved" role="status" hidden></p>
                    <p class="field-error" id="settings-error" role="alert" hidden></p>
                </div>
            </form>
            {credential_form(credential)}
            {login_item(&s)}
            <section class="card" aria-labelledby="bots-h">
                <h2 id="bots-h">"Bots"</h2>
                <p>"Telegram and Discord bots are configured in "<code>".parachute/bots.yaml"</code>" (tokens go to the secrets store), with "<code>"PUT /api/bots/config"</code>" or the Parachute app; "<code>"parachute bot status"</code>" shows how they run. People waiting for access are on the "<a href="/ui/approvals">"Approvals"</a>" screen."</p>
            </section>
        },
    )
}
