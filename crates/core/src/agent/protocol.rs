//! The stream-json lines exchanged with the CLI: what we write (user messages, control
//! requests and answers) and what it prints, typed once as [`CliMessage`]. Parsing is
//! lenient: the CLI adds fields and message kinds often, and unknown ones pass through.

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

/// One line the CLI prints, parsed once where it is read. The kinds a turn acts on are
/// variants with the fields it uses; message bodies stay JSON (they are the model
/// API's content blocks). Any other line — the CLI adds kinds often — is kept whole in
/// [`CliMessage::Other`], never an error.
#[derive(Debug, Clone, PartialEq)]
pub enum CliMessage {
    /// `system`/`init`: the session's tools, permission mode and model.
    Init {
        model: Option<String>,
        tools: Value,
        permission_mode: Value,
    },
    /// `system`/`api_retry`: a model API call failed and the CLI will try again.
    ApiRetry(ApiRetry),
    /// Another `system` line (status…), whole.
    System { subtype: String, line: Value },
    /// The synthetic assistant message the CLI prints for a failed model call
    /// (`is_api_error_message`); the same failure ends the turn as an error `result`.
    ApiErrorMessage(Value),
    /// A partial-message event (`--include-partial-messages`).
    StreamEvent { event: Value, from_subagent: bool },
    /// A complete assistant message (`message` is the API message).
    Assistant { message: Value, from_subagent: bool },
    /// A user-role message: tool results.
    User { message: Value, from_subagent: bool },
    /// The end of a turn.
    Result(TurnResult),
    /// The CLI asks the host (`can_use_tool`, `hook_callback`, `mcp_message`).
    ControlRequest { request_id: String, request: Value },
    /// The CLI's answer to a control request of ours.
    ControlResponse(Value),
    /// Any other line, kept whole.
    Other(Value),
}

/// One `api_retry` line: which attempt comes next and why the last one failed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ApiRetry {
    /// The attempt about to be made (1 is the first retry).
    pub attempt: u64,
    /// How many retries the CLI makes at most.
    pub max_retries: u64,
    /// The wait before this attempt, in milliseconds.
    pub retry_delay_ms: u64,
    /// The HTTP status of the failed call; `None` when no answer came (network).
    pub error_status: Option<u64>,
    /// The CLI's name for the failure (`authentication_failed`, `server_error`…).
    pub error: Option<String>,
}

/// The `result` line that ends a turn.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TurnResult {
    pub is_error: bool,
    /// The final text (or the error's text).
    pub result: String,
    /// The process's running total, as the CLI reports it.
    pub total_cost_usd: Option<f64>,
    pub permission_denials: Vec<Value>,
    /// The model API's HTTP status when the turn ended on a failed call.
    pub api_error_status: Option<u64>,
}

/// Reads one line of the CLI's stdout: `None` for a line that is not a JSON object
/// (blank, a stray message, garbage, cut short), which is skipped; never fails.
pub fn parse_line(line: &[u8]) -> Option<CliMessage> {
    let text = String::from_utf8_lossy(line);
    let text = text.trim();
    if !text.starts_with('{') {
        return None;
    }
    match serde_json::from_str::<Value>(text) {
        Ok(v) => Some(CliMessage::parse(v)),
        Err(e) => {
            tracing::debug!(error = %e, "skipping an unparseable CLI line");
            None
        }
    }
}

impl CliMessage {
    /// Types one output line; lines of unknown kinds become [`CliMessage::Other`].
    pub fn parse(line: Value) -> CliMessage {
        let str_of = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let from_subagent = line.get("parent_tool_use_id").is_some_and(|p| !p.is_null());
        let take = |line: &Value, k: &str| line.get(k).cloned().unwrap_or(Value::Null);
        match line.get("type").and_then(Value::as_str).unwrap_or("") {
            "system" => match str_of(&line, "subtype").as_deref() {
                Some("init") => CliMessage::Init {
                    model: str_of(&line, "model"),
                    tools: take(&line, "tools"),
                    permission_mode: take(&line, "permissionMode"),
                },
                Some("api_retry") => {
                    let n = |k: &str| line.get(k).and_then(Value::as_u64);
                    CliMessage::ApiRetry(ApiRetry {
                        attempt: n("attempt").unwrap_or(0),
                        max_retries: n("max_retries").unwrap_or(0),
                        retry_delay_ms: n("retry_delay_ms").unwrap_or(0),
                        error_status: n("error_status"),
                        error: str_of(&line, "error"),
                    })
                }
                other => CliMessage::System {
                    subtype: other.unwrap_or("").to_string(),
                    line,
                },
            },
            "stream_event" => CliMessage::StreamEvent {
                event: take(&line, "event"),
                from_subagent,
            },
            "assistant" if line.get("is_api_error_message") == Some(&Value::Bool(true)) => {
                CliMessage::ApiErrorMessage(take(&line, "message"))
            }
            "assistant" => CliMessage::Assistant {
                message: take(&line, "message"),
                from_subagent,
            },
            "user" => CliMessage::User {
                message: take(&line, "message"),
                from_subagent,
            },
            "result" => CliMessage::Result(TurnResult {
                is_error: line
                    .get("is_error")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                result: str_of(&line, "result").unwrap_or_default(),
                total_cost_usd: line.get("total_cost_usd").and_then(Value::as_f64),
                permission_denials: line
                    .get("permission_denials")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
                api_error_status: line.get("api_error_status").and_then(Value::as_u64),
            }),
            "control_request" => CliMessage::ControlRequest {
                request_id: str_of(&line, "request_id").unwrap_or_default(),
                request: take(&line, "request"),
            },
            "control_response" => CliMessage::ControlResponse(take(&line, "response")),
            _ => CliMessage::Other(line),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_typed_and_unknown_kinds_kept() {
        let init = CliMessage::parse(json!({"type": "system", "subtype": "init", "model": "m",
            "tools": ["Read"], "permissionMode": "default", "session_id": "s"}));
        assert_eq!(
            init,
            CliMessage::Init {
                model: Some("m".into()),
                tools: json!(["Read"]),
                permission_mode: json!("default")
            }
        );
        let sub = CliMessage::parse(
            json!({"type": "assistant", "parent_tool_use_id": "t1", "message": {"id": "x"}}),
        );
        assert!(matches!(
            sub,
            CliMessage::Assistant {
                from_subagent: true,
                ..
            }
        ));
        let top = CliMessage::parse(
            json!({"type": "user", "parent_tool_use_id": null, "message": {"content": []}}),
        );
        assert!(matches!(
            top,
            CliMessage::User {
                from_subagent: false,
                ..
            }
        ));
        let result = CliMessage::parse(
            json!({"type": "result", "subtype": "success", "is_error": false,
            "result": "done", "total_cost_usd": 0.25, "permission_denials": [{"tool_name": "Write"}]}),
        );
        assert_eq!(
            result,
            CliMessage::Result(TurnResult {
                is_error: false,
                result: "done".into(),
                total_cost_usd: Some(0.25),
                permission_denials: vec![json!({"tool_name": "Write"})],
                api_error_status: None,
            })
        );
        let req = CliMessage::parse(json!({"type": "control_request", "request_id": "r1",
            "request": {"subtype": "can_use_tool"}}));
        assert!(
            matches!(req, CliMessage::ControlRequest { ref request_id, .. } if request_id == "r1")
        );
        let novel = json!({"type": "rate_limit_event", "x": 1});
        assert_eq!(CliMessage::parse(novel.clone()), CliMessage::Other(novel));
        let retry = CliMessage::parse(json!({"type": "system", "subtype": "api_retry",
            "attempt": 1, "max_retries": 10, "retry_delay_ms": 537, "error_status": 401,
            "error": "authentication_failed"}));
        assert_eq!(
            retry,
            CliMessage::ApiRetry(ApiRetry {
                attempt: 1,
                max_retries: 10,
                retry_delay_ms: 537,
                error_status: Some(401),
                error: Some("authentication_failed".into()),
            })
        );
        let synthetic =
            CliMessage::parse(json!({"type": "assistant", "is_api_error_message": true,
            "error": "authentication_failed", "message": {"model": "<synthetic>"}}));
        assert!(matches!(synthetic, CliMessage::ApiErrorMessage(_)));
    }
}

/// The line reader against a committed corpus of real, odd and broken lines, and
/// against arbitrary input: it never panics, skips what is not a JSON object, and types
/// each known kind.
#[cfg(test)]
mod props {
    use super::*;
    use crate::util::arb;
    use proptest::prelude::*;

    const CORPUS: &str = include_str!("../../corpus/stream-json.jsonl");

    #[test]
    fn the_corpus_reads_without_panics_and_types_each_known_kind() {
        let read: Vec<Option<CliMessage>> =
            CORPUS.lines().map(|l| parse_line(l.as_bytes())).collect();
        assert_eq!(read.len(), CORPUS.lines().count());
        let kinds = read.iter().flatten().fold([0usize; 7], |mut k, m| {
            let i = match m {
                CliMessage::Init { .. } => 0,
                CliMessage::ApiRetry(_) => 1,
                CliMessage::StreamEvent { .. } => 2,
                CliMessage::Assistant { .. } | CliMessage::ApiErrorMessage(_) => 3,
                CliMessage::Result(_) => 4,
                CliMessage::ControlRequest { .. } | CliMessage::ControlResponse(_) => 5,
                _ => 6,
            };
            k[i] += 1;
            k
        });
        assert!(
            kinds.iter().all(|n| *n > 0),
            "every kind is in the corpus: {kinds:?}"
        );
        let skipped = read.iter().filter(|m| m.is_none()).count();
        assert_eq!(
            skipped, 6,
            "blank, garbage, cut short, array, string, 1e999"
        );
        // Wrongly typed fields read as their defaults, never as a failure.
        let odd = parse_line(
            br#"{"type":"result","is_error":"yes","result":42,"total_cost_usd":"free"}"#,
        );
        assert_eq!(odd, Some(CliMessage::Result(TurnResult::default())));
        let sub = parse_line(CORPUS.lines().nth(5).unwrap().as_bytes());
        assert!(matches!(
            sub,
            Some(CliMessage::StreamEvent {
                from_subagent: true,
                ..
            })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn any_bytes_read_or_skip(line in prop::collection::vec(any::<u8>(), 0..300)) {
            let read = parse_line(&line);
            let text = String::from_utf8_lossy(&line);
            if read.is_some() {
                prop_assert!(text.trim().starts_with('{'), "read a line that is no object: {text:?}");
            }
        }

        #[test]
        fn any_json_line_is_typed_by_its_type_field(
            kind in prop_oneof![
                Just("system"), Just("stream_event"), Just("assistant"), Just("user"),
                Just("result"), Just("control_request"), Just("control_response"), Just("other"),
            ],
            subtype in prop_oneof![Just("init"), Just("api_retry"), Just("compact_boundary")],
            fields in arb::object_with(&[
                "message", "event", "tools", "model", "is_error", "result", "total_cost_usd",
                "permission_denials", "api_error_status", "request_id", "request", "response",
                "attempt", "error_status", "parent_tool_use_id", "is_api_error_message",
            ]),
        ) {
            let mut line = fields;
            line["type"] = Value::from(kind);
            line["subtype"] = Value::from(subtype);
            let text = serde_json::to_vec(&line).unwrap();
            let read = parse_line(&text).expect("a JSON object is read");
            let typed = matches!((kind, &read),
                ("system", CliMessage::Init { .. } | CliMessage::ApiRetry(_) | CliMessage::System { .. })
                | ("stream_event", CliMessage::StreamEvent { .. })
                | ("assistant", CliMessage::Assistant { .. } | CliMessage::ApiErrorMessage(_))
                | ("user", CliMessage::User { .. })
                | ("result", CliMessage::Result(_))
                | ("control_request", CliMessage::ControlRequest { .. })
                | ("control_response", CliMessage::ControlResponse(_))
                | ("other", CliMessage::Other(_)));
            prop_assert!(typed, "{kind} read as {read:?}");
        }
    }
}
