//! The module folders' prompts: `{vault}/{Chat,Daily,Brain,Build}/CLAUDE.md`, which the
//! CLI reads when a session works in that folder. The default of each is the bundled
//! module's `CLAUDE.md`.

use std::path::Path;

/// The folders that have a module prompt, by the lowercase name the routes use.
const FOLDERS: [(&str, &str); 4] = [
    ("chat", "Chat"),
    ("daily", "Daily"),
    ("brain", "Brain"),
    ("build", "Build"),
];

const BUILD_DEFAULT: &str =
    "# Build\n\nThis folder holds projects being built. Work inside the project's own folder, \
keep changes small and explain each one.\n";

/// The vault folder of module `name` (case-insensitive), e.g. `Chat`.
pub fn folder(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    FOLDERS.iter().find(|(n, _)| *n == lower).map(|(_, f)| *f)
}

/// The default prompt of module `name`.
pub fn default_prompt(name: &str) -> &'static str {
    let lower = name.to_ascii_lowercase();
    crate::modules::bundled::default_prompt(&lower).unwrap_or(BUILD_DEFAULT)
}

/// `(file count, total bytes)` of the folder `dir`, not following symlinks; bounded.
pub fn folder_stats(dir: &Path) -> (u64, u64) {
    let (mut files, mut bytes) = (0u64, 0u64);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(kind) = e.file_type() else { continue };
            if kind.is_dir() {
                stack.push(e.path());
            } else if kind.is_file() {
                files += 1;
                bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
            }
            if files >= 1_000_000 {
                return (files, bytes);
            }
        }
    }
    (files, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_and_defaults() {
        assert_eq!(folder("CHAT"), Some("Chat"));
        assert_eq!(folder("nope"), None);
        assert!(default_prompt("daily").starts_with("# Daily"));
        assert!(default_prompt("build").starts_with("# Build"));
    }
}
