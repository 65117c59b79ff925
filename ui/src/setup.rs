//! First run: where the vault is (the server creates it when it first starts) and the
//! one thing Parachute cannot do without, the Claude credential. The desktop app opens
//! its window here while no credential is set.

use axum::extract::State;
use axum::response::Response;
use leptos::prelude::*;

use parachute_core::app::AppState;

use crate::settings::{credential_form, credential_state};
use crate::shell;

/// `GET /ui/setup`.
pub async fn page(State(s): State<AppState>) -> Response {
    let vault = s.settings.paths.vault.display().to_string();
    let state = credential_state(&s).await;
    shell::page(
        "Welcome",
        "setup",
        view! {
            <h1>"Welcome to Parachute"</h1>
            <section class="card" aria-labelledby="vault-h">
                <h2 id="vault-h">"Your vault"</h2>
                <p>"Parachute keeps your notes and chats in "<code>{vault}</code>
                   ". It is an ordinary folder of Markdown files: open it with any editor. "
                   "Another folder can be chosen in "<a href="/ui/settings">"Settings"</a>"."</p>
            </section>
            {credential_form(state)}
            <p><a class="button primary" href="/ui/">"Open the dashboard"</a></p>
        },
    )
}
