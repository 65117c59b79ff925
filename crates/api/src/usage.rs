//! Usage: tokens and cost recorded per session and model (`/api/usage/sessions…`), and
//! the contract's `GET /api/usage` (the account's quota, asked of the model provider).

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::error::ApiError;
use super::extract::ApiQuery;
use super::sessions::check_range;
use parachute_core::app::AppState;
use parachute_core::chat::quota::AccountUsage;
use parachute_core::db::UsageTotals;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(usage_sessions))
        .routes(routes!(usage_session))
        .routes(routes!(account_usage))
}

/// Token and cost totals over some turns.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct UsageTotalsJson {
    /// Rows summed (one per turn and model); in a session's `total`, the most of any
    /// one model.
    turns: i64,
    /// Uncached input tokens.
    input_tokens: i64,
    /// Output tokens.
    output_tokens: i64,
    /// Input tokens written to the prompt cache.
    cache_creation_input_tokens: i64,
    /// Input tokens read from the prompt cache.
    cache_read_input_tokens: i64,
    /// Cost in US dollars.
    cost_usd: f64,
}

impl From<&UsageTotals> for UsageTotalsJson {
    fn from(t: &UsageTotals) -> Self {
        UsageTotalsJson {
            turns: t.turns,
            input_tokens: t.input_tokens,
            output_tokens: t.output_tokens,
            cache_creation_input_tokens: t.cache_creation_input_tokens,
            cache_read_input_tokens: t.cache_read_input_tokens,
            cost_usd: t.cost_usd,
        }
    }
}

/// One session's totals over all models.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SessionUsageTotals {
    #[serde(flatten)]
    totals: UsageTotalsJson,
    session_id: String,
    /// Time of the latest turn counted, in the session timestamp format.
    last_at: String,
}

/// Token and cost totals per session.
#[derive(Serialize, ToSchema)]
struct SessionUsageList {
    /// Most recently used first.
    sessions: Vec<SessionUsageTotals>,
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
    responses((status = 200, body = SessionUsageList)))]
async fn usage_sessions(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<Page>,
) -> Result<Json<SessionUsageList>, ApiError> {
    let limit = check_range("limit", q.limit.unwrap_or(100), 1, 1000)?;
    let offset = check_range("offset", q.offset.unwrap_or(0), 0, i64::from(i32::MAX))?;
    let rows = s.store.usage_by_session(limit, offset).await?;
    let sessions = rows
        .into_iter()
        .map(|t| SessionUsageTotals {
            totals: UsageTotalsJson::from(&t),
            session_id: t.session_id,
            last_at: t.last_at,
        })
        .collect();
    Ok(Json(SessionUsageList { sessions }))
}

/// One model's totals within a session.
#[derive(Serialize, ToSchema)]
struct ModelUsageTotals {
    #[serde(flatten)]
    totals: UsageTotalsJson,
    model: String,
}

/// One session's totals, overall and per model.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SessionUsage {
    session_id: String,
    total: UsageTotalsJson,
    /// By model name.
    by_model: Vec<ModelUsageTotals>,
}

/// One session's totals, overall and per model.
#[utoipa::path(get, path = "/api/usage/sessions/{session_id}", tag = "usage",
    params(("session_id" = String, Path, description = "Session id")),
    responses((status = 200, body = SessionUsage), (status = 404, description = "Session not found")))]
async fn usage_session(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SessionUsage>, ApiError> {
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
    let by_model = rows
        .into_iter()
        .map(|t| ModelUsageTotals {
            totals: UsageTotalsJson::from(&t),
            model: t.model,
        })
        .collect();
    Ok(Json(SessionUsage {
        session_id: id,
        total: UsageTotalsJson::from(&total),
        by_model,
    }))
}

/// The account's quota as the model provider reports it (always 200; `error` says why
/// a figure is missing).
#[utoipa::path(get, path = "/api/usage", tag = "usage",
    responses((status = 200, body = AccountUsage)))]
async fn account_usage(State(s): State<AppState>) -> Json<AccountUsage> {
    Json(parachute_core::chat::quota::fetch(&s.settings, &s.secrets).await)
}
