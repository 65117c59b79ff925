//! The two places on disk: the vault (user content and its `.parachute/`
//! settings) and the server home `PARACHUTE_HOME` (secrets fallback, CLI config dir,
//! logs, PID file) — and the one order in which the vault is found.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{read_yaml_map, ConfigError, Source};

/// Every well-known file location, derived from the vault and the home.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The vault folder, absolute.
    pub vault: PathBuf,
    /// The layer the vault path came from (flag, `VAULT_PATH`, `.env`, home config or default).
    pub vault_source: Source,
    /// The server home: `PARACHUTE_HOME`, else `~/.parachute`.
    pub home: PathBuf,
}

impl Paths {
    /// Builds the paths from a resolved vault (with its source) and the server home.
    pub fn new((vault, vault_source): (PathBuf, Source), home: PathBuf) -> Paths {
        Paths {
            vault,
            vault_source,
            home,
        }
    }

    /// `{vault}/.parachute/`
    pub fn vault_dot(&self) -> PathBuf {
        self.vault.join(".parachute")
    }
    /// `{vault}/.parachute/config.yaml`: the vault's settings layer.
    pub fn vault_config_file(&self) -> PathBuf {
        self.vault_dot().join("config.yaml")
    }
    /// `{vault}/.parachute/server.yaml`: auth mode and hashed API keys.
    pub fn server_yaml(&self) -> PathBuf {
        self.vault_dot().join("server.yaml")
    }
    /// `{vault}/.parachute/workspaces/`: workspace definitions.
    pub fn workspaces_dir(&self) -> PathBuf {
        self.vault_dot().join("workspaces")
    }
    /// `{vault}/.modules/`: installed modules, one folder each.
    pub fn modules_dir(&self) -> PathBuf {
        self.vault.join(".modules")
    }
    /// `{vault}/.parachute/module_hashes.json`: the approved hash of each module.
    pub fn module_hashes_file(&self) -> PathBuf {
        self.vault_dot().join("module_hashes.json")
    }
    /// `{vault}/.skills/`: the vault's skills.
    pub fn skills_dir(&self) -> PathBuf {
        self.vault.join(".skills")
    }
    /// `{vault}/.parachute/agents/`: the vault's sub-agents.
    pub fn agents_dir(&self) -> PathBuf {
        self.vault_dot().join("agents")
    }
    /// `{vault}/.mcp.json`: the vault's MCP servers.
    pub fn mcp_json(&self) -> PathBuf {
        self.vault.join(".mcp.json")
    }
    /// `$PARACHUTE_HOME/mcp_approvals.json`: the `.mcp.json` servers the owner approved.
    pub fn mcp_approvals_file(&self) -> PathBuf {
        self.home.join("mcp_approvals.json")
    }
    /// `$PARACHUTE_HOME/runtime/`: what the server generates per session (skill plugins).
    pub fn runtime_dir(&self) -> PathBuf {
        self.home.join("runtime")
    }
    /// The Python-era token file, migrated into the secrets store on start.
    pub fn legacy_token_file(&self) -> PathBuf {
        self.vault_dot().join(".token")
    }
    /// `$PARACHUTE_HOME/config.yaml`: where `vault_path` may be set.
    pub fn home_config_file(&self) -> PathBuf {
        self.home.join("config.yaml")
    }
    /// `$PARACHUTE_HOME/secrets.json`: the file fallback of the secrets store.
    pub fn secrets_file(&self) -> PathBuf {
        self.home.join("secrets.json")
    }
    /// `$PARACHUTE_HOME/logs/`: server log files.
    pub fn logs_dir(&self) -> PathBuf {
        self.home.join("logs")
    }
    /// `$PARACHUTE_HOME/parachute.pid`: PID of a server started in the background
    /// without a service manager.
    pub fn pid_file(&self) -> PathBuf {
        self.home.join("parachute.pid")
    }
    /// Written by a running server: its PID, address and vault (read by the CLI).
    pub fn runtime_file(&self) -> PathBuf {
        self.home.join("server.json")
    }
    /// The `CLAUDE_CONFIG_DIR` given to the CLI (transcripts live here).
    pub fn claude_config_dir(&self) -> PathBuf {
        self.home.join("claude")
    }

    /// Creates the vault's `.parachute/` and the server home.
    pub fn ensure_dirs(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(self.vault_dot())?;
        std::fs::create_dir_all(&self.home)?;
        std::fs::create_dir_all(self.logs_dir())?;
        restrict_dir(&self.home);
        Ok(())
    }
}

/// Makes a directory private to its owner (best effort: it may not be ours to change).
fn restrict_dir(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
}

fn user_home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// `PARACHUTE_HOME`, else `~/.parachute`.
pub fn resolve_home() -> PathBuf {
    match std::env::var_os("PARACHUTE_HOME") {
        Some(h) if !h.is_empty() => absolutize(Path::new(&h)),
        _ => user_home().join(".parachute"),
    }
}

/// The vault, by the one order: `--vault` > `VAULT_PATH` > `.env` >
/// `vault_path` in `$PARACHUTE_HOME/config.yaml` > `~/Parachute`.
pub fn resolve_vault(
    flag: Option<&Path>,
    dotenv: &BTreeMap<String, String>,
    home: &Path,
) -> Result<(PathBuf, Source), ConfigError> {
    if let Some(f) = flag {
        return Ok((absolutize(f), Source::Flag));
    }
    if let Some(v) = std::env::var_os("VAULT_PATH").filter(|v| !v.is_empty()) {
        return Ok((absolutize(Path::new(&v)), Source::Env));
    }
    if let Some(v) = dotenv.get("vault_path").filter(|v| !v.is_empty()) {
        return Ok((absolutize(Path::new(v)), Source::DotEnv));
    }
    let home_cfg = read_yaml_map(&home.join("config.yaml"))?;
    if let Some(v) = home_cfg
        .get("vault_path")
        .and_then(|v| v.as_str())
        .filter(|v| !v.is_empty())
    {
        return Ok((absolutize(Path::new(&expand_tilde(v))), Source::HomeConfig));
    }
    Ok((user_home().join("Parachute"), Source::Default))
}

fn expand_tilde(p: &str) -> String {
    match p.strip_prefix("~/") {
        Some(rest) => user_home().join(rest).display().to_string(),
        None => p.to_string(),
    }
}

/// Makes a path absolute against the working directory, without touching the disk.
pub fn absolutize(p: &Path) -> PathBuf {
    let p = PathBuf::from(expand_tilde(&p.to_string_lossy()));
    let joined = if p.is_absolute() {
        p
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(p)
    };
    // Lexically drop `.` components so paths shown to users stay tidy.
    joined
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}
