//! The digest of a module's whole tree, the thing an approval is bound to.
//!
//! Defined once, here (and in `docs/modules.md`): SHA-256 over the bytes
//! `parachute-module-tree-v1\n`, then, for every regular file under the module folder in
//! byte order of its relative path (`/`-separated, UTF-8), the path's length as a
//! big-endian u64, the path, the content's length as a big-endian u64, and the content.
//! Directories contribute only through their files. A symlink, a special file, a name
//! that is not UTF-8, more than [`MAX_FILES`] files or more than [`MAX_BYTES`] bytes make
//! the tree unhashable, and so unapprovable.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Most files a module may have.
pub const MAX_FILES: usize = 10_000;
/// Most bytes a module may hold (all files together).
pub const MAX_BYTES: u64 = 512 * 1024 * 1024;

const DOMAIN: &[u8] = b"parachute-module-tree-v1\n";

/// A module tree's digest, with each file's own digest (to show what changed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeDigest {
    /// The tree hash, lowercase hex.
    pub hash: String,
    /// Each file's SHA-256 (hex), by relative path.
    pub files: BTreeMap<String, String>,
    /// Total bytes.
    pub bytes: u64,
}

/// Why a tree cannot be hashed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TreeError {
    /// A symlink is somewhere in the tree.
    #[error("{0} is a symlink; modules may not contain symlinks")]
    Symlink(String),
    /// Something that is neither a file nor a folder.
    #[error("{0} is not a regular file")]
    Special(String),
    /// A name that is not UTF-8.
    #[error("a file name under {0} is not valid UTF-8")]
    NotUtf8(String),
    /// Too many files.
    #[error("more than {MAX_FILES} files")]
    TooManyFiles,
    /// Too large.
    #[error("more than {} MB", MAX_BYTES / (1024 * 1024))]
    TooLarge,
    /// Reading failed.
    #[error("cannot read {path}: {reason}")]
    Io {
        /// The relative path.
        path: String,
        /// The I/O error, as text.
        reason: String,
    },
}

/// The files of a tree in hashing order: relative path → absolute path.
pub fn list_files(root: &Path) -> Result<BTreeMap<String, PathBuf>, TreeError> {
    let mut out = BTreeMap::new();
    walk(root, "", &mut out)?;
    Ok(out)
}

fn walk(dir: &Path, prefix: &str, out: &mut BTreeMap<String, PathBuf>) -> Result<(), TreeError> {
    let entries = std::fs::read_dir(dir).map_err(|e| io(prefix, &e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io(prefix, &e))?;
        let name = entry
            .file_name()
            .into_string()
            .map_err(|_| TreeError::NotUtf8(display(prefix)))?;
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let kind = entry.file_type().map_err(|e| io(&rel, &e))?;
        if kind.is_symlink() {
            return Err(TreeError::Symlink(rel));
        } else if kind.is_dir() {
            walk(&entry.path(), &rel, out)?;
        } else if kind.is_file() {
            if out.len() >= MAX_FILES {
                return Err(TreeError::TooManyFiles);
            }
            out.insert(rel, entry.path());
        } else {
            return Err(TreeError::Special(rel));
        }
    }
    Ok(())
}

fn display(prefix: &str) -> String {
    if prefix.is_empty() {
        ".".into()
    } else {
        prefix.into()
    }
}

fn io(rel: &str, e: &std::io::Error) -> TreeError {
    TreeError::Io {
        path: display(rel),
        reason: e.to_string(),
    }
}

/// Hashes the tree at `root` (blocking file I/O).
pub fn digest_dir(root: &Path) -> Result<TreeDigest, TreeError> {
    let files = list_files(root)?;
    let mut tree = TreeHasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    for (rel, path) in &files {
        let mut f = std::fs::File::open(path).map_err(|e| io(rel, &e))?;
        let meta = f.metadata().map_err(|e| io(rel, &e))?;
        if !meta.is_file() {
            return Err(TreeError::Special(rel.clone()));
        }
        tree.begin_file(rel, meta.len())?;
        let mut read = 0u64;
        loop {
            let n = f.read(&mut buf).map_err(|e| io(rel, &e))?;
            if n == 0 {
                break;
            }
            read += n as u64;
            if read > meta.len() {
                // Grew while being read: the digest would not describe one state.
                return Err(TreeError::Io {
                    path: rel.clone(),
                    reason: "changed while being read".into(),
                });
            }
            tree.update(&buf[..n]);
        }
        if read != meta.len() {
            return Err(TreeError::Io {
                path: rel.clone(),
                reason: "changed while being read".into(),
            });
        }
        tree.end_file(rel);
    }
    Ok(tree.finish())
}

/// Hashes in-memory files (the bundled modules): relative path → content.
pub fn digest_files<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> TreeDigest {
    let sorted: BTreeMap<&str, &[u8]> = files.into_iter().collect();
    let mut tree = TreeHasher::new();
    for (rel, content) in sorted {
        // In-memory trees are ours and small: the limits cannot be exceeded.
        let _ = tree.begin_file(rel, content.len() as u64);
        tree.update(content);
        tree.end_file(rel);
    }
    tree.finish()
}

struct TreeHasher {
    tree: Sha256,
    file: Sha256,
    files: BTreeMap<String, String>,
    bytes: u64,
}

impl TreeHasher {
    fn new() -> Self {
        let mut tree = Sha256::new();
        tree.update(DOMAIN);
        TreeHasher {
            tree,
            file: Sha256::new(),
            files: BTreeMap::new(),
            bytes: 0,
        }
    }

    fn begin_file(&mut self, rel: &str, len: u64) -> Result<(), TreeError> {
        self.bytes += len;
        if self.bytes > MAX_BYTES {
            return Err(TreeError::TooLarge);
        }
        self.tree.update((rel.len() as u64).to_be_bytes());
        self.tree.update(rel.as_bytes());
        self.tree.update(len.to_be_bytes());
        self.file = Sha256::new();
        Ok(())
    }

    fn update(&mut self, bytes: &[u8]) {
        self.tree.update(bytes);
        self.file.update(bytes);
    }

    fn end_file(&mut self, rel: &str) {
        let file = std::mem::take(&mut self.file);
        self.files
            .insert(rel.to_string(), hex::encode(file.finalize()));
    }

    fn finish(self) -> TreeDigest {
        TreeDigest {
            hash: hex::encode(self.tree.finalize()),
            files: self.files,
            bytes: self.bytes,
        }
    }
}

/// What changed between two trees' file digests.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct TreeChanges {
    /// Files that are new.
    pub added: Vec<String>,
    /// Files whose content changed.
    pub modified: Vec<String>,
    /// Files that are gone.
    pub removed: Vec<String>,
}

impl TreeChanges {
    /// The changes from `before` to `after`.
    pub fn between(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Self {
        let mut c = TreeChanges::default();
        for (path, digest) in after {
            match before.get(path) {
                None => c.added.push(path.clone()),
                Some(d) if d != digest => c.modified.push(path.clone()),
                Some(_) => {}
            }
        }
        c.removed = before
            .keys()
            .filter(|p| !after.contains_key(*p))
            .cloned()
            .collect();
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, content: &[u8]) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    #[test]
    fn disk_and_memory_agree_and_every_byte_counts() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "manifest.yaml", b"name: m\n");
        write(dir.path(), "skills/a/SKILL.md", b"skill");
        let d = digest_dir(dir.path()).unwrap();
        let m = digest_files([
            ("skills/a/SKILL.md", b"skill".as_slice()),
            ("manifest.yaml", b"name: m\n".as_slice()),
        ]);
        assert_eq!(d, m);
        write(dir.path(), "skills/a/SKILL.md", b"skilL");
        let changed = digest_dir(dir.path()).unwrap();
        assert_ne!(changed.hash, d.hash);
        assert_eq!(
            TreeChanges::between(&d.files, &changed.files).modified,
            vec!["skills/a/SKILL.md".to_string()]
        );
    }

    #[test]
    fn names_and_contents_cannot_be_shifted_into_each_other() {
        let a = digest_files([("ab", b"c".as_slice())]);
        let b = digest_files([("a", b"bc".as_slice())]);
        assert_ne!(a.hash, b.hash);
        let a = digest_files([("x", b"".as_slice()), ("y", b"1".as_slice())]);
        let b = digest_files([("x", b"1".as_slice()), ("y", b"".as_slice())]);
        assert_ne!(a.hash, b.hash);
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "manifest.yaml", b"name: m\n");
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link")).unwrap();
        assert_eq!(
            digest_dir(dir.path()),
            Err(TreeError::Symlink("link".into()))
        );
    }

    #[test]
    fn changes_list_added_and_removed() {
        let a = digest_files([("x", b"1".as_slice()), ("y", b"2".as_slice())]);
        let b = digest_files([("y", b"2".as_slice()), ("z", b"3".as_slice())]);
        let c = TreeChanges::between(&a.files, &b.files);
        assert_eq!(c.added, vec!["z"]);
        assert_eq!(c.removed, vec!["x"]);
        assert!(c.modified.is_empty());
    }
}
