//! The vault on disk. [`resolve_in_vault`] is the one gate every feature uses to turn
//! a user-supplied path into a real path: it refuses `..`, absolute paths outside the
//! vault, symlinks that leave it at any component, and sibling-prefix tricks
//! (`/vault2` is not inside `/vault`).

pub mod context_folders;
pub mod files;
pub mod frontmatter;
pub mod imported_contexts;
pub mod journal;
mod protected;
pub mod sync;

pub use protected::{protected_name_in, NameMatch, ProtectedName, VaultGate, PROTECTED_NAMES};

use std::path::{Component, Path, PathBuf};

/// Why a path was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VaultPathError {
    /// The path leaves the vault (`..`, an absolute path elsewhere, a symlink out, or a
    /// dangling symlink whose target is unknown).
    #[error("path is outside the vault")]
    OutsideVault,
    /// The path is malformed (a NUL byte, an encoded `..` or `/`); holds the reason.
    #[error("invalid path: {0}")]
    Invalid(&'static str),
    /// The vault folder itself cannot be resolved; holds the I/O error text.
    #[error("the vault folder is not accessible: {0}")]
    VaultMissing(String),
    /// The path is on the protected list or is the session database; holds why.
    #[error("protected path ({0})")]
    Protected(&'static str),
}

/// Resolves `requested` (vault-relative, or absolute inside the vault) to a real path
/// inside the vault. Existing components are resolved through symlinks and must stay
/// inside; components that don't exist yet (a file about to be written) are appended.
pub fn resolve_in_vault(vault: &Path, requested: &str) -> Result<PathBuf, VaultPathError> {
    if requested.contains('\0') {
        return Err(VaultPathError::Invalid("contains a NUL byte"));
    }
    let root = vault
        .canonicalize()
        .map_err(|e| VaultPathError::VaultMissing(e.to_string()))?;
    let req = Path::new(requested);
    let mut rel = PathBuf::new();
    let candidate_components: Vec<Component> = if req.is_absolute() {
        // An absolute path must name something inside the vault, as given or resolved.
        let stripped = req
            .strip_prefix(&root)
            .or_else(|_| req.strip_prefix(vault))
            .map_err(|_| VaultPathError::OutsideVault)?;
        stripped.components().collect()
    } else {
        req.components().collect()
    };
    for c in candidate_components {
        match c {
            Component::Normal(name) => {
                let decoded = percent_decode(&name.to_string_lossy());
                if decoded == ".." || decoded.contains('/') {
                    return Err(VaultPathError::Invalid(
                        "encoded `..` or `/` in a path segment",
                    ));
                }
                rel.push(name);
            }
            Component::CurDir => {}
            Component::ParentDir => return Err(VaultPathError::OutsideVault),
            Component::RootDir | Component::Prefix(_) => return Err(VaultPathError::OutsideVault),
        }
    }
    // Find the longest existing prefix (symlink_metadata: a dangling link still "exists").
    let comps: Vec<_> = rel.components().collect();
    let mut existing = comps.len();
    while existing > 0 {
        let p: PathBuf = comps[..existing].iter().collect();
        if root.join(&p).symlink_metadata().is_ok() {
            break;
        }
        existing -= 1;
    }
    let head: PathBuf = comps[..existing].iter().collect();
    let resolved_head = if existing == 0 {
        root.clone()
    } else {
        // A dangling symlink cannot be canonicalized: refuse it, its target is unknown.
        root.join(&head)
            .canonicalize()
            .map_err(|_| VaultPathError::OutsideVault)?
    };
    if !resolved_head.starts_with(&root) {
        return Err(VaultPathError::OutsideVault);
    }
    let tail: PathBuf = comps[existing..].iter().collect();
    // Joining an empty tail would add a trailing `/`, turning a file into "a directory".
    if tail.as_os_str().is_empty() {
        return Ok(resolved_head);
    }
    Ok(resolved_head.join(tail))
}

fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The path of `p` relative to the vault, with `/` separators (`""` for the root).
pub fn relative_to_vault(vault: &Path, p: &Path) -> String {
    let root = vault.canonicalize().unwrap_or_else(|_| vault.to_path_buf());
    p.strip_prefix(&root)
        .map(|r| r.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `"ok"` when the vault folder can be listed, else `"inaccessible"` (health check).
pub fn vault_status(vault: &Path) -> &'static str {
    match std::fs::read_dir(vault) {
        Ok(_) => "ok",
        Err(_) => "inaccessible",
    }
}
