//! The plugin that hands skills to the CLI (`--plugin-dir`): generated per session
//! under `$PARACHUTE_HOME/runtime/skills/{session}/`, never in the vault:
//! `.claude-plugin/plugin.json` and `skills/{kebab-name}/SKILL.md` (a single-file skill
//! copied as `SKILL.md`, a folder skill's files copied with it). Regenerated only when
//! the skills it was made from changed.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{kebab, Skill};

/// The plugin's name (the model sees skills as `parachute-skills:NAME`).
pub const PLUGIN_NAME: &str = "parachute-skills";
/// Most files copied from one folder skill.
const MAX_FILES_PER_SKILL: usize = 1_000;

/// A digest of what the plugin is made from: each skill's name, source, and every
/// file's path, size and modification time.
pub fn sources_digest(skills: &[Skill]) -> String {
    let mut h = Sha256::new();
    for s in skills {
        h.update(s.name.as_bytes());
        h.update([0]);
        h.update(s.source.to_string_lossy().as_bytes());
        h.update([0]);
        for (path, meta) in files_of(s) {
            h.update(path.to_string_lossy().as_bytes());
            h.update(meta.len().to_be_bytes());
            if let Ok(t) = meta.modified() {
                h.update(format!("{t:?}").as_bytes());
            }
        }
    }
    hex::encode(h.finalize())
}

fn files_of(s: &Skill) -> Vec<(PathBuf, std::fs::Metadata)> {
    let mut out = Vec::new();
    let mut stack = vec![s.source.clone()];
    while let Some(p) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&p) {
                let mut children: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
                children.sort();
                stack.extend(children.into_iter().rev());
            }
        } else if meta.is_file() {
            out.push((p, meta));
            if out.len() >= MAX_FILES_PER_SKILL {
                break;
            }
        }
    }
    out
}

/// Makes the plugin at `out` hold exactly `skills` (first of each kebab name wins);
/// nothing is rewritten when it already does. Blocking.
pub fn generate(out: &Path, skills: &[Skill]) -> std::io::Result<()> {
    let digest = sources_digest(skills);
    if std::fs::read_to_string(out.join(".digest")).is_ok_and(|d| d == digest) {
        return Ok(());
    }
    let parent = out.parent().unwrap_or(out);
    std::fs::create_dir_all(parent)?;
    let tmp = parent.join(format!(
        ".{}.tmp-{}",
        out.file_name().and_then(|n| n.to_str()).unwrap_or("plugin"),
        rand_suffix()
    ));
    let result = write_plugin(&tmp, skills, &digest).and_then(|()| {
        if out.exists() {
            std::fs::remove_dir_all(out)?;
        }
        std::fs::rename(&tmp, out)
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

fn rand_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}-{nanos}", std::process::id())
}

fn write_plugin(dir: &Path, skills: &[Skill], digest: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join(".claude-plugin"))?;
    let manifest = serde_json::json!({
        "name": PLUGIN_NAME,
        "version": "1.0.0",
        "description": "Skills from the Parachute vault and its approved modules",
    });
    std::fs::write(dir.join(".claude-plugin/plugin.json"), manifest.to_string())?;
    let mut taken = std::collections::HashSet::new();
    for s in skills {
        let name = kebab(&s.name);
        if !taken.insert(name.clone()) {
            tracing::debug!(skill = %s.name, "a skill of this name is already in the plugin");
            continue;
        }
        let target = dir.join("skills").join(&name);
        std::fs::create_dir_all(&target)?;
        if s.directory.is_some() {
            for (path, _) in files_of(s) {
                let Ok(rel) = path.strip_prefix(&s.source) else {
                    continue;
                };
                let dest = target.join(rel);
                if let Some(p) = dest.parent() {
                    std::fs::create_dir_all(p)?;
                }
                std::fs::copy(&path, &dest)?;
            }
        }
        // The CLI reads SKILL.md: the skill's text, whatever its file was called.
        std::fs::write(target.join("SKILL.md"), &s.content)?;
    }
    std::fs::write(dir.join(".digest"), digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_and_again_when_a_skill_changes() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join(".skills");
        std::fs::create_dir_all(src.join("deep/ref")).unwrap();
        std::fs::write(src.join("deep/index.md"), "---\nname: Deep Dive\n---\nGo").unwrap();
        std::fs::write(src.join("deep/ref/a.txt"), "a").unwrap();
        std::fs::write(src.join("tidy.md"), "---\nname: tidy\n---\nTidy").unwrap();
        let out = d.path().join("runtime/skills/s1");
        generate(&out, &super::super::list(&src)).unwrap();
        assert!(out.join(".claude-plugin/plugin.json").is_file());
        assert_eq!(
            std::fs::read_to_string(out.join("skills/deep-dive/SKILL.md")).unwrap(),
            "---\nname: Deep Dive\n---\nGo"
        );
        assert!(out.join("skills/deep-dive/ref/a.txt").is_file());
        assert!(out.join("skills/tidy/SKILL.md").is_file());
        let marker = out.join("skills/tidy/marker");
        std::fs::write(&marker, "").unwrap();
        generate(&out, &super::super::list(&src)).unwrap();
        assert!(marker.exists(), "unchanged sources: not rewritten");
        std::fs::remove_file(src.join("tidy.md")).unwrap();
        generate(&out, &super::super::list(&src)).unwrap();
        assert!(!out.join("skills/tidy").exists());
    }
}
