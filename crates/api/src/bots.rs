//! `/api/bots/*`: connector status, config (tokens never returned), start/stop/test,
//! and the owner's pairing decisions. All of it is the bots crate's [`Bots`] service.

use std::sync::Arc;

use axum::extract::Path;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use parachute_bots::{Bots, Platform};
use parachute_core::app::AppState;
use parachute_core::db::PairingRow;
use parachute_core::trust::TrustLevel;

use crate::error::ApiError;
use crate::extract::{ApiJson, OptionalJson};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(status))
        .routes(routes!(get_config, put_config))
        .routes(routes!(pairing))
        .routes(routes!(approve))
        .routes(routes!(deny))
        .routes(routes!(start))
        .routes(routes!(stop))
        .routes(routes!(test))
}

/// A pairing request (camelCase, as the app reads it).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PairingJson {
    id: String,
    platform: String,
    platform_user_id: String,
    platform_user_display: Option<String>,
    platform_chat_id: String,
    status: String,
    approved_trust_level: Option<String>,
    created_at: String,
    resolved_at: Option<String>,
    resolved_by: Option<String>,
}

impl From<PairingRow> for PairingJson {
    fn from(r: PairingRow) -> Self {
        PairingJson {
            id: r.id,
            platform: r.platform,
            platform_user_id: r.platform_user_id,
            platform_user_display: r.platform_user_display,
            platform_chat_id: r.platform_chat_id,
            status: r.status,
            approved_trust_level: r.approved_trust_level,
            created_at: r.created_at,
            resolved_at: r.resolved_at,
            resolved_by: r.resolved_by,
        }
    }
}

/// Pending requests.
#[derive(Serialize, ToSchema)]
pub struct PairingList {
    requests: Vec<PairingJson>,
}

/// A decided request.
#[derive(Serialize, ToSchema)]
pub struct PairingDecision {
    success: bool,
    request: PairingJson,
}

/// The body of an approval (read leniently by the handler; this type documents it).
#[derive(Deserialize, ToSchema, Default)]
#[allow(dead_code)]
pub struct ApproveBody {
    /// `full`, `vault` (default) or `sandboxed`.
    #[serde(default)]
    trust_level: Option<String>,
}

fn platform(p: &str) -> Result<Platform, ApiError> {
    p.parse().map_err(ApiError::BadRequest)
}

/// Connector status and health.
#[utoipa::path(get, path = "/api/bots/status", tag = "bots",
    responses((status = 200, description = "`configured` and per platform: enabled, has_token, allowed_users_count, running, last_ok_at, restarts, last_error", body = Object)))]
async fn status(Extension(bots): Extension<Arc<Bots>>) -> Json<Value> {
    Json(bots.status().await)
}

/// The bots config, with `has_token` instead of tokens.
#[utoipa::path(get, path = "/api/bots/config", tag = "bots",
    responses((status = 200, description = "Per platform: enabled, has_token, allowed_users, dm_trust_level, group_trust_level, group_mention_mode, ack_emoji, api_url", body = Object)))]
async fn get_config(Extension(bots): Extension<Arc<Bots>>) -> Json<Value> {
    Json(bots.config_view().await)
}

/// Changes the bots config (all or nothing); a `bot_token` goes to the secrets store.
/// `api_url` and `transcription_url` change only from this machine.
#[utoipa::path(put, path = "/api/bots/config", tag = "bots", request_body = Object,
    responses((status = 200, description = "The config as GET shows it", body = Object),
        (status = 400, description = "A bad value, named")))]
async fn put_config(
    Extension(bots): Extension<Arc<Bots>>,
    caller: Option<Extension<crate::auth_layer::Caller>>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    let from = match caller {
        Some(Extension(c)) if c.local => parachute_bots::config::Source::LocalApi,
        _ => parachute_bots::config::Source::RemoteApi,
    };
    Ok(Json(bots.put_config(&body, from).await?))
}

/// Pending pairing requests, newest first.
#[utoipa::path(get, path = "/api/bots/pairing", tag = "bots",
    responses((status = 200, body = PairingList)))]
async fn pairing(Extension(bots): Extension<Arc<Bots>>) -> Result<Json<PairingList>, ApiError> {
    let requests = bots.pending().await?.into_iter().map(Into::into).collect();
    Ok(Json(PairingList { requests }))
}

/// Approves a pairing request at a trust level (default `vault`); the user is told.
#[utoipa::path(post, path = "/api/bots/pairing/{id}/approve", tag = "bots",
    params(("id" = String, Path, description = "Request id")), request_body = ApproveBody,
    responses((status = 200, body = PairingDecision), (status = 400, description = "Invalid trust level"),
        (status = 404, description = "No such request"), (status = 409, description = "Already decided")))]
async fn approve(
    Extension(bots): Extension<Arc<Bots>>,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson,
) -> Result<Json<PairingDecision>, ApiError> {
    let level = match body.as_ref().and_then(|b| b.get("trust_level")) {
        None | Some(Value::Null) => TrustLevel::Vault,
        Some(Value::String(s)) => {
            s.parse()
                .map_err(|e: parachute_core::trust::InvalidTrustLevel| {
                    ApiError::BadRequest(e.to_string())
                })?
        }
        Some(_) => return Err(ApiError::BadRequest("Invalid trust level".into())),
    };
    let row = bots.approve(&id, level).await?;
    Ok(Json(PairingDecision {
        success: true,
        request: row.into(),
    }))
}

/// Denies a pairing request; its pending session is archived.
#[utoipa::path(post, path = "/api/bots/pairing/{id}/deny", tag = "bots",
    params(("id" = String, Path, description = "Request id")),
    responses((status = 200, body = PairingDecision), (status = 404, description = "No such request"),
        (status = 409, description = "Already decided")))]
async fn deny(
    Extension(bots): Extension<Arc<Bots>>,
    Path(id): Path<String>,
) -> Result<Json<PairingDecision>, ApiError> {
    let row = bots.deny(&id).await?;
    Ok(Json(PairingDecision {
        success: true,
        request: row.into(),
    }))
}

/// Starts a connector.
#[utoipa::path(post, path = "/api/bots/{platform}/start", tag = "bots",
    params(("platform" = String, Path, description = "`telegram` or `discord`")),
    responses((status = 200, description = "`{success, message}`", body = Object),
        (status = 400, description = "Unknown platform, not enabled, or no token"),
        (status = 409, description = "Already running")))]
async fn start(
    Extension(bots): Extension<Arc<Bots>>,
    Path(p): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let message = bots.start(platform(&p)?).await?;
    Ok(Json(json!({"success": true, "message": message})))
}

/// Stops a connector.
#[utoipa::path(post, path = "/api/bots/{platform}/stop", tag = "bots",
    params(("platform" = String, Path, description = "`telegram` or `discord`")),
    responses((status = 200, description = "`{success, message}` or `{success: false, error}`", body = Object),
        (status = 400, description = "Unknown platform")))]
async fn stop(
    Extension(bots): Extension<Arc<Bots>>,
    Path(p): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let p = platform(&p)?;
    Ok(Json(if bots.stop(p).await {
        json!({"success": true, "message": format!("{p} connector stopped")})
    } else {
        json!({"success": false, "error": format!("{p} connector is not running")})
    }))
}

/// Checks a connector's token with its platform.
#[utoipa::path(post, path = "/api/bots/{platform}/test", tag = "bots",
    params(("platform" = String, Path, description = "`telegram` or `discord`")),
    responses((status = 200, description = "`{success, bot_name, bot_username}` or `{success: false, error}`", body = Object),
        (status = 400, description = "Unknown platform, not enabled, or no token")))]
async fn test(
    Extension(bots): Extension<Arc<Bots>>,
    Path(p): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(bots.test(platform(&p)?).await?))
}
