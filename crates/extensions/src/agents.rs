//! Sub-agents the main agent can hand work to (the CLI's Task tool): each
//! `{vault}/.parachute/agents/NAME.{md,yaml,yml,json}` and each approved module's
//! `agents/NAME.*`. Fields: `description` (default `Agent: NAME`), `prompt` (required;
//! the body of a `.md`), `tools` (a list or a comma-separated string), `model` (`sonnet`,
//! `opus` or `haiku`; anything else is dropped). They reach the CLI in the `agents` of
//! `initialize`, as `{NAME: {description, prompt, tools?, model?}}`.

use std::path::Path;

use parachute_core::vault::frontmatter;
use serde_json::{json, Map, Value};

/// Most bytes of an agent file that are read.
const MAX_AGENT_BYTES: u64 = 256 * 1024;

/// One sub-agent: its name and its definition in the CLI's format.
#[derive(Debug, Clone, PartialEq)]
pub struct SubAgent {
    /// The file's stem.
    pub name: String,
    /// `{description, prompt, tools?, model?}`.
    pub definition: Value,
}

/// Reads one agent file; `None` if it is not one or has no prompt.
pub fn read(path: &Path) -> Option<SubAgent> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.is_file() || meta.len() > MAX_AGENT_BYTES {
        return None;
    }
    let name = path.file_stem()?.to_str()?.to_string();
    if name.starts_with('.') || name.is_empty() {
        return None;
    }
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    let text = std::fs::read_to_string(path).ok()?;
    let fields: Map<String, Value> = match ext.as_str() {
        "md" => {
            let (mut front, body) = frontmatter::parse(&text);
            if !body.trim().is_empty() {
                front.insert("prompt".into(), body.trim().into());
            }
            front
        }
        "yaml" | "yml" => match serde_saphyr::from_str::<Value>(&text).ok()? {
            Value::Object(m) => m,
            _ => return None,
        },
        "json" => match serde_json::from_str::<Value>(&text).ok()? {
            Value::Object(m) => m,
            _ => return None,
        },
        _ => return None,
    };
    let prompt = fields.get("prompt")?.as_str()?.trim().to_string();
    if prompt.is_empty() {
        return None;
    }
    let description = fields
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("Agent: {name}"));
    let mut def = json!({"description": description, "prompt": prompt});
    let tools: Vec<String> = match fields.get("tools") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect(),
        _ => Vec::new(),
    };
    if !tools.is_empty() {
        def["tools"] = json!(tools);
    }
    if let Some(m) = fields.get("model").and_then(Value::as_str) {
        if matches!(m, "sonnet" | "opus" | "haiku") {
            def["model"] = json!(m);
        }
    }
    Some(SubAgent {
        name,
        definition: def,
    })
}

/// The agents in the folder `dir` (missing: none), sorted by name.
pub fn list(dir: &Path) -> Vec<SubAgent> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<SubAgent> = entries.flatten().filter_map(|e| read(&e.path())).collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_format() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        std::fs::write(
            p.join("reviewer.md"),
            "---\ndescription: Reviews\ntools: Read, Grep\nmodel: gpt-9\n---\nReview carefully.\n",
        )
        .unwrap();
        std::fs::write(
            p.join("writer.yaml"),
            "prompt: Write well.\ntools: [Write]\nmodel: haiku\n",
        )
        .unwrap();
        std::fs::write(p.join("nothing.json"), "{\"description\": \"no prompt\"}").unwrap();
        std::fs::write(p.join("notes.txt"), "prompt: x").unwrap();
        let all = list(p);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].name, "reviewer");
        assert_eq!(
            all[0].definition,
            json!({"description": "Reviews", "prompt": "Review carefully.", "tools": ["Read", "Grep"]})
        );
        assert_eq!(
            all[1].definition,
            json!({"description": "Agent: writer", "prompt": "Write well.", "tools": ["Write"], "model": "haiku"})
        );
    }
}
