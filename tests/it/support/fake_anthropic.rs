//! A fake Anthropic Messages API for the real Claude CLI to talk to: scripted turns
//! streamed as proper SSE (`message_start … message_stop`, text and `tool_use` blocks),
//! error replies, optional delays between chunks, and a log of every request.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

/// One scripted model reply.
#[derive(Clone, Debug, Default)]
pub struct FakeTurn {
    pub text: Option<String>,
    pub tool_uses: Vec<(String, Value)>,
    pub error: Option<(u16, String, String)>,
    /// Split the text into this many deltas.
    pub chunks: usize,
    /// Pause between SSE events.
    pub delay: Duration,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl FakeTurn {
    pub fn text(t: &str) -> FakeTurn {
        FakeTurn {
            text: Some(t.to_string()),
            chunks: 1,
            input_tokens: 120,
            output_tokens: 12,
            ..Default::default()
        }
    }
    pub fn tool(name: &str, input: Value) -> FakeTurn {
        FakeTurn {
            tool_uses: vec![(name.to_string(), input)],
            input_tokens: 130,
            output_tokens: 20,
            ..Default::default()
        }
    }
    pub fn error(status: u16, kind: &str, message: &str) -> FakeTurn {
        FakeTurn {
            error: Some((status, kind.into(), message.into())),
            ..Default::default()
        }
    }
    pub fn slow(mut self, chunks: usize, delay: Duration) -> FakeTurn {
        self.chunks = chunks;
        self.delay = delay;
        self
    }
}

#[derive(Default)]
struct FakeState {
    script: Mutex<VecDeque<FakeTurn>>,
    log: Mutex<Vec<Value>>,
    counter: Mutex<u64>,
    /// When each reply's first text delta was written (ms since the Unix epoch).
    first_text: Mutex<Vec<u128>>,
    /// Unscripted replies repeat the user's last text (`echo: …`).
    echo: Mutex<bool>,
}

pub struct FakeAnthropic {
    pub url: String,
    state: Arc<FakeState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeAnthropic {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub const DEFAULT_REPLY: &str = "Hello from the fake model.";

impl FakeAnthropic {
    pub async fn start() -> FakeAnthropic {
        let state = Arc::new(FakeState::default());
        let app = Router::new()
            .route("/v1/messages", post(messages))
            .route("/api/oauth/usage", axum::routing::get(oauth_usage))
            .fallback(fallback)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeAnthropic { url, state, task }
    }

    /// Queues replies for the next agent-loop requests.
    pub fn script(&self, turns: Vec<FakeTurn>) {
        self.state.script.lock().unwrap().extend(turns);
    }

    /// Unscripted replies say `echo: <the user's last text>` instead of the default.
    pub fn echo(&self, on: bool) {
        *self.state.echo.lock().unwrap() = on;
    }

    /// Every request so far: `{path, headers, body, side}`.
    pub fn requests(&self) -> Vec<Value> {
        self.state.log.lock().unwrap().clone()
    }

    /// When each reply's first text delta was sent, in ms since the Unix epoch (the same
    /// clock as a browser's `Date.now()` on this machine).
    pub fn first_text_times(&self) -> Vec<u128> {
        self.state.first_text.lock().unwrap().clone()
    }

    /// The agent-loop requests (not side queries).
    pub fn turn_requests(&self) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| r["side"] == false)
            .collect()
    }
}

fn masked_headers(h: &HeaderMap) -> Value {
    let mut out = serde_json::Map::new();
    for (k, v) in h {
        let v = v.to_str().unwrap_or("");
        let shown = match k.as_str() {
            "x-api-key" | "authorization" | "cookie" => format!("<masked {} chars>", v.len()),
            _ => v.to_string(),
        };
        out.insert(k.as_str().to_string(), Value::from(shown));
    }
    Value::Object(out)
}

async fn fallback(State(st): State<Arc<FakeState>>, uri: axum::http::Uri) -> impl IntoResponse {
    st.log
        .lock()
        .unwrap()
        .push(json!({"path": uri.path(), "side": true, "unknown": true}));
    (
        StatusCode::NOT_FOUND,
        Json(
            json!({"type": "error", "error": {"type": "not_found_error", "message": "fake: no such route"}}),
        ),
    )
}

fn sse(event: &str, data: Value) -> String {
    format!("event: {event}\ndata: {data}\n\n")
}

/// The last text block of the last user message.
fn last_user_text(body: &Value) -> String {
    let Some(m) = body["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
    else {
        return String::new();
    };
    match &m["content"] {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .rev()
            .filter(|b| b["type"] == "text")
            .map(|b| b["text"].as_str().unwrap_or(""))
            .find(|t| !t.starts_with("<system-reminder>"))
            .unwrap_or("")
            .to_string(),
        _ => String::new(),
    }
}

async fn messages(
    State(st): State<Arc<FakeState>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let stream = body["stream"].as_bool().unwrap_or(false);
    let has_tools = body["tools"].as_array().is_some_and(|t| !t.is_empty());
    let side = body["max_tokens"].as_u64().unwrap_or(1000) <= 1 || (!stream && !has_tools);
    st.log.lock().unwrap().push(json!({"path": "/v1/messages", "headers": masked_headers(&headers), "body": body, "side": side}));
    let model = body["model"]
        .as_str()
        .unwrap_or("claude-opus-5-5")
        .to_string();
    let n = {
        let mut c = st.counter.lock().unwrap();
        *c += 1;
        *c
    };
    let id = format!("msg_fake_{n:04}");
    if side {
        return Json(json!({"id": id, "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 1, "output_tokens": 1}}))
        .into_response();
    }
    let turn = st.script.lock().unwrap().pop_front().unwrap_or_else(|| {
        if *st.echo.lock().unwrap() {
            FakeTurn::text(&format!("echo: {}", last_user_text(&body)))
        } else {
            FakeTurn::text(DEFAULT_REPLY)
        }
    });
    if let Some((status, kind, message)) = &turn.error {
        let code = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return (
            code,
            Json(json!({"type": "error", "error": {"type": kind, "message": message}})),
        )
            .into_response();
    }
    let mut events = vec![sse(
        "message_start",
        json!({"type": "message_start", "message": {"id": id, "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": turn.input_tokens, "output_tokens": 1}}}),
    )];
    let mut index = 0;
    if let Some(text) = &turn.text {
        events.push(sse("content_block_start", json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})));
        let chars: Vec<char> = text.chars().collect();
        let per = chars.len().div_ceil(turn.chunks.max(1)).max(1);
        for piece in chars.chunks(per) {
            let piece: String = piece.iter().collect();
            events.push(sse("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}})));
        }
        events.push(sse(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
        index += 1;
    }
    for (k, (name, input)) in turn.tool_uses.iter().enumerate() {
        let tid = format!("toolu_fake_{n:04}_{k}");
        events.push(sse(
            "content_block_start",
            json!({"type": "content_block_start", "index": index,
            "content_block": {"type": "tool_use", "id": tid, "name": name, "input": {}}}),
        ));
        events.push(sse(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": index,
            "delta": {"type": "input_json_delta", "partial_json": input.to_string()}}),
        ));
        events.push(sse(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
        index += 1;
    }
    let stop = if turn.tool_uses.is_empty() {
        "end_turn"
    } else {
        "tool_use"
    };
    events.push(sse(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null},
        "usage": {"output_tokens": turn.output_tokens}}),
    ));
    events.push(sse("message_stop", json!({"type": "message_stop"})));
    let delay = turn.delay;
    let mut first = true;
    let body = futures_util::stream::unfold(events.into_iter(), move |mut it| {
        let st = st.clone();
        let ev = it.next();
        let record = first && ev.as_deref().is_some_and(|e| e.contains("text_delta"));
        if record {
            first = false;
        }
        async move {
            let ev = ev?;
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if record {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_millis();
                st.first_text.lock().unwrap().push(now);
            }
            Some((Ok::<Bytes, Infallible>(Bytes::from(ev)), it))
        }
    });
    Response::builder()
        .status(200)
        .header("content-type", "text/event-stream")
        .header("request-id", format!("req_fake_{n:04}"))
        .body(Body::from_stream(body))
        .unwrap()
}

async fn oauth_usage(State(st): State<Arc<FakeState>>, headers: HeaderMap) -> Json<Value> {
    st.log.lock().unwrap().push(
        json!({"path": "/api/oauth/usage", "headers": masked_headers(&headers), "side": true}),
    );
    Json(
        json!({"five_hour": {"utilization": 12.5, "resets_at": "2026-11-25T20:00:00Z"},
        "seven_day": {"utilization": 40.0, "resets_at": null}, "seven_day_sonnet": null, "seven_day_opus": null,
        "extra_usage": {"is_enabled": false, "monthly_limit": null, "used_credits": null, "utilization": null}}),
    )
}
