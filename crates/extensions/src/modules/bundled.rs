//! The modules embedded in this program (chat, daily, brain): installed into the vault
//! on first start, and approved while their tree equals the embedded one. A folder that
//! exists is never overwritten, so an owner's edits survive (they then wait for the
//! owner's approval like any change).

use std::path::Path;
use std::sync::OnceLock;

use include_dir::{include_dir, Dir};

use super::tree::{digest_files, TreeDigest};

static TREE: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/bundled");

/// One embedded module.
#[derive(Debug)]
pub struct Bundled {
    /// Its name (and folder).
    pub name: &'static str,
    /// Its files: path relative to the module folder → content.
    pub files: Vec<(String, &'static [u8])>,
    /// Their tree digest.
    pub digest: TreeDigest,
}

/// Every embedded module, by name.
pub fn all() -> &'static [Bundled] {
    static ALL: OnceLock<Vec<Bundled>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut out: Vec<Bundled> = TREE
            .dirs()
            .map(|dir| {
                let name = dir.path().to_str().unwrap_or_default();
                let mut files = Vec::new();
                collect(dir, dir.path(), &mut files);
                let digest = digest_files(files.iter().map(|(p, c)| (p.as_str(), *c)));
                Bundled {
                    name,
                    files,
                    digest,
                }
            })
            .collect();
        out.sort_by_key(|b| b.name);
        out
    })
}

fn collect(dir: &'static Dir<'static>, root: &Path, out: &mut Vec<(String, &'static [u8])>) {
    for f in dir.files() {
        if let Ok(rel) = f.path().strip_prefix(root) {
            out.push((rel.to_string_lossy().replace('\\', "/"), f.contents()));
        }
    }
    for d in dir.dirs() {
        collect(d, root, out);
    }
}

/// The embedded module `name`.
pub fn get(name: &str) -> Option<&'static Bundled> {
    all().iter().find(|b| b.name == name)
}

/// The embedded `CLAUDE.md` of module `name`: its folder's default prompt.
pub fn default_prompt(name: &str) -> Option<&'static str> {
    get(name)?
        .files
        .iter()
        .find(|(p, _)| p == "CLAUDE.md")
        .and_then(|(_, c)| std::str::from_utf8(c).ok())
}

/// Writes `module` into `modules_dir/{name}` through a temporary folder renamed into
/// place, so a crash never leaves half a module. Does nothing if the folder exists.
pub fn install(modules_dir: &Path, module: &Bundled) -> std::io::Result<bool> {
    let target = modules_dir.join(module.name);
    if target.symlink_metadata().is_ok() {
        return Ok(false);
    }
    let tmp = write_tree(modules_dir, module)?;
    match std::fs::rename(&tmp, &target) {
        Ok(()) => Ok(true),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            if target.exists() {
                Ok(false)
            } else {
                Err(e)
            }
        }
    }
}

/// Writes `module`'s files into a new hidden folder beside the modules; its path.
fn write_tree(modules_dir: &Path, module: &Bundled) -> std::io::Result<std::path::PathBuf> {
    std::fs::create_dir_all(modules_dir)?;
    let tmp = modules_dir.join(format!(".install-{}-{}", module.name, std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let written = module.files.iter().try_for_each(|(rel, content)| {
        let path = tmp.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, content)
    });
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    Ok(tmp)
}

/// Replaces the folder of `module` with this program's version: the new tree is
/// written first, then the two folders are swapped by back-to-back renames; a crash
/// between them leaves `.old-NAME-*`, which [`recover`] puts back.
pub fn replace(modules_dir: &Path, module: &Bundled) -> std::io::Result<bool> {
    let target = modules_dir.join(module.name);
    let tmp = write_tree(modules_dir, module)?;
    let old = modules_dir.join(format!(".old-{}-{}", module.name, std::process::id()));
    let _ = std::fs::remove_dir_all(&old);
    if let Err(e) = std::fs::rename(&target, &old) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    match std::fs::rename(&tmp, &target) {
        Ok(()) => {
            let _ = std::fs::remove_dir_all(&old);
            Ok(true)
        }
        Err(e) => {
            let _ = std::fs::rename(&old, &target);
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

/// After a crash: a module folder missing beside its `.old-NAME-*` copy gets it back;
/// other leftovers of installs and swaps are removed.
pub fn recover(modules_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(modules_dir) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(name) = e.file_name().into_string() else {
            continue;
        };
        if let Some(rest) = name.strip_prefix(".old-") {
            let module = rest.rsplit_once('-').map_or(rest, |(m, _)| m);
            let target = modules_dir.join(module);
            if super::manifest::valid_name(module) && target.symlink_metadata().is_err() {
                let _ = std::fs::rename(e.path(), &target);
                continue;
            }
            let _ = std::fs::remove_dir_all(e.path());
        } else if name.starts_with(".install-") {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeds_the_three_modules() {
        let names: Vec<_> = all().iter().map(|b| b.name).collect();
        assert_eq!(names, vec!["brain", "chat", "daily"]);
        for b in all() {
            let manifest = b.files.iter().find(|(p, _)| p == "manifest.yaml").unwrap();
            let text = std::str::from_utf8(manifest.1).unwrap();
            let m = super::super::manifest::parse(text, b.name).unwrap();
            assert_eq!(m.name, b.name);
        }
        assert!(default_prompt("chat").unwrap().starts_with("# Chat"));
    }

    #[test]
    fn a_swap_interrupted_by_a_crash_is_undone() {
        let d = tempfile::tempdir().unwrap();
        let chat = get("chat").unwrap();
        install(d.path(), chat).unwrap();
        std::fs::rename(d.path().join("chat"), d.path().join(".old-chat-4242")).unwrap();
        std::fs::create_dir_all(d.path().join(".install-chat-4242")).unwrap();
        recover(d.path());
        assert!(d.path().join("chat/manifest.yaml").is_file());
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn install_writes_once_and_matches_the_embedded_digest() {
        let d = tempfile::tempdir().unwrap();
        let brain = get("brain").unwrap();
        assert!(install(d.path(), brain).unwrap());
        let on_disk = super::super::tree::digest_dir(&d.path().join("brain")).unwrap();
        assert_eq!(on_disk, brain.digest);
        std::fs::write(d.path().join("brain/CLAUDE.md"), "mine").unwrap();
        assert!(!install(d.path(), brain).unwrap());
        assert_eq!(
            std::fs::read_to_string(d.path().join("brain/CLAUDE.md")).unwrap(),
            "mine"
        );
    }
}
