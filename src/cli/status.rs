//! `parachute status`: vault, token, daemon and what the running server says of itself.

use std::process::ExitCode;
use std::time::Duration;

use parachute_core::config::secrets::{SecretName, SecretStore};
use parachute_core::config::{Overrides, Settings};

pub async fn run(ov: &Overrides) -> anyhow::Result<ExitCode> {
    let s = Settings::load(ov)?;
    println!(
        "vault:  {} ({})",
        s.paths.vault.display(),
        parachute_core::vault::vault_status(&s.paths.vault)
    );
    println!("home:   {}", s.paths.home.display());
    let secrets = SecretStore::new(s.paths.secrets_file());
    match secrets.get(SecretName::ClaudeOauthToken).await {
        Ok(Some((_, at))) => println!("token:  set ({})", at.as_str()),
        _ => println!("token:  not set — run `parachute setup-token`"),
    }
    let port = super::daemon::running_server(&s)
        .map(|i| i.port)
        .unwrap_or(s.port);
    match parachute_core::util::probe::get_loopback(
        port,
        "/api/health?detailed=true",
        Duration::from_secs(3),
    )
    .await
    {
        Ok(r) if r.status == 200 => {
            let v: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
            println!(
                "server: running on port {port}, version {}, uptime {:.0} s, docker {}",
                v["version"].as_str().unwrap_or("?"),
                v["uptime"].as_f64().unwrap_or(0.0),
                if v["docker"]["available"].as_bool() == Some(true) {
                    "available"
                } else {
                    "unavailable"
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            println!("server: not running on port {port} — start it with `parachute server start`");
            Ok(ExitCode::from(3))
        }
    }
}
