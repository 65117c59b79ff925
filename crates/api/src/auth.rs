//! `/api/auth/keys` and `/api/auth/settings`. Creating keys and
//! changing the mode are refused to remote callers even with a valid key.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::auth_layer::Caller;
use super::error::ApiError;
use super::extract::ApiJson;
use parachute_core::app::AppState;
use parachute_core::auth::{ApiKeyInfo, AuthError, AuthMode};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_keys, create_key))
        .routes(routes!(delete_key))
        .routes(routes!(get_settings, put_settings))
}

pub(crate) fn require_local(caller: &Caller, what: &str) -> Result<(), ApiError> {
    if caller.local {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "{what} is only allowed from the server's own machine (localhost)"
        )))
    }
}

#[derive(Serialize, ToSchema)]
struct KeyList {
    keys: Vec<ApiKeyInfo>,
    auth_mode: AuthMode,
}

/// List API keys (never the keys themselves).
#[utoipa::path(get, path = "/api/auth/keys", tag = "auth", responses((status = 200, body = KeyList)))]
async fn list_keys(State(s): State<AppState>) -> Json<KeyList> {
    Json(KeyList {
        keys: s.auth.list(),
        auth_mode: s.auth.mode(),
    })
}

#[derive(Deserialize, ToSchema)]
struct CreateKeyBody {
    /// 1 to 100 characters.
    label: String,
    /// Also return a QR code for the mobile app (`server_url` and `qr_svg`).
    #[serde(default)]
    qr: bool,
}

#[derive(Serialize, ToSchema)]
struct CreatedKeyJson {
    id: String,
    label: String,
    /// Shown only this once.
    key: String,
    created_at: String,
    /// With `qr`: the URL other devices reach this server at.
    #[serde(skip_serializing_if = "Option::is_none")]
    server_url: Option<String>,
    /// With `qr`: whether that URL is reachable from other devices (false when the
    /// server listens on loopback only).
    #[serde(skip_serializing_if = "Option::is_none")]
    reachable_from_lan: Option<bool>,
    /// With `qr`: an SVG QR code holding `{"server": server_url, "apiKey": key}`, for the
    /// mobile app to scan. Shown only this once, like the key.
    #[serde(skip_serializing_if = "Option::is_none")]
    qr_svg: Option<String>,
}

/// The pairing QR code: the server's URL and the key, as JSON, drawn as SVG.
fn pairing_qr(server_url: &str, key: &str) -> Result<String, ApiError> {
    let payload = json!({"server": server_url, "apiKey": key}).to_string();
    let code = qrcode::QrCode::new(payload.as_bytes())
        .map_err(|e| ApiError::Internal(format!("QR code: {e}")))?;
    Ok(code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build())
}

/// Create an API key (from this machine only). The key is shown once.
#[utoipa::path(post, path = "/api/auth/keys", tag = "auth", request_body = CreateKeyBody,
    responses((status = 200, body = CreatedKeyJson), (status = 403, description = "Not from this machine"),
        (status = 422, description = "Bad label")))]
async fn create_key(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<CreateKeyBody>,
) -> Result<Json<CreatedKeyJson>, ApiError> {
    require_local(&caller, "Creating API keys")?;
    let n = body.label.chars().count();
    if n == 0 {
        return Err(ApiError::invalid(
            "string_too_short",
            vec![json!("body"), json!("label")],
            "String should have at least 1 character",
            json!(body.label),
            Some(json!({"min_length": 1})),
        ));
    }
    if n > 100 {
        return Err(ApiError::invalid(
            "string_too_long",
            vec![json!("body"), json!("label")],
            "String should have at most 100 characters",
            json!(body.label),
            Some(json!({"max_length": 100})),
        ));
    }
    let created = s.auth.create(&body.label).await?;
    tracing::info!(id = %created.info.id, "created an API key");
    let (server_url, reachable_from_lan, qr_svg) = if body.qr {
        let (url, lan) = parachute_core::util::net::lan_url(&s.settings.host, s.settings.port);
        let svg = pairing_qr(&url, &created.key)?;
        (Some(url), Some(lan), Some(svg))
    } else {
        (None, None, None)
    };
    Ok(Json(CreatedKeyJson {
        id: created.info.id,
        label: created.info.label,
        key: created.key,
        created_at: created.info.created_at,
        server_url,
        reachable_from_lan,
        qr_svg,
    }))
}

/// The key was revoked.
#[derive(Serialize, ToSchema)]
struct KeyDeleted {
    /// Always `deleted`.
    status: &'static str,
    /// The revoked key's id.
    id: String,
}

/// Revoke an API key.
#[utoipa::path(delete, path = "/api/auth/keys/{key_id}", tag = "auth",
    params(("key_id" = String, Path, description = "Key id (`k_…`)")),
    responses((status = 200, body = KeyDeleted), (status = 403, description = "Another key, from a remote caller"), (status = 404, description = "Key not found")))]
async fn delete_key(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<KeyDeleted>, ApiError> {
    // A remote key may revoke itself (sign out); revoking others is for this machine,
    // like creating them, so a stolen key cannot lock the owner's devices out.
    if caller.key_id.as_deref() != Some(id.as_str()) {
        require_local(&caller, "Revoking another API key")?;
    }
    s.auth.delete(&id).await?;
    tracing::info!(id = %id, "revoked an API key");
    Ok(Json(KeyDeleted {
        status: "deleted",
        id,
    }))
}

#[derive(Serialize, ToSchema)]
struct AuthSettings {
    /// The mode in force.
    require_auth: AuthMode,
    key_count: usize,
    /// Set when `AUTH_MODE` in the environment overrides `server.yaml` for this run.
    env_override: Option<AuthMode>,
}

fn settings_of(s: &AppState) -> AuthSettings {
    AuthSettings {
        require_auth: s.auth.mode(),
        key_count: s.auth.key_count(),
        env_override: s.auth.env_override(),
    }
}

/// The auth mode and key count.
#[utoipa::path(get, path = "/api/auth/settings", tag = "auth", responses((status = 200, body = AuthSettings)))]
async fn get_settings(State(s): State<AppState>) -> Json<AuthSettings> {
    Json(settings_of(&s))
}

#[derive(Deserialize, ToSchema)]
struct PutSettingsBody {
    /// `remote`, `always` or `disabled`.
    require_auth: String,
}

/// Change the auth mode (from this machine only).
#[utoipa::path(put, path = "/api/auth/settings", tag = "auth", request_body = PutSettingsBody,
    responses((status = 200, body = AuthSettings), (status = 400, description = "Invalid mode"),
        (status = 403, description = "Not from this machine")))]
async fn put_settings(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<PutSettingsBody>,
) -> Result<Json<AuthSettings>, ApiError> {
    require_local(&caller, "Changing the auth mode")?;
    let mode: AuthMode = body
        .require_auth
        .parse()
        .map_err(|_| AuthError::InvalidMode(body.require_auth.clone()))?;
    s.auth.set_mode(mode, &s.settings.host).await?;
    tracing::info!(mode = mode.as_str(), "auth mode changed");
    Ok(Json(settings_of(&s)))
}
