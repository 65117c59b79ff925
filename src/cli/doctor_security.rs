//! `parachute doctor --security`: the settings that weaken a defence, each reported as
//! PASS / NOTE / WARN / FAIL with what to do about it; exits 1 when anything fails.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use parachute_bots::config::BotsConfig;
use parachute_core::auth::AuthMode;
use parachute_core::auth::{ApiKeyInfo, AuthStore};
use parachute_core::config::{Overrides, Settings};
use parachute_core::trust::TrustLevel;
use parachute_core::util::time::to_session_format;

use super::doctor::{report, Verdict};

/// A key not used for this long is probably forgotten on some device.
const STALE_KEY_DAYS: i64 = 90;

pub async fn run(ov: &Overrides) -> anyhow::Result<ExitCode> {
    let settings = match super::described_settings(ov) {
        Ok((s, why)) => {
            println!(
                "Security check of vault {} ({why})",
                s.paths.vault.display()
            );
            s
        }
        Err(e) => {
            report(Verdict::Fail, "config", e.to_string());
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut verdicts = Vec::new();
    let auth = AuthStore::load(
        settings.paths.server_yaml(),
        settings.auth_mode_default,
        settings.auth_mode_override,
    );
    match &auth {
        Ok(auth) => {
            verdicts.push(check_auth_mode(&settings, auth.mode()));
            verdicts.push(check_stale_keys(&auth.list(), chrono::Utc::now()));
        }
        Err(e) => verdicts.push(report(Verdict::Fail, "auth", e.to_string())),
    }
    let bots = BotsConfig::load(&settings.paths.vault_dot().join("bots.yaml"));
    match &bots {
        Ok(bots) => verdicts.extend(check_bots(bots)),
        Err(e) => verdicts.push(report(Verdict::Fail, "bots", e.to_string())),
    }
    verdicts.push(check_secrets_file(&settings.paths.secrets_file()).await);
    verdicts.push(check_legacy_token(&settings.paths.legacy_token_file()));
    verdicts.push(check_cli_settings(&settings));
    let (levels, unreadable) = asked_levels(&settings, bots.as_ref().ok()).await;
    if let Some(e) = unreadable {
        verdicts.push(report(
            Verdict::Warn,
            "isolation",
            format!("cannot read the sessions' trust levels from the store: {e}"),
        ));
    }
    verdicts.extend(check_isolation(&settings, &levels).await);
    Ok(if verdicts.contains(&Verdict::Fail) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn check_auth_mode(s: &Settings, mode: AuthMode) -> Verdict {
    let lan = !s.binds_loopback_only();
    match (mode, lan) {
        (AuthMode::Disabled, true) => report(
            Verdict::Fail,
            "auth",
            format!(
                "auth_mode `disabled` with host {}: anyone on the network could drive your agents (the server refuses to start so); set auth_mode to `remote` or bind to 127.0.0.1",
                s.host
            ),
        ),
        (AuthMode::Disabled, false) => report(
            Verdict::Warn,
            "auth",
            "auth_mode `disabled`: every program on this machine (and any web page it opens through a local proxy) can use the API without a key; `remote` asks keys of other machines only",
        ),
        (AuthMode::Remote, true) => report(
            Verdict::Pass,
            "auth",
            format!("auth_mode `remote` on {}: callers from the network need an API key; this machine's own programs do not", s.host),
        ),
        (m, _) => report(
            Verdict::Pass,
            "auth",
            format!("auth_mode `{}` on {}", m.as_str(), s.host),
        ),
    }
}

/// Days since a key was last used (or created, when never used); `None` when its
/// timestamps cannot be read.
fn idle_days(key: &ApiKeyInfo, now: chrono::DateTime<chrono::Utc>) -> Option<i64> {
    let at = key.last_used_at.as_deref().unwrap_or(&key.created_at);
    // Ours and Python-era (`+00:00`) timestamps alike.
    let when = chrono::DateTime::parse_from_rfc3339(&to_session_format(at)).ok()?;
    Some((now - when.to_utc()).num_days())
}

fn check_stale_keys(keys: &[ApiKeyInfo], now: chrono::DateTime<chrono::Utc>) -> Verdict {
    let named = |k: &ApiKeyInfo| format!("{} \"{}\"", k.id, k.label);
    let stale: Vec<String> = keys
        .iter()
        .filter_map(|k| {
            let days = idle_days(k, now)?;
            (days >= STALE_KEY_DAYS).then(|| format!("{} ({days} days)", named(k)))
        })
        .collect();
    let unreadable: Vec<String> = keys
        .iter()
        .filter(|k| idle_days(k, now).is_none())
        .map(named)
        .collect();
    if !unreadable.is_empty() && stale.is_empty() {
        return report(
            Verdict::Note,
            "API keys",
            format!(
                "cannot tell when these were last used: {}",
                unreadable.join(", ")
            ),
        );
    }
    if stale.is_empty() {
        return report(
            Verdict::Pass,
            "API keys",
            format!(
                "{} key(s), none unused for {STALE_KEY_DAYS} days",
                keys.len()
            ),
        );
    }
    report(
        Verdict::Warn,
        "API keys",
        format!(
            "unused for {STALE_KEY_DAYS}+ days: {}; delete the ones you no longer use (DELETE /api/auth/keys/{{id}})",
            stale.join(", ")
        ),
    )
}

fn check_bots(bots: &BotsConfig) -> Vec<Verdict> {
    let mut out = Vec::new();
    for (name, p) in [("telegram", &bots.telegram), ("discord", &bots.discord)] {
        if p.group_trust_level == TrustLevel::Full {
            out.push(report(
                Verdict::Warn,
                "bots",
                format!("{name}: group chats run at trust level `full`: anyone in an approved group can make the agent run any command on this machine; use `sandboxed` (the default) or `vault`"),
            ));
        }
        if p.enabled && p.dm_trust_level == TrustLevel::Full {
            out.push(report(
                Verdict::Note,
                "bots",
                format!("{name}: direct messages from approved users run at trust level `full`"),
            ));
        }
        if !p.file_token.is_empty() {
            out.push(report(
                Verdict::Warn,
                "bots",
                format!("{name}: a bot token is written in bots.yaml in plain text; start the server once (it moves the token to the secrets store) or use `parachute bot token {name}`"),
            ));
        }
    }
    if out.is_empty() {
        out.push(report(
            Verdict::Pass,
            "bots",
            "no bot runs group chats at `full`, no token in bots.yaml",
        ));
    }
    out
}

async fn check_secrets_file(file: &Path) -> Verdict {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return report(
                Verdict::Pass,
                "secrets",
                format!("no plaintext secrets file ({})", file.display()),
            )
        }
        Err(e) => {
            return report(
                Verdict::Warn,
                "secrets",
                format!("cannot read {}: {e}", file.display()),
            )
        }
    };
    let count = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&text)
        .map(|m| m.len())
        .unwrap_or(0);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(file) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return report(
                    Verdict::Fail,
                    "secrets",
                    format!(
                        "{} is readable by other users (mode {mode:o}): `chmod 600 {}`",
                        file.display(),
                        file.display()
                    ),
                );
            }
        }
    }
    if count == 0 {
        return report(
            Verdict::Pass,
            "secrets",
            format!("{} holds no secret", file.display()),
        );
    }
    let keychain = parachute_core::config::secrets::keychain_enabled()
        && tokio::time::timeout(
            Duration::from_secs(3),
            tokio::task::spawn_blocking(parachute_core::config::secrets::probe_keychain),
        )
        .await
        .is_ok_and(|r| r.is_ok_and(|p| p.is_ok()));
    if keychain {
        report(
            Verdict::Warn,
            "secrets",
            format!("{count} secret(s) in the plaintext file {} although the OS keychain answers: store them again (`parachute setup-token`) to move them there, then delete the file", file.display()),
        )
    } else {
        report(
            Verdict::Note,
            "secrets",
            format!("{count} secret(s) in the plaintext file {} (readable by you only): no OS keychain is available", file.display()),
        )
    }
}

fn check_legacy_token(file: &Path) -> Verdict {
    if file.exists() {
        report(
            Verdict::Warn,
            "secrets",
            format!("{} holds a token in plain text inside the vault (synced and backed up with it); start the server once to move it to the secrets store", file.display()),
        )
    } else {
        report(Verdict::Pass, "secrets", "no token file inside the vault")
    }
}

/// The CLI reads settings only from Parachute's own config dir; hooks or an `env` there
/// apply to every agent.
fn check_cli_settings(s: &Settings) -> Verdict {
    let dir = &s.claude_config_dir;
    let personal = std::env::var_os("HOME").map(|h| Path::new(&h).join(".claude"));
    if personal.as_deref() == Some(dir.as_path()) {
        return report(
            Verdict::Warn,
            "CLI settings",
            format!("claude_config_dir is your personal {}: its hooks, env and permissions apply to every agent; leave the setting unset to use Parachute's own", dir.display()),
        );
    }
    let file = dir.join("settings.json");
    let risky: Vec<&str> = std::fs::read_to_string(&file)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .map(|v| {
            ["hooks", "env", "apiKeyHelper", "enableAllProjectMcpServers"]
                .into_iter()
                .filter(|k| v.get(k).is_some())
                .collect()
        })
        .unwrap_or_default();
    if !risky.is_empty() {
        return report(
            Verdict::Warn,
            "CLI settings",
            format!(
                "{} sets {}: they apply to every agent's CLI",
                file.display(),
                risky.join(", ")
            ),
        );
    }
    report(
        Verdict::Pass,
        "CLI settings",
        format!(
            "agents read settings only from {} (--setting-sources={}); a vault's .claude/ and .mcp.json never apply",
            dir.display(),
            parachute_core::agent::SETTING_SOURCES
        ),
    )
}

/// Which isolating levels something asks for: stored sessions and the bots' defaults.
/// A store that cannot be read is reported, not taken for "nothing".
async fn asked_levels(
    s: &Settings,
    bots: Option<&BotsConfig>,
) -> (Vec<(TrustLevel, String)>, Option<String>) {
    let mut out = Vec::new();
    let mut problem = None;
    if s.db_path.exists() {
        match parachute_core::db::Store::open(&s.db_path).await {
            Ok(store) => {
                match store.sessions_per_trust_level().await {
                    Ok(levels) => {
                        for (level, n) in levels {
                            if let Ok(l) = level.parse::<TrustLevel>() {
                                out.push((l, format!("{n} session(s)")));
                            }
                        }
                    }
                    Err(e) => problem = Some(e.to_string()),
                }
                store.close().await;
            }
            Err(e) => problem = Some(e.to_string()),
        }
    }
    if let Some(b) = bots {
        for (name, p) in [("telegram", &b.telegram), ("discord", &b.discord)] {
            if p.enabled {
                out.push((p.dm_trust_level, format!("{name} direct messages")));
                out.push((p.group_trust_level, format!("{name} groups")));
            }
        }
    }
    (out, problem)
}

async fn check_isolation(s: &Settings, asked: &[(TrustLevel, String)]) -> Vec<Verdict> {
    let who = |level: TrustLevel| -> Vec<String> {
        asked
            .iter()
            .filter(|(l, _)| *l == level)
            .map(|(_, w)| w.clone())
            .collect()
    };
    let mut out = Vec::new();
    let vault = who(TrustLevel::Vault);
    if !vault.is_empty() {
        let probe = tokio::task::spawn_blocking(parachute_core::trust::os_sandbox::probe).await;
        out.push(match probe {
            Ok(Ok(())) => report(Verdict::Pass, "isolation", format!("the OS sandbox works for what runs at `vault`: {}", vault.join(", "))),
            Ok(Err(e)) => report(Verdict::Warn, "isolation", format!("{} ask for `vault` but the OS sandbox does not work ({e}); their turns fail until it does", vault.join(", "))),
            Err(e) => report(Verdict::Warn, "isolation", e.to_string()),
        });
    }
    let sandboxed = who(TrustLevel::Sandboxed);
    if !sandboxed.is_empty() {
        let st = parachute_sandbox::engine::status(&s.sandbox_image).await;
        out.push(if st.ready() {
            report(Verdict::Pass, "isolation", format!("Docker and {} are there for what runs at `sandboxed`: {}", s.sandbox_image, sandboxed.join(", ")))
        } else {
            report(Verdict::Warn, "isolation", format!("{} ask for `sandboxed` but Docker or the image {} is missing; their turns fail until `parachute sandbox build` succeeds", sandboxed.join(", "), s.sandbox_image))
        });
    }
    if out.is_empty() {
        out.push(report(
            Verdict::Pass,
            "isolation",
            "nothing asks for `vault` or `sandboxed`",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(created: &str, used: Option<&str>) -> ApiKeyInfo {
        ApiKeyInfo {
            id: "k_1".into(),
            label: "phone".into(),
            key_hash: String::new(),
            created_at: created.into(),
            last_used_at: used.map(str::to_string),
        }
    }

    #[test]
    fn a_key_is_idle_since_its_last_use_else_since_its_creation() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            idle_days(&key("2026-01-01T00:00:00.000000", None), now),
            Some(334)
        );
        assert_eq!(
            idle_days(
                &key("2026-01-01T00:00:00.000000", Some("2026-11-29T12:00:00.5")),
                now
            ),
            Some(1)
        );
        assert_eq!(
            idle_days(&key("2026-11-01T00:00:00+00:00", None), now),
            Some(30),
            "a Python-era timestamp"
        );
        assert_eq!(idle_days(&key("yesterday", None), now), None);
    }
}
