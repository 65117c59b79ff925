//! Where the CLI keeps a session's transcript: `$CLAUDE_CONFIG_DIR/projects/<slug>/<id>.jsonl`.
//! The slug encoding is the CLI's own business, so lookups scan the project folders.

use std::path::{Path, PathBuf};

/// The transcript file of `session_id`, if the CLI has one.
pub fn find(config_dir: &Path, session_id: &str) -> Option<PathBuf> {
    // A session id is a file name: refuse anything that could walk the tree.
    if session_id.is_empty()
        || !session_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return None;
    }
    let file = format!("{session_id}.jsonl");
    let projects = std::fs::read_dir(config_dir.join("projects")).ok()?;
    projects
        .flatten()
        .map(|e| e.path().join(&file))
        .find(|p| p.is_file())
}
