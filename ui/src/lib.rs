//! Parachute's web UI: pages rendered on the server with Leptos (no wasm: the HTML is
//! complete when it arrives), a stylesheet embedded in the binary, and later a little
//! plain JavaScript for the live parts. Mounted by the API crate under `/ui/`, behind
//! the same auth layer as the API; pages read the same core services the API handlers
//! call.

#![warn(missing_docs)]

mod approvals;
mod chat;
mod dashboard;
mod keys;
mod module_approvals;
mod prompt;
mod settings;
mod setup;
mod shell;

pub use prompt::key_prompt;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use parachute_core::app::AppState;

/// Where the UI lives.
pub const BASE: &str = "/ui/";

/// The stylesheet, embedded so the UI works offline from a clean clone.
const APP_CSS: &str = include_str!("../assets/app.css");
/// The page script: the API key, page loads with it, and each screen's live parts.
const APP_JS: &str = include_str!("../assets/app.js");
/// The Markdown renderer for Claude's replies (escapes everything; no raw HTML).
const MARKDOWN_JS: &str = include_str!("../assets/markdown.js");
/// The icon (a parachute), embedded too.
const ICON_SVG: &str = include_str!("../assets/icon.svg");

/// The UI's routes: the screens and their assets.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/ui",
            get(|| async { axum::response::Redirect::permanent(BASE) }),
        )
        .route("/ui/", get(dashboard::page))
        .route("/ui/chat", get(chat::list_page))
        .route("/ui/chat/{id}", get(chat::session_page))
        .route("/ui/approvals", get(approvals::page))
        .route("/ui/keys", get(keys::page))
        .route("/ui/settings", get(settings::page))
        .route("/ui/setup", get(setup::page))
        .route(
            "/ui/assets/app.js",
            get(|| asset(APP_JS, "text/javascript; charset=utf-8")),
        )
        .route(
            "/ui/assets/markdown.js",
            get(|| asset(MARKDOWN_JS, "text/javascript; charset=utf-8")),
        )
        .route(
            "/ui/assets/app.css",
            get(|| asset(APP_CSS, "text/css; charset=utf-8")),
        )
        .route(
            "/ui/assets/icon.svg",
            get(|| asset(ICON_SVG, "image/svg+xml")),
        )
}

async fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    r
}

/// Whether a request comes from a browser navigating (it asks for HTML first).
pub fn wants_html(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| {
            a.split(',')
                .next()
                .unwrap_or("")
                .trim()
                .starts_with("text/html")
        })
}
