//! `GET /` and `GET /api/health`. The basic health answers as soon as
//! the server listens; `?detailed=true` probes the vault and the Docker engine for real.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::auth_layer::Caller;
use super::extract::ApiQuery;
use parachute_bots::status::HealthBots;
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

/// Health; every key after `version` only with `detailed=true`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct HealthReport {
    /// Always `ok`.
    status: &'static str,
    /// Now, in milliseconds since the Unix epoch.
    timestamp: u64,
    version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    vault: Option<HealthVault>,
    /// The vault's modules; empty unless the caller is this machine or holds a key.
    #[serde(skip_serializing_if = "Option::is_none")]
    modules: Option<Vec<HealthModule>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    docker: Option<DockerStatus>,
    /// Each bot connector.
    #[serde(skip_serializing_if = "Option::is_none")]
    bots: Option<HealthBots>,
    /// Seconds since the server started.
    #[serde(skip_serializing_if = "Option::is_none")]
    uptime: Option<f64>,
    /// Ours: which kind of Claude credential turns use (never the value); only for
    /// this machine and key holders.
    #[serde(skip_serializing_if = "Option::is_none")]
    claude_credential: Option<ClaudeCredentialStatus>,
    /// Ours, beyond the contract: CLI processes and turns.
    #[serde(skip_serializing_if = "Option::is_none")]
    chat: Option<HealthChat>,
}

/// The vault.
#[derive(Serialize, ToSchema)]
struct HealthVault {
    /// Where it lives on disk; null unless the caller is this machine or holds a key.
    path: Option<String>,
    /// `ok` or `inaccessible`.
    status: &'static str,
}

/// One module of the vault.
#[derive(Serialize, ToSchema)]
struct HealthModule {
    name: String,
    status: parachute_extensions::ModuleStatus,
    /// The level it was approved at, else the level it asks for; null when neither.
    trust_level: Option<parachute_core::trust::TrustLevel>,
}

/// The Docker engine and the sandbox image.
#[derive(Serialize, ToSchema)]
struct DockerStatus {
    /// The engine answers `/_ping`.
    available: bool,
    /// The sandbox image's name.
    image: String,
    /// The image exists; only when the engine is available.
    #[serde(skip_serializing_if = "Option::is_none")]
    image_exists: Option<bool>,
}

/// Which kind of Claude credential turns use.
#[derive(Serialize, ToSchema)]
struct ClaudeCredentialStatus {
    configured: bool,
    /// `oauth` or `api_key`; null when none is configured.
    kind: Option<&'static str>,
    /// Where it was found (`environment`, `OS keychain` or `secrets file`); null when
    /// none is configured.
    source: Option<&'static str>,
    /// Why the credential store could not be read, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// CLI processes started, kept warm, and turns running.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct HealthChat {
    /// CLI processes started since the server started.
    spawned: u64,
    /// Warm CLI processes kept for sessions.
    warm: usize,
    /// Turns running.
    active: usize,
    /// CLI processes in use.
    processes: usize,
    /// The cap on CLI processes (`max_cli_processes`).
    max_processes: usize,
    /// Turns waiting for a CLI process.
    queued: usize,
    /// Spare CLI processes ready for new sessions.
    spares: usize,
    /// Spare CLI processes started since the server started.
    spare_spawned: u64,
    /// Spare CLI processes adopted by new sessions.
    spare_adopted: u64,
    /// CLI processes prewarmed.
    prewarmed: u64,
}

/// Health: `status`, `timestamp` (epoch ms), `version`; more with `detailed=true`.
#[utoipa::path(get, path = "/api/health", tag = "health", params(HealthQuery),
    responses((status = 200, description = "Health", body = HealthReport)))]
async fn health(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    bots: Option<Extension<std::sync::Arc<parachute_bots::Bots>>>,
    extensions: Option<Extension<std::sync::Arc<parachute_extensions::Extensions>>>,
    ApiQuery(q): ApiQuery<HealthQuery>,
) -> Json<HealthReport> {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let mut body = HealthReport {
        status: "ok",
        timestamp: ms,
        version: VERSION,
        vault: None,
        modules: None,
        docker: None,
        bots: None,
        uptime: None,
        claude_credential: None,
        chat: None,
    };
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
    body.vault = Some(HealthVault {
        path,
        status: vault_status,
    });
    // Which modules a vault has is for this machine and key holders only.
    body.modules = Some(match extensions.filter(|_| trusted) {
        Some(Extension(ext)) => {
            let list = tokio::task::spawn_blocking(move || ext.modules.list())
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
            list.into_iter()
                .map(|m| HealthModule {
                    trust_level: m.approved_trust_level.or(m.trust_level),
                    name: m.name,
                    status: m.status,
                })
                .collect()
        }
        None => Vec::new(),
    });
    body.docker = Some(docker_status(&state.settings.sandbox_image).await);
    body.bots = Some(match bots {
        Some(Extension(b)) => b.health_summary(),
        None => HealthBots::default(),
    });
    body.uptime = Some(state.started.elapsed().as_secs_f64());
    // Ours: which kind of Claude credential turns use (never the value), for this
    // machine and key holders only.
    if trusted {
        body.claude_credential = Some(claude_credential_status(&state).await);
    }
    // Ours, beyond the contract: CLI processes started, kept warm, and turns running.
    let relaxed = std::sync::atomic::Ordering::Relaxed;
    body.chat = Some(HealthChat {
        spawned: state.chat.pool.spawned.load(relaxed),
        warm: state.chat.pool.len(),
        active: state.chat.hub.active_ids().len(),
        processes: state.chat.budget.in_use(),
        max_processes: state.chat.budget.max(),
        queued: state.chat.budget.waiting(),
        spares: state.chat.pool.spares.count(),
        spare_spawned: state.chat.pool.spares.spawned.load(relaxed),
        spare_adopted: state.chat.pool.spares.adopted.load(relaxed),
        prewarmed: state.chat.pool.prewarmed.load(relaxed),
    });
    Json(body)
}

/// Which kind of Claude credential turns use, and where it was found.
async fn claude_credential_status(state: &AppState) -> ClaudeCredentialStatus {
    let none = |error: Option<String>| ClaudeCredentialStatus {
        configured: false,
        kind: None,
        source: None,
        error,
    };
    match state.secrets.claude_credential().await {
        Ok(Some(c)) => ClaudeCredentialStatus {
            configured: true,
            kind: Some(c.kind.as_str()),
            source: Some(c.location.as_str()),
            error: None,
        },
        Ok(None) => none(None),
        Err(e) => none(Some(e.to_string())),
    }
}

/// Asks the Docker engine (`DOCKER_HOST=unix://…` or `/var/run/docker.sock`) for
/// `/_ping` and whether the sandbox image exists.
async fn docker_status(image: &str) -> DockerStatus {
    let socket = std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|h| h.strip_prefix("unix://").map(str::to_string))
        .unwrap_or_else(|| "/var/run/docker.sock".to_string());
    let socket = std::path::PathBuf::from(socket);
    let t = Duration::from_millis(800);
    let available = matches!(parachute_core::util::probe::get_unix(&socket, "/_ping", t).await, Ok(r) if r.status == 200);
    if !available {
        return DockerStatus {
            available: false,
            image: image.to_string(),
            image_exists: None,
        };
    }
    let path = format!("/images/{image}/json");
    let exists = matches!(parachute_core::util::probe::get_unix(&socket, &path, t).await, Ok(r) if r.status == 200);
    DockerStatus {
        available: true,
        image: image.to_string(),
        image_exists: Some(exists),
    }
}
