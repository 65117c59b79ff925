//! Chat: the session list (search, archived, paging) beside a conversation. The page
//! renders the list and the stored messages; the page's script sends messages to
//! `POST /api/chat`, reads the reply as it streams, re-attaches to a running turn after a
//! reload (and with `Last-Event-ID` after a dropped connection), and answers prompts
//! inline — all through the public API.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use leptos::prelude::*;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Deserialize;

use parachute_core::app::AppState;
use parachute_core::chat::transcript::{MessageRole, TranscriptMessage};
use parachute_core::db::{ListFilter, SessionRow};
use parachute_core::trust::os_sandbox;

use crate::keys::short_time;
use crate::shell;

/// Sessions per page of the list.
const PAGE: i64 = 50;

/// The list's query: `?q=…&archived=1&page=2`.
#[derive(Deserialize, Default)]
pub struct ListParams {
    #[serde(default)]
    q: String,
    #[serde(default)]
    archived: Option<String>,
    #[serde(default)]
    page: Option<String>,
}

impl ListParams {
    fn archived(&self) -> bool {
        matches!(self.archived.as_deref(), Some("1" | "true" | "on"))
    }
    /// The page number, from 1; anything unreadable is the first page.
    fn page(&self) -> i64 {
        self.page
            .as_deref()
            .and_then(|p| p.parse::<i64>().ok())
            .filter(|p| (1..=1_000_000).contains(p))
            .unwrap_or(1)
    }
    /// This list's query string with `page` replaced.
    fn href(&self, page: i64) -> String {
        let mut q = form_urlencoded_pairs(&[
            ("q", self.q.as_str()),
            ("archived", if self.archived() { "1" } else { "" }),
        ]);
        if page > 1 {
            q.push_str(&format!(
                "{}page={page}",
                if q.is_empty() { "" } else { "&" }
            ));
        }
        if q.is_empty() {
            "/ui/chat".into()
        } else {
            format!("/ui/chat?{q}")
        }
    }
}

/// `k=v&…` for the non-empty values, percent-encoded.
fn form_urlencoded_pairs(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Everything but RFC 3986's unreserved characters.
const RESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes a path segment or a query value.
fn encode(s: &str) -> String {
    utf8_percent_encode(s, RESERVED).to_string()
}

fn title_of(r: &SessionRow) -> String {
    r.title
        .clone()
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| "Untitled chat".into())
}

/// The session list with its search form, tabs and pager.
async fn session_list(s: &AppState, p: &ListParams, current: Option<&str>) -> impl IntoView {
    let filter = ListFilter {
        module: None,
        search: Some(p.q.trim().to_string()).filter(|q| !q.is_empty()),
        archived: p.archived(),
        workspace_id: None,
        // One more than a page tells whether an older page exists.
        limit: PAGE + 1,
        offset: (p.page() - 1) * PAGE,
    };
    let mut rows = s.store.list_sessions(&filter).await.unwrap_or_default();
    let more = rows.len() as i64 > PAGE;
    rows.truncate(PAGE as usize);
    let archived = p.archived();
    let items = if rows.is_empty() {
        let empty = if p.q.trim().is_empty() {
            "No chats here yet."
        } else {
            "No chat title matches."
        };
        view! { <li class="muted empty">{empty}</li> }.into_any()
    } else {
        rows.into_iter()
            .map(|r| {
                let href = format!("/ui/chat/{}", encode(&r.id));
                let here = (Some(r.id.as_str()) == current).then_some("page");
                let (action, label) = if archived {
                    ("unarchive", "Unarchive")
                } else {
                    ("archive", "Archive")
                };
                view! {
                    <li>
                        <a href=href aria-current=here>
                            <span class="title">{title_of(&r)}</span>
                            <span class="muted when">{short_time(&r.last_accessed)}</span>
                        </a>
                        <button type="button" class="small" data-session-action=action data-id=r.id.clone()
                            aria-label=format!("{label} {}", title_of(&r))>{label}</button>
                    </li>
                }
            })
            .collect_view()
            .into_any()
    };
    let page = p.page();
    let newer = (page > 1).then(|| view! { <a href=p.href(page - 1) rel="prev">"Newer"</a> });
    let older = more.then(|| view! { <a href=p.href(page + 1) rel="next">"Older"</a> });
    let (active_tab, archived_tab) = if archived {
        (None, Some("page"))
    } else {
        (Some("page"), None)
    };
    view! {
        <aside class="sessions" aria-label="Chats">
            <a class="button primary" href="/ui/chat">"New chat"</a>
            <form class="search" method="get" action="/ui/chat" role="search">
                <label for="q" class="visually-hidden">"Search chats"</label>
                <input id="q" name="q" type="search" value=p.q.clone() placeholder="Search chats"/>
                {archived.then(|| view! { <input type="hidden" name="archived" value="1"/> })}
                <button type="submit" class="small">"Search"</button>
            </form>
            <nav class="tabs" aria-label="Which chats">
                <a href="/ui/chat" aria-current=active_tab>"Active"</a>
                <a href="/ui/chat?archived=1" aria-current=archived_tab>"Archived"</a>
            </nav>
            <ul class="session-list">{items}</ul>
            <nav class="pager" aria-label="More chats">{newer}{older}</nav>
        </aside>
    }
}

/// The stored messages: the user's as text, Claude's as Markdown for the script to render.
fn messages_view(messages: Vec<TranscriptMessage>) -> impl IntoView {
    messages
        .into_iter()
        .map(|m| {
            let content = m.content;
            if m.role == MessageRole::User {
                view! { <li class="msg user"><div class="bubble">{content}</div></li> }.into_any()
            } else {
                view! { <li class="msg assistant"><div class="bubble"><div class="md">{content}</div></div></li> }
                    .into_any()
            }
        })
        .collect_view()
}

/// The choices a new chat offers: trust level, workspace, model.
async fn new_chat_options(s: &AppState) -> impl IntoView {
    let vault_missing = os_sandbox::missing_programs();
    let vault_label = if vault_missing.is_empty() {
        "vault: files in the vault only".to_string()
    } else {
        format!("vault (needs {})", vault_missing.join(" and "))
    };
    let workspaces = s
        .workspaces
        .list()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|w| view! { <option value=w.slug.clone()>{w.name}</option> })
        .collect_view();
    let default_model = s
        .settings
        .default_model
        .clone()
        .unwrap_or_else(|| "the CLI's default".into());
    view! {
        <fieldset class="options">
            <legend>"New chat"</legend>
            <label for="trust">"Trust level"</label>
            <select id="trust" name="trustLevel">
                <option value="">"full: everything the CLI can do"</option>
                <option value="vault">{vault_label}</option>
                <option value="sandboxed">"sandboxed: in a container"</option>
            </select>
            <label for="workspace">"Workspace"</label>
            <select id="workspace" name="workspaceId">
                <option value="">"None"</option>
                {workspaces}
            </select>
            <label for="model">"Model"</label>
            <select id="model" name="model">
                <option value="">{format!("Default ({default_model})")}</option>
                <option value="sonnet">"Sonnet"</option>
                <option value="opus">"Opus"</option>
                <option value="haiku">"Haiku"</option>
            </select>
        </fieldset>
    }
}

fn composer() -> impl IntoView {
    view! {
        <p class="status muted" id="turn-status" role="status" aria-live="polite"></p>
        <form id="composer" class="composer">
            <label for="message" class="visually-hidden">"Message"</label>
            <textarea id="message" name="message" rows="3" required
                placeholder="Message Claude (Enter sends, Shift+Enter for a new line)"></textarea>
            <div class="composer-actions">
                <button type="submit" id="send" class="primary">"Send"</button>
                <button type="button" id="abort" class="danger" hidden>"Stop"</button>
            </div>
        </form>
    }
}

/// The list's query; an unreadable one is the first page of active chats.
fn params(q: Result<Query<ListParams>, QueryRejection>) -> ListParams {
    q.map(|Query(p)| p).unwrap_or_default()
}

/// `GET /ui/chat`: the list and a new chat.
pub async fn list_page(
    State(s): State<AppState>,
    q: Result<Query<ListParams>, QueryRejection>,
) -> Response {
    let p = params(q);
    let list = session_list(&s, &p, None).await;
    let options = new_chat_options(&s).await;
    shell::page(
        "Chat",
        "chat",
        view! {
            <div class="chat" data-session="" data-active="0">
                {list}
                <section class="conversation" aria-labelledby="conv-h">
                    <h1 id="conv-h">"Chat"</h1>
                    {options}
                    <ol class="messages" id="messages" aria-live="polite"></ol>
                    {composer()}
                </section>
            </div>
        },
    )
}

/// `GET /ui/chat/{id}`: the list and one conversation.
pub async fn session_page(
    State(s): State<AppState>,
    Path(id): Path<String>,
    q: Result<Query<ListParams>, QueryRejection>,
) -> Response {
    let p = params(q);
    let running = s.chat.hub.active(&id).is_some();
    let row = match s.store.get_session(&id).await {
        Ok(Some(r)) => r,
        // A new chat's first turn can run before its row is stored (the CLI is still
        // starting): show it, and the page re-attaches to the turn.
        Ok(None) if running => SessionRow {
            id: id.clone(),
            title: Some("New chat".into()),
            ..SessionRow::default()
        },
        _ => return not_found(&s, &p, &id).await,
    };
    let messages = s.chat.stored_messages(&id).await;
    // A chat the store knows but whose transcript is not on this machine (imported, or
    // from another computer): say so rather than show an empty conversation.
    let missing = (messages.is_empty() && row.message_count.unwrap_or(0) > 0).then(|| {
        view! {
            <p class="note" id="no-transcript">"This chat's earlier messages are not stored on this machine. "
                "You can still continue it."</p>
        }
    });
    let active = if running { "1" } else { "0" };
    let list = session_list(&s, &p, Some(&id)).await;
    let title = title_of(&row);
    let trust = row.trust_level.clone().unwrap_or_else(|| "full".into());
    let model = row.model.clone().unwrap_or_else(|| "default model".into());
    let archived = row.archived.unwrap_or(0) != 0;
    shell::page(
        &title,
        "chat",
        view! {
            <div class="chat" data-session=id.clone() data-active=active>
                {list}
                <section class="conversation" aria-labelledby="conv-h">
                    <h1 id="conv-h">{title.clone()}</h1>
                    <p class="muted meta">{format!("Trust level {trust} · {model}")}
                        {archived.then_some(" · archived")}</p>
                    {missing}
                    <ol class="messages" id="messages" aria-live="polite">{messages_view(messages)}</ol>
                    {composer()}
                </section>
            </div>
        },
    )
}

async fn not_found(s: &AppState, p: &ListParams, id: &str) -> Response {
    let list = session_list(s, p, None).await;
    let mut r = shell::page(
        "Chat not found",
        "chat",
        view! {
            <div class="chat" data-session="" data-active="0">
                {list}
                <section class="conversation">
                    <h1>"Chat not found"</h1>
                    <p>{format!("There is no chat with the id {id}. It may have been deleted.")}</p>
                    <p><a href="/ui/chat">"Start a new chat"</a></p>
                </section>
            </div>
        },
    );
    *r.status_mut() = axum::http::StatusCode::NOT_FOUND;
    r.into_response()
}

#[cfg(test)]
mod tests {
    use super::ListParams;

    #[test]
    fn list_links_keep_the_search_and_tab() {
        let p = ListParams {
            q: "a b&c".into(),
            archived: Some("1".into()),
            page: Some("2".into()),
        };
        assert_eq!(p.page(), 2);
        assert_eq!(p.href(3), "/ui/chat?q=a%20b%26c&archived=1&page=3");
        assert_eq!(p.href(1), "/ui/chat?q=a%20b%26c&archived=1");
        let bad = ListParams {
            page: Some("-4".into()),
            ..Default::default()
        };
        assert_eq!((bad.page(), bad.href(1)), (1, "/ui/chat".to_string()));
    }
}
