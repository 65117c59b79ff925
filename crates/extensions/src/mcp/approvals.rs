//! Which of `.mcp.json`'s servers the owner approved, kept in
//! `$PARACHUTE_HOME/mcp_approvals.json` — outside the vault, so a `.mcp.json` that
//! arrives any other way (a synced folder, a copied vault) runs nothing. A server is
//! approved as its exact config (a SHA-256 of its JSON): an edit needs a new approval.
//! Adding a server through `POST /api/mcps` (from this machine) approves it;
//! `POST /api/mcps/{name}/approve` approves one written by hand.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The approvals file.
pub struct McpApprovals {
    path: PathBuf,
}

/// The digest a server's config is approved as.
pub fn config_digest(config: &Value) -> String {
    hex::encode(Sha256::digest(config.to_string().as_bytes()))
}

impl McpApprovals {
    /// The approvals at `path`.
    pub fn new(path: PathBuf) -> McpApprovals {
        McpApprovals { path }
    }

    /// Every approval: server name → config digest (none when the file is missing or
    /// unreadable: nothing is approved by accident).
    pub fn read(&self) -> BTreeMap<String, String> {
        std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    /// Whether server `name` with `config` is approved.
    pub fn is_approved(&self, name: &str, config: &Value) -> bool {
        self.read().get(name) == Some(&config_digest(config))
    }

    /// Approves `name` as `config` (or forgets it, with `None`).
    pub fn set(&self, name: &str, config: Option<&Value>) -> std::io::Result<()> {
        let mut all = self.read();
        match config {
            Some(c) => {
                all.insert(name.to_string(), config_digest(c));
            }
            None => {
                all.remove(name);
            }
        }
        let text = serde_json::to_vec_pretty(&all).map_err(std::io::Error::other)?;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        parachute_core::util::fs::write_atomic(&self.path, &text, Some(0o600))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn approval_is_bound_to_the_exact_config() {
        let d = tempfile::tempdir().unwrap();
        let a = McpApprovals::new(d.path().join("mcp_approvals.json"));
        let c = json!({"command": "node", "args": ["s.js"]});
        assert!(!a.is_approved("s", &c));
        a.set("s", Some(&c)).unwrap();
        assert!(a.is_approved("s", &c));
        assert!(!a.is_approved("s", &json!({"command": "sh"})));
        assert!(!a.is_approved("other", &c));
        a.set("s", None).unwrap();
        assert!(!a.is_approved("s", &c));
    }
}
