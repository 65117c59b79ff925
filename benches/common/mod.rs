//! Helpers shared by the benchmarks: ports, a probe client, percentiles, formatting,
//! and where reports are written.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{json, Value};

/// A free TCP port on loopback.
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// A client for health polling: no pooling, short timeout, never a proxy.
pub fn probe_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(1))
        .build()
        .context("building the probe client")
}

/// Nearest-rank percentile of sorted samples.
pub fn percentile(sorted: &[Duration], pct: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((pct / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn mb(kb: Option<u64>) -> Option<f64> {
    kb.map(|k| k as f64 / 1024.0)
}

/// `met` when under the limit.
pub fn verdict(value: Option<f64>, limit: f64) -> &'static str {
    match value {
        Some(v) if v < limit => "met",
        Some(_) => "MISSED",
        None => "n/a",
    }
}

pub fn fmt_mb(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.1} MB"))
}

pub fn progress(msg: &str) {
    eprintln!("… {msg}");
}

/// `target/<file>` (or under `CARGO_TARGET_DIR`).
pub fn report_path(file: &str) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join(file)
}

pub fn target_json(value: Option<f64>, limit: f64) -> Value {
    json!({ "limit": limit, "value": value, "verdict": verdict(value, limit) })
}
