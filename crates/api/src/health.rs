//! `GET /` and `GET /api/health`. The basic health answers as soon as
//! the server listens; `?detailed=true` probes the vault and the Docker engine for real.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::auth_layer::Caller;
use super::extract::ApiQuery;
use parachute_core::app::AppState;

/// The workspace version (every crate shares it), reported by `/` and `/api/health`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(root))
        .routes(routes!(health))
}

#[derive(Serialize, ToSchema)]
pub struct RootInfo {
    name: &'static str,
    version: &'static str,
    status: &'static str,
}

/// Server info.
#[utoipa::path(get, path = "/", tag = "health", responses((status = 200, body = RootInfo)))]
async fn root(headers: axum::http::HeaderMap) -> axum::response::Response {
    // A browser navigating here gets the UI; every other client the contract's JSON.
    if parachute_ui::wants_html(&headers) {
        return axum::response::Redirect::to(parachute_ui::BASE).into_response();
    }
    Json(RootInfo {
        name: "Parachute Computer",
        version: VERSION,
        status: "running",
    })
    .into_response()
}

#[derive(Deserialize, IntoParams)]
struct HealthQuery {
    /// Include vault, modules, Docker, bots and uptime.
    #[serde(default, deserialize_with = "lenient_bool")]
    detailed: bool,
}

/// Accepts the boolean spellings FastAPI accepted (`true`, `1`, `yes`, `on`…).
pub fn lenient_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let s = String::deserialize(d)?;
    parachute_core::config::parse_bool(&s)
        .ok_or_else(|| serde::de::Error::custom("expected a boolean"))
}

/// Health: `status`, `timestamp` (epoch ms), `version`; more with `detailed=true`.
#[utoipa::path(get, path = "/api/health", tag = "health", params(HealthQuery),
    responses((status = 200, description = "Health", body = Object)))]
async fn health(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    bots: Option<Extension<std::sync::Arc<parachute_bots::Bots>>>,
    extensions: Option<Extension<std::sync::Arc<parachute_extensions::Extensions>>>,
    ApiQuery(q): ApiQuery<HealthQuery>,
) -> Json<Value> {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let mut body = json!({"status": "ok", "timestamp": ms, "version": VERSION});
    if !q.detailed {
        return Json(body);
    }
    let vault = state.settings.paths.vault.clone();
    let vault_status = tokio::task::spawn_blocking({
        let v = vault.clone();
        move || parachute_core::vault::vault_status(&v)
    })
    .await
    .unwrap_or("inaccessible");
    // Health is open to anyone; where the vault lives on disk is only for this machine
    // and key holders.
    let trusted = caller.is_some_and(|Extension(c)| c.local || c.key_id.is_some());
    let path = trusted.then(|| vault.display().to_string());
    body["vault"] = json!({"path": path, "status": vault_status});
    // Which modules a vault has is for this machine and key holders only.
    body["modules"] = match extensions.filter(|_| trusted) {
        Some(Extension(ext)) => {
            let list = tokio::task::spawn_blocking(move || ext.modules.list())
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
            Value::Array(
                list.iter()
                    .map(|m| json!({"name": m.name, "status": m.status, "trust_level": m.approved_trust_level.or(m.trust_level)}))
                    .collect(),
            )
        }
        None => json!([]),
    };
    body["docker"] = docker_status(&state.settings.sandbox_image).await;
    body["bots"] = match bots {
        Some(Extension(b)) => b.health_summary(),
        None => json!({"telegram": {"running": false}, "discord": {"running": false}}),
    };
    body["uptime"] = json!(state.started.elapsed().as_secs_f64());
    // Ours: which kind of Claude credential turns use (never the value), for this
    // machine and key holders only.
    if trusted {
        body["claudeCredential"] = match state.secrets.claude_credential().await {
            Ok(Some(c)) => json!({"configured": true, "kind": c.kind.as_str(),
                "source": c.location.as_str()}),
            Ok(None) => json!({"configured": false, "kind": null, "source": null}),
            Err(e) => json!({"configured": false, "kind": null, "source": null,
                "error": e.to_string()}),
        };
    }
    // Ours, beyond the contract: CLI processes started, kept warm, and turns running.
    body["chat"] = json!({
        "spawned": state.chat.pool.spawned.load(std::sync::atomic::Ordering::Relaxed),
        "warm": state.chat.pool.len(),
        "active": state.chat.hub.active_ids().len(),
        "processes": state.chat.budget.in_use(),
        "maxProcesses": state.chat.budget.max(),
        "queued": state.chat.budget.waiting(),
        "spares": state.chat.pool.spares.count(),
        "spareSpawned": state.chat.pool.spares.spawned.load(std::sync::atomic::Ordering::Relaxed),
        "spareAdopted": state.chat.pool.spares.adopted.load(std::sync::atomic::Ordering::Relaxed),
        "prewarmed": state.chat.pool.prewarmed.load(std::sync::atomic::Ordering::Relaxed),
    });
    Json(body)
}

/// Asks the Docker engine (`DOCKER_HOST=unix://…` or `/var/run/docker.sock`) for
/// `/_ping` and whether the sandbox image exists.
async fn docker_status(image: &str) -> Value {
    let socket = std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|h| h.strip_prefix("unix://").map(str::to_string))
        .unwrap_or_else(|| "/var/run/docker.sock".to_string());
    let socket = std::path::PathBuf::from(socket);
    let t = Duration::from_millis(800);
    let available = matches!(parachute_core::util::probe::get_unix(&socket, "/_ping", t).await, Ok(r) if r.status == 200);
    if !available {
        return json!({"available": false, "image": image});
    }
    let path = format!("/images/{image}/json");
    let exists = matches!(parachute_core::util::probe::get_unix(&socket, &path, t).await, Ok(r) if r.status == 200);
    json!({"available": true, "image": image, "image_exists": exists})
}
