//! `/api/hooks` and `/api/hooks/errors`: the hooks that run on events (the vault's and
//! enabled modules'), how each runs or why it does not, and their recent failures. The
//! work is the extensions crate's [`Hooks`](parachute_extensions::hooks::Hooks).

use std::sync::Arc;

use axum::{Extension, Json};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use parachute_core::app::AppState;
use parachute_extensions::hooks::{HookFailure, HookInfo};
use parachute_extensions::Extensions;

use crate::error::ApiError;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(errors))
}

/// Counts for the app's hooks screen.
#[derive(Serialize, ToSchema)]
struct HooksHealth {
    hooks_count: usize,
    events_registered: Vec<String>,
    recent_errors_count: usize,
}

/// The hooks.
#[derive(Serialize, ToSchema)]
struct HookList {
    hooks: Vec<HookInfo>,
    health: HooksHealth,
}

/// Every hook: its events, timeout, whether it blocks, how it runs or why it does not.
#[utoipa::path(get, path = "/api/hooks", tag = "hooks", responses((status = 200, body = HookList)))]
async fn list(Extension(ext): Extension<Arc<Extensions>>) -> Result<Json<HookList>, ApiError> {
    let hooks_svc = ext.hooks.clone();
    let hooks = tokio::task::spawn_blocking(move || hooks_svc.list())
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut events: Vec<String> = hooks
        .iter()
        .filter(|h| h.enabled && h.problem.is_none())
        .flat_map(|h| h.events.iter().cloned())
        .collect();
    events.sort();
    events.dedup();
    Ok(Json(HookList {
        health: HooksHealth {
            hooks_count: hooks.len(),
            events_registered: events,
            recent_errors_count: ext.hooks.errors().len(),
        },
        hooks,
    }))
}

/// The recent failures.
#[derive(Serialize, ToSchema)]
struct HookErrors {
    errors: Vec<HookFailure>,
}

/// The last 50 hook failures and timeouts, oldest first (each with both spellings the
/// contract and the app use: `hook_name`/`hook`, `error`/`message`).
#[utoipa::path(get, path = "/api/hooks/errors", tag = "hooks", responses((status = 200, body = HookErrors)))]
async fn errors(Extension(ext): Extension<Arc<Extensions>>) -> Json<HookErrors> {
    Json(HookErrors {
        errors: ext.hooks.errors(),
    })
}
