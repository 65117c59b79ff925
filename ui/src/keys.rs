//! Devices & keys: the auth mode, the API keys (label, creation, last use; never the
//! keys), and a form that creates one and shows it once with a QR code for the mobile
//! app. Creating, revoking and changing the mode go through the public API from the
//! page's script (`/api/auth/keys`, `/api/auth/settings`).

use axum::extract::State;
use axum::response::Response;
use leptos::prelude::*;

use parachute_core::app::AppState;
use parachute_core::auth::AuthMode;
use parachute_core::util::net::lan_url;

use crate::shell;

/// `2026-12-01T10:20:30.123456` → `2026-12-01 10:20`.
pub(crate) fn short_time(t: &str) -> String {
    t.get(..16).unwrap_or(t).replace('T', " ")
}

/// `GET /ui/keys`.
pub async fn page(State(s): State<AppState>) -> Response {
    let mode = s.auth.mode();
    let (url, lan) = lan_url(&s.settings.host, s.settings.port);
    let reach = if lan {
        view! { <p class="muted">"Phones on this network reach Parachute at "<code>{url}</code>"."</p> }.into_any()
    } else {
        view! {
            <p class="note">"Parachute listens on this machine only ("<code>{url}</code>"), so the mobile app "
               "cannot reach it yet. Set the host to "<code>"0.0.0.0"</code>" in "<a href="/ui/settings">"Settings"</a>" and restart."</p>
        }
        .into_any()
    };
    let modes = [
        (
            AuthMode::Remote,
            "remote: other devices need a key, this machine does not",
        ),
        (AuthMode::Always, "always: every request needs a key"),
        (
            AuthMode::Disabled,
            "disabled: no keys (only while listening on this machine only)",
        ),
    ]
    .into_iter()
    .map(|(m, label)| {
        view! { <option value=m.as_str() selected={m == mode}>{label}</option> }
    })
    .collect_view();
    let keys = s.auth.list();
    let rows = if keys.is_empty() {
        view! { <p class="muted" id="no-keys">"No keys yet."</p> }.into_any()
    } else {
        let rows = keys
            .into_iter()
            .map(|k| {
                let last = k
                    .last_used_at
                    .as_deref()
                    .map(short_time)
                    .unwrap_or_else(|| "never".into());
                let (id, id2, id3) = (k.id.clone(), k.id.clone(), k.id.clone());
                view! {
                    <li class="key-row" data-key-id=id2>
                        <div class="key-main">
                            <strong>{k.label}</strong>
                            <span class="muted">" "{id3}</span>
                        </div>
                        <div class="muted">"Created "{short_time(&k.created_at)}" · last used "{last}</div>
                        <button type="button" class="danger" data-revoke=id>"Revoke"</button>
                    </li>
                }
            })
            .collect_view();
        view! { <ul class="keys" id="keys">{rows}</ul> }.into_any()
    };
    shell::page(
        "Devices & keys",
        "keys",
        view! {
            <h1>"Devices & keys"</h1>
            <section class="card" aria-labelledby="new-h">
                <h2 id="new-h">"Connect a device"</h2>
                <p>"Create a key for each phone or computer. The key is shown once, with a QR code the Parachute app can scan."</p>
                {reach}
                <form id="create-key" class="inline-form">
                    <label for="key-label">"Device name"</label>
                    <input id="key-label" name="label" maxlength="100" required placeholder="e.g. My phone" autocomplete="off"/>
                    <button type="submit">"Create key"</button>
                </form>
                <p class="field-error" id="create-error" role="alert" hidden></p>
                <div id="new-key" class="new-key" hidden>
                    <p><strong>"Copy this key now: it will not be shown again."</strong></p>
                    <p><code id="new-key-value" class="secret"></code></p>
                    <p class="muted" id="new-key-server"></p>
                    <img id="new-key-qr" alt="QR code with the server address and the key, for the Parachute app" width="240" height="240"/>
                </div>
            </section>
            <section class="card" aria-labelledby="keys-h">
                <h2 id="keys-h">"Keys"</h2>
                {rows}
                <p class="field-error" id="revoke-error" role="alert" hidden></p>
            </section>
            <section class="card" aria-labelledby="mode-h">
                <h2 id="mode-h">"Who needs a key"</h2>
                <form id="auth-mode" class="inline-form">
                    <label for="mode">"Auth mode"</label>
                    <select id="mode" name="require_auth">{modes}</select>
                    <button type="submit">"Save"</button>
                </form>
                <p class="field-error" id="mode-error" role="alert" hidden></p>
                <p class="ok" id="mode-saved" role="status" hidden>"Saved."</p>
            </section>
        },
    )
}
