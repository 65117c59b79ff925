//! A real Telegram Bot API emulator (the npm package `telegram-test-api`, run with
//! Node) behind a small proxy that fills what it lacks: a full `getMe`, long polling
//! for `getUpdates`, `setMessageReaction` and `sendChatAction`, well-formed answers to
//! `sendMessage`/`editMessageText`, injected 429s, and a black hole. The test drives
//! users through the emulator's client API and reads what the bot sent from its
//! history.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::{json, Value};

pub const TOKEN: &str = "123456:TEST-token-abcdef";
pub const BOT_ID: u64 = 666;
pub const BOT_USERNAME: &str = "ParaTestBot";

/// The emulator process (killed on drop).
pub struct Emulator {
    child: Option<Child>,
    pub port: u16,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn node_path() -> String {
    let out = Command::new("npm")
        .args(["root", "-g"])
        .output()
        .expect("npm root -g");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Emulator {
    pub fn start_on(port: u16) -> Emulator {
        let script = format!(
            "const S = require('telegram-test-api'); const s = new S({{port: {port}, host: '127.0.0.1', storeTimeout: 3600}}); \
             s.start().then(() => console.log('ready'));"
        );
        let mut child = Command::new("node")
            .args(["-e", &script])
            .env("NODE_PATH", node_path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node (the telegram-test-api emulator)");
        let mut out = child.stdout.take().expect("stdout");
        let mut buf = [0u8; 16];
        use std::io::Read;
        let n = out.read(&mut buf).unwrap_or(0);
        assert!(
            String::from_utf8_lossy(&buf[..n]).contains("ready"),
            "emulator did not start"
        );
        Emulator {
            child: Some(child),
            port,
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One call the bot made: method, body, when (ms since start).
#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    pub body: Value,
    pub at: Instant,
    pub status: u16,
}

#[derive(Default)]
struct ProxyState {
    emulator_port: Mutex<u16>,
    calls: Mutex<Vec<Call>>,
    fail_next: Mutex<HashMap<String, (usize, u64)>>,
    black_hole: Mutex<bool>,
    /// Files the bot may download (`getFile`), by file id.
    files: Mutex<HashMap<String, Vec<u8>>>,
    /// What the fake transcription service answers, and the uploads it got.
    transcript: Mutex<String>,
    uploads: Mutex<Vec<Vec<u8>>>,
}

/// The proxy the connector talks to (its `telegram.api_url`).
pub struct Telegram {
    pub emulator: Emulator,
    pub url: String,
    state: Arc<ProxyState>,
    task: tokio::task::JoinHandle<()>,
    http: reqwest::Client,
}

impl Drop for Telegram {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn ok(result: Value) -> Response {
    Json(json!({"ok": true, "result": result})).into_response()
}

fn bot_user() -> Value {
    json!({"id": BOT_ID, "is_bot": true, "first_name": "Parachute Test", "username": BOT_USERNAME})
}

/// A message as the real Bot API returns it, from what the emulator stored.
fn message(id: Value, chat_id: &Value, text: &Value) -> Value {
    let chat: i64 = chat_id
        .as_i64()
        .or_else(|| chat_id.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0);
    let chat_json = if chat < 0 {
        json!({"id": chat, "type": "group", "title": "Test group"})
    } else {
        json!({"id": chat, "type": "private", "first_name": "Test"})
    };
    json!({"message_id": id, "date": chrono::Utc::now().timestamp(), "chat": chat_json,
           "from": bot_user(), "text": text})
}

async fn proxy(State(st): State<Arc<ProxyState>>, uri: Uri, body: Bytes) -> Response {
    let path = uri.path().to_string();
    // The fake speech-to-text service (OpenAI-compatible).
    if path == "/v1/audio/transcriptions" {
        st.uploads.lock().unwrap().push(body.to_vec());
        let text = st.transcript.lock().unwrap().clone();
        return Json(json!({"text": text})).into_response();
    }
    // File downloads: `/file/bot<token>/<file_path>`.
    if let Some(rest) = path.strip_prefix("/file/bot") {
        // teloxide percent-encodes the file path (`voice%2Fvoice-1`).
        let file_path = rest
            .split_once('/')
            .map(|(_, p)| p.replace("%2F", "/"))
            .unwrap_or_default();
        let id = file_path.trim_start_matches("voice/");
        return match st.files.lock().unwrap().get(id) {
            Some(bytes) => bytes.clone().into_response(),
            None => {
                eprintln!("test proxy: no file for {path}");
                (StatusCode::NOT_FOUND, "no such file").into_response()
            }
        };
    }
    let Some(rest) = path.strip_prefix("/bot") else {
        eprintln!("test proxy: unknown path {path}");
        return (StatusCode::NOT_FOUND, "no").into_response();
    };
    let (token, method) = rest.split_once('/').unwrap_or((rest, ""));
    // Bot API method names are case-insensitive (teloxide sends `GetMe`).
    let mut method = method.to_string();
    if let Some(first) = method.get(..1) {
        method = first.to_ascii_lowercase() + &method[1..];
    }
    let method = method.as_str();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let black = *st.black_hole.lock().unwrap();
    if black {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    let injected = {
        let mut f = st.fail_next.lock().unwrap();
        match f.get_mut(method) {
            Some((n, secs)) if *n > 0 => {
                *n -= 1;
                Some(*secs)
            }
            _ => None,
        }
    };
    let record = |status: u16| {
        st.calls.lock().unwrap().push(Call {
            method: method.to_string(),
            body: body.clone(),
            at: Instant::now(),
            status,
        })
    };
    if let Some(secs) = injected {
        record(429);
        return (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({"ok": false, "error_code": 429, "description": format!("Too Many Requests: retry after {secs}"),
                        "parameters": {"retry_after": secs}})),
        )
            .into_response();
    }
    if method != "getUpdates" {
        record(200);
    }
    let emu = *st.emulator_port.lock().unwrap();
    let http = reqwest::Client::new();
    let forward = |m: &str, b: &Value| {
        let url = format!("http://127.0.0.1:{emu}/bot{token}/{m}");
        let req = http.post(url).json(b);
        async move {
            match req.send().await {
                Ok(r) => r.json::<Value>().await.ok(),
                Err(_) => None,
            }
        }
    };
    match method {
        "getMe" => ok(json!({"id": BOT_ID, "is_bot": true, "first_name": "Parachute Test", "username": BOT_USERNAME,
            "can_join_groups": true, "can_read_all_group_messages": false, "supports_inline_queries": false,
            "can_connect_to_business": false, "has_main_web_app": false})),
        "getUpdates" => {
            let wait = body["timeout"].as_u64().unwrap_or(0).min(30);
            let deadline = Instant::now() + Duration::from_secs(wait);
            loop {
                let Some(v) = forward("getUpdates", &json!({})).await else {
                    return (StatusCode::BAD_GATEWAY, "emulator down").into_response();
                };
                let mut list = v["result"].as_array().cloned().unwrap_or_default();
                if !list.is_empty() || Instant::now() >= deadline {
                    for u in &mut list {
                        if let Some(m) = u["message"].as_object_mut() {
                            m.remove("botToken");
                        }
                    }
                    return ok(Value::Array(list));
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        "setMessageReaction" | "sendChatAction" => ok(json!(true)),
        "getFile" => {
            let id = body["file_id"].as_str().unwrap_or("").to_string();
            match st.files.lock().unwrap().get(&id) {
                Some(bytes) => ok(json!({"file_id": id, "file_unique_id": format!("u{id}"),
                    "file_size": bytes.len(), "file_path": format!("voice/{id}")})),
                None => Json(json!({"ok": false, "error_code": 400, "description": "Bad Request: invalid file_id"})).into_response(),
            }
        }
        "sendMessage" => match forward("sendMessage", &body).await {
            Some(v) if v["ok"] == true => ok(message(v["result"]["message_id"].clone(), &body["chat_id"], &body["text"])),
            _ => (StatusCode::BAD_GATEWAY, "emulator down").into_response(),
        },
        "editMessageText" => match forward("editMessageText", &body).await {
            Some(v) if v["ok"] == true => ok(message(body["message_id"].clone(), &body["chat_id"], &body["text"])),
            _ => (StatusCode::BAD_GATEWAY, "emulator down").into_response(),
        },
        "deleteMessage" => {
            let _ = forward("deleteMessage", &body).await;
            ok(json!(true))
        }
        other => {
            Json(json!({"ok": false, "error_code": 400, "description": format!("Bad Request: method {other} not in the test proxy")}))
                .into_response()
        }
    }
}

impl Telegram {
    pub async fn start() -> Telegram {
        let emulator = Emulator::start_on(free_port());
        let state = Arc::new(ProxyState::default());
        *state.emulator_port.lock().unwrap() = emulator.port;
        let app = Router::new().fallback(proxy).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Telegram {
            emulator,
            url,
            state,
            task,
            http: reqwest::Client::new(),
        }
    }

    /// Restarts the emulator on the same port (its stored messages are lost); the
    /// proxy keeps answering (with errors) while it is down.
    pub async fn restart_emulator(&mut self, down_for: Duration) {
        let port = self.emulator.port;
        self.emulator.stop();
        tokio::time::sleep(down_for).await;
        self.emulator = Emulator::start_on(port);
    }

    /// The next `n` calls of `method` answer 429 with `retry_after` seconds.
    pub fn fail_next(&self, method: &str, n: usize, retry_after: u64) {
        self.state
            .fail_next
            .lock()
            .unwrap()
            .insert(method.into(), (n, retry_after));
    }

    /// Makes `bytes` downloadable as `file_id`.
    pub fn add_file(&self, file_id: &str, bytes: Vec<u8>) {
        self.state
            .files
            .lock()
            .unwrap()
            .insert(file_id.into(), bytes);
    }

    /// What the fake transcription service answers.
    pub fn set_transcript(&self, text: &str) {
        *self.state.transcript.lock().unwrap() = text.into();
    }

    /// The bodies uploaded to the fake transcription service.
    pub fn uploads(&self) -> Vec<Vec<u8>> {
        self.state.uploads.lock().unwrap().clone()
    }

    /// A user's voice message (the file must have been added with [`Telegram::add_file`]).
    pub async fn send_voice(&self, chat: i64, user: i64, name: &str, file_id: &str) {
        let msg = json!({
            "botToken": TOKEN,
            "from": {"id": user, "is_bot": false, "first_name": name, "username": format!("user{user}")},
            "chat": {"id": chat, "type": "private", "first_name": name},
            "date": chrono::Utc::now().timestamp(),
            "voice": {"file_id": file_id, "file_unique_id": format!("u{file_id}"), "duration": 2, "mime_type": "audio/ogg"},
        });
        let r = self
            .http
            .post(self.emulator.url("/sendMessage"))
            .json(&msg)
            .send()
            .await
            .expect("send voice");
        assert!(r.status().is_success());
    }

    pub fn set_black_hole(&self, on: bool) {
        *self.state.black_hole.lock().unwrap() = on;
    }

    pub fn calls(&self, method: &str) -> Vec<Call> {
        self.state
            .calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    /// A user's message, as the emulator's client sends it; returns when it is queued.
    pub async fn send(&self, chat: i64, user: i64, name: &str, text: &str, entities: Value) {
        let chat_json = if chat < 0 {
            json!({"id": chat, "type": "group", "title": "Test group"})
        } else {
            json!({"id": chat, "type": "private", "first_name": name})
        };
        let mut msg = json!({
            "botToken": TOKEN,
            "from": {"id": user, "is_bot": false, "first_name": name, "username": format!("user{user}")},
            "chat": chat_json,
            "date": chrono::Utc::now().timestamp(),
            "text": text,
        });
        if entities.is_array() {
            msg["entities"] = entities;
        }
        let path = if text.starts_with('/') {
            "/sendCommand"
        } else {
            "/sendMessage"
        };
        if text.starts_with('/') && msg.get("entities").is_none() {
            let len = text.find(' ').unwrap_or(text.len());
            msg["entities"] = json!([{"type": "bot_command", "offset": 0, "length": len}]);
        }
        let r = self
            .http
            .post(self.emulator.url(path))
            .json(&msg)
            .send()
            .await
            .expect("emulator client send");
        assert!(r.status().is_success(), "emulator refused the user message");
    }

    /// What the bot sent to `chat`, oldest first (edits applied).
    pub async fn bot_texts(&self, chat: i64) -> Vec<String> {
        let v: Value = self
            .http
            .post(self.emulator.url("/getUpdatesHistory"))
            .json(&json!({"token": TOKEN}))
            .send()
            .await
            .expect("history")
            .json()
            .await
            .expect("history json");
        v["result"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|u| u.get("message").and_then(|m| m.get("chat_id")).is_some())
            .filter(|u| u["message"]["chat_id"].to_string().trim_matches('"') == chat.to_string())
            .map(|u| u["message"]["text"].as_str().unwrap_or("").to_string())
            .collect()
    }

    /// Waits until the bot sent `chat` at least `n` messages and the last one no longer
    /// ends with the draft marker; returns them.
    pub async fn wait_texts(&self, chat: i64, n: usize, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        loop {
            let t = self.bot_texts(chat).await;
            if t.len() >= n && !t.iter().any(|m| m.ends_with(" …")) {
                return t;
            }
            if Instant::now() > deadline {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A mention entity of the bot at `offset` (UTF-16 units).
pub fn mention_at(offset: usize) -> Value {
    json!([{"type": "mention", "offset": offset, "length": BOT_USERNAME.len() + 1}])
}
