//! Usage: tokens and cost recorded per session and model (`/api/usage/sessions…`), and
//! the contract's `GET /api/usage` (the account's quota, asked of the model provider).

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::error::ApiError;
use super::extract::ApiQuery;
use super::sessions::check_range;
use parachute_core::app::AppState;
use parachute_core::db::UsageTotals;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(usage_sessions))
        .routes(routes!(usage_session))
        .routes(routes!(account_usage))
}

fn totals_json(t: &UsageTotals) -> Value {
    json!({"turns": t.turns, "inputTokens": t.input_tokens, "outputTokens": t.output_tokens,
        "cacheCreationInputTokens": t.cache_creation_input_tokens, "cacheReadInputTokens": t.cache_read_input_tokens,
        "costUsd": t.cost_usd})
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct Page {
    /// 1..=1000, default 100.
    limit: Option<i64>,
    offset: Option<i64>,
}

/// Token and cost totals per session, most recently used first.
#[utoipa::path(get, path = "/api/usage/sessions", tag = "usage", params(Page),
    responses((status = 200, description = "`{sessions: [{sessionId, turns, inputTokens, …, costUsd, lastAt}]}`", body = Object)))]
async fn usage_sessions(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<Page>,
) -> Result<Json<Value>, ApiError> {
    let limit = check_range("limit", q.limit.unwrap_or(100), 1, 1000)?;
    let offset = check_range("offset", q.offset.unwrap_or(0), 0, i64::from(i32::MAX))?;
    let rows = s.store.usage_by_session(limit, offset).await?;
    let sessions: Vec<Value> = rows
        .iter()
        .map(|t| {
            let mut v = totals_json(t);
            v["sessionId"] = json!(t.session_id);
            v["lastAt"] = json!(t.last_at);
            v
        })
        .collect();
    Ok(Json(json!({"sessions": sessions})))
}

/// One session's totals, overall and per model.
#[utoipa::path(get, path = "/api/usage/sessions/{session_id}", tag = "usage",
    params(("session_id" = String, Path, description = "Session id")),
    responses((status = 200, description = "`{sessionId, total, byModel}`", body = Object), (status = 404, description = "Session not found")))]
async fn usage_session(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let rows = s.store.usage_of_session(&id).await?;
    if rows.is_empty() && s.store.get_session(&id).await?.is_none() {
        return Err(ApiError::NotFound("Session not found".into()));
    }
    let mut total = UsageTotals::default();
    for r in &rows {
        total.turns = total.turns.max(r.turns);
        total.input_tokens += r.input_tokens;
        total.output_tokens += r.output_tokens;
        total.cache_creation_input_tokens += r.cache_creation_input_tokens;
        total.cache_read_input_tokens += r.cache_read_input_tokens;
        total.cost_usd += r.cost_usd;
    }
    let by_model: Vec<Value> = rows
        .iter()
        .map(|t| {
            let mut v = totals_json(t);
            v["model"] = json!(t.model);
            v
        })
        .collect();
    Ok(Json(
        json!({"sessionId": id, "total": totals_json(&total), "byModel": by_model}),
    ))
}

/// The account's quota as the model provider reports it (always 200; `error` says why
/// a figure is missing).
#[utoipa::path(get, path = "/api/usage", tag = "usage",
    responses((status = 200, description = "`{five_hour, seven_day, seven_day_sonnet, seven_day_opus, extra_usage, subscription_type, rate_limit_tier, error}`", body = Object)))]
async fn account_usage(State(s): State<AppState>) -> Json<Value> {
    Json(parachute_core::chat::quota::fetch(&s.settings, &s.secrets).await)
}
