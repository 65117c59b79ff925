//! What the CLI's stream has shown so far in a turn, and how each kind of output line
//! becomes the contract's events: partial `stream_event`s stream text as it comes, a
//! full `assistant` message fills in what was not streamed (and tool calls), `user`
//! lines carry tool results. The caller leaves out subagents' lines.
//! Token counts are summed per model for the usage record.

use serde_json::{json, Value};

use super::events;
use super::turns::Turn;
use crate::db::UsageEntry;

/// What the stream has shown so far in this turn.
#[derive(Default)]
pub struct StreamState {
    /// The CLI reported `init` (it started).
    pub saw_init: bool,
    pub row_written: bool,
    pub model: Option<String>,
    model_sent: bool,
    /// Text of the current text block (the contract's accumulator).
    pub block: String,
    /// Message ids whose text was streamed through partial events.
    streamed: std::collections::HashSet<String>,
    current_message: Option<String>,
    pub tool_calls: Vec<Value>,
    /// Ids of tool calls whose result has not come back yet.
    running_tools: std::collections::HashSet<String>,
    /// Tokens of this turn's API calls, per model, summed from the stream.
    pub usage: Vec<UsageEntry>,
    last_usage_model: Option<String>,
}

impl StreamState {
    fn usage_for(&mut self, model: &str) -> &mut UsageEntry {
        if let Some(i) = self.usage.iter().position(|u| u.model == model) {
            return &mut self.usage[i];
        }
        self.usage.push(UsageEntry {
            model: model.to_string(),
            ..Default::default()
        });
        self.usage.last_mut().expect("just pushed")
    }

    fn send_model(&mut self, model: Option<&str>, turn: &Turn) {
        if let Some(m) = model.filter(|m| !m.is_empty() && *m != "<synthetic>") {
            self.model = Some(m.to_string());
            if !self.model_sent {
                self.model_sent = true;
                turn.push(&events::model(m));
            }
        }
    }

    /// A partial-message event (the `event` of a `stream_event` line).
    pub fn on_stream_event(&mut self, ev: &Value, turn: &Turn) {
        match ev.get("type").and_then(Value::as_str).unwrap_or("") {
            "message_start" => {
                let msg = ev.get("message").unwrap_or(&Value::Null);
                self.current_message = msg.get("id").and_then(Value::as_str).map(str::to_string);
                self.send_model(msg.get("model").and_then(Value::as_str), turn);
                let model = msg
                    .get("model")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
                    .to_string();
                let u = msg.get("usage").unwrap_or(&Value::Null);
                let n = |k: &str| u.get(k).and_then(Value::as_i64).unwrap_or(0);
                let e = self.usage_for(&model);
                e.input_tokens += n("input_tokens");
                e.cache_creation_input_tokens += n("cache_creation_input_tokens");
                e.cache_read_input_tokens += n("cache_read_input_tokens");
                self.last_usage_model = Some(model);
            }
            "message_delta" => {
                let out = ev
                    .pointer("/usage/output_tokens")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                let model = self
                    .last_usage_model
                    .clone()
                    .unwrap_or_else(|| "unknown".into());
                self.usage_for(&model).output_tokens += out;
            }
            "content_block_start"
                if ev.pointer("/content_block/type").and_then(Value::as_str) == Some("text") =>
            {
                self.block.clear();
            }
            "content_block_delta" => {
                if let Some(t) = ev.pointer("/delta/text").and_then(Value::as_str) {
                    if ev.pointer("/delta/type").and_then(Value::as_str) == Some("text_delta")
                        && !t.is_empty()
                    {
                        self.block.push_str(t);
                        if let Some(m) = &self.current_message {
                            self.streamed.insert(m.clone());
                        }
                        turn.push(&events::text(&self.block, t));
                    }
                }
            }
            _ => {}
        }
    }

    /// A complete assistant message (the API message of an `assistant` line).
    pub fn on_assistant(&mut self, msg: &Value, turn: &Turn) {
        self.send_model(msg.get("model").and_then(Value::as_str), turn);
        let streamed = msg
            .get("id")
            .and_then(Value::as_str)
            .is_some_and(|id| self.streamed.contains(id));
        for block in msg
            .get("content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            match block.get("type").and_then(Value::as_str).unwrap_or("") {
                "text" if !streamed => {
                    let t = block.get("text").and_then(Value::as_str).unwrap_or("");
                    self.block = t.to_string();
                    turn.push(&events::text(t, t));
                }
                "thinking" => {
                    let t = block.get("thinking").and_then(Value::as_str).unwrap_or("");
                    if !t.is_empty() {
                        turn.push(&events::thinking(t));
                    }
                }
                "tool_use" => {
                    let (id, name, input) = (
                        block.get("id").unwrap_or(&Value::Null),
                        block.get("name").unwrap_or(&Value::Null),
                        block.get("input").unwrap_or(&Value::Null),
                    );
                    self.running_tools.insert(id.to_string());
                    self.tool_calls
                        .push(json!({"id": id, "name": name, "input": input}));
                    turn.push(&events::tool_use(id, name, input));
                    self.block.clear();
                }
                _ => {}
            }
        }
    }

    /// A user-role message (tool results).
    pub fn on_user(&mut self, msg: &Value, turn: &Turn) {
        let content = msg.get("content").and_then(Value::as_array);
        for block in content.into_iter().flatten() {
            if block.get("type").and_then(Value::as_str) == Some("tool_result") {
                let id = block.get("tool_use_id").unwrap_or(&Value::Null);
                self.running_tools.remove(&id.to_string());
                let text = events::tool_result_text(block.get("content").unwrap_or(&Value::Null));
                let is_error = block
                    .get("is_error")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                turn.push(&events::tool_result(
                    block.get("tool_use_id").unwrap_or(&Value::Null),
                    &text,
                    is_error,
                ));
            }
        }
    }
}

impl StreamState {
    /// Whether a tool the model called is still running (its result has not come back):
    /// the turn is then waiting on the tool, not on the model.
    pub fn tool_running(&self) -> bool {
        !self.running_tools.is_empty()
    }

    /// The turn's usage per model, with `cost` split over the models in proportion to
    /// their output tokens (the CLI reports cost for the whole turn only).
    pub fn usage_with_cost(&self, cost: f64) -> Vec<UsageEntry> {
        let mut entries = self.usage.clone();
        let outs: i64 = entries.iter().map(|e| e.output_tokens.max(1)).sum();
        for e in entries.iter_mut() {
            e.cost_usd = cost * e.output_tokens.max(1) as f64 / outs.max(1) as f64;
        }
        entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn kinds(turn: &Turn) -> Vec<Value> {
        turn.finish();
        turn.next_after(0)
            .await
            .iter()
            .map(|(_, e)| serde_json::from_str(e).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn streamed_text_is_sent_as_it_comes_and_not_again_with_the_message() {
        let turn = Turn::detached();
        let mut st = StreamState::default();
        st.on_stream_event(
            &json!({"type": "message_start", "message": {"id": "m1", "model": "claude-x",
                "usage": {"input_tokens": 10, "cache_read_input_tokens": 4}}}),
            &turn,
        );
        st.on_stream_event(
            &json!({"type": "content_block_start", "content_block": {"type": "text"}}),
            &turn,
        );
        for t in ["Hel", "lo"] {
            st.on_stream_event(
                &json!({"type": "content_block_delta", "delta": {"type": "text_delta", "text": t}}),
                &turn,
            );
        }
        st.on_stream_event(
            &json!({"type": "message_delta", "usage": {"output_tokens": 7}}),
            &turn,
        );
        // The full message repeats the streamed text: it is not sent twice.
        st.on_assistant(
            &json!({"id": "m1", "model": "claude-x", "content": [{"type": "text", "text": "Hello"}]}),
            &turn,
        );
        let ev = kinds(&turn).await;
        assert_eq!(
            ev,
            vec![
                json!({"type": "model", "model": "claude-x"}),
                json!({"type": "text", "content": "Hel", "delta": "Hel"}),
                json!({"type": "text", "content": "Hello", "delta": "lo"}),
            ]
        );
        assert_eq!(st.block, "Hello");
        assert_eq!(
            st.usage,
            vec![UsageEntry {
                model: "claude-x".into(),
                input_tokens: 10,
                output_tokens: 7,
                cache_read_input_tokens: 4,
                ..Default::default()
            }]
        );
    }

    #[tokio::test]
    async fn tool_calls_and_results_become_events() {
        let turn = Turn::detached();
        let mut st = StreamState::default();
        st.on_assistant(
            &json!({"id": "m2", "model": "claude-x",
                "content": [{"type": "thinking", "thinking": "hmm"},
                            {"type": "tool_use", "id": "t1", "name": "Write", "input": {"file_path": "a.md"}}]}),
            &turn,
        );
        assert!(
            st.tool_running(),
            "the model's clock stops while Write runs"
        );
        st.on_user(
            &json!({"content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "ok"}], "is_error": false}]}),
            &turn,
        );
        assert!(!st.tool_running());
        let ev = kinds(&turn).await;
        let types: Vec<&str> = ev.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["model", "thinking", "tool_use", "tool_result"]);
        assert_eq!(ev[3]["content"], "ok");
        assert_eq!(st.tool_calls.len(), 1);
        assert_eq!(st.tool_calls[0]["name"], "Write");
    }

    #[test]
    fn cost_is_split_by_output_tokens() {
        let mut st = StreamState {
            usage: vec![
                UsageEntry {
                    model: "big".into(),
                    output_tokens: 300,
                    ..Default::default()
                },
                UsageEntry {
                    model: "small".into(),
                    output_tokens: 100,
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let e = st.usage_with_cost(0.4);
        assert!((e[0].cost_usd - 0.3).abs() < 1e-9, "{e:?}");
        assert!((e[1].cost_usd - 0.1).abs() < 1e-9, "{e:?}");
        // No output tokens at all: an even split, never a division by zero.
        st.usage.iter_mut().for_each(|u| u.output_tokens = 0);
        let e = st.usage_with_cost(0.4);
        assert!((e[0].cost_usd - 0.2).abs() < 1e-9, "{e:?}");
    }
}
