//! `parachute doctor`: PASS / NOTE / WARN / FAIL for everything the server needs; exits
//! 1 when anything fails. Without `--vault` it checks the vault the running server
//! serves. Later subsystems add their checks here.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use parachute_core::config::secrets::SecretStore;
use parachute_core::config::{Overrides, Settings};

#[derive(PartialEq)]
pub(super) enum Verdict {
    Pass,
    /// Worth knowing, nothing to fix (e.g. a vault that the first start creates).
    Note,
    Warn,
    Fail,
}

pub(super) fn report(v: Verdict, what: &str, detail: impl AsRef<str>) -> Verdict {
    let tag = match v {
        Verdict::Pass => "PASS",
        Verdict::Note => "NOTE",
        Verdict::Warn => "WARN",
        Verdict::Fail => "FAIL",
    };
    println!("[{tag}] {what}: {}", detail.as_ref());
    v
}

pub async fn run(ov: &Overrides) -> anyhow::Result<ExitCode> {
    let mut verdicts = Vec::new();
    let settings = match super::described_settings(ov) {
        Ok((s, why)) => {
            println!("Checking vault {} ({why})", s.paths.vault.display());
            verdicts.push(report(Verdict::Pass, "config", "settings load"));
            for w in &s.warnings {
                verdicts.push(report(Verdict::Warn, "config", w));
            }
            s
        }
        Err(e) => {
            report(Verdict::Fail, "config", e.to_string());
            return Ok(ExitCode::FAILURE);
        }
    };
    verdicts.push(check_vault(&settings.paths.vault));
    verdicts.push(check_port(&settings).await);
    verdicts.push(check_db(&settings).await);
    verdicts.push(check_cli(&settings.claude_cli_path).await);
    let secrets = SecretStore::new(settings.paths.secrets_file());
    verdicts.push(match secrets.claude_credential().await {
        Ok(Some(c)) => report(
            Verdict::Pass,
            "token",
            format!(
                "Claude {} set ({}, sent to the CLI as {})",
                c.kind.label(),
                c.location.as_str(),
                c.kind.secret_name().env_var()
            ),
        ),
        Ok(None) => report(
            Verdict::Warn,
            "token",
            "no Claude credential: run `parachute setup-token`, or set CLAUDE_CODE_OAUTH_TOKEN or ANTHROPIC_API_KEY",
        ),
        Err(e) => report(Verdict::Fail, "token", e.to_string()),
    });
    verdicts.push(check_os_sandbox().await);
    verdicts.push(check_docker(&settings.sandbox_image).await);
    verdicts.push(check_disk(&settings.paths.vault));
    verdicts.push(check_keychain().await);
    Ok(if verdicts.contains(&Verdict::Fail) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn check_vault(vault: &Path) -> Verdict {
    if !vault.exists() {
        return report(
            Verdict::Note,
            "vault",
            format!(
                "{} does not exist yet; the server creates it on first start",
                vault.display()
            ),
        );
    }
    if !vault.is_dir() {
        return report(
            Verdict::Fail,
            "vault",
            format!("{} is not a folder", vault.display()),
        );
    }
    let probe = vault.join(format!(".parachute-doctor-{}", std::process::id()));
    match std::fs::write(&probe, b"ok") {
        Ok(()) => {
            let _ = std::fs::remove_file(&probe);
            report(
                Verdict::Pass,
                "vault",
                format!("{} is writable", vault.display()),
            )
        }
        Err(e) => report(
            Verdict::Fail,
            "vault",
            format!("{} is not writable: {e}", vault.display()),
        ),
    }
}

async fn check_port(s: &Settings) -> Verdict {
    if let Some(info) = super::daemon::running_server(s) {
        return report(
            Verdict::Pass,
            "port",
            format!("parachute is serving port {} (pid {})", info.port, info.pid),
        );
    }
    match std::net::TcpListener::bind((s.host.as_str(), s.port)) {
        Ok(_) => report(
            Verdict::Pass,
            "port",
            format!("{}:{} is free", s.host, s.port),
        ),
        Err(e) => {
            let ours = matches!(parachute_core::util::probe::get_loopback(s.port, "/", Duration::from_secs(1)).await,
                Ok(r) if r.body.contains("Parachute"));
            if ours {
                report(
                    Verdict::Pass,
                    "port",
                    format!("a Parachute server answers on port {}", s.port),
                )
            } else {
                report(
                    Verdict::Fail,
                    "port",
                    format!("{}:{} is taken by another program: {e}", s.host, s.port),
                )
            }
        }
    }
}

async fn check_db(s: &Settings) -> Verdict {
    if !s.db_path.exists() {
        return report(
            Verdict::Pass,
            "database",
            format!("{} will be created on first start", s.db_path.display()),
        );
    }
    match parachute_core::db::Store::open(&s.db_path).await {
        Ok(store) => {
            let ok = store.quick_check().await.unwrap_or(false);
            store.close().await;
            if ok {
                report(
                    Verdict::Pass,
                    "database",
                    format!("{} opens and passes quick_check", s.db_path.display()),
                )
            } else {
                report(
                    Verdict::Fail,
                    "database",
                    format!("{} fails quick_check", s.db_path.display()),
                )
            }
        }
        Err(e) => report(Verdict::Fail, "database", e.to_string()),
    }
}

async fn check_cli(cli: &Path) -> Verdict {
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::process::Command::new(cli)
            .arg("--version")
            .kill_on_drop(true)
            .output(),
    )
    .await;
    match out {
        Ok(Ok(o)) if o.status.success() => report(
            Verdict::Pass,
            "claude CLI",
            String::from_utf8_lossy(&o.stdout).trim(),
        ),
        Ok(Ok(o)) => report(
            Verdict::Fail,
            "claude CLI",
            format!(
                "`claude --version` failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ),
        ),
        Ok(Err(_)) => report(
            Verdict::Fail,
            "claude CLI",
            format!(
                "`{}` not found: `npm install -g @anthropic-ai/claude-code` or set claude_cli_path",
                cli.display()
            ),
        ),
        Err(_) => report(
            Verdict::Fail,
            "claude CLI",
            "`claude --version` did not answer within 20 s",
        ),
    }
}

async fn check_docker(image: &str) -> Verdict {
    let st = parachute_sandbox::engine::status(image).await;
    match (st.available, st.image_exists) {
        (true, true) => report(
            Verdict::Pass,
            "docker",
            format!("the engine answers and {image} is there: sessions at 'sandboxed' run"),
        ),
        (true, false) => report(
            Verdict::Warn,
            "docker",
            format!("the engine answers but {image} is missing: `parachute sandbox build` (sessions at 'sandboxed' fail until then)"),
        ),
        _ => report(
            Verdict::Warn,
            "docker",
            "no Docker engine answers: sessions at 'sandboxed' fail until one runs ('full' and 'vault' are unaffected)",
        ),
    }
}

fn check_disk(vault: &Path) -> Verdict {
    let Some(free) = parachute_core::util::sys::free_disk_bytes(vault) else {
        return report(Verdict::Warn, "disk", "cannot check free space");
    };
    let gib = free as f64 / (1u64 << 30) as f64;
    if gib >= 1.0 {
        report(Verdict::Pass, "disk", format!("{gib:.1} GiB free"))
    } else {
        report(Verdict::Warn, "disk", format!("only {gib:.2} GiB free"))
    }
}

/// The OS sandbox that `vault` sessions run their commands in.
async fn check_os_sandbox() -> Verdict {
    let probe = tokio::task::spawn_blocking(parachute_core::trust::os_sandbox::probe).await;
    match probe {
        Ok(Ok(())) => report(
            Verdict::Pass,
            "OS sandbox",
            "bubblewrap works: sessions at trust level 'vault' run confined",
        ),
        Ok(Err(e)) => report(
            Verdict::Warn,
            "OS sandbox",
            format!(
                "{e} Sessions at trust level 'vault' fail until it works; 'full' is unaffected."
            ),
        ),
        Err(e) => report(Verdict::Warn, "OS sandbox", e.to_string()),
    }
}

async fn check_keychain() -> Verdict {
    if !parachute_core::config::secrets::keychain_enabled() {
        return report(
            Verdict::Note,
            "keychain",
            "off (PARACHUTE_KEYRING=off); secrets use the 0600 file in PARACHUTE_HOME",
        );
    }
    let probe = tokio::task::spawn_blocking(parachute_core::config::secrets::probe_keychain);
    match tokio::time::timeout(Duration::from_secs(3), probe).await {
        Ok(Ok(Ok(()))) => report(Verdict::Pass, "keychain", "the OS keychain answers"),
        Ok(Ok(Err(e))) => report(
            Verdict::Warn,
            "keychain",
            format!("not available ({e}); secrets use the 0600 file in PARACHUTE_HOME"),
        ),
        _ => report(
            Verdict::Warn,
            "keychain",
            "did not answer in 3 s; secrets use the 0600 file in PARACHUTE_HOME",
        ),
    }
}
