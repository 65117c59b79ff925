//! `POST /api/mcps/{name}/test`: starts the server as a session would (variables
//! substituted; a stdio server with a minimal environment, in the vault), performs the
//! MCP handshake and lists its tools, within [`TIMEOUT`]. A stdio server is driven with
//! the official Rust SDK (rmcp); an HTTP server is spoken to in JSON-RPC over its
//! streamable-HTTP endpoint. The process is stopped afterwards, whatever happened.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};

use super::config;

/// How long a test may take.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// A tool the server offers.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct ToolInfo {
    /// Its name (the model sees `mcp__{server}__{name}`).
    pub name: String,
    /// What it does.
    pub description: Option<String>,
}

/// What the handshake found.
#[derive(Debug, Clone, PartialEq)]
pub struct Probed {
    /// The server's own name and version, as it reported them.
    pub server: String,
    /// Its tools.
    pub tools: Vec<ToolInfo>,
}

/// Environment variables a stdio server inherits (besides its config's `env`).
const KEPT_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TMPDIR",
    "TZ",
    "USER",
    "SYSTEMROOT",
];

/// Starts the server `config`, shakes hands and lists its tools.
pub async fn probe(config_value: &Value, vault: &Path) -> Result<Probed, String> {
    let resolved = config::resolve(config_value, &config::env_lookup)?;
    // Messages name the command as written (before substitution): a value filled in
    // from the environment never reaches an answer.
    let shown = config::display_command(&Value::Object(config::redacted(config_value)));
    let work = async {
        match config::kind(&resolved).as_str() {
            "stdio" => stdio(&resolved, vault, &shown).await,
            "http" => http(&resolved).await,
            other => Err(format!("cannot test a server of type '{other}'")),
        }
    };
    tokio::time::timeout(TIMEOUT, work).await.map_err(|_| {
        format!(
            "no answer to the MCP handshake within {} s",
            TIMEOUT.as_secs()
        )
    })?
}

async fn stdio(c: &Value, vault: &Path, shown: &str) -> Result<Probed, String> {
    use rmcp::transport::TokioChildProcess;
    use rmcp::ServiceExt;

    let program = c.get("command").and_then(Value::as_str).unwrap_or_default();
    let mut cmd = tokio::process::Command::new(program);
    if let Some(args) = c.get("args").and_then(Value::as_array) {
        cmd.args(args.iter().filter_map(Value::as_str));
    }
    cmd.current_dir(vault).env_clear();
    for k in KEPT_ENV {
        if let Ok(v) = std::env::var(k) {
            cmd.env(k, v);
        }
    }
    if let Some(env) = c.get("env").and_then(Value::as_object) {
        for (k, v) in env {
            if let Some(v) = v.as_str() {
                cmd.env(k, v);
            }
        }
    }
    cmd.stderr(std::process::Stdio::null());
    let transport =
        TokioChildProcess::new(cmd).map_err(|e| format!("cannot start '{shown}': {}", e.kind()))?;
    let client = ().serve(transport).await.map_err(|e| {
        format!(
            "the MCP handshake failed ({})",
            handshake_reason(&e.to_string())
        )
    })?;
    let server = client
        .peer_info()
        .and_then(|i| i.server_info.clone())
        .map(|s| format!("{} {}", s.name, s.version))
        .unwrap_or_default();
    let tools = client.list_all_tools().await;
    let _ = client.cancel().await;
    let tools = tools.map_err(|e| format!("tools/list failed: {e}"))?;
    Ok(Probed {
        server,
        tools: tools
            .into_iter()
            .map(|t| ToolInfo {
                name: t.name.to_string(),
                description: t.description.map(|d| d.to_string()),
            })
            .collect(),
    })
}

/// The kind of a handshake failure, without the SDK's details (which may quote the
/// command line).
fn handshake_reason(text: &str) -> &'static str {
    let t = text.to_ascii_lowercase();
    if t.contains("closed") || t.contains("eof") || t.contains("exit") {
        "the server exited or closed its output"
    } else if t.contains("parse") || t.contains("json") || t.contains("deserial") {
        "the server's reply is not MCP JSON-RPC"
    } else {
        "no valid initialize reply"
    }
}

/// One JSON-RPC exchange over streamable HTTP: the reply as JSON, or the first
/// `data:` line of an event stream.
async fn rpc(
    client: &reqwest::Client,
    url: &str,
    headers: &reqwest::header::HeaderMap,
    session: Option<&str>,
    body: Value,
) -> Result<(Option<Value>, Option<String>), String> {
    let mut req = client
        .post(url)
        .headers(headers.clone())
        .header("accept", "application/json, text/event-stream")
        .json(&body);
    if let Some(s) = session {
        req = req.header("mcp-session-id", s);
    }
    let r = req
        .send()
        .await
        .map_err(|e| format!("cannot reach the server: {}", e.without_url()))?;
    let status = r.status();
    let session = r
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if !status.is_success() {
        return Err(format!("the server answered HTTP {}", status.as_u16()));
    }
    if body.get("id").is_none() {
        return Ok((None, session));
    }
    let sse = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/event-stream"));
    let text = r.text().await.map_err(|e| e.without_url().to_string())?;
    let json_text = if sse {
        text.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(str::trim)
            .find(|d| !d.is_empty())
            .unwrap_or("")
            .to_string()
    } else {
        text
    };
    let v: Value = serde_json::from_str(&json_text)
        .map_err(|_| "the server's reply is not JSON-RPC".to_string())?;
    if let Some(e) = v.get("error") {
        return Err(format!(
            "the server refused: {}",
            e.get("message").and_then(Value::as_str).unwrap_or("error")
        ));
    }
    Ok((v.get("result").cloned(), session))
}

async fn http(c: &Value) -> Result<Probed, String> {
    let url = c.get("url").and_then(Value::as_str).unwrap_or_default();
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(h) = c.get("headers").and_then(Value::as_object) {
        for (k, v) in h {
            if let (Ok(name), Some(Ok(value))) = (
                reqwest::header::HeaderName::from_bytes(k.as_bytes()),
                v.as_str().map(reqwest::header::HeaderValue::from_str),
            ) {
                headers.insert(name, value);
            }
        }
    }
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "parachute", "version": env!("CARGO_PKG_VERSION")}}});
    let (result, session) = rpc(&client, url, &headers, None, init).await?;
    let info = result.unwrap_or(Value::Null);
    let server = format!(
        "{} {}",
        info["serverInfo"]["name"].as_str().unwrap_or(""),
        info["serverInfo"]["version"].as_str().unwrap_or("")
    );
    let s = session.as_deref();
    rpc(
        &client,
        url,
        &headers,
        s,
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await?;
    let (tools, _) = rpc(
        &client,
        url,
        &headers,
        s,
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    )
    .await?;
    let tools = tools
        .and_then(|t| t.get("tools").cloned())
        .and_then(|t| t.as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|t| {
            Some(ToolInfo {
                name: t.get("name")?.as_str()?.to_string(),
                description: t
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            })
        })
        .collect();
    Ok(Probed {
        server: server.trim().to_string(),
        tools,
    })
}
