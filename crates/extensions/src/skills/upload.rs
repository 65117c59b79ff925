//! Installing a skill from a `.skill` or `.zip` archive into `.skills/{stem}/`. Every
//! entry is checked before anything is written: no `..`, no absolute path, no symlink,
//! at most [`MAX_ENTRIES`] entries, [`MAX_FILE_BYTES`] per file and [`MAX_TOTAL_BYTES`]
//! in all (declared sizes, and again while inflating, since a declared size can lie).
//! The files go to a temporary folder that is renamed into place, so a refused or
//! failed upload leaves nothing behind.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use super::{check_root, kebab, SkillError};

/// Most entries an archive may have.
pub const MAX_ENTRIES: usize = 1_000;
/// Most bytes one file may inflate to.
pub const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;
/// Most bytes all files may inflate to.
pub const MAX_TOTAL_BYTES: u64 = 50 * 1024 * 1024;

/// The checked relative path of an archive entry, or why it is refused.
fn entry_path(name: &str) -> Result<PathBuf, SkillError> {
    let refuse = |why: &str| {
        Err(SkillError::Invalid(format!(
            "archive entry '{}' {why}",
            name.chars().take(100).collect::<String>()
        )))
    };
    if name.contains('\\') || name.contains('\0') {
        return refuse("has a backslash or NUL in its name");
    }
    let p = Path::new(name);
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::CurDir => {}
            Component::ParentDir => return refuse("leaves the folder (..)"),
            Component::RootDir | Component::Prefix(_) => return refuse("is an absolute path"),
        }
    }
    if out.as_os_str().is_empty() {
        return refuse("has no name");
    }
    Ok(out)
}

/// Installs the archive `bytes` (file name `file_name`) as `.skills/{stem}/` in `dir`;
/// the skill's folder name.
pub fn install(dir: &Path, file_name: &str, bytes: &[u8]) -> Result<String, SkillError> {
    let lower = file_name.to_ascii_lowercase();
    let stem = lower
        .strip_suffix(".skill")
        .or_else(|| lower.strip_suffix(".zip"))
        .ok_or_else(|| SkillError::Invalid("Upload a .skill or .zip file".into()))?;
    let stem = kebab(stem);
    check_root(dir)?;
    let target = dir.join(&stem);
    if target.symlink_metadata().is_ok() {
        return Err(SkillError::Exists(stem));
    }
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| SkillError::Invalid(format!("not a valid zip archive: {e}")))?;
    if archive.len() > MAX_ENTRIES {
        return Err(SkillError::Invalid(format!(
            "the archive has {} entries; at most {MAX_ENTRIES} are allowed",
            archive.len()
        )));
    }
    // First pass: every entry's name, kind and declared size.
    let mut plan = Vec::new();
    let mut declared = 0u64;
    let (mut files, mut dirs) = (
        std::collections::HashSet::new(),
        std::collections::HashSet::new(),
    );
    for i in 0..archive.len() {
        let e = archive
            .by_index_raw(i)
            .map_err(|e| SkillError::Invalid(format!("unreadable archive entry: {e}")))?;
        let rel = entry_path(e.name())?;
        if e.is_symlink() {
            return Err(SkillError::Invalid(format!(
                "archive entry '{}' is a symlink",
                e.name()
            )));
        }
        if e.size() > MAX_FILE_BYTES {
            return Err(SkillError::Invalid(format!(
                "archive entry '{}' is larger than {} MB",
                e.name(),
                MAX_FILE_BYTES / (1024 * 1024)
            )));
        }
        declared = declared.saturating_add(e.size());
        if declared > MAX_TOTAL_BYTES {
            return Err(SkillError::Invalid(format!(
                "the archive holds more than {} MB",
                MAX_TOTAL_BYTES / (1024 * 1024)
            )));
        }
        if rel.components().any(|c| c.as_os_str().len() > 255) {
            return Err(SkillError::Invalid(format!(
                "archive entry '{}' has a name longer than 255 bytes",
                e.name()
            )));
        }
        // Two entries for one path, or a file where another entry needs a folder; names
        // compared without case, as a case-insensitive disk (macOS) would.
        let key = PathBuf::from(rel.to_string_lossy().to_lowercase());
        let clash = if e.is_dir() {
            files.contains(&key)
        } else {
            !files.insert(key.clone()) || dirs.contains(&key)
        };
        let ancestors: Vec<PathBuf> = key
            .ancestors()
            .skip(1)
            .filter(|a| !a.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .collect();
        if clash || ancestors.iter().any(|a| files.contains(a)) {
            return Err(SkillError::Invalid(format!(
                "archive entry '{}' clashes with another entry",
                e.name()
            )));
        }
        if e.is_dir() {
            dirs.insert(key);
        }
        dirs.extend(ancestors);
        plan.push((i, rel, e.is_dir()));
    }
    // A single top folder (`tidy/SKILL.md`) is the skill's own folder: strip it.
    let top: Option<std::ffi::OsString> = plan
        .iter()
        .map(|(_, rel, _)| {
            rel.components()
                .next()
                .map(|c| c.as_os_str().to_os_string())
        })
        .reduce(|a, b| if a == b { a } else { None })
        .flatten();
    let strip = top.filter(|t| {
        plan.iter().all(|(_, rel, is_dir)| {
            rel.components().count() > 1 || (*is_dir && rel.as_os_str() == t.as_os_str())
        })
    });

    std::fs::create_dir_all(dir).map_err(|e| SkillError::Io(e.into()))?;
    let tmp = dir.join(format!(".upload-{stem}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let result = extract(&mut archive, &plan, strip.as_deref(), &tmp).and_then(|()| {
        if super::skill_file(&tmp).is_none() && !has_named_file(&tmp, &stem) {
            return Err(SkillError::Invalid(
                "the archive has no SKILL.md (or skill.md, index.md)".into(),
            ));
        }
        std::fs::rename(&tmp, &target).map_err(|e| SkillError::Io(e.into()))
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result.map(|()| stem)
}

fn has_named_file(dir: &Path, stem: &str) -> bool {
    dir.join(format!("{stem}.md")).is_file()
}

fn extract(
    archive: &mut zip::ZipArchive<std::io::Cursor<&[u8]>>,
    plan: &[(usize, PathBuf, bool)],
    strip: Option<&std::ffi::OsStr>,
    tmp: &Path,
) -> Result<(), SkillError> {
    let io = |e: std::io::Error| SkillError::Io(e.into());
    std::fs::create_dir_all(tmp).map_err(io)?;
    let mut total = 0u64;
    for (i, rel, is_dir) in plan {
        let rel = match strip {
            Some(t) => match rel.strip_prefix(t) {
                Ok(r) if !r.as_os_str().is_empty() => r.to_path_buf(),
                _ => continue,
            },
            None => rel.clone(),
        };
        let out = tmp.join(&rel);
        if *is_dir {
            std::fs::create_dir_all(&out).map_err(io)?;
            continue;
        }
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let mut e = archive
            .by_index(*i)
            .map_err(|e| SkillError::Invalid(format!("unreadable archive entry: {e}")))?;
        let mut buf = Vec::new();
        (&mut e)
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut buf)
            .map_err(|e| SkillError::Invalid(format!("archive entry does not inflate: {e}")))?;
        total += buf.len() as u64;
        if buf.len() as u64 > MAX_FILE_BYTES || total > MAX_TOTAL_BYTES {
            return Err(SkillError::Invalid(
                "the archive inflates to more than its sizes declare".into(),
            ));
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&out)
            .map_err(io)?;
        std::io::Write::write_all(&mut f, &buf).map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, data) in entries {
            w.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn installs_a_skill_with_or_without_a_top_folder() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join(".skills");
        let z = zip_of(&[
            ("tidy/SKILL.md", b"---\nname: tidy\n---\nx"),
            ("tidy/ref/a.txt", b"a"),
        ]);
        assert_eq!(install(&dir, "Tidy.skill", &z).unwrap(), "tidy");
        assert!(dir.join("tidy/SKILL.md").is_file() && dir.join("tidy/ref/a.txt").is_file());
        assert!(matches!(
            install(&dir, "tidy.zip", &z),
            Err(SkillError::Exists(_))
        ));
        let flat = zip_of(&[("SKILL.md", b"x")]);
        assert_eq!(install(&dir, "flat.zip", &flat).unwrap(), "flat");
    }

    #[test]
    fn refuses_unsafe_archives_and_writes_nothing() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join(".skills");
        let long = "n".repeat(256);
        for (name, z, why) in [
            (
                "slip",
                zip_of(&[("SKILL.md", b"x"), ("../x", b"evil")]),
                "..",
            ),
            (
                "abs",
                zip_of(&[("SKILL.md", b"x"), ("/etc/x", b"evil")]),
                "/etc/x",
            ),
            ("none", zip_of(&[("readme.txt", b"x")]), "SKILL.md"),
            (
                "clash",
                zip_of(&[("SKILL.md", b"x"), ("a", b"file"), ("a/b", b"under a file")]),
                "clashes",
            ),
            (
                "case",
                zip_of(&[("SKILL.md", b"x"), ("Notes.md", b"1"), ("notes.md", b"2")]),
                "clashes",
            ),
            (
                "long",
                zip_of(&[("SKILL.md", b"x"), (long.as_str(), b"1")]),
                "255 bytes",
            ),
        ] {
            match install(&dir, &format!("{name}.zip"), &z) {
                Err(SkillError::Invalid(m)) => assert!(m.contains(why), "{name}: {m}"),
                other => panic!("{name}: {other:?}"),
            }
        }
        assert!(install(&dir, "x.tar", b"zzz").is_err());
        assert!(install(&dir, "x.zip", b"not a zip").is_err());
        let left: Vec<_> = std::fs::read_dir(&dir)
            .map(|r| r.flatten().collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{left:?}");
        assert!(!d.path().join("x").exists() && !d.path().join("etc").exists());
    }
}
