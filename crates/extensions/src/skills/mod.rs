//! Skills: `{vault}/.skills/NAME.md`, or a folder `{vault}/.skills/NAME/` holding
//! `SKILL.md` (or `skill.md`, `index.md`, `NAME.md`) and its files; frontmatter `name`,
//! `description`, `version`, `allowed-tools`. The same layout in an approved module's
//! `skills/`. They reach the CLI as a generated plugin ([`plugin`]); `.skills/` is
//! protected, so it changes only through these functions ([`upload`] for archives).

pub mod plugin;
pub mod upload;

use std::path::{Path, PathBuf};

use parachute_core::vault::frontmatter;
use serde::Serialize;

/// Most bytes of a skill file that are read.
pub const MAX_SKILL_BYTES: u64 = 1024 * 1024;

/// Why a skill operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SkillError {
    /// No such skill.
    #[error("Skill '{0}' not found")]
    NotFound(String),
    /// A skill of that name exists.
    #[error("Skill '{0}' already exists")]
    Exists(String),
    /// The input is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// Reading or writing failed.
    #[error("{0}")]
    Io(#[source] parachute_core::util::disk_full::ErrorSource),
}

/// A skill as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct Skill {
    /// Its name: frontmatter `name`, else the file or folder name.
    pub name: String,
    /// Its folder under `.skills/`, for a folder skill.
    pub directory: Option<String>,
    /// Frontmatter `description`.
    pub description: Option<String>,
    /// The skill file's text.
    pub content: String,
    /// The skill file's size in bytes.
    pub size: u64,
    /// When the skill file last changed (RFC 3339).
    pub modified: Option<String>,
    /// The entry under the skills folder (`tidy.md` or `tidy/`), where it is read from.
    #[serde(skip)]
    pub source: PathBuf,
}

/// Whether `name` may name a new skill: letters, digits, `-`, `_` and spaces, 1–64.
pub fn valid_name(name: &str) -> bool {
    let t = name.trim();
    !t.is_empty()
        && t.len() <= 64
        && t.chars().any(|c| c.is_ascii_alphanumeric())
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ' '))
}

/// The plugin folder name of a skill: lowercase, `-` for anything else.
pub fn kebab(name: &str) -> String {
    parachute_core::workspaces::slugify(name)
}

/// The file that defines the folder skill at `dir`.
fn skill_file(dir: &Path) -> Option<PathBuf> {
    let stem = dir.file_name()?.to_str()?.to_string();
    ["SKILL.md", "skill.md", "index.md", &format!("{stem}.md")]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file()))
}

fn read(entry: &Path) -> Option<Skill> {
    let meta = std::fs::symlink_metadata(entry).ok()?;
    let (file, directory) = if meta.is_dir() {
        (
            skill_file(entry)?,
            entry.file_name()?.to_str().map(str::to_string),
        )
    } else if meta.is_file() && entry.extension().is_some_and(|e| e == "md") {
        (entry.to_path_buf(), None)
    } else {
        return None;
    };
    let fmeta = std::fs::symlink_metadata(&file).ok()?;
    if fmeta.len() > MAX_SKILL_BYTES {
        return None;
    }
    let content = std::fs::read_to_string(&file).ok()?;
    let (front, _) = frontmatter::parse(&content);
    let stem = if directory.is_some() {
        entry.file_name()?.to_str()?.to_string()
    } else {
        entry.file_stem()?.to_str()?.to_string()
    };
    let name = front
        .get("name")
        .and_then(|v| v.as_str())
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .unwrap_or(stem);
    Some(Skill {
        name,
        directory,
        description: front
            .get("description")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        size: fmeta.len(),
        modified: fmeta
            .modified()
            .ok()
            .map(|t| chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339()),
        content,
        source: entry.to_path_buf(),
    })
}

/// The skills in the folder `dir` (missing: none), sorted by name; symlinks are
/// never followed.
pub fn list(dir: &Path) -> Vec<Skill> {
    // A skills folder that is a symlink (synced in, say) could lead out of the vault.
    if check_root(dir).is_err() {
        return Vec::new();
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<Skill> = entries
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|e| read(&e.path()))
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The skill named `name` (by its name, or its file or folder name).
pub fn get(dir: &Path, name: &str) -> Option<Skill> {
    list(dir).into_iter().find(|s| {
        s.name == name
            || s.directory.as_deref() == Some(name)
            || s.source.file_stem().and_then(|f| f.to_str()) == Some(name)
    })
}

/// Refuses a skills folder that is a symlink (it could lead out of the vault).
pub fn check_root(dir: &Path) -> Result<(), SkillError> {
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() || !m.is_dir() => {
            Err(SkillError::Invalid(".skills is not a folder".into()))
        }
        _ => Ok(()),
    }
}

/// Writes a new single-file skill `.skills/{name}.md` with `name`/`description`
/// frontmatter; refuses if one of that name exists.
pub fn create(
    dir: &Path,
    name: &str,
    description: Option<&str>,
    content: &str,
) -> Result<Skill, SkillError> {
    if !valid_name(name) {
        return Err(SkillError::Invalid(
            "A skill name is 1–64 letters, digits, '-', '_' or spaces".into(),
        ));
    }
    if content.len() as u64 > MAX_SKILL_BYTES {
        return Err(SkillError::Invalid("A skill is at most 1 MB".into()));
    }
    check_root(dir)?;
    let name = name.trim();
    let file_stem = kebab(name);
    if get(dir, name).is_some() || get(dir, &file_stem).is_some() {
        return Err(SkillError::Exists(name.to_string()));
    }
    let mut front = serde_json::Map::new();
    front.insert("name".into(), name.into());
    if let Some(d) = description.filter(|d| !d.trim().is_empty()) {
        front.insert("description".into(), d.trim().into());
    }
    let yaml = serde_saphyr::to_string(&serde_json::Value::Object(front))
        .map_err(|e| SkillError::Io(e.into()))?;
    let body = frontmatter::split(content).1;
    let text = format!(
        "---\n{}---\n\n{}\n",
        yaml.trim_end().to_string() + "\n",
        body.trim()
    );
    std::fs::create_dir_all(dir).map_err(|e| SkillError::Io(e.into()))?;
    let path = dir.join(format!("{file_stem}.md"));
    if path.exists() {
        return Err(SkillError::Exists(name.to_string()));
    }
    parachute_core::util::fs::write_atomic(&path, text.as_bytes(), None)
        .map_err(|e| SkillError::Io(e.into()))?;
    read(&path).ok_or_else(|| SkillError::Io("the skill was written but cannot be read".into()))
}

/// Removes the skill `name` (its file, or its whole folder).
pub fn delete(dir: &Path, name: &str) -> Result<(), SkillError> {
    check_root(dir)?;
    let skill = get(dir, name).ok_or_else(|| SkillError::NotFound(name.to_string()))?;
    let r = if skill.directory.is_some() {
        std::fs::remove_dir_all(&skill.source)
    } else {
        std::fs::remove_file(&skill.source)
    };
    r.map_err(|e| SkillError::Io(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_files_and_folders_and_creates_and_deletes() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join(".skills");
        std::fs::create_dir_all(dir.join("deep-dive")).unwrap();
        std::fs::write(
            dir.join("deep-dive/SKILL.md"),
            "---\nname: Deep Dive\ndescription: Go deep\n---\nSteps",
        )
        .unwrap();
        std::fs::write(dir.join("notes.txt"), "not a skill").unwrap();
        std::fs::create_dir_all(dir.join("empty")).unwrap();
        let s = create(&dir, "tidy notes", Some("Tidy a note"), "Tidy it.").unwrap();
        assert_eq!(s.name, "tidy notes");
        assert!(dir.join("tidy-notes.md").is_file());
        assert!(matches!(
            create(&dir, "tidy notes", None, "x"),
            Err(SkillError::Exists(_))
        ));
        assert!(matches!(
            create(&dir, "../x", None, "x"),
            Err(SkillError::Invalid(_))
        ));
        let names: Vec<_> = list(&dir).into_iter().map(|s| s.name).collect();
        assert_eq!(names, vec!["Deep Dive", "tidy notes"]);
        let deep = get(&dir, "deep-dive").unwrap();
        assert_eq!(deep.directory.as_deref(), Some("deep-dive"));
        assert_eq!(deep.description.as_deref(), Some("Go deep"));
        delete(&dir, "Deep Dive").unwrap();
        assert!(!dir.join("deep-dive").exists());
        assert!(matches!(
            delete(&dir, "ghost"),
            Err(SkillError::NotFound(_))
        ));
    }
}
