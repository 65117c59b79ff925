//! `parachute status`: vault, token, daemon and what the running server says of itself.
//! Without `--vault` it describes the vault the running server serves.

use std::process::ExitCode;
use std::time::Duration;

use parachute_core::config::secrets::SecretStore;
use parachute_core::config::Overrides;

pub async fn run(ov: &Overrides) -> anyhow::Result<ExitCode> {
    let (s, why) = super::described_settings(ov)?;
    println!(
        "vault:  {} ({}) — {why}",
        s.paths.vault.display(),
        parachute_core::vault::vault_status(&s.paths.vault)
    );
    println!("home:   {}", s.paths.home.display());
    let secrets = SecretStore::new(s.paths.secrets_file());
    println!("token:  {}", super::token::describe(&secrets).await);
    let running = super::daemon::running_server(&s);
    let port = running.as_ref().map(|i| i.port).unwrap_or(s.port);
    let serving = match &running {
        Some(i) if std::path::Path::new(&i.vault) != s.paths.vault => {
            format!(", serving another vault: {}", i.vault)
        }
        Some(i) => format!(", serving {}", i.vault),
        None => String::new(),
    };
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
                "server: running on port {port}{serving}, version {}, uptime {:.0} s",
                v["version"].as_str().unwrap_or("?"),
                v["uptime"].as_f64().unwrap_or(0.0),
            );
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            println!("server: not running on port {port} — start it with `parachute server start`");
            Ok(ExitCode::from(3))
        }
    }
}
