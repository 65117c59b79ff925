//! Approvals: pairing requests from bot users waiting for the owner, each with the
//! first message they sent, approved at a chosen trust level or denied; and vault
//! modules waiting for approval ([`crate::module_approvals`]). Deciding goes through
//! the public API from the page's script (`/api/bots/pairing/{id}/…`,
//! `/api/modules/{name}/approve`).

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use leptos::prelude::*;
use serde_json::Value;

use parachute_core::app::AppState;
use parachute_core::sessions::metadata_object;
use parachute_extensions::Extensions;

use crate::keys::short_time;
use crate::shell;

struct Request {
    id: String,
    platform: String,
    who: String,
    user_id: String,
    asked: String,
    first_message: String,
}

async fn pending(s: &AppState) -> Result<Vec<Request>, String> {
    let rows = s
        .store
        .pending_pairings()
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows.into_iter().take(200) {
        // The first message lives on the pending session the request created.
        let first_message = match s
            .store
            .latest_linked_session(&r.platform, &r.platform_chat_id)
            .await
        {
            Ok(Some(sess)) => metadata_object(&sess)
                .get("first_message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            _ => String::new(),
        };
        out.push(Request {
            who: r
                .platform_user_display
                .clone()
                .unwrap_or_else(|| "someone".into()),
            user_id: r.platform_user_id,
            asked: short_time(&r.created_at),
            platform: r.platform,
            id: r.id,
            first_message,
        });
    }
    Ok(out)
}

fn row(r: Request) -> impl IntoView {
    let level_id = format!("level-{}", r.id);
    let (id1, id2, id3, lid) = (r.id.clone(), r.id.clone(), r.id.clone(), level_id.clone());
    let message = (!r.first_message.is_empty())
        .then(|| view! { <blockquote class="first-message">{r.first_message}</blockquote> });
    view! {
        <li class="pairing-row" data-pairing-id=id1>
            <div class="key-main"><strong>{r.who}</strong><span class="muted">" on "{r.platform}" · user "{r.user_id}" · asked "{r.asked}</span></div>
            {message}
            <div class="inline-form">
                <label for=lid>"Trust level"</label>
                <select id=level_id name="trust_level">
                    <option value="sandboxed">"sandboxed: in a container"</option>
                    <option value="vault" selected=true>"vault: confined to the vault"</option>
                    <option value="full">"full: like you"</option>
                </select>
                <button type="button" data-approve=id2>"Approve"</button>
                <button type="button" class="danger" data-deny=id3>"Deny"</button>
            </div>
        </li>
    }
}

/// `GET /ui/approvals`.
pub async fn page(State(s): State<AppState>, ext: Option<Extension<Arc<Extensions>>>) -> Response {
    let modules = match ext {
        Some(Extension(ext)) => tokio::task::spawn_blocking(move || ext.modules.list())
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string())),
        None => Ok(Vec::new()),
    };
    let list = match pending(&s).await {
        Ok(v) if v.is_empty() => view! { <p class="muted" id="no-requests">"Nobody is waiting. When someone who is not on a bot's allowlist writes to it, their request appears here."</p> }.into_any(),
        Ok(v) => {
            let rows = v.into_iter().map(row).collect_view();
            view! { <ul class="keys" id="pairing">{rows}</ul> }.into_any()
        }
        Err(e) => view! { <p class="field-error" role="alert">"The requests cannot be read: "{e}</p> }.into_any(),
    };
    shell::page(
        "Approvals",
        "approvals",
        view! {
            <h1>"Approvals"</h1>
            <section class="card" aria-labelledby="pairing-h">
                <h2 id="pairing-h">"Bot users waiting"</h2>
                <p>"Approving lets the person talk to your agent from Telegram or Discord at the trust level you choose; they are told. Denying archives their request."</p>
                {list}
                <p class="field-error" id="pairing-error" role="alert" hidden></p>
                <p class="ok" id="pairing-done" role="status" hidden></p>
            </section>
            {crate::module_approvals::section(modules)}
        },
    )
}
