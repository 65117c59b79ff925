//! What a turn adds to the prompt: context folders (their
//! `AGENTS.md` or `CLAUDE.md`) and Markdown files, a custom agent file (`agentPath`),
//! prior conversation, `initialContext`, attachments saved into the vault, and the
//! `CLAUDE.md` instructions on the way from the vault to the working directory (the CLI
//! loads no project files itself: vault content is data, never configuration). Every
//! path goes through the vault gate, so a link to a protected file reads as nothing.

use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::Value;

use crate::vault::VaultGate;

const FOLDER_BUDGET_TOKENS: usize = 40_000;
const FILE_BUDGET_TOKENS: usize = 10_000;

/// Extensions refused as attachments.
pub const BLOCKED_EXTENSIONS: &[&str] = &[
    "exe", "dll", "so", "dylib", "bat", "cmd", "ps1", "vbs", "app", "dmg", "pkg", "msi", "jar",
    "war", "ear", "scr", "com", "pif",
];

/// The appended system prompt and what went into it.
#[derive(Debug, Default)]
pub struct BuiltContext {
    /// The text to append to the system prompt; `None` when there is nothing to add.
    pub append: Option<String>,
    /// Vault-relative paths of the context files loaded, in order.
    pub files: Vec<String>,
    /// Estimated tokens of the loaded files (4 characters a token).
    pub tokens: usize,
    /// Whether a file was cut or left out to stay within its token budget.
    pub truncated: bool,
}

fn rel(vault: &Path, p: &Path) -> String {
    let root = vault.canonicalize().unwrap_or_else(|_| vault.to_path_buf());
    p.strip_prefix(&root)
        .map(|r| r.display().to_string())
        .unwrap_or_else(|_| p.display().to_string())
}

/// Loads `(relative path, text)` pairs into a "Project Knowledge" section within a
/// token budget (4 characters per token).
fn section(
    items: Vec<(String, String)>,
    budget_tokens: usize,
    out: &mut BuiltContext,
) -> Option<String> {
    if items.is_empty() {
        return None;
    }
    let mut budget = budget_tokens * 4;
    let mut parts = Vec::new();
    let mut used = 0;
    for (path, text) in items {
        if budget == 0 {
            out.truncated = true;
            break;
        }
        let body = if text.len() > budget {
            out.truncated = true;
            let mut cut = budget;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            format!("{}\n[...truncated]", &text[..cut])
        } else {
            text
        };
        budget = budget.saturating_sub(body.len());
        used += body.len();
        parts.push(format!("## {path}\n\n{body}\n\n---\n"));
        out.files.push(path);
    }
    let tokens = used / 4;
    out.tokens += tokens;
    Some(format!(
        "## Project Knowledge\n\nThe following context has been loaded for your reference ({} files, ~{} tokens):\n\n{}",
        parts.len(),
        tokens,
        parts.join("\n")
    ))
}

/// Builds the text appended to the system prompt. An `Err` names the bad path.
pub fn build(
    gate: &VaultGate,
    contexts: &[String],
    prior_conversation: Option<&str>,
) -> Result<BuiltContext, String> {
    let vault = gate.root();
    let mut out = BuiltContext::default();
    let mut folders = Vec::new();
    let mut files = Vec::new();
    for c in contexts {
        let resolved = gate
            .resolve(c)
            .map_err(|e| format!("Invalid context '{c}': {e}"))?;
        if c.ends_with(".md") {
            let text = std::fs::read_to_string(&resolved)
                .map_err(|_| format!("Context file not found: {c}"))?;
            files.push((rel(vault, &resolved), text));
        } else {
            if !resolved.is_dir() {
                return Err(format!("Context folder not found: {c}"));
            }
            // The file itself must not be a link out of the vault or to a protected file.
            if let Some((_, f)) = crate::vault::context_folders::context_file(gate, &resolved) {
                let text = std::fs::read_to_string(&f).unwrap_or_default();
                folders.push((rel(vault, &f), text));
            }
        }
    }
    folders.sort_by_key(|(p, _)| p.matches('/').count());
    let mut sections = Vec::new();
    if let Some(s) = section(folders, FOLDER_BUDGET_TOKENS, &mut out) {
        sections.push(s);
    }
    if let Some(s) = section(files, FILE_BUDGET_TOKENS, &mut out) {
        sections.push(s);
    }
    if let Some(p) = prior_conversation.filter(|p| !p.trim().is_empty()) {
        sections.push(format!(
            "## Prior Conversation (IMPORTANT)\n\n<prior_conversation>\n{p}\n</prior_conversation>"
        ));
    }
    if !sections.is_empty() {
        out.append = Some(sections.join("\n\n"));
    }
    Ok(out)
}

/// What a prompt is built from (chat turns and `/api/prompt/preview` alike).
#[derive(Debug, Default)]
pub struct PromptInputs {
    /// `agentPath`: a vault-relative agent file (`.md`); empty or `vault-agent` means none.
    pub agent_path: Option<String>,
    /// A system prompt replacing Claude Code's (unless the agent file has a body).
    pub custom_prompt: Option<String>,
    /// Vault paths to load: folders (their `AGENTS.md`/`CLAUDE.md`) and `.md` files.
    pub contexts: Vec<String>,
    /// Earlier conversation to include in the prompt; takes precedence over `seed_history_of`.
    pub prior_conversation: Option<String>,
    /// Seed the prior conversation from this session's imported history.
    pub seed_history_of: Option<String>,
}

/// The prompt a turn will use.
#[derive(Debug, Default)]
pub struct Prepared {
    /// The agent file named by `agentPath`, if any.
    pub agent: Option<AgentFile>,
    /// Replaces the Claude Code system prompt (custom prompt or agent body).
    pub system_prompt: Option<String>,
    /// The appended context and prior conversation, and what went into them.
    pub built: BuiltContext,
    /// `AGENTS.md`/`CLAUDE.md` in the working directory, vault-relative.
    pub working_directory_claude_md: Option<String>,
    /// [`vault_instructions`] for the working directory.
    pub instructions: Option<String>,
}

impl Prepared {
    /// What is appended to the system prompt: the owner's CLAUDE.md instructions first,
    /// then what this turn adds.
    pub fn append(&self) -> Option<String> {
        match (self.instructions.clone(), self.built.append.clone()) {
            (Some(i), Some(a)) => Some(format!("{i}\n\n{a}")),
            (i, a) => i.or(a),
        }
    }

    /// Where the system prompt comes from: `agent`, `custom` or `claude_code_preset`.
    pub fn source(&self) -> &'static str {
        if self.agent.is_some() {
            "agent"
        } else if self.system_prompt.is_some() {
            "custom"
        } else {
            "claude_code_preset"
        }
    }
    /// The agent file's name, else `vault-agent`.
    pub fn agent_name(&self) -> &str {
        self.agent
            .as_ref()
            .map(|a| a.name.as_str())
            .unwrap_or("vault-agent")
    }
    /// Estimated tokens of the appended context text (4 bytes a token).
    pub fn total_tokens(&self) -> usize {
        self.built.append.as_ref().map(|a| a.len() / 4).unwrap_or(0)
    }
}

/// Why a prompt could not be prepared; the message is shown to the user.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The agent file named by `agentPath` does not exist.
    #[error("{0}")]
    AgentNotFound(String),
    /// A bad agent or context path, or a missing context file or folder.
    #[error("{0}")]
    Invalid(String),
}

/// Builds the prompt for `cwd` from `inputs`; the one implementation behind chat turns
/// and the prompt preview.
pub fn prepare(
    gate: &VaultGate,
    cwd: &Path,
    inputs: PromptInputs,
) -> Result<Prepared, PrepareError> {
    let vault = gate.root();
    let agent = match inputs
        .agent_path
        .as_deref()
        .filter(|a| !a.is_empty() && *a != "vault-agent")
    {
        Some(a) => Some(load_agent(gate, a).map_err(|m| {
            if m.starts_with("Agent file not found") {
                PrepareError::AgentNotFound(m)
            } else {
                PrepareError::Invalid(m)
            }
        })?),
        None => None,
    };
    let custom = inputs.custom_prompt.filter(|p| !p.trim().is_empty());
    let system_prompt = match &agent {
        Some(a) if !a.prompt.is_empty() => Some(a.prompt.clone()),
        _ => custom,
    };
    let prior = inputs.prior_conversation.or_else(|| {
        inputs
            .seed_history_of
            .and_then(|sid| imported_history(gate, &sid))
    });
    let built = build(gate, &inputs.contexts, prior.as_deref()).map_err(PrepareError::Invalid)?;
    let working_directory_claude_md =
        crate::vault::context_folders::context_file(gate, cwd).map(|(_, p)| rel(vault, &p));
    Ok(Prepared {
        agent,
        system_prompt,
        built,
        working_directory_claude_md,
        instructions: vault_instructions(gate, cwd),
    })
}

/// The `CLAUDE.md` files from the vault root down to `cwd`, outermost first, as the
/// section the turn appends to the system prompt (`None` when there are none).
pub fn vault_instructions(gate: &VaultGate, cwd: &Path) -> Option<String> {
    let root = gate.root().canonicalize().ok()?;
    let rel_cwd = cwd.strip_prefix(&root).ok()?;
    let mut dirs: Vec<PathBuf> = vec![root.clone()];
    let mut here = root.clone();
    for c in rel_cwd.components() {
        here.push(c);
        dirs.push(here.clone());
    }
    let parts: Vec<String> = dirs
        .iter()
        .filter_map(|d| {
            let p = gate.resolve(&d.join("CLAUDE.md").to_string_lossy()).ok()?;
            let text = std::fs::read_to_string(&p).ok()?;
            (!text.trim().is_empty())
                .then(|| format!("## {}\n\n{}\n", rel(gate.root(), &p), text.trim()))
        })
        .collect();
    (!parts.is_empty()).then(|| {
        format!(
            "## Vault Instructions\n\nThe owner's instructions from CLAUDE.md files of the vault (outermost first):\n\n{}",
            parts.join("\n")
        )
    })
}

/// History kept for an imported session (`Chat/sessions/imported/{claude,chatgpt}-{id}.md`).
pub fn imported_history(gate: &VaultGate, session_id: &str) -> Option<String> {
    if !session_id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return None;
    }
    ["claude", "chatgpt"].iter().find_map(|src| {
        let rel = format!("Chat/sessions/imported/{src}-{session_id}.md");
        let p = gate.resolve(&rel).ok()?;
        std::fs::read_to_string(p)
            .ok()
            .filter(|t| !t.trim().is_empty())
    })
}

/// A custom agent file: its name, model and body (the full system prompt).
#[derive(Debug)]
pub struct AgentFile {
    /// The file's vault-relative path.
    pub path: String,
    /// The frontmatter's `name` (top level or under `agent:`), else the file stem.
    pub name: String,
    /// The frontmatter's `model`, if set.
    pub model: Option<String>,
    /// The body after the frontmatter, trimmed: the full system prompt.
    pub prompt: String,
}

/// Reads `agentPath` (vault-relative Markdown with optional frontmatter).
pub fn load_agent(gate: &VaultGate, agent_path: &str) -> Result<AgentFile, String> {
    let vault = gate.root();
    let p = gate
        .resolve(agent_path)
        .map_err(|e| format!("Invalid agentPath '{agent_path}': {e}"))?;
    if p.extension().and_then(|e| e.to_str()) != Some("md") {
        return Err(format!(
            "Invalid agentPath '{agent_path}': an agent is a .md file"
        ));
    }
    let text =
        std::fs::read_to_string(&p).map_err(|_| format!("Agent file not found: {agent_path}"))?;
    let (front, body) = crate::vault::frontmatter::parse(&text);
    let body = body.trim_start_matches('\n').to_string();
    let meta = Value::Object(front);
    let meta = meta.get("agent").cloned().unwrap_or(meta);
    let stem = p
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("agent")
        .to_string();
    Ok(AgentFile {
        path: rel(vault, &p),
        name: meta
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or(stem),
        model: meta
            .get("model")
            .and_then(Value::as_str)
            .map(str::to_string),
        prompt: body.trim().to_string(),
    })
}

/// Whether an attachment's file name has a refused extension.
pub fn blocked_attachment(file_name: &str) -> bool {
    Path::new(file_name)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| BLOCKED_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Saves attachments carrying `base64Data` under `Chat/assets/{date}/` and returns the
/// Markdown to append to the message.
pub fn save_attachments(gate: &VaultGate, attachments: &[Value]) -> String {
    let mut lines = Vec::new();
    let now = chrono::Local::now();
    for (index, a) in attachments.iter().enumerate() {
        let name = a
            .get("fileName")
            .and_then(Value::as_str)
            .unwrap_or("attachment");
        // Only the final component of the name, never a path.
        let safe: String = Path::new(name)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("attachment")
            .chars()
            .map(|c| {
                if c.is_control() || c == '/' || c == '\\' {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        let Some(data) = a.get("base64Data").and_then(Value::as_str) else {
            lines.push(format!("[{safe}]"));
            continue;
        };
        let stem: String = Path::new(&safe)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("file")
            .chars()
            .take(30)
            .collect();
        let ext = Path::new(&safe)
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| format!(".{e}"))
            .unwrap_or_else(|| ".bin".into());
        let rel_dir = format!("Chat/assets/{}", now.format("%Y-%m-%d"));
        // Index and a random tag keep same-named attachments of one second apart.
        let rel_path = format!(
            "{rel_dir}/{}_{index}{:04x}_{stem}{ext}",
            now.format("%H-%M-%S"),
            rand::random::<u16>()
        );
        let saved = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .ok()
            .and_then(|bytes| {
                let target = gate.resolve(&rel_path).ok()?;
                crate::util::fs::write_atomic(&target, &bytes, None).ok()?;
                Some((target, bytes.len()))
            });
        let Some((abs, size)) = saved else {
            lines.push(format!("[Failed to attach: {safe}]"));
            continue;
        };
        let mime = a.get("mimeType").and_then(Value::as_str).unwrap_or("");
        let line = if mime.starts_with("image/") {
            format!(
                "![{safe}]({rel_path})\n*(Absolute path for reading: {})*",
                abs.display()
            )
        } else if mime == "application/pdf" {
            format!(
                "**[{safe}]({rel_path})**\n*(Absolute path for reading: {})*",
                abs.display()
            )
        } else if mime.starts_with("text/") || mime.contains("json") || mime.contains("xml") {
            format!(
                "**[{safe}]({rel_path})** ({:.1} KB)\n*(Absolute path for reading: {})*",
                size as f64 / 1024.0,
                abs.display()
            )
        } else {
            format!("[{safe}]({rel_path})")
        };
        lines.push(line);
    }
    if lines.is_empty() {
        String::new()
    } else {
        format!("\n\n## Attachments\n\n{}", lines.join("\n\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_extensions() {
        assert!(blocked_attachment("setup.EXE"));
        assert!(blocked_attachment("x.tar.ps1"));
        assert!(!blocked_attachment("photo.jpg"));
        assert!(!blocked_attachment("README"));
    }
}
