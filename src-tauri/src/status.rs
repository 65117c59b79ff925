//! The status the tray shows: running, attention needed, or error, from the server's
//! detailed health.

use std::time::Duration;

use serde_json::Value;

use parachute_core::util::probe::get_loopback;

/// The tray's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Serving, nothing to do.
    Running,
    /// Serving, but something needs the owner (the reason).
    Attention(String),
    /// Not serving (the reason).
    Error(String),
}

impl Status {
    /// The status line in the menu.
    pub fn line(&self) -> String {
        match self {
            Status::Running => "Parachute is running".into(),
            Status::Attention(why) => format!("Needs attention: {why}"),
            Status::Error(why) => format!("Not running: {why}"),
        }
    }

    /// The tray icon for this state (RGBA PNG).
    pub fn icon(&self) -> &'static [u8] {
        match self {
            Status::Running => include_bytes!("../icons/tray-running.png"),
            Status::Attention(_) => include_bytes!("../icons/tray-attention.png"),
            Status::Error(_) => include_bytes!("../icons/tray-error.png"),
        }
    }
}

/// The status a detailed health reply describes.
pub fn from_health(health: &Value) -> Status {
    if health["status"] != "ok" {
        return Status::Error("the server reports a problem".into());
    }
    if health["claudeCredential"]["configured"] == false {
        return Status::Attention("no Claude credential (open Parachute → Settings)".into());
    }
    if health["vault"]["status"]
        .as_str()
        .is_some_and(|s| s != "ok")
    {
        return Status::Attention(format!(
            "the vault is {}",
            health["vault"]["status"].as_str().unwrap_or("unavailable")
        ));
    }
    Status::Running
}

/// Whether the server on `port` still needs its first-run setup (no Claude credential).
pub async fn needs_setup(port: u16) -> bool {
    match get_loopback(port, "/api/health?detailed=true", Duration::from_secs(5)).await {
        Ok(r) if r.status == 200 => serde_json::from_str::<Value>(&r.body)
            .is_ok_and(|v| v["claudeCredential"]["configured"] == false),
        _ => false,
    }
}

/// Asks the server on `port` how it is.
pub async fn poll(port: u16) -> Status {
    match get_loopback(port, "/api/health?detailed=true", Duration::from_secs(5)).await {
        Ok(r) if r.status == 200 => match serde_json::from_str::<Value>(&r.body) {
            Ok(v) => from_health(&v),
            Err(_) => Status::Error("the server's answer is not readable".into()),
        },
        Ok(r) => Status::Error(format!("the server answers {}", r.status)),
        Err(e) => Status::Error(format!("the server does not answer ({e})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn health_maps_to_the_tray_state() {
        let ok = json!({"status": "ok", "vault": {"status": "ok"},
            "claudeCredential": {"configured": true}});
        assert_eq!(from_health(&ok), Status::Running);
        let no_token = json!({"status": "ok", "vault": {"status": "ok"},
            "claudeCredential": {"configured": false}});
        assert!(matches!(from_health(&no_token), Status::Attention(_)));
        let vault = json!({"status": "ok", "vault": {"status": "inaccessible"},
            "claudeCredential": {"configured": true}});
        assert!(from_health(&vault).line().contains("inaccessible"));
        assert_ne!(Status::Running.icon(), Status::Error(String::new()).icon());
    }
}
