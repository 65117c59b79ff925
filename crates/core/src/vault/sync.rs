//! File sync for the mobile app: manifests of a vault
//! folder, changes since a time, and push / pull / delete of files, every path
//! confined by [`VaultGate::resolve`] and writes atomic.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use base64::Engine;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::{VaultGate, VaultPathError};

/// Walk limits, so a huge folder cannot stall the server.
const MAX_FILES: usize = 50_000;
const MAX_DEPTH: usize = 16;

/// Why a sync listing failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The root was refused by the vault gate (outside the vault or protected).
    #[error("Access denied: {0}")]
    Denied(#[from] VaultPathError),
    /// The root (as the client named it) is not an existing directory.
    #[error("Root not found: {0}")]
    RootNotFound(String),
    /// The `pattern` is longer than [`MAX_PATTERN`] characters.
    #[error("pattern is longer than {MAX_PATTERN} characters")]
    BadPattern,
}

/// Which files a listing covers.
pub struct Filter {
    /// `*` / `?` glob matched against each file name (see [`glob_match`]).
    pub pattern: String,
    /// Also list files that look binary (NUL bytes or invalid UTF-8 in the first 8 KiB).
    pub include_binary: bool,
    /// Only files whose root-relative path contains this text; `None` for all.
    pub date: Option<String>,
    /// Only files modified strictly after this time, in Unix seconds; `None` for all.
    pub since: Option<f64>,
    /// Hash = modification time instead of SHA-256.
    pub quick: bool,
}

/// Longest `pattern` accepted.
pub const MAX_PATTERN: usize = 256;
/// Largest file `pull` sends.
pub const MAX_PULL_BYTES: u64 = 50 * 1024 * 1024;

/// `*` and `?` glob on a file name, iteratively (no recursion, O(pattern × name)).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn sha256_file(path: &Path) -> Option<String> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).ok()?;
    Some(hex::encode(h.finalize()))
}

/// Whether the start of a file looks binary (NUL bytes or not UTF-8).
fn file_is_binary(path: &Path) -> bool {
    use std::io::Read;
    let mut buf = vec![0u8; 8192];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut buf))
        .unwrap_or(0);
    let head = &buf[..n];
    head.contains(&0)
        || match std::str::from_utf8(head) {
            Ok(_) => false,
            // A multi-byte character cut at the end of the sample is still text.
            Err(e) => e.error_len().is_some(),
        }
}

fn is_binary(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(8192)];
    head.contains(&0) || std::str::from_utf8(head).is_err() && std::str::from_utf8(bytes).is_err()
}

fn mtime(meta: &std::fs::Metadata) -> f64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The current time in Unix seconds (fractional), the unit of `modified` and `since`.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn root_dir(gate: &VaultGate, root: &str) -> Result<PathBuf, SyncError> {
    let dir = gate.resolve(root)?;
    if !dir.is_dir() {
        return Err(SyncError::RootNotFound(root.to_string()));
    }
    Ok(dir)
}

/// A file of a listing.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SyncFile {
    /// Relative to the root.
    pub path: String,
    /// SHA-256 in hex, or with `quick` the modification time as text.
    pub hash: String,
    /// Bytes.
    pub size: u64,
    /// Modification time, Unix seconds (fractional).
    pub modified: f64,
}

/// Files under `root` matching `filter`, by path.
pub fn list(gate: &VaultGate, root: &str, filter: &Filter) -> Result<Vec<SyncFile>, SyncError> {
    let dir = root_dir(gate, root)?;
    let mut out = Vec::new();
    if filter.pattern.chars().count() > MAX_PATTERN {
        return Err(SyncError::BadPattern);
    }
    let mut stack = vec![(dir.clone(), 0usize)];
    'walk: while let Some((d, depth)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            // Dot-files, and the session database and anything else protected.
            if name.starts_with('.') || gate.is_protected(&e.path()) {
                continue;
            }
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                if depth < MAX_DEPTH {
                    stack.push((e.path(), depth + 1));
                }
                continue;
            }
            if !ft.is_file() || !glob_match(&filter.pattern, &name) {
                continue;
            }
            let rel = e
                .path()
                .strip_prefix(&dir)
                .map(|r| r.to_string_lossy().into_owned())
                .unwrap_or(name.clone());
            if filter.date.as_deref().is_some_and(|dt| !rel.contains(dt)) {
                continue;
            }
            let Ok(meta) = e.metadata() else { continue };
            let modified = mtime(&meta);
            if filter.since.is_some_and(|s| modified <= s) {
                continue;
            }
            if !filter.include_binary && file_is_binary(&e.path()) {
                continue;
            }
            let hash = if filter.quick {
                modified.to_string()
            } else {
                let Some(h) = sha256_file(&e.path()) else {
                    continue;
                };
                h
            };
            out.push(SyncFile {
                path: rel,
                hash,
                size: meta.len(),
                modified,
            });
            if out.len() >= MAX_FILES {
                break 'walk;
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn target(gate: &VaultGate, root: &str, path: &str) -> Result<PathBuf, VaultPathError> {
    let root = root.trim_end_matches('/');
    let joined = if root.is_empty() {
        path.to_string()
    } else {
        format!("{root}/{path}")
    };
    gate.resolve(&joined)
}

/// A file that could not be written, read or deleted.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SyncFileError {
    /// The path as given.
    pub path: String,
    /// Why it failed.
    pub error: String,
}

fn err(path: &str, e: impl std::fmt::Display) -> SyncFileError {
    SyncFileError {
        path: path.to_string(),
        error: e.to_string(),
    }
}

/// The outcome of a push: failures are listed, the rest written.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SyncPushResult {
    /// Files written.
    pub pushed: u64,
    /// The files not written, in the order given.
    pub errors: Vec<SyncFileError>,
}

/// `POST /api/sync/push`: writes each file; failures are listed, the rest written.
/// `files` is the request's list as sent (`[{path, content, is_binary}]`), read
/// leniently so one malformed item is reported, not the whole push refused.
pub fn push(gate: &VaultGate, root: &str, files: &[Value]) -> (SyncPushResult, Vec<Pushed>) {
    let mut written = Vec::new();
    let mut pushed = 0;
    let mut errors = Vec::new();
    for f in files {
        let path = f.get("path").and_then(Value::as_str).unwrap_or("");
        let Some(content) = f.get("content").and_then(Value::as_str) else {
            errors.push(err(path, "content is required"));
            continue;
        };
        let bytes = if f.get("is_binary").and_then(Value::as_bool).unwrap_or(false) {
            match base64::engine::general_purpose::STANDARD.decode(content) {
                Ok(b) => b,
                Err(e) => {
                    errors.push(err(path, format!("invalid base64: {e}")));
                    continue;
                }
            }
        } else {
            content.as_bytes().to_vec()
        };
        if path.is_empty() {
            errors.push(err(path, "path is required"));
            continue;
        }
        match target(gate, root, path) {
            Ok(t) if t.is_dir() => errors.push(err(path, "is a directory")),
            Ok(t) => {
                let existed = t.exists();
                match crate::util::fs::write_atomic(&t, &bytes, None) {
                    Ok(()) => {
                        pushed += 1;
                        written.push(Pushed {
                            path: super::relative_to_vault(gate.root(), &t),
                            existed,
                        });
                    }
                    Err(e) => errors.push(err(path, e)),
                }
            }
            Err(e) => errors.push(err(path, e)),
        }
    }
    (SyncPushResult { pushed, errors }, written)
}

/// A file a push wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Pushed {
    /// Vault-relative.
    pub path: String,
    /// Whether it replaced a file.
    pub existed: bool,
}

/// A file pulled.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SyncPulledFile {
    /// The path as given.
    pub path: String,
    /// Text, or base64 when `is_binary`.
    pub content: String,
    /// SHA-256 in hex.
    pub hash: String,
    /// Bytes.
    pub size: u64,
    /// Modification time, Unix seconds (fractional).
    pub modified: f64,
    /// Whether `content` is base64 (the file is not UTF-8 text).
    pub is_binary: bool,
}

/// The files pulled, and failures.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SyncPullResult {
    /// The files read, in the order asked for.
    pub files: Vec<SyncPulledFile>,
    /// The files not read, in the order asked for.
    pub errors: Vec<SyncFileError>,
}

/// `POST /api/sync/pull`: the files asked for, text or base64.
pub fn pull(gate: &VaultGate, root: &str, paths: &[String]) -> SyncPullResult {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        let t = match target(gate, root, path) {
            Ok(t) => t,
            Err(e) => {
                errors.push(err(path, e));
                continue;
            }
        };
        let Ok(meta) = std::fs::metadata(&t) else {
            errors.push(err(path, "not found"));
            continue;
        };
        if meta.len() > MAX_PULL_BYTES {
            errors.push(err(path, format!("larger than {MAX_PULL_BYTES} bytes")));
            continue;
        }
        let Ok(bytes) = std::fs::read(&t) else {
            errors.push(err(path, "not readable"));
            continue;
        };
        let binary = is_binary(&bytes);
        let content = if binary {
            base64::engine::general_purpose::STANDARD.encode(&bytes)
        } else {
            String::from_utf8_lossy(&bytes).into_owned()
        };
        files.push(SyncPulledFile {
            path: path.clone(),
            content,
            hash: hex::encode(Sha256::digest(&bytes)),
            size: meta.len(),
            modified: mtime(&meta),
            is_binary: binary,
        });
    }
    SyncPullResult { files, errors }
}

/// The outcome of a delete: a file already missing counts as deleted.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SyncDeleteResult {
    /// Files deleted (or already missing).
    pub deleted: u64,
    /// The files not deleted, in the order given.
    pub errors: Vec<SyncFileError>,
}

/// `DELETE /api/sync/files`: a file already missing counts as deleted.
pub fn delete(gate: &VaultGate, root: &str, paths: &[String]) -> SyncDeleteResult {
    let mut deleted = 0;
    let mut errors = Vec::new();
    for path in paths {
        match target(gate, root, path) {
            Ok(t) if t.is_dir() => errors.push(err(path, "is a directory")),
            Ok(t) => match std::fs::remove_file(&t) {
                Ok(()) => deleted += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => deleted += 1,
                Err(e) => errors.push(err(path, e)),
            },
            Err(e) => errors.push(err(path, e)),
        }
    }
    SyncDeleteResult { deleted, errors }
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("*.md", "a.md"));
        assert!(!glob_match("*.md", "a.mdx"));
        assert!(glob_match("*", "x"));
        assert!(glob_match("202?-*.md", "2026-11-24.md"));
        assert!(glob_match("*a*b", "xxaxxb"));
        assert!(!glob_match("*a*b", "xxaxx"));
        assert!(glob_match("", "") && !glob_match("", "a"));
        // Many stars on a long name finish at once (the recursive form took minutes).
        let p = format!("{}Z", "*".repeat(200));
        assert!(!glob_match(&p, &"a".repeat(200)));
    }
}
