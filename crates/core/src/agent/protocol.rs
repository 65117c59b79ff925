//! The stream-json lines exchanged with the CLI (contract/claude-cli.md §4–§6). Output is
//! parsed leniently as JSON values keyed off `type`/`subtype`: the CLI adds fields and
//! message kinds often, and unknown ones must pass through, not fail.

use serde_json::{json, Value};

/// A user message line.
pub fn user_message(content: &str) -> Value {
    json!({"type": "user", "session_id": "", "message": {"role": "user", "content": content}, "parent_tool_use_id": null})
}

/// A control request we send (`initialize`, `interrupt`, `set_model`…).
pub fn control_request(request_id: &str, request: Value) -> Value {
    json!({"type": "control_request", "request_id": request_id, "request": request})
}

/// A successful answer to a control request the CLI sent.
pub fn control_success(request_id: &str, response: Value) -> Value {
    json!({"type": "control_response", "response": {"subtype": "success", "request_id": request_id, "response": response}})
}

/// An error answer to a control request the CLI sent.
pub fn control_error(request_id: &str, error: &str) -> Value {
    json!({"type": "control_response", "response": {"subtype": "error", "request_id": request_id, "error": error}})
}

/// `can_use_tool` → allow, keeping (or replacing) the input.
pub fn allow(input: &Value) -> Value {
    json!({"behavior": "allow", "updatedInput": input})
}

/// `can_use_tool` → deny with a message the model sees.
pub fn deny(message: &str) -> Value {
    json!({"behavior": "deny", "message": message})
}

/// `can_use_tool` → deny; with `interrupt` the CLI also ends the turn.
pub fn deny_interrupt(message: &str, interrupt: bool) -> Value {
    json!({"behavior": "deny", "message": message, "interrupt": interrupt})
}

/// `type` and `subtype` of an output line.
pub fn kind(line: &Value) -> (&str, &str) {
    (
        line.get("type").and_then(Value::as_str).unwrap_or(""),
        line.get("subtype").and_then(Value::as_str).unwrap_or(""),
    )
}
