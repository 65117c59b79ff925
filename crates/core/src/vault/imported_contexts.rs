//! Context files an import leaves for the owner to review (`GET /api/import/contexts`): Markdown files in `{vault}/Chat/contexts/`. The Parachute-native
//! layout has `## Facts`, `## Current Focus` and `## History` sections of bullet items,
//! which are counted; other Markdown files are listed as not native.

use serde::Serialize;
use utoipa::ToSchema;

const DIR: &str = "Chat/contexts";

fn section_of(heading: &str) -> Option<&'static str> {
    let h = heading.trim_start_matches('#').trim().to_ascii_lowercase();
    match h.as_str() {
        "facts" => Some("facts"),
        "current focus" | "focus" => Some("focus"),
        "history" => Some("history"),
        _ => None,
    }
}

/// Counts `(facts, focus, history, native, description)` of one file.
fn summarize(text: &str) -> (usize, usize, usize, bool, Option<String>) {
    let (mut facts, mut focus, mut history) = (0, 0, 0);
    let mut native = false;
    let mut current: Option<&str> = None;
    let mut description = None;
    let (front, body) = crate::vault::frontmatter::split(text);
    if let Some(front) = front {
        description = front
            .lines()
            .find_map(|l| l.strip_prefix("description:"))
            .map(|d| d.trim().trim_matches('"').to_string());
    }
    for line in body.lines() {
        let t = line.trim();
        if t.starts_with("## ") {
            current = section_of(t);
            native |= current.is_some();
            continue;
        }
        if t.starts_with('#') {
            current = None;
            continue;
        }
        if description.is_none() && !t.is_empty() && !t.starts_with('-') && !t.starts_with('*') {
            description = Some(t.chars().take(200).collect());
        }
        if t.starts_with("- ") || t.starts_with("* ") {
            match current {
                Some("facts") => facts += 1,
                Some("focus") => focus += 1,
                Some("history") => history += 1,
                _ => {}
            }
        }
    }
    (facts, focus, history, native, description)
}

/// A context file left by an import.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ImportedContextFile {
    /// Vault-relative.
    pub path: String,
    /// The file name without `.md`.
    pub name: String,
    /// From the frontmatter's `description`, else the first line of text.
    pub description: Option<String>,
    /// Bullet items under `## Facts`.
    pub facts_count: usize,
    /// Bullet items under `## Current Focus` (or `## Focus`).
    pub focus_count: usize,
    /// Bullet items under `## History`.
    pub history_count: usize,
    /// Whether it has `## Facts`, `## Current Focus` or `## History` sections.
    pub is_native_format: bool,
    /// UTC ISO 8601; `null` when the time cannot be read.
    pub last_modified: Option<String>,
}

/// The context files left by imports, with their totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct ImportedContexts {
    /// By file name.
    pub files: Vec<ImportedContextFile>,
    /// The sum of the files' `facts_count`.
    pub total_facts: usize,
    /// The sum of the files' `history_count`.
    pub total_history_entries: usize,
}

/// The listing of `GET /api/import/contexts`.
pub fn list(gate: &super::VaultGate) -> ImportedContexts {
    let Ok(dir) = gate.resolve(DIR) else {
        return ImportedContexts::default();
    };
    let mut files = Vec::new();
    let (mut total_facts, mut total_history) = (0, 0);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .map(|rd| rd.flatten().collect())
        .unwrap_or_default();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        if p.extension().and_then(|x| x.to_str()) != Some("md")
            || !e.file_type().map(|t| t.is_file()).unwrap_or(false)
        {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&p) else {
            continue;
        };
        let (facts, focus, history, native, description) = summarize(&text);
        total_facts += facts;
        total_history += history;
        let modified = e
            .metadata()
            .and_then(|m| m.modified())
            .map(|t| {
                chrono::DateTime::<chrono::Utc>::from(t)
                    .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                    .to_string()
            })
            .ok();
        files.push(ImportedContextFile {
            path: format!("{DIR}/{}", e.file_name().to_string_lossy()),
            name: p
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("")
                .to_string(),
            description,
            facts_count: facts,
            focus_count: focus,
            history_count: history,
            is_native_format: native,
            last_modified: modified,
        });
    }
    ImportedContexts {
        files,
        total_facts,
        total_history_entries: total_history,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_native_sections() {
        let (f, fo, h, native, d) =
            super::summarize("# Me\nA short profile.\n\n## Facts\n- a\n- b\n\n## Current Focus\n- c\n\n## History\n- d\n");
        assert_eq!((f, fo, h, native), (2, 1, 1, true));
        assert_eq!(d.as_deref(), Some("A short profile."));
        assert!(!super::summarize("just text").3);
    }
}
