//! `/api/desktop/login-item`: the desktop app's "Start at login", for its window's
//! Settings. Only when the server runs inside the app; changing it is for this machine.

use axum::extract::State;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::auth::require_local;
use super::auth_layer::Caller;
use super::error::ApiError;
use super::extract::ApiJson;
use parachute_core::app::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_login_item, put_login_item))
}

#[derive(Serialize, ToSchema)]
struct LoginItem {
    /// Whether this server runs inside the desktop app (which owns the login item).
    available: bool,
    /// Whether the app starts at login; `null` outside the app.
    enabled: Option<bool>,
}

/// Whether the desktop app starts at login.
#[utoipa::path(get, path = "/api/desktop/login-item", tag = "desktop",
    responses((status = 200, body = LoginItem)))]
async fn get_login_item(State(s): State<AppState>) -> Result<Json<LoginItem>, ApiError> {
    let Some(d) = s.desktop.get() else {
        return Ok(Json(LoginItem {
            available: false,
            enabled: None,
        }));
    };
    let enabled = d.login_item().map_err(ApiError::Internal)?;
    Ok(Json(LoginItem {
        available: true,
        enabled: Some(enabled),
    }))
}

#[derive(Deserialize, ToSchema)]
struct PutLoginItem {
    enabled: bool,
}

/// Turn "Start at login" on or off (from this machine only; inside the desktop app).
#[utoipa::path(put, path = "/api/desktop/login-item", tag = "desktop", request_body = PutLoginItem,
    responses((status = 200, body = LoginItem), (status = 403, description = "Not from this machine"),
        (status = 404, description = "This server does not run inside the desktop app")))]
async fn put_login_item(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<PutLoginItem>,
) -> Result<Json<LoginItem>, ApiError> {
    require_local(&caller, "Changing the login item")?;
    let d = s.desktop.get().ok_or_else(|| {
        ApiError::NotFound(
            "Start at login belongs to the desktop app; this server runs without it".into(),
        )
    })?;
    d.set_login_item(body.enabled).map_err(ApiError::Internal)?;
    tracing::info!(enabled = body.enabled, "login item changed");
    Ok(Json(LoginItem {
        available: true,
        enabled: Some(body.enabled),
    }))
}
