//! Browsing, reading and writing vault files for `/api/ls`, `/api/read`, `/api/write`
//!, every path through [`VaultGate::resolve`].

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;
use utoipa::ToSchema;

use super::{relative_to_vault, VaultGate, VaultPathError};

/// Largest file `read` returns.
pub const MAX_READ_BYTES: u64 = 10 * 1024 * 1024;

/// Why a browse, read or write of a vault file failed.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The path was refused by the vault gate (outside the vault or protected).
    #[error("Access denied: {0}")]
    Denied(VaultPathError),
    /// Nothing exists at the path (as the client named it).
    #[error("Path not found: {0}")]
    NotFound(String),
    /// `ls` was given something other than a directory.
    #[error("Path is not a directory")]
    NotADirectory,
    /// `read` was given something other than a regular file, or `write` an empty path
    /// or a directory.
    #[error("Path is not a file")]
    NotAFile,
    /// The file contains NUL bytes or is not valid UTF-8.
    #[error("File is not text")]
    NotText,
    /// The file's size in bytes exceeds [`MAX_READ_BYTES`].
    #[error("File is too large to read ({0} bytes; the limit is {MAX_READ_BYTES})")]
    TooLarge(u64),
    /// The write target is impossible (a file used as a folder, a bad name, no
    /// permission); holds the I/O error text.
    #[error("Cannot write there: {0}")]
    Rejected(String),
    /// Any other I/O failure (a full disk among them: see
    /// [`crate::util::disk_full`]).
    #[error("Write failed: {0}")]
    Io(#[source] std::io::Error),
}

impl From<VaultPathError> for FileError {
    fn from(e: VaultPathError) -> Self {
        FileError::Denied(e)
    }
}

/// An entry of a vault folder.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultEntry {
    /// The file or folder name.
    pub name: String,
    /// `directory`, `file`, or `symlink` for anything else (such as a broken link).
    #[serde(rename = "type")]
    pub kind: String,
    /// Absolute path on the server.
    pub path: String,
    /// Vault-relative path.
    pub relative_path: String,
    /// A folder (or a link to one inside the vault).
    pub is_directory: bool,
    /// A regular file (or a link to one inside the vault).
    pub is_file: bool,
    /// The entry itself is a symbolic link.
    pub is_symlink: bool,
    /// A link whose target is missing or not reachable through the vault.
    pub is_broken_symlink: bool,
    /// Where a link points; `null` for anything else.
    pub symlink_target: Option<String>,
    /// A folder holding an `AGENTS.md`.
    pub has_agents_md: bool,
    /// A folder holding a `CLAUDE.md`.
    pub has_claude_md: bool,
    /// A folder holding a `.git`.
    pub is_git_repo: bool,
    /// Bytes, for a file; `null` otherwise.
    pub size: Option<u64>,
    /// UTC ISO 8601 of the entry itself (not a link's target).
    pub last_modified: Option<String>,
}

/// The entries of a vault folder, by name.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultListing {
    /// The folder as asked for.
    pub path: String,
    /// Absolute path on the server.
    pub full_path: String,
    /// The folder's entries, by name.
    pub entries: Vec<VaultEntry>,
}

/// A text file of the vault.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultFile {
    /// The file as asked for.
    pub path: String,
    /// The file's text.
    pub content: String,
    /// Bytes.
    pub size: u64,
    /// UTC ISO 8601.
    pub last_modified: Option<String>,
}

/// A file written.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultWriteResult {
    /// Always `true`.
    pub success: bool,
    /// The file as named.
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// UTC ISO 8601.
    pub last_modified: Option<String>,
}

/// UTC ISO time with `Z` (the original used local time with a `Z`: a bug).
fn iso(t: std::io::Result<SystemTime>) -> Option<String> {
    t.ok().map(|t| {
        chrono::DateTime::<chrono::Utc>::from(t)
            .format("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string()
    })
}

fn entry(gate: &VaultGate, dir: &Path, name: &str) -> VaultEntry {
    let vault = gate.root();
    let path = dir.join(name);
    let link = path
        .symlink_metadata()
        .map(|m| m.file_type().is_symlink())
        .unwrap_or(false);
    // A link is described by what it points at only when that is reachable through
    // the gate: nothing about a target outside the vault (or protected) is reported.
    let meta = if link && !link_target_is_open(gate, &path) {
        Err(std::io::Error::other(
            "target not reachable through the vault",
        ))
    } else {
        std::fs::metadata(&path)
    };
    let broken = link && meta.is_err();
    let is_dir = meta.as_ref().map(|m| m.is_dir()).unwrap_or(false);
    let is_file = meta.as_ref().map(|m| m.is_file()).unwrap_or(false);
    let kind = if is_dir {
        "directory"
    } else if is_file {
        "file"
    } else {
        "symlink"
    };
    let target = if link {
        std::fs::read_link(&path)
            .ok()
            .map(|t| t.display().to_string())
    } else {
        None
    };
    let rel = {
        let base = relative_to_vault(vault, dir);
        if base.is_empty() {
            name.to_string()
        } else {
            format!("{base}/{name}")
        }
    };
    VaultEntry {
        name: name.to_string(),
        kind: kind.to_string(),
        path: path.display().to_string(),
        relative_path: rel,
        is_directory: is_dir,
        is_file,
        is_symlink: link,
        is_broken_symlink: broken,
        symlink_target: target,
        has_agents_md: is_dir && path.join("AGENTS.md").is_file(),
        has_claude_md: is_dir && path.join("CLAUDE.md").is_file(),
        is_git_repo: is_dir && path.join(".git").exists(),
        size: if is_file {
            meta.as_ref().ok().map(|m| m.len())
        } else {
            None
        },
        last_modified: iso(path.symlink_metadata().and_then(|m| m.modified())),
    }
}

fn link_target_is_open(gate: &VaultGate, link: &Path) -> bool {
    link.canonicalize().is_ok_and(|t| {
        let root = gate.root().canonicalize();
        root.is_ok_and(|r| t.starts_with(r)) && !gate.is_protected(&t)
    })
}

/// `GET /api/ls`.
pub fn list(gate: &VaultGate, path: &str, include_hidden: bool) -> Result<VaultListing, FileError> {
    let dir = gate.resolve(path)?;
    let meta = std::fs::metadata(&dir).map_err(|_| FileError::NotFound(path.to_string()))?;
    if !meta.is_dir() {
        return Err(FileError::NotADirectory);
    }
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map_err(FileError::Io)?
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| include_hidden || !n.starts_with('.'))
        .filter(|n| !gate.is_protected(&dir.join(n)))
        .collect();
    names.sort();
    let entries = names.iter().map(|n| entry(gate, &dir, n)).collect();
    Ok(VaultListing {
        path: path.to_string(),
        full_path: dir.display().to_string(),
        entries,
    })
}

/// `GET /api/read`: UTF-8 text files only.
pub fn read(gate: &VaultGate, path: &str) -> Result<VaultFile, FileError> {
    let file = gate.resolve(path)?;
    let meta = std::fs::metadata(&file).map_err(|_| FileError::NotFound(path.to_string()))?;
    if !meta.is_file() {
        return Err(FileError::NotAFile);
    }
    if meta.len() > MAX_READ_BYTES {
        return Err(FileError::TooLarge(meta.len()));
    }
    let bytes = std::fs::read(&file).map_err(FileError::Io)?;
    if bytes.contains(&0) {
        return Err(FileError::NotText);
    }
    let content = String::from_utf8(bytes).map_err(|_| FileError::NotText)?;
    Ok(VaultFile {
        path: path.to_string(),
        content,
        size: meta.len(),
        last_modified: iso(meta.modified()),
    })
}

/// `PUT /api/write`: creates parents, writes atomically.
pub fn write(gate: &VaultGate, path: &str, content: &str) -> Result<VaultWriteResult, FileError> {
    if path.trim().is_empty() {
        return Err(FileError::NotAFile);
    }
    let file: PathBuf = gate.resolve(path)?;
    if file.is_dir() {
        return Err(FileError::NotAFile);
    }
    crate::util::fs::write_atomic(&file, content.as_bytes(), None).map_err(|e| {
        use std::io::ErrorKind as K;
        match e.kind() {
            // The client named something impossible (a file used as a folder, a bad name).
            K::NotADirectory
            | K::AlreadyExists
            | K::InvalidFilename
            | K::InvalidInput
            | K::IsADirectory
            | K::PermissionDenied => FileError::Rejected(e.to_string()),
            _ => FileError::Io(e),
        }
    })?;
    let meta = std::fs::metadata(&file).map_err(FileError::Io)?;
    Ok(VaultWriteResult {
        success: true,
        path: path.to_string(),
        size: meta.len(),
        last_modified: iso(meta.modified()),
    })
}
