//! `/api/settings`: the server's settings as `parachute config` shows and sets them, and
//! the Claude credential, which can be set or cleared but never read back. Saving is
//! for this machine only, like creating keys; saved values take effect at the next start.

use axum::extract::State;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::auth::require_local;
use super::auth_layer::Caller;
use super::error::ApiError;
use super::extract::ApiJson;
use parachute_core::app::AppState;
use parachute_core::auth::AuthMode;
use parachute_core::config::secrets::SecretsError;
use parachute_core::config::{host_is_loopback, save_settings, setting_views, SaveError};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_settings, put_settings))
        .routes(routes!(set_credential, clear_credential))
}

/// One setting.
#[derive(Serialize, ToSchema)]
struct SettingJson {
    key: &'static str,
    /// What it does.
    description: &'static str,
    /// The value in force now.
    value: String,
    /// Where the value in force comes from (`default`, `environment`, a file…).
    source: &'static str,
    /// The value saved in the settings file, when it differs from the one in force
    /// (it takes effect at the next start).
    saved: Option<String>,
}

/// The Claude credential's state: never its value.
#[derive(Serialize, ToSchema)]
struct CredentialState {
    set: bool,
    /// `oauth` or `api_key`.
    kind: Option<&'static str>,
    /// `environment`, `OS keychain` or `secrets file`.
    location: Option<&'static str>,
}

#[derive(Serialize, ToSchema)]
struct SettingsJson {
    /// The file settings are saved to (`vault_path` goes to the home config instead).
    file: String,
    settings: Vec<SettingJson>,
    claude_credential: CredentialState,
}

async fn settings_json(s: &AppState) -> Result<SettingsJson, ApiError> {
    let current = s.settings.clone();
    let views = tokio::task::spawn_blocking(move || setting_views(&current))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let settings = views
        .into_iter()
        .map(|v| SettingJson {
            key: v.key,
            description: v.description,
            value: v.value,
            source: v.source.as_str(),
            saved: v.saved,
        })
        .collect();
    let claude_credential = match s.secrets.claude_credential().await {
        Ok(Some(c)) => CredentialState {
            set: true,
            kind: Some(c.kind.as_str()),
            location: Some(c.location.as_str()),
        },
        _ => CredentialState {
            set: false,
            kind: None,
            location: None,
        },
    };
    Ok(SettingsJson {
        file: s.settings.paths.vault_config_file().display().to_string(),
        settings,
        claude_credential,
    })
}

/// The settings, each with its value in force, its source and any saved change.
#[utoipa::path(get, path = "/api/settings", tag = "settings",
    responses((status = 200, body = SettingsJson)))]
async fn get_settings(State(s): State<AppState>) -> Result<Json<SettingsJson>, ApiError> {
    Ok(Json(settings_json(&s).await?))
}

#[derive(Deserialize, ToSchema)]
struct PutSettingsBody {
    /// Setting key → new value, as `parachute config set` takes it.
    values: BTreeMap<String, String>,
}

#[derive(Serialize, ToSchema)]
struct SavedJson {
    /// The keys written.
    saved: Vec<String>,
    /// Saved values take effect when the server next starts.
    restart_required: bool,
    #[serde(flatten)]
    settings: SettingsJson,
}

/// Save settings (from this machine only). Every value is checked first with the same
/// rules the server applies at start; if any is refused, nothing is written and each
/// refusal is reported at `["body", "values", key]`.
#[utoipa::path(put, path = "/api/settings", tag = "settings", request_body = PutSettingsBody,
    responses((status = 200, body = SavedJson), (status = 403, description = "Not from this machine"),
        (status = 422, description = "A value was refused; nothing was written")))]
async fn put_settings(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<PutSettingsBody>,
) -> Result<Json<SavedJson>, ApiError> {
    require_local(&caller, "Changing settings")?;
    // What only makes sense for the running server: refused here, before anything is
    // checked or written.
    let mut refused = Vec::new();
    if let Some(v) = body.values.get("vault_path") {
        if !std::path::Path::new(v.trim()).is_absolute() {
            refused.push(
                json!({"type": "value_error", "loc": ["body", "values", "vault_path"],
                "msg": "expected an absolute path, e.g. /home/me/Vault", "input": v}),
            );
        }
    }
    if let Some(h) = body.values.get("host") {
        if s.auth.mode() == AuthMode::Disabled && !host_is_loopback(h) {
            refused.push(json!({"type": "value_error", "loc": ["body", "values", "host"],
                "msg": "the auth mode is `disabled`, which only works while listening on this machine only: choose another auth mode first",
                "input": h}));
        }
    }
    if !refused.is_empty() {
        return Err(ApiError::Validation(refused));
    }
    let paths = s.settings.paths.clone();
    let values = body.values;
    let asked = values.clone();
    let saved = tokio::task::spawn_blocking(move || save_settings(&paths, &values))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| match e {
            SaveError::Refused(items) => ApiError::Validation(
                items
                    .into_iter()
                    .map(|(key, msg)| {
                        json!({"type": "value_error", "loc": ["body", "values", key], "msg": msg,
                            "input": asked.get(&key)})
                    })
                    .collect(),
            ),
            SaveError::Config(e) => ApiError::internal(e),
        })?;
    tracing::info!(keys = ?saved, "settings saved");
    Ok(Json(SavedJson {
        restart_required: !saved.is_empty(),
        saved,
        settings: settings_json(&s).await?,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CredentialBody {
    /// An OAuth token (`sk-ant-oat…`, from `claude setup-token`) or an API key
    /// (`sk-ant-api…`).
    token: String,
    /// Store a value of neither prefix anyway (as an OAuth token).
    #[serde(default)]
    force: bool,
}

/// Set the Claude credential (from this machine only). Its kind is recognised by
/// prefix; a stored credential of the other kind is removed. The value is never
/// returned by any route. Turns started afterwards use it.
#[utoipa::path(put, path = "/api/settings/claude-credential", tag = "settings", request_body = CredentialBody,
    responses((status = 200, body = CredentialState), (status = 403, description = "Not from this machine"),
        (status = 422, description = "Empty, or neither kind without `force`")))]
async fn set_credential(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(raw): ApiJson<serde_json::Value>,
) -> Result<Json<CredentialState>, ApiError> {
    require_local(&caller, "Setting the Claude credential")?;
    let refuse = |msg: String| {
        // The input is a secret: it is never echoed back, not even when the body is
        // malformed (the usual 422 repeats the offending input).
        ApiError::Validation(vec![json!({
            "type": "value_error", "loc": ["body", "token"], "msg": msg, "input": "(hidden)",
        })])
    };
    let body: CredentialBody = serde_json::from_value(raw).map_err(|_| {
        refuse(r#"expected {"token": "…"} with an optional boolean "force""#.into())
    })?;
    let (kind, location, _) = s
        .secrets
        .set_claude_credential(&body.token, body.force)
        .await
        .map_err(|e| match e {
            SecretsError::UnknownCredential | SecretsError::InvalidValue => refuse(e.to_string()),
            other => ApiError::internal(other),
        })?;
    tracing::info!(
        kind = kind.as_str(),
        location = location.as_str(),
        "Claude credential stored"
    );
    Ok(Json(CredentialState {
        set: true,
        kind: Some(kind.as_str()),
        location: Some(location.as_str()),
    }))
}

/// Remove the stored Claude credential (from this machine only). A credential given in
/// the server's environment stays in force and is reported.
#[utoipa::path(delete, path = "/api/settings/claude-credential", tag = "settings",
    responses((status = 200, body = CredentialState), (status = 403, description = "Not from this machine")))]
async fn clear_credential(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<CredentialState>, ApiError> {
    require_local(&caller, "Clearing the Claude credential")?;
    s.secrets
        .clear_claude_credential()
        .await
        .map_err(ApiError::internal)?;
    tracing::info!("stored Claude credential removed");
    Ok(Json(settings_json(&s).await?.claude_credential))
}
