//! `{vault}/.parachute/module_hashes.json`: what the owner approved, per module — the
//! tree hash, each file's digest (to show what changed since), the trust level it was
//! approved at, and whether it was the bundled version. A Python-era file (a bare hash
//! per name) is read as approvals of trees that no longer match, so those modules wait
//! for a new approval.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use parachute_core::trust::TrustLevel;
use serde::{Deserialize, Serialize};

/// One module's approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// The approved tree hash.
    pub hash: String,
    /// Each file's digest at approval.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// The level the module was approved to run at.
    #[serde(default = "default_level")]
    pub trust_level: TrustLevel,
    /// When (RFC 3339).
    #[serde(default)]
    pub approved_at: String,
    /// Approved because it matched the version embedded in this program.
    #[serde(default)]
    pub bundled: bool,
}

fn default_level() -> TrustLevel {
    TrustLevel::Vault
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Entry {
    Full(Approval),
    Legacy(String),
}

/// The approvals file.
#[derive(Debug, Clone)]
pub struct ApprovalFile {
    path: PathBuf,
}

impl ApprovalFile {
    /// The file at `path`.
    pub fn new(path: PathBuf) -> Self {
        ApprovalFile { path }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads every approval. A missing file is none; an unreadable one is an error
    /// (so a damaged file never silently approves or forgets anything).
    pub fn read(&self) -> Result<BTreeMap<String, Approval>, String> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => return Err(format!("cannot read module_hashes.json: {e}")),
        };
        if text.trim().is_empty() {
            return Ok(BTreeMap::new());
        }
        let raw: BTreeMap<String, Entry> = serde_json::from_str(&text)
            .map_err(|e| format!("module_hashes.json is not valid (line {})", e.line()))?;
        Ok(raw
            .into_iter()
            .map(|(name, e)| {
                let a = match e {
                    Entry::Full(a) => a,
                    Entry::Legacy(hash) => Approval {
                        hash,
                        files: BTreeMap::new(),
                        trust_level: TrustLevel::Vault,
                        approved_at: String::new(),
                        bundled: false,
                    },
                };
                (name, a)
            })
            .collect())
    }

    /// Writes all approvals atomically.
    pub fn write(&self, all: &BTreeMap<String, Approval>) -> Result<(), String> {
        let json = serde_json::to_vec_pretty(all).map_err(|e| e.to_string())?;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot write module_hashes.json: {e}"))?;
        }
        parachute_core::util::fs::write_atomic(&self.path, &json, Some(0o600))
            .map_err(|e| format!("cannot write module_hashes.json: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_legacy_and_round_trips() {
        let d = tempfile::tempdir().unwrap();
        let f = ApprovalFile::new(d.path().join("module_hashes.json"));
        assert!(f.read().unwrap().is_empty());
        std::fs::write(f.path(), r#"{"brain":"abc123"}"#).unwrap();
        let all = f.read().unwrap();
        assert_eq!(all["brain"].hash, "abc123");
        assert_eq!(all["brain"].trust_level, TrustLevel::Vault);
        f.write(&all).unwrap();
        assert_eq!(f.read().unwrap(), all);
        std::fs::write(f.path(), "{not json").unwrap();
        assert!(f.read().is_err());
    }
}
