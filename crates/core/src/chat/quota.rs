//! The account's usage quota, asked of the model provider's OAuth usage endpoint with
//! the owner's Claude token (the contract's `GET /api/usage`). Any failure becomes the
//! `error` field of an otherwise-null answer: the route always answers 200.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::config::secrets::{SecretStore, TokenKind};
use crate::config::Settings;

const DEFAULT_BASE: &str = "https://api.anthropic.com";

/// The account's quota (`GET /api/usage`); every figure is null when `error` is set.
/// The figures are passed through as the model provider sends them.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AccountUsage {
    /// The rolling five-hour window; null when the provider reports none.
    pub five_hour: Option<QuotaWindow>,
    /// The seven-day window; null when the provider reports none.
    pub seven_day: Option<QuotaWindow>,
    /// The seven-day window for Sonnet models; null when the provider reports none.
    pub seven_day_sonnet: Option<QuotaWindow>,
    /// The seven-day window for Opus models; null when the provider reports none.
    pub seven_day_opus: Option<QuotaWindow>,
    /// Paid usage beyond the subscription; null when the provider reports none.
    pub extra_usage: Option<ExtraUsage>,
    /// As the provider sends it (normally a string); null when absent.
    pub subscription_type: Value,
    /// As the provider sends it (normally a string); null when absent.
    pub rate_limit_tier: Value,
    /// Why the quota could not be read; null when it was.
    pub error: Option<String>,
}

/// One quota window, as the provider reports it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct QuotaWindow {
    /// Percent of the window used (normally a number); null when absent.
    pub utilization: Value,
    /// When the window resets (normally an RFC 3339 string); null when absent.
    pub resets_at: Value,
}

/// Paid usage beyond the subscription, as the provider reports it (each figure null
/// when absent).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ExtraUsage {
    /// Whether paid usage is on (normally a boolean).
    pub is_enabled: Value,
    /// The monthly limit (normally a number).
    pub monthly_limit: Value,
    /// Credits used this month (normally a number).
    pub used_credits: Value,
    /// Percent of the monthly limit used (normally a number).
    pub utilization: Value,
}

/// `key` of a provider object as sent; null when absent.
fn field(v: &Value, key: &str) -> Value {
    v.get(key).cloned().unwrap_or(Value::Null)
}

fn empty(error: &str) -> AccountUsage {
    AccountUsage {
        five_hour: None,
        seven_day: None,
        seven_day_sonnet: None,
        seven_day_opus: None,
        extra_usage: None,
        subscription_type: Value::Null,
        rate_limit_tier: Value::Null,
        error: Some(error.to_string()),
    }
}

fn window(v: &Value) -> Option<QuotaWindow> {
    v.is_object().then(|| QuotaWindow {
        utilization: field(v, "utilization"),
        resets_at: field(v, "resets_at"),
    })
}

fn extra_usage(e: &Value) -> ExtraUsage {
    ExtraUsage {
        is_enabled: field(e, "is_enabled"),
        monthly_limit: field(e, "monthly_limit"),
        used_credits: field(e, "used_credits"),
        utilization: field(e, "utilization"),
    }
}

/// Fetches the quota; never fails (errors are reported in the `error` key).
pub async fn fetch(settings: &Settings, secrets: &SecretStore) -> AccountUsage {
    let token = match secrets.claude_credential().await {
        Ok(Some(c)) if c.kind == TokenKind::OAuth => c.secret,
        _ => return empty("No Claude OAuth token configured (run `parachute setup-token`); API keys have no subscription quota"),
    };
    let base = settings
        .anthropic_base_url
        .as_deref()
        .unwrap_or(DEFAULT_BASE)
        .trim_end_matches('/');
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(8))
        .build()
    {
        Ok(c) => c,
        Err(e) => return empty(&format!("Cannot create an HTTP client: {e}")),
    };
    let res = client
        .get(format!("{base}/api/oauth/usage"))
        .bearer_auth(token.expose())
        .header("anthropic-beta", "oauth-2025-04-20")
        .send()
        .await;
    let res = match res {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e.without_url(), "could not reach the model provider for the quota");
            return empty("Could not reach the model provider to read the usage quota");
        }
    };
    if !res.status().is_success() {
        return empty(&format!(
            "The model provider answered {} for the usage quota",
            res.status().as_u16()
        ));
    }
    let v: Value = match res.json().await {
        Ok(v) => v,
        Err(_) => return empty("The model provider's usage answer was not JSON"),
    };
    AccountUsage {
        five_hour: window(&v["five_hour"]),
        seven_day: window(&v["seven_day"]),
        seven_day_sonnet: window(&v["seven_day_sonnet"]),
        seven_day_opus: window(&v["seven_day_opus"]),
        extra_usage: v
            .get("extra_usage")
            .filter(|e| e.is_object())
            .map(extra_usage),
        subscription_type: field(&v, "subscription_type"),
        rate_limit_tier: field(&v, "rate_limit_tier"),
        error: None,
    }
}
