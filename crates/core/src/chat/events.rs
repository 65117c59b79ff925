//! The events of a turn, typed: [`TurnEvent`] is what the turn log
//! keeps, so bots, the scheduler and the UI consume a turn without re-parsing JSON; it
//! is serialized only at the edge (SSE), to exactly the contract's JSON — every key
//! present, null-valued keys included, camelCase outside and snake_case inside
//! `resumeInfo`, in the order the app has always received them.
//!
//! Adding a variant is safe (the app maps unknown types to `unknown`); renaming one or
//! its keys breaks the app.

use serde::Serialize;
use serde_json::{json, Value};

/// `resumeInfo` / `sessionResume`: how the session was started.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ResumeInfo {
    pub method: String,
    pub is_new_session: bool,
    pub previous_message_count: i64,
    pub sdk_session_available: bool,
}

pub fn resume_info(
    method: &str,
    is_new: bool,
    previous_message_count: i64,
    sdk_session_available: bool,
) -> ResumeInfo {
    ResumeInfo {
        method: method.to_string(),
        is_new_session: is_new,
        previous_message_count,
        sdk_session_available,
    }
}

/// A tool call as `tool_use` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ToolCall {
    /// The call's id (the `tool_use` block's `id`); matches `toolUseId` of its `tool_result`.
    #[schema(value_type = Option<String>)]
    pub id: Value,
    /// The name of the tool called.
    #[schema(value_type = Option<String>)]
    pub name: Value,
    /// The arguments the model passed to the tool.
    #[schema(value_type = Object)]
    pub input: Value,
}

/// A guarded tool call waiting for the owner (`permission_request`).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PermissionRequest {
    /// The id to answer with (`{sessionId}-p-{toolUseId}`).
    pub id: String,
    /// The tool the agent wants to call (`mcp__{server}__{tool}` for MCP tools).
    pub tool_name: String,
    /// The agent asking; always `vault-agent`.
    pub agent_name: String,
    /// When the request was made, UTC (`2026-11-22T08:28:25.683545Z`).
    pub timestamp: String,
    /// `read`, `write` or `bash`: how the app groups the prompt.
    pub permission_type: String,
    /// The file the call targets (its input's `file_path`, `path` or `notebook_path`), or null.
    #[schema(value_type = Option<String>)]
    pub file_path: Value,
    /// Patterns already allowed for this tool; always empty.
    #[schema(value_type = Vec<Object>)]
    pub allowed_patterns: Vec<Value>,
    /// Grants the app may offer: one `once` grant for the file path, else for the tool name.
    #[schema(value_type = Vec<Object>)]
    pub suggested_grants: Value,
    /// The MCP server of an `mcp__` tool, else null.
    #[schema(value_type = Option<String>)]
    pub mcp_server: Value,
    /// The tool's name within its MCP server, else null.
    #[schema(value_type = Option<String>)]
    pub mcp_tool: Value,
    /// The tool call's full input.
    #[schema(value_type = Object)]
    pub input: Value,
}

/// One event of a turn. Serialized with `type` first, then the fields in this order.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TurnEvent {
    /// Sent twice for a new session: first with a null id, then with the id.
    #[serde(rename_all = "camelCase")]
    Session {
        /// The session's id; null in the first event of a new session.
        session_id: Option<String>,
        /// The working directory as the request named it; null when it named none.
        working_directory: Option<String>,
        /// How the session was started (new, or the CLI resuming its transcript).
        resume_info: ResumeInfo,
        /// The trust level the request asked for; null when it asked for none.
        trust_level: Option<String>,
    },
    /// What the system prompt was built from, sent before the message goes to the CLI.
    #[serde(rename_all = "camelCase")]
    PromptMetadata {
        /// Where the system prompt came from: `agent`, `custom` or `claude_code_preset`.
        prompt_source: String,
        /// The agent file's vault-relative path; null unless the source is `agent`.
        prompt_source_path: Option<String>,
        /// Vault-relative paths of the context files loaded into the prompt.
        context_files: Vec<String>,
        /// Estimated tokens of the loaded context files (4 characters a token).
        context_tokens: usize,
        /// Whether some context was cut or left out to fit its token budget.
        context_truncated: bool,
        /// The agent's name; `vault-agent` unless an agent file was used.
        agent_name: String,
        /// Other agents the client could pick; always empty.
        available_agents: Vec<String>,
        /// Tokens of the base system prompt; always 0 (not measured).
        base_prompt_tokens: usize,
        /// Estimated tokens of the text this turn appends to the system prompt.
        total_prompt_tokens: usize,
        /// Whether guarded tool calls run without asking the owner.
        trust_mode: bool,
        /// Vault-relative path of the `AGENTS.md`/`CLAUDE.md` in the working directory;
        /// null when there is none.
        working_directory_claude_md: Option<String>,
    },
    /// The user's message, echoed as the turn received it.
    UserMessage {
        /// The message text.
        content: String,
    },
    /// Ours, beyond the contract: the turn waits for a CLI process because
    /// `max_cli_processes` are in use; `position` 1 is next. It goes on by itself.
    #[serde(rename_all = "camelCase")]
    Queued {
        /// Place in the queue; 1 is next.
        position: usize,
        /// CLI processes in use now.
        in_use: usize,
        /// The cap on CLI processes (`max_cli_processes`).
        max_processes: usize,
        /// A human-readable line saying the turn is waiting, to show as is.
        message: String,
    },
    /// Ours, beyond the contract: a model API call failed and the CLI tries again after
    /// `retryDelayMs`. Several may come; the turn then goes on or ends in one `error`.
    #[serde(rename_all = "camelCase")]
    Retrying {
        /// The attempt about to be made; 1 is the first retry.
        attempt: u64,
        /// The most retries the CLI makes.
        max_retries: u64,
        /// The wait before this attempt, in milliseconds.
        retry_delay_ms: u64,
        /// The HTTP status of the failed call; null when no answer came (network).
        error_status: Option<u64>,
        /// The CLI's name for the failure (`authentication_failed`, `server_error`…).
        error: Option<String>,
        /// A human-readable line to show as is.
        message: String,
    },
    /// The CLI started the turn; from its `init` message.
    #[serde(rename_all = "camelCase")]
    Init {
        /// The tools the CLI offers, as it lists them.
        #[schema(value_type = Value)]
        tools: Value,
        /// The CLI's permission mode (e.g. `default`).
        #[schema(value_type = Option<String>)]
        permission_mode: Value,
    },
    /// The model answering; sent once per turn, when the CLI first names it.
    Model {
        /// The model id as the CLI reports it.
        model: String,
    },
    /// One complete thinking block of the model.
    Thinking {
        /// The thinking text.
        content: String,
    },
    /// `content` is the text so far, `delta` the new part.
    Text {
        /// All text of the current block so far; in the turn's last `text`, the whole reply.
        content: String,
        /// The text added since the previous `text` event.
        delta: String,
    },
    /// The model called a tool.
    ToolUse {
        /// The call: its id, tool name and input.
        tool: ToolCall,
    },
    /// A tool call's result came back.
    #[serde(rename_all = "camelCase")]
    ToolResult {
        /// The id of the `tool_use` this result answers.
        #[schema(value_type = Option<String>)]
        tool_use_id: Value,
        /// The result as text (text parts joined by newlines).
        content: String,
        /// Whether the tool reported an error.
        is_error: bool,
    },
    /// The agent asks the owner questions (AskUserQuestion); the turn waits for the
    /// answers, up to the permission timeout.
    #[serde(rename_all = "camelCase")]
    UserQuestion {
        /// The id to answer with (`{sessionId}-q-{toolUseId}`).
        request_id: String,
        /// The session the question belongs to.
        session_id: String,
        /// The questions, as the tool's `questions` input lists them (`[]` when absent).
        #[schema(value_type = Value)]
        questions: Value,
    },
    /// A guarded tool call waits for the owner to allow or deny it (only when trust mode is
    /// off), up to the permission timeout.
    PermissionRequest(Box<PermissionRequest>),
    /// The session's CLI transcript is gone, so it cannot be resumed; the client should
    /// start a new chat.
    #[serde(rename_all = "camelCase")]
    SessionUnavailable {
        /// Why, as a code (`sdk_session_not_found`).
        reason: String,
        /// The session that could not be resumed.
        session_id: String,
        /// Whether a Markdown history of the session exists to continue from; always false.
        has_markdown_history: bool,
        /// The session's stored message count before this turn.
        message_count: i64,
        /// A human-readable explanation, to show as is.
        message: String,
    },
    /// The turn finished; the last event of a successful turn.
    #[serde(rename_all = "camelCase")]
    Done {
        /// The assistant's full reply (the text streamed so far when the turn was stopped).
        response: String,
        /// The session's id.
        session_id: String,
        /// The working directory as the request named it; null when it named none.
        working_directory: Option<String>,
        /// The session's message count after this turn.
        message_count: i64,
        /// The model that answered, else the one requested or configured; null when unknown.
        model: Option<String>,
        /// How long the turn took, in milliseconds.
        duration_ms: u64,
        /// Sessions this turn spawned; always empty.
        spawned: Vec<String>,
        /// `null` when there were none (as the contract sends it).
        #[schema(value_type = Option<Vec<Object>>)]
        tool_calls: Option<Vec<Value>>,
        /// Tool calls denied during the turn, as the CLI reports them; `null` when there were none.
        #[schema(value_type = Option<Vec<Object>>)]
        permission_denials: Option<Vec<Value>>,
        /// How the session was started, as in the `session` event's `resumeInfo`.
        session_resume: ResumeInfo,
    },
    /// The turn failed. `sessionId` is absent (not null) for a request refused before
    /// any session was chosen, as the contract sends it.
    #[serde(rename_all = "camelCase")]
    Error {
        /// What went wrong, for the user.
        error: String,
        /// The session the error belongs to: `None` omits the key, `Some(None)` sends null.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schema(value_type = Option<String>)]
        session_id: Option<Option<String>>,
    },
}

impl TurnEvent {
    /// The JSON the SSE edge sends.
    pub fn to_json(&self) -> String {
        // Plain data (strings, numbers, JSON values): serializing cannot fail.
        serde_json::to_string(self).unwrap_or_else(|e| {
            json!({"type": "error", "error": format!("event not serializable: {e}")}).to_string()
        })
    }

    /// The contract's `type` of this event.
    pub fn kind(&self) -> &'static str {
        match self {
            TurnEvent::Session { .. } => "session",
            TurnEvent::PromptMetadata { .. } => "prompt_metadata",
            TurnEvent::UserMessage { .. } => "user_message",
            TurnEvent::Queued { .. } => "queued",
            TurnEvent::Retrying { .. } => "retrying",
            TurnEvent::Init { .. } => "init",
            TurnEvent::Model { .. } => "model",
            TurnEvent::Thinking { .. } => "thinking",
            TurnEvent::Text { .. } => "text",
            TurnEvent::ToolUse { .. } => "tool_use",
            TurnEvent::ToolResult { .. } => "tool_result",
            TurnEvent::UserQuestion { .. } => "user_question",
            TurnEvent::PermissionRequest(_) => "permission_request",
            TurnEvent::SessionUnavailable { .. } => "session_unavailable",
            TurnEvent::Done { .. } => "done",
            TurnEvent::Error { .. } => "error",
        }
    }
}

pub fn session(
    session_id: Option<&str>,
    working_directory: Option<&str>,
    resume: &ResumeInfo,
    trust_level: Option<&str>,
) -> TurnEvent {
    TurnEvent::Session {
        session_id: session_id.map(str::to_string),
        working_directory: working_directory.map(str::to_string),
        resume_info: resume.clone(),
        trust_level: trust_level.map(str::to_string),
    }
}

pub struct PromptMetadata<'a> {
    pub prompt_source: &'a str,
    pub prompt_source_path: Option<&'a str>,
    pub agent_name: &'a str,
    pub context_files: Vec<String>,
    pub context_tokens: usize,
    pub context_truncated: bool,
    pub total_prompt_tokens: usize,
    pub trust_mode: bool,
    pub working_directory_claude_md: Option<String>,
}

pub fn prompt_metadata(m: &PromptMetadata) -> TurnEvent {
    TurnEvent::PromptMetadata {
        prompt_source: m.prompt_source.to_string(),
        prompt_source_path: m.prompt_source_path.map(str::to_string),
        context_files: m.context_files.clone(),
        context_tokens: m.context_tokens,
        context_truncated: m.context_truncated,
        agent_name: m.agent_name.to_string(),
        available_agents: Vec::new(),
        base_prompt_tokens: 0,
        total_prompt_tokens: m.total_prompt_tokens,
        trust_mode: m.trust_mode,
        working_directory_claude_md: m.working_directory_claude_md.clone(),
    }
}

pub fn user_message(content: &str) -> TurnEvent {
    TurnEvent::UserMessage {
        content: content.to_string(),
    }
}

pub fn init(tools: &Value, permission_mode: &Value) -> TurnEvent {
    TurnEvent::Init {
        tools: tools.clone(),
        permission_mode: permission_mode.clone(),
    }
}

pub fn model(model: &str) -> TurnEvent {
    TurnEvent::Model {
        model: model.to_string(),
    }
}

pub fn thinking(content: &str) -> TurnEvent {
    TurnEvent::Thinking {
        content: content.to_string(),
    }
}

pub fn text(content: &str, delta: &str) -> TurnEvent {
    TurnEvent::Text {
        content: content.to_string(),
        delta: delta.to_string(),
    }
}

pub fn tool_use(id: &Value, name: &Value, input: &Value) -> TurnEvent {
    TurnEvent::ToolUse {
        tool: ToolCall {
            id: id.clone(),
            name: name.clone(),
            input: input.clone(),
        },
    }
}

pub fn tool_result(tool_use_id: &Value, content: &str, is_error: bool) -> TurnEvent {
    TurnEvent::ToolResult {
        tool_use_id: tool_use_id.clone(),
        content: content.to_string(),
        is_error,
    }
}

pub fn queued(position: usize, in_use: usize, max: usize) -> TurnEvent {
    TurnEvent::Queued {
        position,
        in_use,
        max_processes: max,
        message: format!(
            "Waiting for a free Claude process ({in_use} of {max} in use; position {position} in line)"
        ),
    }
}

/// A `retrying` event for one of the CLI's `api_retry` lines.
pub fn retrying(r: &crate::agent::ApiRetry) -> TurnEvent {
    let why = match (r.error_status, r.error.as_deref()) {
        (Some(st), Some(e)) => format!("answered {st} ({e})"),
        (Some(st), None) => format!("answered {st}"),
        (None, Some(e)) => format!("could not be reached ({e})"),
        (None, None) => "could not be reached".to_string(),
    };
    TurnEvent::Retrying {
        attempt: r.attempt,
        max_retries: r.max_retries,
        retry_delay_ms: r.retry_delay_ms,
        error_status: r.error_status,
        error: r.error.clone(),
        message: format!(
            "The model API {why}; retrying in {:.1} s (attempt {} of {})",
            r.retry_delay_ms as f64 / 1000.0,
            r.attempt,
            r.max_retries
        ),
    }
}

/// An `error` carrying `sessionId` (null when there is none).
pub fn error(message: &str, session_id: Option<&str>) -> TurnEvent {
    TurnEvent::Error {
        error: message.to_string(),
        session_id: Some(session_id.map(str::to_string)),
    }
}

/// An `error` for a request refused before a session was chosen (no `sessionId` key).
pub fn refusal(message: &str) -> TurnEvent {
    TurnEvent::Error {
        error: message.to_string(),
        session_id: None,
    }
}

/// The `done` event's fields.
pub struct Done<'a> {
    pub response: &'a str,
    pub session_id: &'a str,
    pub working_directory: Option<&'a str>,
    pub message_count: i64,
    pub model: Option<&'a str>,
    pub duration_ms: u128,
    pub tool_calls: &'a [Value],
    pub permission_denials: &'a [Value],
    pub resume: &'a ResumeInfo,
}

pub fn done(d: &Done) -> TurnEvent {
    let non_empty = |v: &[Value]| (!v.is_empty()).then(|| v.to_vec());
    TurnEvent::Done {
        response: d.response.to_string(),
        session_id: d.session_id.to_string(),
        working_directory: d.working_directory.map(str::to_string),
        message_count: d.message_count,
        model: d.model.map(str::to_string),
        duration_ms: d.duration_ms as u64,
        spawned: Vec::new(),
        tool_calls: non_empty(d.tool_calls),
        permission_denials: non_empty(d.permission_denials),
        session_resume: d.resume.clone(),
    }
}

/// The text a `tool_result` block carries: a string, or a list whose text parts are
/// joined by newlines.
pub fn tool_result_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .filter_map(|i| {
                i.get("text")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or_else(|| i.as_str().map(str::to_string))
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Title rule: first line, cut to 60 characters at the last space when
/// that is past character 30, plus `...`.
pub fn title_from_message(message: &str) -> Option<String> {
    let first = message.lines().map(str::trim).find(|l| !l.is_empty())?;
    let chars: Vec<char> = first.chars().collect();
    if chars.len() <= 60 {
        return Some(first.to_string());
    }
    let cut: String = chars[..60].iter().collect();
    let cut = match cut.rfind(' ') {
        Some(i) if cut[..i].chars().count() > 30 => cut[..i].to_string(),
        _ => cut,
    };
    Some(format!("{}...", cut.trim_end()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles() {
        assert_eq!(
            title_from_message("Hello! First message.").as_deref(),
            Some("Hello! First message.")
        );
        assert_eq!(
            title_from_message("\n\n  second line first\nmore").as_deref(),
            Some("second line first")
        );
        let long =
            "This is a fairly long first line that goes well beyond sixty characters in total";
        let t = title_from_message(long).unwrap();
        assert!(t.ends_with("...") && t.chars().count() <= 63, "{t}");
        assert_eq!(
            t,
            "This is a fairly long first line that goes well beyond..."
        );
        assert_eq!(title_from_message("   "), None);
    }

    /// The JSON each event had when it was built with `json!` (the contract's order).
    #[test]
    fn events_serialize_exactly_as_the_contract_sends_them() {
        let r = resume_info("new", true, 0, true);
        let cases: Vec<(TurnEvent, Value)> = vec![
            (
                session(None, Some("Notes"), &r, None),
                json!({"type": "session", "sessionId": null, "workingDirectory": "Notes",
                    "resumeInfo": {"method": "new", "is_new_session": true, "previous_message_count": 0, "sdk_session_available": true},
                    "trustLevel": null}),
            ),
            (
                prompt_metadata(&PromptMetadata {
                    prompt_source: "claude_code_preset",
                    prompt_source_path: None,
                    agent_name: "vault-agent",
                    context_files: vec!["a.md".into()],
                    context_tokens: 3,
                    context_truncated: false,
                    total_prompt_tokens: 3,
                    trust_mode: true,
                    working_directory_claude_md: None,
                }),
                json!({"type": "prompt_metadata", "promptSource": "claude_code_preset", "promptSourcePath": null,
                    "contextFiles": ["a.md"], "contextTokens": 3, "contextTruncated": false,
                    "agentName": "vault-agent", "availableAgents": [], "basePromptTokens": 0,
                    "totalPromptTokens": 3, "trustMode": true, "workingDirectoryClaudeMd": null}),
            ),
            (
                queued(1, 2, 2),
                json!({"type": "queued", "position": 1, "inUse": 2, "maxProcesses": 2,
                    "message": "Waiting for a free Claude process (2 of 2 in use; position 1 in line)"}),
            ),
            (
                tool_use(&json!("t1"), &json!("Write"), &json!({"a": 1})),
                json!({"type": "tool_use", "tool": {"id": "t1", "name": "Write", "input": {"a": 1}}}),
            ),
            (
                tool_result(&json!("t1"), "ok", false),
                json!({"type": "tool_result", "toolUseId": "t1", "content": "ok", "isError": false}),
            ),
            (
                error("boom", None),
                json!({"type": "error", "error": "boom", "sessionId": null}),
            ),
            (
                refusal("message is required"),
                json!({"type": "error", "error": "message is required"}),
            ),
            (
                done(&Done {
                    response: "hi",
                    session_id: "s1",
                    working_directory: None,
                    message_count: 2,
                    model: Some("m"),
                    duration_ms: 5,
                    tool_calls: &[],
                    permission_denials: &[],
                    resume: &r,
                }),
                json!({"type": "done", "response": "hi", "sessionId": "s1", "workingDirectory": null,
                    "messageCount": 2, "model": "m", "durationMs": 5, "spawned": [], "toolCalls": null,
                    "permissionDenials": null, "sessionResume": {"method": "new", "is_new_session": true,
                    "previous_message_count": 0, "sdk_session_available": true}}),
            ),
        ];
        for (event, want) in cases {
            assert_eq!(event.to_json(), want.to_string(), "{}", event.kind());
            assert_eq!(want["type"], event.kind());
        }
    }

    #[test]
    fn tool_result_text_joins_parts() {
        assert_eq!(
            tool_result_text(
                &json!([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}])
            ),
            "a\nb"
        );
        assert_eq!(tool_result_text(&json!("x")), "x");
    }
}
