//! Context folders: folders of the vault holding an `AGENTS.md` or
//! `CLAUDE.md`, and the chain of those files for a selection of folders.

use std::path::{Path, PathBuf};

use serde::Serialize;
use utoipa::ToSchema;

use super::{relative_to_vault, VaultGate, VaultPathError};

const SKIPPED: &[&str] = &["node_modules", "__pycache__", "venv", "build"];
/// How deep the folder scan goes, and how many folders it visits at most.
const MAX_DEPTH: usize = 8;
const MAX_VISITED: usize = 20_000;

/// `Projects/my_app-v2` → `My App V2`; the root is `Root`.
fn display_name(rel: &str) -> String {
    if rel.is_empty() {
        return "Root".into();
    }
    let last = rel.rsplit('/').next().unwrap_or(rel);
    last.replace(['-', '_'], " ")
        .split_whitespace()
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_uppercase().collect::<String>() + &c.as_str().to_lowercase(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The context file of a folder (`AGENTS.md` preferred over `CLAUDE.md`), resolved
/// through the gate: a link to a protected file or out of the vault is no context file.
pub fn context_file(gate: &VaultGate, dir: &Path) -> Option<(&'static str, PathBuf)> {
    ["AGENTS.md", "CLAUDE.md"].into_iter().find_map(|f| {
        let p = gate.resolve(&dir.join(f).to_string_lossy()).ok()?;
        p.is_file().then_some((f, p))
    })
}

/// A folder with a context file.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ContextFolder {
    /// Vault-relative; empty for the vault root.
    pub path: String,
    /// `AGENTS.md` (preferred) or `CLAUDE.md`.
    pub context_file: String,
    /// Whether the folder holds an `AGENTS.md`.
    pub has_agents_md: bool,
    /// Whether the folder holds a `CLAUDE.md`.
    pub has_claude_md: bool,
    /// The last path segment in title case; `Root` for the vault root.
    pub display_name: String,
}

/// The folders of the vault with a context file.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ContextFolderList {
    /// How many folders are listed.
    pub count: usize,
    /// By depth, then path.
    pub folders: Vec<ContextFolder>,
}

/// The context file of one folder of a chain.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ContextChainFile {
    /// Vault-relative path of the context file (`…/AGENTS.md` when there is none).
    pub path: String,
    /// The folder as asked for.
    pub folder_path: String,
    /// Always `direct`.
    pub level: String,
    /// Estimated tokens (4 bytes a token); 0 when the file does not exist.
    pub tokens: usize,
    /// Whether the folder has a context file.
    pub exists: bool,
}

/// The context files of some folders, with token estimates.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ContextChain {
    /// One per folder, in the order asked for.
    pub files: Vec<ContextChainFile>,
    /// The sum of the files' `tokens`.
    pub total_tokens: usize,
    /// Whether the files exceed the token budget.
    pub truncated: bool,
}

/// `GET /api/contexts/folders`: every folder with a context file, by depth then path.
/// Symlinked folders are not followed.
pub fn folders(gate: &VaultGate) -> Result<ContextFolderList, VaultPathError> {
    let root = gate
        .root()
        .canonicalize()
        .map_err(|e| VaultPathError::VaultMissing(e.to_string()))?;
    let mut found: Vec<(usize, String, &'static str, bool, bool)> = Vec::new();
    let mut stack = vec![(root.clone(), 0usize)];
    let mut visited = 0;
    while let Some((dir, depth)) = stack.pop() {
        visited += 1;
        if visited > MAX_VISITED {
            break;
        }
        if let Some((f, _)) = context_file(gate, &dir) {
            let rel = relative_to_vault(&root, &dir);
            let has = |name: &str| {
                gate.resolve(&dir.join(name).to_string_lossy())
                    .is_ok_and(|p| p.is_file())
            };
            found.push((depth, rel, f, has("AGENTS.md"), has("CLAUDE.md")));
        }
        if depth >= MAX_DEPTH {
            continue;
        }
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || SKIPPED.contains(&name.as_str()) {
                continue;
            }
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push((e.path(), depth + 1));
            }
        }
    }
    found.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let folders: Vec<ContextFolder> = found
        .into_iter()
        .map(|(_, rel, f, a, c)| ContextFolder {
            display_name: display_name(&rel),
            path: rel,
            context_file: f.to_string(),
            has_agents_md: a,
            has_claude_md: c,
        })
        .collect();
    Ok(ContextFolderList {
        count: folders.len(),
        folders,
    })
}

/// `GET /api/contexts/chain`: the context files of `folders` with token estimates
/// (4 characters a token), marked truncated past `max_tokens`.
pub fn chain(
    gate: &VaultGate,
    folders: &[String],
    max_tokens: usize,
) -> Result<ContextChain, VaultPathError> {
    let vault = gate.root();
    let mut files = Vec::new();
    let mut total = 0usize;
    let mut truncated = false;
    for folder in folders {
        let dir = gate.resolve(folder)?;
        let (path, exists) = match context_file(gate, &dir) {
            Some((_, p)) => (p, true),
            None => (dir.join("AGENTS.md"), false),
        };
        let tokens = if exists {
            std::fs::metadata(&path)
                .map(|m| m.len() as usize / 4)
                .unwrap_or(0)
        } else {
            0
        };
        if total + tokens > max_tokens {
            truncated = true;
        }
        total += tokens;
        files.push(ContextChainFile {
            path: relative_to_vault(vault, &path),
            folder_path: folder.clone(),
            level: "direct".to_string(),
            tokens,
            exists,
        });
    }
    Ok(ContextChain {
        files,
        total_tokens: total,
        truncated,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn display_names() {
        assert_eq!(super::display_name(""), "Root");
        assert_eq!(super::display_name("Projects/my_app-v2"), "My App V2");
    }
}
