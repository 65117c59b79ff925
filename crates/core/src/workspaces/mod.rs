//! Workspaces: named defaults for sessions — a trust floor, working
//! directory, model, capability filters and sandbox limits — stored one per folder at
//! `{vault}/.parachute/workspaces/{slug}/config.yaml` (slug excluded, nulls dropped).
//! The trust issue enforces what is stored here.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::trust::TrustLevel;

/// `all`, `none`, or a list of names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum CapabilitySet {
    /// `all` or `none`.
    Keyword(CapabilityKeyword),
    /// Only the capabilities with these names.
    Names(Vec<String>),
}

/// The keyword form of a [`CapabilitySet`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CapabilityKeyword {
    /// Every capability available.
    All,
    /// No capability.
    None,
}

impl CapabilitySet {
    /// Whether the capability `name` is in the set.
    pub fn allows(&self, name: &str) -> bool {
        match self {
            CapabilitySet::Keyword(CapabilityKeyword::All) => true,
            CapabilitySet::Keyword(CapabilityKeyword::None) => false,
            CapabilitySet::Names(names) => names.iter().any(|n| n == name),
        }
    }
}

impl Default for CapabilitySet {
    fn default() -> Self {
        CapabilitySet::Keyword(CapabilityKeyword::All)
    }
}

/// Which plugins the workspace's sessions load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginCapabilities {
    /// Whether the user's own plugins are loaded too (default `true`).
    #[serde(default = "yes")]
    pub include_user: bool,
    /// Further plugin directories to load.
    #[serde(default)]
    pub dirs: Vec<String>,
}

fn yes() -> bool {
    true
}

impl Default for PluginCapabilities {
    fn default() -> Self {
        PluginCapabilities {
            include_user: true,
            dirs: Vec::new(),
        }
    }
}

/// What the workspace's sessions may use; every set defaults to `all`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// MCP servers allowed.
    #[serde(default)]
    pub mcps: CapabilitySet,
    /// Skills allowed.
    #[serde(default)]
    pub skills: CapabilitySet,
    /// Agents allowed.
    #[serde(default)]
    pub agents: CapabilitySet,
    /// Plugins loaded.
    #[serde(default)]
    pub plugins: PluginCapabilities,
}

/// Container limits for `sandboxed` sessions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SandboxLimits {
    /// Memory cap: digits with an optional `k`, `m` or `g` suffix (default `512m`).
    #[serde(default = "default_memory")]
    pub memory: String,
    /// CPU cap in cores, above 0 and at most 256 (default `1.0`).
    #[serde(default = "default_cpu")]
    pub cpu: String,
    /// Time limit in seconds, 1 to 86400 (default 300).
    #[serde(default = "default_timeout")]
    pub timeout: u64,
    /// Vault folders (vault-relative) the container may write; the rest of the vault is
    /// mounted read-only. Ours, beyond the contract; omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub writable: Vec<String>,
}

impl SandboxLimits {
    /// These limits for a container (with `pids` from the server's settings); `None` if
    /// a value does not parse (they are checked when stored).
    pub fn container_limits(&self, pids: i64) -> Option<crate::agent::ContainerLimits> {
        let cores = self.cpu.trim().parse::<f64>().ok()?;
        Some(crate::agent::ContainerLimits {
            memory_bytes: crate::agent::parse_memory(&self.memory)?,
            nano_cpus: (cores * 1e9) as i64,
            pids,
            timeout: std::time::Duration::from_secs(self.timeout),
        })
    }
}

fn default_memory() -> String {
    "512m".into()
}
fn default_cpu() -> String {
    "1.0".into()
}
fn default_timeout() -> u64 {
    300
}

/// A workspace as served (WorkspaceJSON) and stored (minus `slug`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Workspace {
    /// Display name, 1 to 100 characters.
    pub name: String,
    /// Folder name and id; set from the folder when read, not stored in the file.
    #[serde(default)]
    pub slug: String,
    /// Free text; empty when none.
    #[serde(default)]
    pub description: String,
    /// The trust floor: its sessions run at least this restricted (default `full`).
    #[serde(default = "full")]
    pub trust_level: TrustLevel,
    /// Working directory (inside the vault) for its sessions; a directory named by the
    /// request wins over it.
    #[serde(default)]
    pub working_directory: Option<String>,
    /// Model for its sessions when the request names none, before the server default.
    #[serde(default)]
    pub model: Option<String>,
    /// What its sessions may use.
    #[serde(default)]
    pub capabilities: Capabilities,
    /// Container limits for its `sandboxed` sessions, if set.
    #[serde(default)]
    pub sandbox: Option<SandboxLimits>,
}

fn full() -> TrustLevel {
    TrustLevel::Full
}

/// The body of `POST /api/workspaces`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceCreate {
    /// Display name, 1 to 100 characters (trimmed); the slug is derived from it.
    pub name: String,
    /// Free text; `None` stores an empty description.
    #[serde(default)]
    pub description: Option<String>,
    /// The trust floor (`trust_level` is accepted too).
    #[serde(default, alias = "trust_level")]
    pub default_trust_level: Option<String>,
    /// Working directory; must resolve inside the vault. Empty or `None` means none.
    #[serde(default)]
    pub working_directory: Option<String>,
    /// Default model; blank means none.
    #[serde(default)]
    pub model: Option<String>,
    /// Capability filters; `None` allows everything.
    #[serde(default)]
    pub capabilities: Option<Capabilities>,
    /// Container limits for `sandboxed` sessions (validated), if any.
    #[serde(default)]
    pub sandbox: Option<SandboxLimits>,
}

/// The body of `PUT /api/workspaces/{slug}`: only the keys present change.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceUpdate {
    /// New display name, 1 to 100 characters (trimmed).
    #[serde(default)]
    pub name: Option<String>,
    /// New description.
    #[serde(default)]
    pub description: Option<String>,
    /// New trust floor (`trust_level` is accepted too).
    #[serde(default, alias = "trust_level")]
    pub default_trust_level: Option<String>,
    /// New working directory inside the vault; empty clears it.
    #[serde(default)]
    pub working_directory: Option<String>,
    /// New default model; blank clears it.
    #[serde(default)]
    pub model: Option<String>,
    /// Replaces the capability filters.
    #[serde(default)]
    pub capabilities: Option<Capabilities>,
    /// Replaces the container limits (validated).
    #[serde(default)]
    pub sandbox: Option<SandboxLimits>,
}

/// Why a workspace operation failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// The slug breaks the slug rules (holds at most its first 80 characters).
    #[error("Invalid workspace slug: '{0}'")]
    InvalidSlug(String),
    /// No workspace has that slug.
    #[error("Workspace not found: {0}")]
    NotFound(String),
    /// A field is invalid; the text says which and why.
    #[error("{0}")]
    Invalid(String),
    /// Reading, parsing or writing the workspace files failed.
    #[error("workspace storage failed at {path}: {source}")]
    Io {
        /// The file or folder involved.
        path: String,
        /// The underlying error (an I/O error for a full disk: see
        /// [`crate::util::disk_full`]).
        #[source]
        source: crate::util::disk_full::ErrorSource,
    },
}

/// `^[a-z0-9][a-z0-9-]*[a-z0-9]$|^[a-z0-9]$`, at most 64 characters.
pub fn validate_slug(slug: &str) -> Result<(), WorkspaceError> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let valid = !slug.is_empty()
        && slug.len() <= 64
        && slug.chars().all(|c| ok_char(c) || c == '-')
        && slug.chars().next().is_some_and(ok_char)
        && slug.chars().last().is_some_and(ok_char);
    if valid {
        Ok(())
    } else {
        Err(WorkspaceError::InvalidSlug(slug.chars().take(80).collect()))
    }
}

/// Lowercase; runs of anything but `[a-z0-9]` become `-`; trimmed; `workspace` if empty.
pub fn slugify(name: &str) -> String {
    let mut out = String::new();
    for c in name.to_lowercase().chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let s: String = out.trim_matches('-').chars().take(60).collect();
    let s = s.trim_matches('-').to_string();
    if s.is_empty() {
        "workspace".into()
    } else {
        s
    }
}

fn io_err(path: &Path, e: impl Into<crate::util::disk_full::ErrorSource>) -> WorkspaceError {
    WorkspaceError::Io {
        path: path.display().to_string(),
        source: e.into(),
    }
}

/// The workspaces of one vault.
pub struct WorkspaceStore {
    gate: crate::vault::VaultGate,
    dir: PathBuf,
    create_lock: tokio::sync::Mutex<()>,
}

impl WorkspaceStore {
    /// A store over the workspace folders under `dir`; working directories are checked with `gate`.
    pub fn new(gate: crate::vault::VaultGate, dir: PathBuf) -> WorkspaceStore {
        WorkspaceStore {
            gate,
            dir,
            create_lock: tokio::sync::Mutex::new(()),
        }
    }

    fn file(&self, slug: &str) -> PathBuf {
        self.dir.join(slug).join("config.yaml")
    }

    /// Every readable workspace, by slug; unreadable ones are logged and skipped.
    pub async fn list(&self) -> Result<Vec<Workspace>, WorkspaceError> {
        let dir = self.dir.clone();
        let slugs = tokio::task::spawn_blocking(move || -> Vec<String> {
            let Ok(rd) = std::fs::read_dir(&dir) else {
                return Vec::new();
            };
            let mut v: Vec<String> = rd
                .flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .collect();
            v.sort();
            v
        })
        .await
        .map_err(|e| io_err(&self.dir, e))?;
        let mut out = Vec::new();
        for slug in slugs {
            if validate_slug(&slug).is_err() {
                continue;
            }
            match self.get(&slug).await {
                Ok(w) => out.push(w),
                Err(WorkspaceError::NotFound(_)) => {}
                Err(e) => tracing::warn!(slug, error = %e, "skipping an unreadable workspace"),
            }
        }
        Ok(out)
    }

    /// One workspace.
    pub async fn get(&self, slug: &str) -> Result<Workspace, WorkspaceError> {
        validate_slug(slug)?;
        let path = self.file(slug);
        let text = match tokio::fs::read_to_string(&path).await {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(WorkspaceError::NotFound(slug.into()))
            }
            Err(e) => return Err(io_err(&path, e)),
        };
        let mut w: Workspace = serde_saphyr::from_str(&text).map_err(|e| io_err(&path, e))?;
        w.slug = slug.to_string();
        Ok(w)
    }

    /// Creates a workspace; its slug comes from the name (`-2`, `-3`… on collision).
    pub async fn create(&self, req: WorkspaceCreate) -> Result<Workspace, WorkspaceError> {
        let name = clean_name(&req.name)?;
        let _guard = self.create_lock.lock().await;
        let base = slugify(&name);
        let mut slug = base.clone();
        let mut n = 2;
        while tokio::fs::try_exists(self.dir.join(&slug))
            .await
            .unwrap_or(false)
        {
            slug = format!("{base}-{n}");
            n += 1;
        }
        let w = Workspace {
            name,
            slug,
            description: req.description.unwrap_or_default(),
            trust_level: parse_trust(req.default_trust_level.as_deref())?
                .unwrap_or(TrustLevel::Full),
            working_directory: self.check_working_directory(req.working_directory)?,
            model: req.model.filter(|m| !m.trim().is_empty()),
            capabilities: req.capabilities.unwrap_or_default(),
            sandbox: self.check_writable(check_sandbox(req.sandbox)?)?,
        };
        self.save(&w).await?;
        Ok(w)
    }

    /// Changes the keys present in `req`.
    pub async fn update(
        &self,
        slug: &str,
        req: WorkspaceUpdate,
    ) -> Result<Workspace, WorkspaceError> {
        let mut w = self.get(slug).await?;
        if let Some(n) = req.name {
            w.name = clean_name(&n)?;
        }
        if let Some(d) = req.description {
            w.description = d;
        }
        if let Some(t) = parse_trust(req.default_trust_level.as_deref())? {
            w.trust_level = t;
        }
        if req.working_directory.is_some() {
            w.working_directory = self.check_working_directory(req.working_directory)?;
        }
        if let Some(m) = req.model {
            w.model = Some(m).filter(|m| !m.trim().is_empty());
        }
        if let Some(c) = req.capabilities {
            w.capabilities = c;
        }
        if req.sandbox.is_some() {
            w.sandbox = self.check_writable(check_sandbox(req.sandbox)?)?;
        }
        self.save(&w).await?;
        Ok(w)
    }

    /// Removes a workspace's folder.
    pub async fn delete(&self, slug: &str) -> Result<(), WorkspaceError> {
        self.get(slug).await?;
        let dir = self.dir.join(slug);
        tokio::fs::remove_dir_all(&dir)
            .await
            .map_err(|e| io_err(&dir, e))
    }

    async fn save(&self, w: &Workspace) -> Result<(), WorkspaceError> {
        let path = self.file(&w.slug);
        let mut v = serde_json::to_value(w).map_err(|e| io_err(&path, e))?;
        if let Value::Object(map) = &mut v {
            map.remove("slug");
            map.retain(|_, val| !val.is_null());
        }
        let text = serde_saphyr::to_string(&v).map_err(|e| io_err(&path, e))?;
        let p = path.clone();
        tokio::task::spawn_blocking(move || {
            crate::util::fs::write_atomic(&p, text.as_bytes(), None)
        })
        .await
        .map_err(|e| io_err(&path, e))?
        .map_err(|e| io_err(&path, e))
    }

    /// Writable sandbox folders must be existing folders inside the vault, off the
    /// protected list (checked again at each turn).
    fn check_writable(
        &self,
        sandbox: Option<SandboxLimits>,
    ) -> Result<Option<SandboxLimits>, WorkspaceError> {
        if let Some(sb) = &sandbox {
            for f in &sb.writable {
                let p = self.gate.resolve(f).map_err(|e| {
                    WorkspaceError::Invalid(format!("Invalid sandbox.writable '{f}': {e}"))
                })?;
                if !p.is_dir() || p == self.gate.root().canonicalize().unwrap_or_default() {
                    return Err(WorkspaceError::Invalid(format!(
                        "Invalid sandbox.writable '{f}': not a folder inside the vault"
                    )));
                }
            }
        }
        Ok(sandbox)
    }

    /// A working directory must resolve inside the vault; empty means the vault root.
    fn check_working_directory(
        &self,
        wd: Option<String>,
    ) -> Result<Option<String>, WorkspaceError> {
        match wd.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => {
                self.gate.resolve(&s).map_err(|e| {
                    WorkspaceError::Invalid(format!("Invalid working_directory '{s}': {e}"))
                })?;
                Ok(Some(s))
            }
        }
    }
}

fn clean_name(name: &str) -> Result<String, WorkspaceError> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 100 {
        return Err(WorkspaceError::Invalid(
            "name must be 1 to 100 characters".into(),
        ));
    }
    Ok(n.to_string())
}

fn parse_trust(s: Option<&str>) -> Result<Option<TrustLevel>, WorkspaceError> {
    s.map(|t| {
        t.parse::<TrustLevel>()
            .map_err(|e| WorkspaceError::Invalid(e.to_string()))
    })
    .transpose()
}

fn check_sandbox(s: Option<SandboxLimits>) -> Result<Option<SandboxLimits>, WorkspaceError> {
    let Some(s) = s else { return Ok(None) };
    let mem = s.memory.trim().to_ascii_lowercase();
    let digits = mem.trim_end_matches(['k', 'm', 'g']);
    if digits.is_empty()
        || !digits.chars().all(|c| c.is_ascii_digit())
        || mem.len() - digits.len() > 1
    {
        return Err(WorkspaceError::Invalid(format!(
            "Invalid sandbox.memory '{}': use e.g. 512m or 2g",
            s.memory
        )));
    }
    match s.cpu.trim().parse::<f64>() {
        Ok(c) if c > 0.0 && c <= 256.0 => {}
        _ => {
            return Err(WorkspaceError::Invalid(format!(
                "Invalid sandbox.cpu '{}': use e.g. 1.0",
                s.cpu
            )))
        }
    }
    if s.timeout == 0 || s.timeout > 86_400 {
        return Err(WorkspaceError::Invalid(
            "sandbox.timeout must be 1 to 86400 seconds".into(),
        ));
    }
    Ok(Some(SandboxLimits { memory: mem, ..s }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugify_table() {
        for (name, want) in [
            ("My Project", "my-project"),
            ("  --Hello__World!! ", "hello-world"),
            ("日本語", "workspace"),
            ("a", "a"),
            ("../../etc", "etc"),
        ] {
            assert_eq!(slugify(name), want, "{name}");
            validate_slug(want).unwrap();
        }
    }

    #[test]
    fn slug_validation_table() {
        for ok in ["a", "abc", "a-b", "a1-2b", "0"] {
            assert!(validate_slug(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "A",
            "a_b",
            "../x",
            "a/b",
            "a b",
            ".",
            "..",
            &"a".repeat(65),
        ] {
            assert!(validate_slug(bad).is_err(), "{bad}");
        }
    }
}
