//! The protected list: vault paths that configure the server or the CLI, so they change
//! only through their own validated routes and never through the file, sync, context,
//! import or agent paths. Vault content is data, never configuration: anyone with a key
//! can write vault files, so a file that the CLI or the server would obey (hooks in
//! `.claude/settings.json`, MCP servers in `.mcp.json`, an `.env`) must not be writable
//! — or readable, since several hold secrets — through them.
//!
//! [`VaultGate`] is the one gate: every path a client or an agent names goes through
//! [`VaultGate::resolve`], which confines it to the vault ([`super::resolve_in_vault`])
//! and then refuses anything on this list, judged on the path as named *and* as resolved
//! through symlinks.

use std::path::{Component, Path, PathBuf};

use super::{resolve_in_vault, VaultPathError};

/// How a protected name is matched against one path component (case-insensitively,
/// since macOS and Windows folders are).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameMatch {
    /// The component is exactly this name.
    Exact(&'static str),
    /// The component starts with this prefix (`.env`, `.env.local`, `.envrc`…).
    Prefix(&'static str),
}

/// One row of the protected list.
#[derive(Debug, Clone, Copy)]
pub struct ProtectedName {
    /// The path-component name (or prefix) this row protects.
    pub name: NameMatch,
    /// Why it is protected, and where it changes instead.
    pub why: &'static str,
}

/// Names protected wherever they appear in a path (any folder of the vault can become a
/// session's working directory, and the CLI reads its settings from there).
pub const PROTECTED_NAMES: &[ProtectedName] = &[
    ProtectedName {
        name: NameMatch::Exact(".parachute"),
        why: "server settings, API keys, hooks, workspaces: changed through /api/auth, /api/workspaces and the command line",
    },
    ProtectedName {
        name: NameMatch::Exact(".claude"),
        why: "Claude Code settings: their hooks run commands and their env redirects model traffic",
    },
    ProtectedName {
        name: NameMatch::Exact(".mcp.json"),
        why: "MCP servers the CLI would start: handed to it only through validated module configuration",
    },
    ProtectedName {
        name: NameMatch::Prefix(".env"),
        why: "environment files: the server's settings (auth mode, CORS origins, model URL)",
    },
    ProtectedName {
        name: NameMatch::Exact(".modules"),
        why: "modules: enabled only after their whole tree's hash is approved",
    },
    ProtectedName {
        name: NameMatch::Exact(".skills"),
        why: "skills handed to the agent",
    },
];

/// Suffixes SQLite adds to the database file (write-ahead log, shared memory, journal).
const DATABASE_SUFFIXES: &[&str] = &["", "-wal", "-shm", "-journal"];

impl NameMatch {
    fn matches(self, component: &str) -> bool {
        let c = component.to_ascii_lowercase();
        match self {
            NameMatch::Exact(n) => c == n,
            NameMatch::Prefix(p) => c.starts_with(p),
        }
    }
}

/// The protected row matching any component of `rel` (a vault-relative path), if any.
pub fn protected_name_in(rel: &Path) -> Option<&'static ProtectedName> {
    rel.components().find_map(|c| match c {
        Component::Normal(name) => {
            let name = name.to_string_lossy();
            PROTECTED_NAMES.iter().find(|p| p.name.matches(&name))
        }
        _ => None,
    })
}

/// The vault, and the database file whose path is protected too (the default
/// `Chat/sessions.db` or a custom `db_path` inside the vault).
#[derive(Debug, Clone)]
pub struct VaultGate {
    root: PathBuf,
    database: PathBuf,
}

impl VaultGate {
    /// A gate for the vault at `root` that also protects the database file `database`
    /// (and its SQLite `-wal`, `-shm` and `-journal` companions).
    pub fn new(root: impl Into<PathBuf>, database: impl Into<PathBuf>) -> VaultGate {
        VaultGate {
            root: root.into(),
            database: database.into(),
        }
    }

    /// A gate with the default database place (`{vault}/Chat/sessions.db`).
    pub fn with_default_database(root: impl Into<PathBuf>) -> VaultGate {
        let root = root.into();
        let database = root.join("Chat").join("sessions.db");
        VaultGate { root, database }
    }

    /// The vault folder as configured.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Resolves a path a client or an agent names: confined to the vault (no `..`, no
    /// symlink out, no sibling prefix) and refused if it is on the protected list,
    /// either as named or once symlinks are resolved.
    pub fn resolve(&self, requested: &str) -> Result<PathBuf, VaultPathError> {
        let resolved = resolve_in_vault(&self.root, requested)?;
        let named = Path::new(requested);
        let named_rel = if named.is_absolute() {
            named
                .strip_prefix(&self.root)
                .or_else(|_| named.strip_prefix(self.canonical_root()))
                .unwrap_or(named)
                .to_path_buf()
        } else {
            named.to_path_buf()
        };
        if let Some(p) = protected_name_in(&named_rel) {
            return Err(VaultPathError::Protected(p.why));
        }
        self.check_resolved(&resolved)?;
        Ok(resolved)
    }

    /// Whether an absolute, already resolved path inside the vault is protected.
    pub fn is_protected(&self, resolved: &Path) -> bool {
        self.check_resolved(resolved).is_err()
    }

    fn check_resolved(&self, resolved: &Path) -> Result<(), VaultPathError> {
        let root = self.canonical_root();
        if let Ok(rel) = resolved.strip_prefix(&root) {
            if let Some(p) = protected_name_in(rel) {
                return Err(VaultPathError::Protected(p.why));
            }
        }
        if self.is_database(resolved) {
            return Err(VaultPathError::Protected(
                "the session database: changed only by the server",
            ));
        }
        Ok(())
    }

    fn canonical_root(&self) -> PathBuf {
        self.root
            .canonicalize()
            .unwrap_or_else(|_| self.root.clone())
    }

    /// Whether a resolved path is the session database or one of its SQLite companions.
    pub fn is_database(&self, resolved: &Path) -> bool {
        // The database may not exist yet: resolve its folder, keep its file name.
        let db = match (self.database.parent(), self.database.file_name()) {
            (Some(dir), Some(name)) => dir
                .canonicalize()
                .map(|d| d.join(name))
                .unwrap_or_else(|_| self.database.clone()),
            _ => self.database.clone(),
        };
        let (Some(db_dir), Some(db_name)) = (db.parent(), db.file_name()) else {
            return false;
        };
        let (Some(dir), Some(name)) = (resolved.parent(), resolved.file_name()) else {
            return false;
        };
        if dir != db_dir {
            return false;
        }
        let (name, db_name) = (name.to_string_lossy(), db_name.to_string_lossy());
        DATABASE_SUFFIXES
            .iter()
            .any(|s| name.eq_ignore_ascii_case(&format!("{db_name}{s}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_names_match_any_component_case_insensitively() {
        let cases = [
            (".claude/settings.json", true),
            ("notes/.claude/settings.local.json", true),
            (".Claude/settings.json", true),
            (".mcp.json", true),
            ("sub/.mcp.json", true),
            (".env", true),
            (".env.local", true),
            ("deep/.ENV", true),
            (".parachute/server.yaml", true),
            (".modules/brain/manifest.yaml", true),
            (".skills/x/SKILL.md", true),
            ("CLAUDE.md", false),
            ("Notes/CLAUDE.md", false),
            ("Notes/env.md", false),
            ("mcp.json", false),
            ("Notes/claude/notes.md", false),
        ];
        for (path, want) in cases {
            assert_eq!(protected_name_in(Path::new(path)).is_some(), want, "{path}");
        }
    }

    #[test]
    fn gate_refuses_protected_paths_as_named_and_as_resolved() {
        let dir = tempfile::tempdir().unwrap();
        let vault = dir.path().join("vault");
        std::fs::create_dir_all(vault.join(".claude")).unwrap();
        std::fs::create_dir_all(vault.join("Notes")).unwrap();
        std::fs::create_dir_all(vault.join("Chat")).unwrap();
        std::os::unix::fs::symlink(vault.join(".claude"), vault.join("Notes/cfg")).unwrap();
        let gate = VaultGate::with_default_database(&vault);
        assert!(gate.resolve("Notes/a.md").is_ok());
        assert!(gate.resolve("CLAUDE.md").is_ok());
        for bad in [
            ".claude/settings.json",
            "Notes/cfg/settings.json",
            "Notes/../.claude/settings.json",
            "Chat/sessions.db",
            "Chat/sessions.db-wal",
            "Chat/./sessions.db-shm",
            ".env",
        ] {
            assert!(
                matches!(
                    gate.resolve(bad),
                    Err(VaultPathError::Protected(_) | VaultPathError::OutsideVault)
                ),
                "{bad}"
            );
        }
        let abs = vault.join(".mcp.json").display().to_string();
        assert!(matches!(
            gate.resolve(&abs),
            Err(VaultPathError::Protected(_))
        ));
    }

    #[test]
    fn a_custom_database_path_is_protected() {
        let dir = tempfile::tempdir().unwrap();
        let vault = dir.path().join("vault");
        std::fs::create_dir_all(vault.join("data")).unwrap();
        let gate = VaultGate::new(&vault, vault.join("data/my.db"));
        assert!(gate.resolve("data/my.db").is_err());
        assert!(gate.resolve("data/my.db-wal").is_err());
        assert!(gate.resolve("data/notes.md").is_ok());
        // The default place is ordinary content when the database lives elsewhere.
        assert!(gate.resolve("Chat/sessions.db").is_ok());
    }
}

/// Path confinement over generated paths: whatever a client or agent names, the gate
/// either refuses it or gives a path inside the vault that is off the protected list.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn segment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("..".to_string()),
            Just(".".to_string()),
            Just("".to_string()),
            Just("out".to_string()),
            Just("loop".to_string()),
            Just("Notes".to_string()),
            Just("Chat".to_string()),
            Just("sessions.db-wal".to_string()),
            Just(".Claude".to_string()),
            Just(".mcp.json".to_string()),
            Just(".env.local".to_string()),
            Just(".parachute".to_string()),
            Just("%2e%2e".to_string()),
            Just("a\0b".to_string()),
            Just("C:".to_string()),
            Just("~".to_string()),
            "[a-zA-Z0-9é ._-]{1,10}",
        ]
    }

    /// Where a path really leads: its deepest existing ancestor with symlinks resolved,
    /// and the rest as named.
    fn real_path(p: &Path) -> PathBuf {
        let mut existing = p.to_path_buf();
        let mut rest = Vec::new();
        while existing.canonicalize().is_err() {
            match (existing.file_name(), existing.parent()) {
                (Some(name), Some(parent)) => {
                    rest.push(name.to_os_string());
                    existing = parent.to_path_buf();
                }
                _ => return p.to_path_buf(),
            }
        }
        let mut real = existing.canonicalize().unwrap();
        for name in rest.into_iter().rev() {
            real.push(name);
        }
        real
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1500))]

        #[test]
        fn a_resolved_path_is_inside_the_vault_and_not_protected(
            parts in prop::collection::vec(segment(), 0..7),
            absolute in any::<bool>(),
            backslashes in any::<bool>(),
        ) {
            // Built once per case: a vault with a symlink out of it and one in a loop.
            let tmp = tempfile::tempdir().unwrap();
            let vault = tmp.path().join("vault");
            std::fs::create_dir_all(vault.join("Notes")).unwrap();
            std::fs::create_dir_all(vault.join("Chat")).unwrap();
            std::fs::create_dir_all(tmp.path().join("secret")).unwrap();
            #[cfg(unix)]
            {
                std::os::unix::fs::symlink(tmp.path().join("secret"), vault.join("out")).unwrap();
                std::os::unix::fs::symlink(vault.join("loop"), vault.join("loop")).unwrap();
            }
            let gate = VaultGate::with_default_database(&vault);
            let mut requested = parts.join(if backslashes { "\\" } else { "/" });
            if absolute {
                requested = format!("{}/{requested}", vault.display());
            }
            if let Ok(p) = gate.resolve(&requested) {
                let root = vault.canonicalize().unwrap();
                prop_assert!(!p.components().any(|c| c == Component::ParentDir), "{p:?}");
                let real = real_path(&p);
                prop_assert!(real.starts_with(&root), "{requested:?} -> {p:?} ({real:?})");
                // Judged against the list written out here, not the gate's own table.
                let rel = real.strip_prefix(&root).unwrap();
                let names: Vec<String> = rel.iter().map(|c| c.to_string_lossy().to_lowercase()).collect();
                let protected = names.iter().any(|n| {
                    [".parachute", ".claude", ".mcp.json", ".modules", ".skills"].contains(&n.as_str())
                        || n.starts_with(".env")
                }) || (names.len() == 2 && names[0] == "chat" && names[1].starts_with("sessions.db"));
                prop_assert!(!protected, "{requested:?} -> {p:?} ({real:?})");
            }
        }
    }
}
