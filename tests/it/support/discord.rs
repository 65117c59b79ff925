//! A fake Discord: the REST API (`/api/v10/...`, where serenity's `HttpBuilder::proxy`
//! sends every call) and the gateway over plain `ws://` (HELLO, IDENTIFY → READY,
//! heartbeats and their ACKs, then MESSAGE_CREATE and INTERACTION_CREATE dispatches
//! the test injects). It records every REST call and keeps each channel's messages so
//! history reads work.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::ws::{Message as Ws, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::mpsc;

pub const TOKEN: &str = "fake-discord-token-0123456789";
pub const BOT_ID: u64 = 100;
pub const APP_ID: u64 = 200;

#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub body: Value,
    pub at: Instant,
}

#[derive(Default)]
struct St {
    port: Mutex<u16>,
    seq: AtomicU64,
    ids: AtomicU64,
    sockets: Mutex<Vec<mpsc::UnboundedSender<String>>>,
    calls: Mutex<Vec<Call>>,
    /// Each channel's messages, oldest first (users' and the bot's).
    channels: Mutex<HashMap<u64, Vec<Value>>>,
    /// Interaction token → channel, for follow-ups.
    tokens: Mutex<HashMap<String, u64>>,
    identified: AtomicU64,
}

pub struct Discord {
    pub url: String,
    st: Arc<St>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Discord {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn user(id: u64, name: &str, bot: bool) -> Value {
    json!({"id": id.to_string(), "username": name, "discriminator": "0", "avatar": null, "bot": bot, "global_name": name})
}

impl St {
    fn id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::SeqCst) + 1000
    }

    fn message(
        &self,
        channel: u64,
        guild: Option<u64>,
        author: Value,
        content: &str,
        mentions: Vec<Value>,
    ) -> Value {
        let mut m = json!({"id": self.id().to_string(), "channel_id": channel.to_string(), "author": author,
            "content": content, "timestamp": "2026-12-01T00:00:00.000000+00:00", "edited_timestamp": null,
            "tts": false, "mention_everyone": false, "mentions": mentions, "mention_roles": [],
            "attachments": [], "embeds": [], "pinned": false, "type": 0});
        if let Some(g) = guild {
            m["guild_id"] = json!(g.to_string());
        }
        self.channels
            .lock()
            .unwrap()
            .entry(channel)
            .or_default()
            .push(m.clone());
        m
    }

    fn dispatch(&self, t: &str, d: Value) {
        let s = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        let text = json!({"op": 0, "s": s, "t": t, "d": d}).to_string();
        self.sockets
            .lock()
            .unwrap()
            .retain(|tx| tx.send(text.clone()).is_ok());
    }
}

async fn gateway_url(State(st): State<Arc<St>>) -> Json<Value> {
    let port = *st.port.lock().unwrap();
    Json(json!({"url": format!("ws://127.0.0.1:{port}/gateway")}))
}

async fn gateway(State(st): State<Arc<St>>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| session(st, socket))
}

async fn session(st: Arc<St>, mut socket: WebSocket) {
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let hello = json!({"op": 10, "d": {"heartbeat_interval": 1000}}).to_string();
    if socket.send(Ws::Text(hello.into())).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            out = rx.recv() => {
                let Some(text) = out else { return };
                if socket.send(Ws::Text(text.into())).await.is_err() {
                    return;
                }
            }
            got = socket.recv() => {
                let Some(Ok(frame)) = got else { return };
                let v: Value = match frame {
                    Ws::Text(t) => serde_json::from_str(t.as_str()).unwrap_or_default(),
                    Ws::Close(_) => return,
                    _ => continue,
                };
                match v["op"].as_u64() {
                    Some(2) => {
                        st.identified.fetch_add(1, Ordering::SeqCst);
                        let port = *st.port.lock().unwrap();
                        let s = st.seq.fetch_add(1, Ordering::SeqCst) + 1;
                        let ready = json!({"op": 0, "s": s, "t": "READY", "d": {"v": 10,
                            "user": user(BOT_ID, "parabot", true), "guilds": [], "session_id": "sess-1",
                            "resume_gateway_url": format!("ws://127.0.0.1:{port}/gateway"),
                            "shard": [0, 1], "application": {"id": APP_ID.to_string(), "flags": 0}}});
                        if socket.send(Ws::Text(ready.to_string().into())).await.is_err() {
                            return;
                        }
                        st.sockets.lock().unwrap().push(tx.clone());
                    }
                    Some(1) if socket.send(Ws::Text(json!({"op": 11}).to_string().into())).await.is_err() => return,
                    _ => {}
                }
            }
        }
    }
}

async fn rest(State(st): State<Arc<St>>, method: Method, uri: Uri, body: Bytes) -> Response {
    let path = uri.path().trim_start_matches("/api/v10").to_string();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    st.calls.lock().unwrap().push(Call {
        method: method.to_string(),
        path: path.clone(),
        body: body.clone(),
        at: Instant::now(),
    });
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let no_content = || StatusCode::NO_CONTENT.into_response();
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["users", "@me"]) => Json(user(BOT_ID, "parabot", true)).into_response(),
        ("POST", ["channels", c, "messages"]) => {
            let c: u64 = c.parse().unwrap_or(0);
            let content = body["content"].as_str().unwrap_or("").to_string();
            Json(st.message(c, None, user(BOT_ID, "parabot", true), &content, vec![]))
                .into_response()
        }
        ("GET", ["channels", c, "messages"]) => {
            let c: u64 = c.parse().unwrap_or(0);
            let before: u64 = uri
                .query()
                .unwrap_or("")
                .split('&')
                .find_map(|kv| kv.strip_prefix("before="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(u64::MAX);
            let list: Vec<Value> = st
                .channels
                .lock()
                .unwrap()
                .get(&c)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|m| {
                    m["id"]
                        .as_str()
                        .and_then(|i| i.parse::<u64>().ok())
                        .unwrap_or(0)
                        < before
                })
                .rev()
                .take(50)
                .collect();
            Json(Value::Array(list)).into_response()
        }
        (_, ["channels", _, "messages", _, "reactions", ..])
        | ("POST", ["channels", _, "typing"]) => no_content(),
        ("POST", ["interactions", _, _, "callback"]) => no_content(),
        ("PUT", ["applications", _, "commands"]) => Json(json!([])).into_response(),
        ("POST", ["webhooks", _, token]) => {
            let c = st.tokens.lock().unwrap().get(*token).copied().unwrap_or(0);
            let content = body["content"].as_str().unwrap_or("").to_string();
            Json(st.message(c, None, user(BOT_ID, "parabot", true), &content, vec![]))
                .into_response()
        }
        _ => (
            StatusCode::NOT_FOUND,
            Json(json!({"code": 0, "message": format!("fake: no route {method} {path}")})),
        )
            .into_response(),
    }
}

impl Discord {
    pub async fn start() -> Discord {
        let st = Arc::new(St::default());
        let app = Router::new()
            .route("/api/v10/gateway", get(gateway_url))
            .route("/gateway", get(gateway))
            .fallback(rest)
            .with_state(st.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        *st.port.lock().unwrap() = port;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Discord {
            url: format!("http://127.0.0.1:{port}"),
            st,
            task,
        }
    }

    /// Whether the bot is connected (identified at least once).
    pub fn connected(&self) -> bool {
        self.st.identified.load(Ordering::SeqCst) > 0 && !self.st.sockets.lock().unwrap().is_empty()
    }

    /// A user's message; `mention_bot` adds the bot to its mentions (and `<@100>` must be
    /// in the text for a real mention). Returns its id.
    pub fn user_message(
        &self,
        channel: u64,
        guild: Option<u64>,
        user_id: u64,
        name: &str,
        content: &str,
        mention_bot: bool,
    ) -> u64 {
        let mentions = if mention_bot {
            vec![user(BOT_ID, "parabot", true)]
        } else {
            vec![]
        };
        let m = self.st.message(
            channel,
            guild,
            user(user_id, name, false),
            content,
            mentions,
        );
        self.st.dispatch("MESSAGE_CREATE", m.clone());
        m["id"].as_str().unwrap().parse().unwrap()
    }

    /// A slash command with one string option.
    pub fn slash(
        &self,
        channel: u64,
        user_id: u64,
        name: &str,
        command: &str,
        option: Option<(&str, &str)>,
    ) {
        let id = self.st.id();
        let token = format!("itok-{id}");
        self.st
            .tokens
            .lock()
            .unwrap()
            .insert(token.clone(), channel);
        let options: Vec<Value> = option
            .map(|(n, v)| vec![json!({"name": n, "type": 3, "value": v})])
            .unwrap_or_default();
        self.st.dispatch(
            "INTERACTION_CREATE",
            json!({"id": id.to_string(), "application_id": APP_ID.to_string(), "type": 2,
                "data": {"id": "700", "name": command, "type": 1, "options": options},
                "channel_id": channel.to_string(), "user": user(user_id, name, false),
                "token": token, "version": 1, "locale": "en-US", "app_permissions": "0", "entitlements": [],
                "attachment_size_limit": 10_485_760}),
        );
    }

    /// What the bot posted in `channel`, oldest first.
    pub fn bot_texts(&self, channel: u64) -> Vec<String> {
        self.st
            .channels
            .lock()
            .unwrap()
            .get(&channel)
            .into_iter()
            .flatten()
            .filter(|m| m["author"]["id"].as_str() == Some(BOT_ID.to_string().as_str()))
            .map(|m| m["content"].as_str().unwrap_or("").to_string())
            .collect()
    }

    pub async fn wait_texts(
        &self,
        channel: u64,
        n: usize,
        within: std::time::Duration,
    ) -> Vec<String> {
        let deadline = Instant::now() + within;
        loop {
            let t = self.bot_texts(channel);
            if t.len() >= n || Instant::now() > deadline {
                return t;
            }
            tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        }
    }

    pub fn calls(&self, method: &str, path_contains: &str) -> Vec<Call> {
        self.st
            .calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.method == method && c.path.contains(path_contains))
            .cloned()
            .collect()
    }
}
