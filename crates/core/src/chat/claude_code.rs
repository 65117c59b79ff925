//! Claude Code import: the owner's own Claude Code sessions, read from
//! its config dir (`claude_code_dir`, default `~/.claude`), listed, shown, and adopted
//! as Parachute sessions that resume — by copying the transcript into the server's own
//! `CLAUDE_CONFIG_DIR` (the owner's files are never written).

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::events::title_from_message;
use super::transcript::{self, MessageRole};

/// A project folder of Claude Code.
pub struct Project {
    /// The folder name under `projects/` (the working directory with `/` encoded as `-`).
    pub encoded_name: String,
    /// Path of the project folder; its `*.jsonl` files are its sessions.
    pub dir: PathBuf,
    /// The working directory its sessions ran in (from the transcripts, else decoded).
    pub path: String,
}

/// Session ids and encoded names are file names: nothing that could walk the tree.
pub fn safe_name(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

fn first_cwd(file: &Path) -> Option<String> {
    use std::io::BufRead;
    let f = std::fs::File::open(file).ok()?;
    std::io::BufReader::new(f)
        .lines()
        .take(200)
        .map_while(Result::ok)
        .find_map(|l| {
            serde_json::from_str::<Value>(&l)
                .ok()?
                .get("cwd")?
                .as_str()
                .map(str::to_string)
        })
}

fn sessions_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("jsonl") && p.is_file())
        .collect()
}

/// Every project under `{claude_code_dir}/projects`, by path.
pub fn projects(root: &Path) -> Vec<Project> {
    let Ok(rd) = std::fs::read_dir(root.join("projects")) else {
        return Vec::new();
    };
    let mut out: Vec<Project> = rd
        .flatten()
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .filter_map(|e| {
            let encoded_name = e.file_name().to_str()?.to_string();
            let dir = e.path();
            let path = sessions_in(&dir)
                .iter()
                .find_map(|f| first_cwd(f))
                .unwrap_or_else(|| encoded_name.replace('-', "/"));
            Some(Project {
                encoded_name,
                dir,
                path,
            })
        })
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Summary of a Claude Code session (the contract's `Info`).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClaudeCodeSession {
    /// The session id (the transcript's file name).
    pub session_id: String,
    /// From the first user message; `null` when there is none.
    pub title: Option<String>,
    /// The first user message; `null` when there is none.
    pub first_message: Option<String>,
    /// Number of user and assistant messages.
    pub message_count: usize,
    /// The last model the transcript names.
    pub model: Option<String>,
    /// The working directory the session ran in.
    pub cwd: String,
    /// The project's working directory.
    pub project_path: String,
    /// The last part of the project's path.
    pub project_display_name: String,
    /// The transcript's first timestamp, as the CLI wrote it.
    pub created_at: Option<String>,
    /// The transcript's last timestamp, as the CLI wrote it.
    pub last_timestamp: Option<String>,
}

/// A message of a Claude Code session.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ClaudeCodeMessage {
    /// `user` or `assistant`.
    #[serde(rename = "type")]
    pub kind: MessageRole,
    /// Its text (an assistant message's text blocks joined by newlines).
    pub content: String,
    /// As the transcript gives it (an ISO text in transcripts the CLI wrote).
    pub timestamp: Value,
}

/// A Claude Code session with its messages.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClaudeCodeSessionDetail {
    /// The session id (the transcript's file name).
    pub session_id: String,
    /// From the first user message; `null` when there is none.
    pub title: Option<String>,
    /// The working directory the session ran in.
    pub cwd: String,
    /// The last model the transcript names.
    pub model: Option<String>,
    /// The transcript's first timestamp, as the CLI wrote it.
    pub created_at: Option<String>,
    /// The conversation, oldest first.
    pub messages: Vec<ClaudeCodeMessage>,
}

/// Summary of one session file (contract's `Info`).
pub fn info(project: &Project, file: &Path) -> Option<ClaudeCodeSession> {
    let id = file.file_stem()?.to_str()?.to_string();
    let events = transcript::read_events(file).ok()?;
    let messages = transcript::messages(&events);
    let first = messages
        .iter()
        .find(|m| m.role == MessageRole::User)
        .map(|m| m.content.clone());
    let model = events
        .iter()
        .filter_map(|e| e.pointer("/message/model").and_then(Value::as_str))
        .rfind(|m| *m != "<synthetic>")
        .map(str::to_string);
    let times: Vec<&str> = events
        .iter()
        .filter_map(|e| e.get("timestamp").and_then(Value::as_str))
        .collect();
    let cwd = events
        .iter()
        .find_map(|e| e.get("cwd").and_then(Value::as_str))
        .unwrap_or(&project.path)
        .to_string();
    let display = Path::new(&project.path)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(&project.path)
        .to_string();
    Some(ClaudeCodeSession {
        session_id: id,
        title: first.as_deref().and_then(title_from_message),
        first_message: first,
        message_count: messages.len(),
        model,
        cwd,
        project_path: project.path.clone(),
        project_display_name: display,
        created_at: times.first().map(|t| t.to_string()),
        last_timestamp: times.last().map(|t| t.to_string()),
    })
}

/// Sessions of one project (or all), newest first.
pub fn sessions(root: &Path, project_path: Option<&str>, limit: usize) -> Vec<ClaudeCodeSession> {
    let mut out: Vec<ClaudeCodeSession> = projects(root)
        .iter()
        .filter(|p| project_path.is_none_or(|pp| p.path == pp || p.encoded_name == pp))
        .flat_map(|p| {
            sessions_in(&p.dir)
                .into_iter()
                .filter_map(move |f| info(p, &f))
        })
        .collect();
    out.sort_by(|a, b| b.last_timestamp.cmp(&a.last_timestamp));
    out.truncate(limit);
    out
}

/// The transcript file of a session, searched in one project or all.
pub fn find_session(
    root: &Path,
    session_id: &str,
    project_path: Option<&str>,
) -> Option<(Project, PathBuf)> {
    if !safe_name(session_id) {
        return None;
    }
    projects(root)
        .into_iter()
        .filter(|p| project_path.is_none_or(|pp| p.path == pp || p.encoded_name == pp))
        .find_map(|p| {
            let f = p.dir.join(format!("{session_id}.jsonl"));
            f.is_file().then_some((p, f))
        })
}

/// `GET /api/claude-code/sessions/{id}`.
pub fn detail(project: &Project, file: &Path) -> Option<ClaudeCodeSessionDetail> {
    let i = info(project, file)?;
    let events = transcript::read_events(file).ok()?;
    let messages: Vec<ClaudeCodeMessage> = transcript::messages(&events)
        .into_iter()
        .map(|m| ClaudeCodeMessage {
            kind: m.role,
            content: m.content,
            timestamp: m.timestamp,
        })
        .collect();
    Some(ClaudeCodeSessionDetail {
        session_id: i.session_id,
        title: i.title,
        cwd: i.cwd,
        model: i.model,
        created_at: i.created_at,
        messages,
    })
}

/// Copies a transcript into the server's CLI config dir so `--resume` finds it.
pub fn copy_for_resume(file: &Path, config_dir: &Path, cwd: &Path) -> std::io::Result<()> {
    let slug: String = cwd
        .to_string_lossy()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let name = file
        .file_name()
        .ok_or_else(|| std::io::Error::other("no file name"))?;
    let target = config_dir.join("projects").join(slug).join(name);
    let bytes = std::fs::read(file)?;
    crate::util::fs::write_atomic(&target, &bytes, Some(0o600))
}
