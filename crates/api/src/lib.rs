#![warn(missing_docs)]
//! The HTTP API of Parachute over `parachute-core`: one file per route
//! group, merged here with the auth middleware, CORS, the body limit and the panic
//! guard; errors mapped to the contract's statuses in one place ([`error`]). The
//! OpenAPI document is collected from the handlers' `#[utoipa::path]` annotations, so
//! a route cannot exist without appearing in `/api/openapi.json`.
//!
//! [`serve`] runs the whole server from settings (the daemon); [`serve_with`] serves
//! an opened state on a given listener until a shutdown future resolves (tests and the
//! tray app embed it that way).

mod auth;
pub mod auth_layer;
mod bots;
mod brain;
mod chat;
mod claude_code;
mod contexts;
mod daily;
mod desktop;
mod docs;
pub mod error;
pub mod extract;
mod files;
mod health;
mod hooks;
mod imports;
mod mcps;
mod modules;
mod prompt_preview;
mod sandbox;
mod scheduler;
pub mod server;
mod sessions;
mod settings;
mod skills;
mod sync;
mod usage;
mod workspaces;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::IntoResponse;
use axum::{Extension, Json, Router};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use extract::BodyLimit;
use parachute_core::app::AppState;

pub use server::{serve, serve_with};

#[derive(OpenApi)]
#[openapi(
    paths(brain::entity),
    info(title = "Parachute", description = "Parachute server API: chat sessions, auth, workspaces."),
    tags(
        (name = "health", description = "Server info and health"),
        (name = "chat", description = "Agent turns streamed as SSE"),
        (name = "sessions", description = "Chat sessions (`/api/chat…`)"),
        (name = "auth", description = "API keys and the auth mode"),
        (name = "workspaces", description = "Workspaces"),
        (name = "files", description = "Vault browsing, reading and writing"),
        (name = "contexts", description = "Context folders"),
        (name = "prompts", description = "Prompt preview"),
        (name = "sync", description = "File sync for the mobile app"),
        (name = "claude-code", description = "Import sessions from Claude Code"),
        (name = "imports", description = "Claude.ai and ChatGPT imports"),
        (name = "daily", description = "Journal entries, and the daily agents the app shows"),
        (name = "scheduler", description = "Scheduled agents: their schedules, runs and history"),
        (name = "modules", description = "Vault modules: approval, and the module folders' prompts"),
        (name = "brain", description = "Search over the vault's entities"),
        (name = "skills", description = "The vault's skills (`.skills/`)"),
        (name = "mcp", description = "The vault's MCP servers (`.mcp.json`)"),
        (name = "hooks", description = "Hooks that run on events, and their failures"),
        (name = "usage", description = "Token usage and cost, and the account quota"),
        (name = "settings", description = "Server settings and the Claude credential (write-only)"),
        (name = "desktop", description = "The desktop app's login item, when the server runs inside it"),
        (name = "bots", description = "Telegram and Discord connectors, and pairing requests"),
    )
)]
struct ApiDoc;

/// The full router for `state`, with every layer; its bots are loaded but not started,
/// its bundled modules not installed.
pub fn router(state: AppState) -> Router {
    let bots = parachute_bots::Bots::load(state.clone());
    let extensions = parachute_extensions::Extensions::new(&state);
    router_with(state, bots, extensions)
}

/// [`router`] with the server's bots and extensions (which `serve_with` starts).
pub fn router_with(
    state: AppState,
    bots: Arc<parachute_bots::Bots>,
    extensions: Arc<parachute_extensions::Extensions>,
) -> Router {
    let (api, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(health::routes())
        .merge(chat::routes())
        .merge(sessions::routes())
        .merge(auth::routes())
        .merge(workspaces::routes())
        .merge(usage::routes())
        .merge(files::routes())
        .merge(contexts::routes())
        .merge(prompt_preview::routes())
        .merge(sync::routes())
        .merge(claude_code::routes())
        .merge(imports::routes())
        .merge(daily::routes())
        .merge(sandbox::routes())
        .merge(settings::routes())
        .merge(desktop::routes())
        .merge(bots::routes())
        .merge(modules::routes())
        .merge(brain::routes())
        .merge(skills::routes())
        .merge(mcps::routes())
        .merge(hooks::routes())
        .merge(scheduler::routes())
        .split_for_parts();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    let doc = Arc::new(doc);
    let limit = state.settings.max_body_bytes;
    // Parachute's own MCP server, behind the same auth as the API.
    let mcp = parachute_mcp::Vault::new(
        state.clone(),
        extensions.clone(),
        parachute_core::trust::TrustLevel::Full,
    );
    api.merge(docs::routes(doc))
        .route_service("/mcp", parachute_mcp::http::service(mcp))
        .merge(parachute_ui::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // CORS inside auth: only a browser's preflight from an allowed origin is
        // answered before auth (it carries no key); any other OPTIONS is a request
        // like the rest, so strangers learn nothing about the routes.
        .layer(cors(&state.settings.cors_origins))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth_layer::require_auth,
        ))
        .layer(DefaultBodyLimit::max(limit))
        .layer(Extension(BodyLimit(limit)))
        .layer(Extension(bots))
        .layer(Extension(extensions))
        .layer(CatchPanicLayer::custom(|_| {
            error::ApiError::Internal("a request handler panicked".into()).into_response()
        }))
        .with_state(state)
}

fn cors(origins: &[String]) -> CorsLayer {
    let list: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(list))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers(AllowHeaders::mirror_request())
        .allow_credentials(true)
}

async fn not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({"detail": "Not Found"})),
    )
}

async fn method_not_allowed() -> impl IntoResponse {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(serde_json::json!({"detail": "Method Not Allowed"})),
    )
}
