//! `/api/bots/*`: connector status, config (tokens never returned), start/stop/test,
//! and the owner's pairing decisions. All of it is the bots crate's [`Bots`] service.

use std::sync::Arc;

use axum::extract::Path;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use parachute_bots::config::ResponseMode;
use parachute_bots::config_view::{BotUserId, BotsConfigView};
use parachute_bots::status::BotsStatus;
use parachute_bots::token_check::BotTestResult;
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

/// A change to the bots config: the platforms and settings given change, the rest stay
/// (unknown keys are ignored). A bad value is refused (400) naming it, and nothing changes.
#[derive(ToSchema)]
#[allow(dead_code)]
struct BotsConfigUpdate {
    #[serde(default)]
    telegram: Option<PlatformConfigUpdate>,
    #[serde(default)]
    discord: Option<PlatformConfigUpdate>,
}

/// Settings of one platform to change.
#[derive(ToSchema)]
#[allow(dead_code)]
struct PlatformConfigUpdate {
    #[serde(default)]
    enabled: bool,
    /// The bot token, one line without spaces (at most 512 bytes); it goes to the
    /// secrets store, never to `bots.yaml`.
    /// Empty or `null`: the stored token is kept.
    #[serde(default)]
    bot_token: Option<String>,
    /// At most 1,000 user ids (Telegram: numbers, Discord: digits as text); `null`: none.
    #[serde(default)]
    #[schema(max_items = 1000)]
    allowed_users: Option<Vec<BotUserId>>,
    #[serde(default)]
    dm_trust_level: TrustLevel,
    #[serde(default)]
    group_trust_level: TrustLevel,
    #[serde(default)]
    group_mention_mode: ResponseMode,
    /// One emoji; empty or `null` disables the reaction.
    #[serde(default)]
    #[schema(max_length = 8)]
    ack_emoji: Option<String>,
    /// An http(s) URL, or `null` for the official API; changed only from this machine.
    #[serde(default)]
    api_url: Option<String>,
    /// Base URL of an OpenAI-compatible speech-to-text service, or `null`; changed only
    /// from this machine.
    #[serde(default)]
    transcription_url: Option<String>,
    /// The model asked of that service (1–100 bytes).
    #[serde(default)]
    transcription_model: String,
}

/// A connector started or stopped, or why it was not stopped.
#[derive(Serialize, ToSchema)]
struct BotAction {
    success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

fn platform(p: &str) -> Result<Platform, ApiError> {
    p.parse().map_err(ApiError::BadRequest)
}

/// Connector status and health.
#[utoipa::path(get, path = "/api/bots/status", tag = "bots",
    responses((status = 200, body = BotsStatus)))]
async fn status(Extension(bots): Extension<Arc<Bots>>) -> Json<BotsStatus> {
    Json(bots.status().await)
}

/// The bots config, with `has_token` instead of tokens.
#[utoipa::path(get, path = "/api/bots/config", tag = "bots",
    responses((status = 200, body = BotsConfigView)))]
async fn get_config(Extension(bots): Extension<Arc<Bots>>) -> Json<BotsConfigView> {
    Json(bots.config_view().await)
}

/// Changes the bots config (all or nothing); a `bot_token` goes to the secrets store.
/// `api_url` and `transcription_url` change only from this machine.
#[utoipa::path(put, path = "/api/bots/config", tag = "bots", request_body = BotsConfigUpdate,
    responses((status = 200, description = "The config as GET shows it", body = BotsConfigView),
        (status = 400, description = "A bad value, named")))]
async fn put_config(
    Extension(bots): Extension<Arc<Bots>>,
    caller: Option<Extension<crate::auth_layer::Caller>>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<BotsConfigView>, ApiError> {
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
    responses((status = 200, description = "`success` and `message`", body = BotAction),
        (status = 400, description = "Unknown platform, not enabled, or no token"),
        (status = 409, description = "Already running")))]
async fn start(
    Extension(bots): Extension<Arc<Bots>>,
    Path(p): Path<String>,
) -> Result<Json<BotAction>, ApiError> {
    let message = bots.start(platform(&p)?).await?;
    Ok(Json(BotAction {
        success: true,
        message: Some(message),
        error: None,
    }))
}

/// Stops a connector.
#[utoipa::path(post, path = "/api/bots/{platform}/stop", tag = "bots",
    params(("platform" = String, Path, description = "`telegram` or `discord`")),
    responses((status = 200, description = "`success` and `message`, or `success: false` and `error`", body = BotAction),
        (status = 400, description = "Unknown platform")))]
async fn stop(
    Extension(bots): Extension<Arc<Bots>>,
    Path(p): Path<String>,
) -> Result<Json<BotAction>, ApiError> {
    let p = platform(&p)?;
    Ok(Json(if bots.stop(p).await {
        BotAction {
            success: true,
            message: Some(format!("{p} connector stopped")),
            error: None,
        }
    } else {
        BotAction {
            success: false,
            message: None,
            error: Some(format!("{p} connector is not running")),
        }
    }))
}

/// Checks a connector's token with its platform.
#[utoipa::path(post, path = "/api/bots/{platform}/test", tag = "bots",
    params(("platform" = String, Path, description = "`telegram` or `discord`")),
    responses((status = 200, description = "`bot_name` and `bot_username` (Telegram) or `bot_id` (Discord), or `success: false` and `error`", body = BotTestResult),
        (status = 400, description = "Unknown platform, not enabled, or no token")))]
async fn test(
    Extension(bots): Extension<Arc<Bots>>,
    Path(p): Path<String>,
) -> Result<Json<BotTestResult>, ApiError> {
    Ok(Json(bots.test(platform(&p)?).await?))
}
