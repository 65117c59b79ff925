//! Browsing, reading and writing vault files for `/api/ls`, `/api/read`, `/api/write`
//!, every path through [`VaultGate::resolve`].

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::{json, Value};

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
    /// Any other I/O failure; holds the error text.
    #[error("Write failed: {0}")]
    Io(String),
}

impl From<VaultPathError> for FileError {
    fn from(e: VaultPathError) -> Self {
        FileError::Denied(e)
    }
}

/// UTC ISO time with `Z` (the original used local time with a `Z`: a bug).
fn iso(t: std::io::Result<SystemTime>) -> Value {
    match t {
        Ok(t) => Value::from(
            chrono::DateTime::<chrono::Utc>::from(t)
                .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                .to_string(),
        ),
        Err(_) => Value::Null,
    }
}

fn entry(gate: &VaultGate, dir: &Path, name: &str) -> Value {
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
    json!({
        "name": name, "type": kind, "path": path.display().to_string(), "relativePath": rel,
        "isDirectory": is_dir, "isFile": is_file, "isSymlink": link, "isBrokenSymlink": broken,
        "symlinkTarget": target,
        "hasAgentsMd": is_dir && path.join("AGENTS.md").is_file(),
        "hasClaudeMd": is_dir && path.join("CLAUDE.md").is_file(),
        "isGitRepo": is_dir && path.join(".git").exists(),
        "size": if is_file { meta.as_ref().map(|m| Value::from(m.len())).unwrap_or(Value::Null) } else { Value::Null },
        "lastModified": iso(path.symlink_metadata().and_then(|m| m.modified())),
    })
}

fn link_target_is_open(gate: &VaultGate, link: &Path) -> bool {
    link.canonicalize().is_ok_and(|t| {
        let root = gate.root().canonicalize();
        root.is_ok_and(|r| t.starts_with(r)) && !gate.is_protected(&t)
    })
}

/// `GET /api/ls`.
pub fn list(gate: &VaultGate, path: &str, include_hidden: bool) -> Result<Value, FileError> {
    let dir = gate.resolve(path)?;
    let meta = std::fs::metadata(&dir).map_err(|_| FileError::NotFound(path.to_string()))?;
    if !meta.is_dir() {
        return Err(FileError::NotADirectory);
    }
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| FileError::Io(e.to_string()))?
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| include_hidden || !n.starts_with('.'))
        .filter(|n| !gate.is_protected(&dir.join(n)))
        .collect();
    names.sort();
    let entries: Vec<Value> = names.iter().map(|n| entry(gate, &dir, n)).collect();
    Ok(json!({"path": path, "fullPath": dir.display().to_string(), "entries": entries}))
}

/// `GET /api/read`: UTF-8 text files only.
pub fn read(gate: &VaultGate, path: &str) -> Result<Value, FileError> {
    let file = gate.resolve(path)?;
    let meta = std::fs::metadata(&file).map_err(|_| FileError::NotFound(path.to_string()))?;
    if !meta.is_file() {
        return Err(FileError::NotAFile);
    }
    if meta.len() > MAX_READ_BYTES {
        return Err(FileError::TooLarge(meta.len()));
    }
    let bytes = std::fs::read(&file).map_err(|e| FileError::Io(e.to_string()))?;
    if bytes.contains(&0) {
        return Err(FileError::NotText);
    }
    let content = String::from_utf8(bytes).map_err(|_| FileError::NotText)?;
    Ok(
        json!({"path": path, "content": content, "size": meta.len(), "lastModified": iso(meta.modified())}),
    )
}

/// `PUT /api/write`: creates parents, writes atomically.
pub fn write(gate: &VaultGate, path: &str, content: &str) -> Result<Value, FileError> {
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
            _ => FileError::Io(e.to_string()),
        }
    })?;
    let meta = std::fs::metadata(&file).map_err(|e| FileError::Io(e.to_string()))?;
    Ok(
        json!({"success": true, "path": path, "size": meta.len(), "lastModified": iso(meta.modified())}),
    )
}
