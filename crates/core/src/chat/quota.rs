//! The account's usage quota, asked of the model provider's OAuth usage endpoint with
//! the owner's Claude token (the contract's `GET /api/usage`). Any failure becomes the
//! `error` field of an otherwise-null answer: the route always answers 200.

use std::time::Duration;

use serde_json::{json, Value};

use crate::config::secrets::{SecretStore, TokenKind};
use crate::config::Settings;

const DEFAULT_BASE: &str = "https://api.anthropic.com";

fn empty(error: &str) -> Value {
    json!({"five_hour": null, "seven_day": null, "seven_day_sonnet": null, "seven_day_opus": null,
        "extra_usage": null, "subscription_type": null, "rate_limit_tier": null, "error": error})
}

fn window(v: &Value) -> Value {
    if !v.is_object() {
        return Value::Null;
    }
    json!({"utilization": v.get("utilization").cloned().unwrap_or(Value::Null),
        "resets_at": v.get("resets_at").cloned().unwrap_or(Value::Null)})
}

/// Fetches the quota; never fails (errors are reported in the `error` key).
pub async fn fetch(settings: &Settings, secrets: &SecretStore) -> Value {
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
    let extra = v.get("extra_usage").filter(|e| e.is_object()).map(|e| {
        json!({"is_enabled": e.get("is_enabled").cloned().unwrap_or(Value::Null),
            "monthly_limit": e.get("monthly_limit").cloned().unwrap_or(Value::Null),
            "used_credits": e.get("used_credits").cloned().unwrap_or(Value::Null),
            "utilization": e.get("utilization").cloned().unwrap_or(Value::Null)})
    });
    json!({"five_hour": window(&v["five_hour"]), "seven_day": window(&v["seven_day"]),
        "seven_day_sonnet": window(&v["seven_day_sonnet"]), "seven_day_opus": window(&v["seven_day_opus"]),
        "extra_usage": extra, "subscription_type": v.get("subscription_type").cloned().unwrap_or(Value::Null),
        "rate_limit_tier": v.get("rate_limit_tier").cloned().unwrap_or(Value::Null), "error": null})
}
