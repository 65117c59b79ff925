//! The SSE events of `POST /api/chat` (contract §2.2): every key present, null-valued
//! keys included, camelCase outside and snake_case inside `resumeInfo`, as the app reads.

use serde_json::{json, Value};

/// `resumeInfo` / `sessionResume`.
pub fn resume_info(
    method: &str,
    is_new: bool,
    previous_message_count: i64,
    sdk_session_available: bool,
) -> Value {
    json!({
        "method": method,
        "is_new_session": is_new,
        "previous_message_count": previous_message_count,
        "sdk_session_available": sdk_session_available,
    })
}

pub fn session(
    session_id: Option<&str>,
    working_directory: Option<&str>,
    resume: &Value,
    trust_level: Option<&str>,
) -> Value {
    json!({"type": "session", "sessionId": session_id, "workingDirectory": working_directory,
        "resumeInfo": resume, "trustLevel": trust_level})
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

pub fn prompt_metadata(m: &PromptMetadata) -> Value {
    json!({"type": "prompt_metadata", "promptSource": m.prompt_source, "promptSourcePath": m.prompt_source_path,
        "contextFiles": m.context_files, "contextTokens": m.context_tokens, "contextTruncated": m.context_truncated,
        "agentName": m.agent_name, "availableAgents": [], "basePromptTokens": 0,
        "totalPromptTokens": m.total_prompt_tokens, "trustMode": m.trust_mode,
        "workingDirectoryClaudeMd": m.working_directory_claude_md})
}

pub fn user_message(content: &str) -> Value {
    json!({"type": "user_message", "content": content})
}

pub fn init(tools: &Value, permission_mode: &Value) -> Value {
    json!({"type": "init", "tools": tools, "permissionMode": permission_mode})
}

pub fn model(model: &str) -> Value {
    json!({"type": "model", "model": model})
}

pub fn thinking(content: &str) -> Value {
    json!({"type": "thinking", "content": content})
}

pub fn text(content: &str, delta: &str) -> Value {
    json!({"type": "text", "content": content, "delta": delta})
}

pub fn tool_use(id: &Value, name: &Value, input: &Value) -> Value {
    json!({"type": "tool_use", "tool": {"id": id, "name": name, "input": input}})
}

pub fn tool_result(tool_use_id: &Value, content: &str, is_error: bool) -> Value {
    json!({"type": "tool_result", "toolUseId": tool_use_id, "content": content, "isError": is_error})
}

/// `queued` (ours, beyond the contract): the turn waits for a CLI process because
/// `max_cli_processes` are in use; `position` 1 is next. The turn goes on by itself.
pub fn queued(position: usize, in_use: usize, max: usize) -> Value {
    json!({"type": "queued", "position": position, "inUse": in_use, "maxProcesses": max,
        "message": format!("Waiting for a free Claude process ({in_use} of {max} in use; position {position} in line)")})
}

pub fn error(message: &str, session_id: Option<&str>) -> Value {
    json!({"type": "error", "error": message, "sessionId": session_id})
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
    pub resume: &'a Value,
}

pub fn done(d: &Done) -> Value {
    json!({"type": "done", "response": d.response, "sessionId": d.session_id,
        "workingDirectory": d.working_directory, "messageCount": d.message_count, "model": d.model,
        "durationMs": d.duration_ms as u64, "spawned": [],
        "toolCalls": if d.tool_calls.is_empty() { Value::Null } else { Value::from(d.tool_calls.to_vec()) },
        "permissionDenials": if d.permission_denials.is_empty() { Value::Null } else { Value::from(d.permission_denials.to_vec()) },
        "sessionResume": d.resume})
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

/// Title rule (contract §6.2): first line, cut to 60 characters at the last space when
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
