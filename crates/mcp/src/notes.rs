//! Reading the vault: a note by path (through the vault gate: nothing outside the vault,
//! nothing protected) and the Brain's entities.

use serde_json::{json, Value};

use crate::server::{ReadNote, SearchBrain, ToolOutcome};
use crate::sessions::clamp;
use crate::Vault;

/// Largest note read whole.
const MAX_NOTE_BYTES: u64 = 1024 * 1024;

pub(crate) async fn read(v: &Vault, p: ReadNote) -> ToolOutcome {
    let gate = v.state.settings.vault_gate();
    tokio::task::spawn_blocking(move || {
        let path = gate
            .resolve(&p.path)
            .map_err(|e| format!("Cannot read '{}': {e}", p.path))?;
        let meta = std::fs::metadata(&path).map_err(|_| format!("No note at '{}'", p.path))?;
        if meta.is_dir() {
            return Err(format!("'{}' is a folder, not a note", p.path));
        }
        if meta.len() > MAX_NOTE_BYTES {
            return Err(format!(
                "'{}' is larger than {} KB",
                p.path,
                MAX_NOTE_BYTES / 1024
            ));
        }
        let bytes = std::fs::read(&path).map_err(|_| format!("Cannot read '{}'", p.path))?;
        let content =
            String::from_utf8(bytes).map_err(|_| format!("'{}' is not a text file", p.path))?;
        Ok(json!({"path": p.path, "size": meta.len(), "content": content}))
    })
    .await
    .map_err(|_| "The read stopped".to_string())?
}

pub(crate) async fn search_brain(v: &Vault, p: SearchBrain) -> ToolOutcome {
    if !v.ext.module_enabled("brain").await {
        return Err("The brain module is not enabled (approve it in Parachute)".into());
    }
    let hits = v
        .ext
        .brain
        .search(&p.query, clamp(p.limit))
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "MCP brain search failed");
            "The Brain could not be searched".to_string()
        })?;
    Ok(Value::Array(
        hits.into_iter()
            .map(|h| json!({"para_id": h.para_id, "name": h.name, "tags": h.tags, "snippet": h.snippet}))
            .collect(),
    ))
}
