//! `parachute install`: set this machine up in one idempotent pass — create or adopt the
//! vault (and remember it), store the Claude credential if none is set, check the Claude
//! CLI, start the background daemon (a systemd user unit where one runs), and say what
//! to do next. Running it again changes nothing that is already right.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use parachute_core::config::secrets::SecretStore;
use parachute_core::config::{write_yaml_key, Overrides, Settings, Source};

/// The Claude Code CLI version this release is tested with.
pub const TESTED_CLAUDE_CLI: &str = "2.1.330";

/// What `install` may skip.
pub struct InstallOptions {
    /// Leave the daemon alone (no unit, no start).
    pub no_daemon: bool,
}

pub async fn run(ov: &Overrides, opts: InstallOptions) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(ov)?;
    let vault = settings.paths.vault.clone();
    println!("1. Vault");
    adopt_vault(&settings)?;

    println!("2. Claude credential");
    let secrets = SecretStore::new(settings.paths.secrets_file());
    let have = secrets.claude_credential().await?.is_some();
    if have {
        println!("   {}", super::token::describe(&secrets).await);
    } else if std::io::stdin().is_terminal() {
        println!("   none yet; `claude setup-token` prints one (or use an Anthropic API key)");
        if super::token::run(false).await? != ExitCode::SUCCESS {
            println!("   skipped: run `parachute setup-token` later");
        }
    } else {
        println!("   none yet: run `parachute setup-token` (chats fail until one is set)");
    }

    println!("3. Claude Code CLI");
    let cli_ok = check_cli(&settings.claude_cli_path).await;

    println!("4. Background server");
    let mut ok = cli_ok;
    if opts.no_daemon {
        println!("   skipped (--no-daemon): run `parachute server start` when you want it");
    } else {
        let started = super::daemon::run(ov, Some(super::DaemonAction::Start)).await?;
        ok &= started == ExitCode::SUCCESS;
    }

    let port = super::daemon::running_server(&settings)
        .map(|i| i.port)
        .unwrap_or(settings.port);
    println!();
    println!("Next:");
    println!("  parachute status            what runs, on which vault, with which credential");
    println!("  http://localhost:{port}/api/docs   the HTTP API");
    println!(
        "  curl -X POST localhost:{port}/api/auth/keys -H 'Content-Type: application/json' -d '{{\"label\":\"my phone\"}}'"
    );
    println!("                              an API key for the mobile app on your LAN");
    println!("  parachute doctor            if anything looks wrong");
    println!("Your vault is {}.", vault.display());
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Creates the vault if missing (or adopts an existing folder) and records it as
/// `vault_path` in `$PARACHUTE_HOME/config.yaml` when it was named explicitly, so later
/// commands find it without `--vault`.
fn adopt_vault(s: &Settings) -> anyhow::Result<()> {
    let vault = &s.paths.vault;
    let existed = vault.is_dir();
    s.paths.ensure_dirs()?;
    if existed {
        println!(
            "   adopted {} ({} Markdown files)",
            vault.display(),
            count_markdown(vault, 4)
        );
    } else {
        println!("   created {}", vault.display());
    }
    if matches!(
        s.paths.vault_source,
        Source::Flag | Source::Env | Source::DotEnv
    ) {
        let file = s.paths.home_config_file();
        let before = std::fs::read_to_string(&file).unwrap_or_default();
        let abs = parachute_core::config::paths::absolutize(vault);
        write_yaml_key(
            &file,
            "vault_path",
            serde_json::Value::from(abs.display().to_string()),
        )?;
        if std::fs::read_to_string(&file).unwrap_or_default() != before {
            println!("   remembered as vault_path in {}", file.display());
        }
    }
    Ok(())
}

/// Markdown files under `dir`, `depth` levels deep, hidden folders skipped.
fn count_markdown(dir: &Path, depth: usize) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            let kind = e.file_type().ok();
            if name.starts_with('.') {
                0
            } else if kind.is_some_and(|k| k.is_dir()) && depth > 0 {
                count_markdown(&e.path(), depth - 1)
            } else {
                usize::from(name.ends_with(".md"))
            }
        })
        .sum()
}

/// Says whether the CLI runs, and whether it is the version this release is tested with.
async fn check_cli(cli: &Path) -> bool {
    let out = tokio::process::Command::new(cli)
        .arg("--version")
        .kill_on_drop(true)
        .output()
        .await;
    match out {
        Ok(o) if o.status.success() => {
            let v = String::from_utf8_lossy(&o.stdout).trim().to_string();
            if v.starts_with(TESTED_CLAUDE_CLI) {
                println!("   {v}");
            } else {
                println!("   {v} (this release is tested with {TESTED_CLAUDE_CLI})");
            }
            true
        }
        _ => {
            println!(
                "   `{}` not found: install it with `npm install -g @anthropic-ai/claude-code@{TESTED_CLAUDE_CLI}`, or set claude_cli_path",
                cli.display()
            );
            false
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_tested_cli_version_is_the_one_the_tests_install() {
        let script = include_str!("../../scripts/install-test-deps.sh");
        assert!(
            script.contains(&format!("CLAUDE_CODE_VERSION={}", super::TESTED_CLAUDE_CLI)),
            "scripts/install-test-deps.sh pins another Claude Code version"
        );
        let readme = include_str!("../../README.md");
        assert!(
            readme.contains(&format!("claude-code@{}", super::TESTED_CLAUDE_CLI)),
            "the README names another Claude Code version"
        );
    }
}
