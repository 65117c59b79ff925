//! Questions (AskUserQuestion) and tool-permission prompts waiting for the owner. The
//! pending entry is registered *before* its event is sent and keyed by the id the
//! event carries, so an answer can never arrive for an id the server does not know
//! (the original's race). Entries leave when answered, timed out, or the turn ends.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::oneshot;

/// The owner's answer to a prompt.
#[derive(Debug)]
pub enum Answer {
    /// Answers to AskUserQuestion, by question text.
    Answers(Value),
    /// Allow the tool call (optionally remembering a pattern).
    Grant(Option<String>),
    /// Deny the tool call (or decline to answer a question).
    Deny,
}

/// What kind of prompt an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptKind {
    /// An AskUserQuestion prompt (`user_question`).
    Question,
    /// A tool-permission prompt (`permission_request`).
    Permission,
}

struct Pending {
    session_id: String,
    kind: PromptKind,
    info: Value,
    tx: oneshot::Sender<Answer>,
}

/// Why an answer was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum AnswerError {
    NotFound,
    WrongKind,
}

/// One waiting permission prompt (`GET /api/chat/{id}/permissions`).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PendingPermission {
    /// The id to answer with (`{sessionId}-p-{toolUseId}`).
    pub id: String,
    /// The tool the agent wants to call.
    pub tool_name: String,
    /// The file the call targets, as the tool's input names it (normally a string);
    /// null when it names none.
    pub file_path: Value,
    /// When the request was made, UTC.
    pub timestamp: String,
}

impl PendingPermission {
    /// The prompt `id`, from its `permission_request` event as registered.
    fn from_event(id: &str, event: &Value) -> Self {
        let text = |key: &str| event[key].as_str().unwrap_or_default().to_string();
        PendingPermission {
            id: id.to_string(),
            tool_name: text("toolName"),
            file_path: event["filePath"].clone(),
            timestamp: text("timestamp"),
        }
    }
}

#[derive(Default)]
pub struct PendingPrompts {
    pending: Mutex<HashMap<String, Pending>>,
}

impl PendingPrompts {
    /// Registers a prompt and returns where its answer will arrive.
    pub fn register(
        &self,
        id: &str,
        session_id: &str,
        kind: PromptKind,
        info: Value,
    ) -> oneshot::Receiver<Answer> {
        let (tx, rx) = oneshot::channel();
        let p = Pending {
            session_id: session_id.to_string(),
            kind,
            info,
            tx,
        };
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string(), p);
        rx
    }

    /// Delivers an answer to a pending prompt of `session_id`.
    pub fn answer(
        &self,
        session_id: &str,
        id: &str,
        kind: PromptKind,
        answer: Answer,
    ) -> Result<(), AnswerError> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        match pending.get(id) {
            Some(p) if p.session_id != session_id => return Err(AnswerError::NotFound),
            Some(p) if p.kind != kind => return Err(AnswerError::WrongKind),
            Some(_) => {}
            None => return Err(AnswerError::NotFound),
        }
        let p = pending.remove(id).ok_or(AnswerError::NotFound)?;
        p.tx.send(answer).map_err(|_| AnswerError::NotFound)
    }

    /// Forgets one prompt (timed out).
    pub fn forget(&self, id: &str) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    /// Forgets every prompt of a session (its turn ended).
    pub fn forget_session(&self, session_id: &str) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, p| p.session_id != session_id);
    }

    /// Pending permission prompts of a session, for `GET …/permissions`.
    pub fn pending_permissions(&self, session_id: &str) -> Vec<PendingPermission> {
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<PendingPermission> = pending
            .iter()
            .filter(|(_, p)| p.session_id == session_id && p.kind == PromptKind::Permission)
            .map(|(id, p)| PendingPermission::from_event(id, &p.info))
            .collect();
        v.sort_by(|a, b| a.timestamp.cmp(&b.timestamp));
        v
    }
}

/// `read`, `write` or `bash`, as the app groups permission prompts.
pub fn permission_type(tool: &str) -> &'static str {
    match tool {
        "Read" | "Glob" | "Grep" | "LS" | "NotebookRead" | "WebFetch" | "WebSearch" => "read",
        "Bash" | "BashOutput" | "KillShell" => "bash",
        _ => "write",
    }
}

/// The `permission_request` event for a `can_use_tool` request.
pub fn permission_request(
    id: &str,
    tool: &str,
    input: &Value,
    timestamp: &str,
) -> super::events::PermissionRequest {
    let file_path = input
        .get("file_path")
        .or_else(|| input.get("path"))
        .or_else(|| input.get("notebook_path"))
        .cloned()
        .unwrap_or(Value::Null);
    let (mcp_server, mcp_tool) = match tool.strip_prefix("mcp__").and_then(|r| r.split_once("__")) {
        Some((s, t)) => (Value::from(s), Value::from(t)),
        None => (Value::Null, Value::Null),
    };
    let suggested = match file_path.as_str() {
        Some(p) => json!([{"scope": "once", "pattern": p, "label": "Allow once"}]),
        None => json!([{"scope": "once", "pattern": tool, "label": "Allow once"}]),
    };
    super::events::PermissionRequest {
        id: id.to_string(),
        tool_name: tool.to_string(),
        agent_name: "vault-agent".into(),
        timestamp: timestamp.to_string(),
        permission_type: permission_type(tool).to_string(),
        file_path,
        allowed_patterns: Vec::new(),
        suggested_grants: suggested,
        mcp_server,
        mcp_tool,
        input: input.clone(),
    }
}
