//! Calls to the running server's API from the command line (loopback only).

use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

/// Calls the running server's API on loopback (30 s at most).
pub async fn call(
    port: u16,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<(u16, Value)> {
    call_within(port, method, path, body, Duration::from_secs(30)).await
}

/// [`call`], waiting up to `within`.
pub async fn call_within(
    port: u16,
    method: &str,
    path: &str,
    body: Option<Value>,
    within: Duration,
) -> anyhow::Result<(u16, Value)> {
    let text = body.map(|b| b.to_string());
    let r =
        parachute_core::util::probe::request_loopback(port, method, path, text.as_deref(), within)
            .await
            .with_context(|| {
                format!(
            "the server on port {port} did not answer; is it running (`parachute server start`)?"
        )
            })?;
    Ok((
        r.status,
        serde_json::from_str(&r.body).unwrap_or(Value::Null),
    ))
}

/// The message of an error answer.
pub fn detail(v: &Value) -> String {
    v.get("detail")
        .or_else(|| v.get("error"))
        .map(|d| {
            d.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| d.to_string())
        })
        .unwrap_or_else(|| v.to_string())
}
