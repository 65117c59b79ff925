//! `/api/mcps…`: the vault's MCP servers (`.mcp.json`, protected: it changes only
//! here), per the contract, plus a real test: the server is started and must answer
//! the MCP handshake and list its tools. Values of `env` and `headers` are never
//! returned (the file may hold secrets) unless they only name a variable.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use parachute_core::app::AppState;
use parachute_extensions::mcp::approvals::McpApprovals;
use parachute_extensions::mcp::{config, probe};
use parachute_extensions::Extensions;

use crate::error::ApiError;
use crate::extract::ApiJson;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, add))
        .routes(routes!(get_one, remove))
        .routes(routes!(test))
        .routes(routes!(approve))
        .routes(routes!(tools))
}

impl From<config::McpConfigError> for ApiError {
    fn from(e: config::McpConfigError) -> Self {
        match e {
            config::McpConfigError::NotFound(_) => ApiError::NotFound(e.to_string()),
            config::McpConfigError::Invalid(_) => ApiError::BadRequest(e.to_string()),
            // The vault's file is broken: nothing the request did, and nothing it can
            // change until the file is fixed.
            config::McpConfigError::File(_) => ApiError::Conflict(e.to_string()),
            config::McpConfigError::Io(_) => ApiError::internal(e),
        }
    }
}

/// A server as listed: its `.mcp.json` entry (keys starting with `_` left out, secrets
/// in `env`, `headers`, `args` and the URL hidden), then what the server adds (an
/// entry's own key of the same name gives way).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct McpServerView {
    /// The entry's own keys (`command`, `args`, `env`, `url`, `type`, `auth`,
    /// `headers`, `trust_level`…), as written.
    #[serde(flatten)]
    config: Map<String, Value>,
    /// Whether the entry is approved as it is now (the vault's servers only: a module's
    /// are approved with their module).
    #[serde(skip_serializing_if = "Option::is_none")]
    approved: Option<bool>,
    name: String,
    /// Always `false` (no built-in servers are listed here).
    builtin: bool,
    /// `stdio`, `http`, `sse`, or the entry's own `type`; `unknown` when it has none.
    display_type: String,
    /// `command args…`, or the URL.
    display_command: String,
    /// What is wrong with the entry, when something is.
    #[serde(skip_serializing_if = "Option::is_none")]
    validation_errors: Option<Vec<String>>,
    /// The module the server comes from (a module's server).
    #[serde(skip_serializing_if = "Option::is_none")]
    module: Option<String>,
}

impl McpServerView {
    /// The keys the server adds; an entry's own key of the same name gives way.
    const KEYS: [&'static str; 7] = [
        "approved",
        "name",
        "builtin",
        "displayType",
        "displayCommand",
        "validationErrors",
        "module",
    ];
}

/// The servers.
#[derive(Serialize, ToSchema)]
struct McpServerList {
    servers: Vec<McpServerView>,
    /// Why the vault's `.mcp.json` could not be read (its servers are then missing).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// A server added or approved.
#[derive(Serialize, ToSchema)]
struct McpServerSaved {
    success: bool,
    server: McpServerView,
}

/// A server removed.
#[derive(Serialize, ToSchema)]
struct McpServerRemoved {
    success: bool,
    /// Its name.
    removed: String,
}

/// A server as listed: its config (secrets hidden) and what we add.
fn view(name: &str, c: &Value, module: Option<&str>, approvals: &McpApprovals) -> McpServerView {
    let mut shown = config::redacted(c);
    // Our own keys, never the entry's (whose values could be of any type).
    for key in McpServerView::KEYS {
        shown.shift_remove(key);
    }
    // Built from what is shown, so no hidden value comes back through it.
    let shown = Value::Object(shown);
    let display_command = config::display_command(&shown);
    let errors = config::validate(name, c);
    McpServerView {
        config: match shown {
            Value::Object(m) => m,
            _ => Map::new(),
        },
        // A module's servers are approved with their module.
        approved: module.is_none().then(|| approvals.is_approved(name, c)),
        name: name.to_string(),
        builtin: false,
        display_type: config::kind(c),
        display_command,
        validation_errors: (!errors.is_empty()).then_some(errors),
        module: module.map(str::to_string),
    }
}

/// MCP servers are programs this machine runs: adding, removing and starting them
/// (test, tools) is for callers on this machine only, never a remote key holder.
fn approvals(s: &AppState) -> McpApprovals {
    McpApprovals::new(s.settings.paths.mcp_approvals_file())
}

fn local_only(caller: Option<Extension<crate::auth_layer::Caller>>) -> Result<(), ApiError> {
    match caller {
        Some(Extension(c)) if c.local => Ok(()),
        _ => Err(ApiError::Forbidden(
            "MCP servers run programs on the server's machine: add, remove and test them from that machine (its web UI on localhost, the desktop app or the command line)".into(),
        )),
    }
}

/// A server: its name, config, and the module it comes from.
type Listed = (String, Value, Option<String>);

/// Every server: the vault's, then those of enabled modules (marked `module`); with why
/// the vault's `.mcp.json` could not be read, if it could not (its servers are then
/// missing, the modules' still listed).
async fn all_servers(
    s: &AppState,
    ext: &Arc<Extensions>,
) -> Result<(Vec<Listed>, Option<config::McpConfigError>), ApiError> {
    let path = s.settings.paths.mcp_json();
    let ext = ext.clone();
    tokio::task::spawn_blocking(move || {
        let (vault, problem) = match config::read(&path) {
            Ok((vault, _)) => (vault, None),
            Err(e @ config::McpConfigError::File(_)) => (Default::default(), Some(e)),
            Err(e) => return Err(e),
        };
        let mut out: Vec<Listed> = vault.into_iter().map(|(n, c)| (n, c, None)).collect();
        for m in ext.modules.enabled() {
            // As approved: a module's mcp.json changed since is not offered (nor run).
            for (n, c) in parachute_extensions::modules::contents::verified_mcp_servers(&m)
                .unwrap_or_default()
            {
                if !out.iter().any(|(o, _, _)| *o == n) {
                    out.push((n, c, Some(m.name.clone())));
                }
            }
        }
        Ok::<_, config::McpConfigError>((out, problem))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(Into::into)
}

/// Every server; a broken `.mcp.json` is an error.
async fn all(s: &AppState, ext: &Arc<Extensions>) -> Result<Vec<Listed>, ApiError> {
    match all_servers(s, ext).await? {
        (_, Some(problem)) => Err(problem.into()),
        (out, None) => Ok(out),
    }
}

async fn one(
    s: &AppState,
    ext: &Arc<Extensions>,
    name: &str,
) -> Result<(Value, Option<String>), ApiError> {
    all(s, ext)
        .await?
        .into_iter()
        .find(|(n, _, _)| n == name)
        .map(|(_, c, m)| (c, m))
        .ok_or_else(|| ApiError::NotFound(format!("MCP server '{name}' not found")))
}

/// A server's config, if it may be started here: the vault's, or a module's approved
/// at `full` (the level at which its servers are offered to sessions).
async fn startable(s: &AppState, ext: &Arc<Extensions>, name: &str) -> Result<Value, ApiError> {
    let (c, module) = one(s, ext, name).await?;
    if let Some(module) = module {
        let level = ext
            .modules
            .enabled()
            .into_iter()
            .find(|m| m.name == module)
            .map(|m| m.trust_level);
        if level != Some(parachute_core::trust::TrustLevel::Full) {
            return Err(ApiError::Forbidden(format!(
                "MCP server '{name}' belongs to the module '{module}', which is not approved at full: its servers are not run"
            )));
        }
    }
    Ok(c)
}

/// Every MCP server, with its type, command and any validation errors.
#[utoipa::path(get, path = "/api/mcps", tag = "mcp", responses((status = 200, description = "The servers, with `error` when the vault's .mcp.json cannot be read", body = McpServerList)))]
async fn list(
    State(s): State<AppState>,
    Extension(ext): Extension<Arc<Extensions>>,
) -> Result<Json<McpServerList>, ApiError> {
    let (listed, problem) = all_servers(&s, &ext).await?;
    let servers: Vec<McpServerView> = listed
        .iter()
        .map(|(n, c, m)| view(n, c, m.as_deref(), &approvals(&s)))
        .collect();
    Ok(Json(McpServerList {
        servers,
        error: problem.map(|p| p.to_string()),
    }))
}

/// One MCP server.
#[utoipa::path(get, path = "/api/mcps/{name}", tag = "mcp", params(("name" = String, Path, description = "Server name")),
    responses((status = 200, description = "The server", body = McpServerView), (status = 404, description = "No such server")))]
async fn get_one(
    State(s): State<AppState>,
    Extension(ext): Extension<Arc<Extensions>>,
    Path(name): Path<String>,
) -> Result<Json<McpServerView>, ApiError> {
    let (c, m) = one(&s, &ext, &name).await?;
    Ok(Json(view(&name, &c, m.as_deref(), &approvals(&s))))
}

/// A server to add or replace.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewServer {
    name: String,
    /// `{command, args?, env?}` or `{url, type?, auth?, headers?}`; optional `trust_level`.
    config: Map<String, Value>,
}

/// Adds (or replaces) a server in `.mcp.json`, after checking it.
#[utoipa::path(post, path = "/api/mcps", tag = "mcp", request_body = NewServer,
    responses((status = 200, body = McpServerSaved), (status = 400, description = "Invalid config"),
        (status = 403, description = "Not from this machine")))]
async fn add(
    caller: Option<Extension<crate::auth_layer::Caller>>,
    State(s): State<AppState>,
    Extension(ext): Extension<Arc<Extensions>>,
    ApiJson(body): ApiJson<NewServer>,
) -> Result<Json<McpServerSaved>, ApiError> {
    local_only(caller)?;
    let c = Value::Object(body.config);
    let errors = config::validate(&body.name, &c);
    if !errors.is_empty() {
        return Err(ApiError::BadRequest(format!(
            "Invalid MCP server '{}': {}",
            body.name,
            errors.join("; ")
        )));
    }
    let path = s.settings.paths.mcp_json();
    let _one = ext.config_writes.lock().await;
    let (name, c2) = (body.name.clone(), c.clone());
    tokio::task::spawn_blocking(move || {
        let (mut servers, nested) = config::read(&path)?;
        servers.insert(name, c2);
        config::write(&path, &servers, nested)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    // Added from this machine: approved as it is.
    approvals(&s)
        .set(&body.name, Some(&c))
        .map_err(|e| ApiError::internal_while("cannot record the approval", e))?;
    Ok(Json(McpServerSaved {
        success: true,
        server: view(&body.name, &c, None, &approvals(&s)),
    }))
}

/// Removes a server from `.mcp.json` (a module's belongs to its module: 400).
#[utoipa::path(delete, path = "/api/mcps/{name}", tag = "mcp", params(("name" = String, Path, description = "Server name")),
    responses((status = 200, body = McpServerRemoved), (status = 400, description = "A module's server"), (status = 403, description = "Not from this machine"),
        (status = 404, description = "No such server")))]
async fn remove(
    caller: Option<Extension<crate::auth_layer::Caller>>,
    State(s): State<AppState>,
    Extension(ext): Extension<Arc<Extensions>>,
    Path(name): Path<String>,
) -> Result<Json<McpServerRemoved>, ApiError> {
    local_only(caller)?;
    let path = s.settings.paths.mcp_json();
    let _one = ext.config_writes.lock().await;
    if let (_, Some(module)) = one(&s, &ext, &name).await? {
        return Err(ApiError::BadRequest(format!(
            "MCP server '{name}' belongs to the module '{module}'; remove it there"
        )));
    }
    let n = name.clone();
    tokio::task::spawn_blocking(move || {
        let (mut servers, nested) = config::read(&path)?;
        if servers.remove(&n).is_none() {
            return Err(config::McpConfigError::NotFound(n));
        }
        config::write(&path, &servers, nested)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    let _ = approvals(&s).set(&name, None);
    Ok(Json(McpServerRemoved {
        success: true,
        removed: name,
    }))
}

/// Approves a server of `.mcp.json` as it is now (one written by hand, or changed since
/// its approval): sessions get it from then on.
#[utoipa::path(post, path = "/api/mcps/{name}/approve", tag = "mcp", params(("name" = String, Path, description = "Server name")),
    responses((status = 200, body = McpServerSaved), (status = 400, description = "Invalid config, or a module's server"),
        (status = 403, description = "Not from this machine"), (status = 404, description = "No such server")))]
async fn approve(
    caller: Option<Extension<crate::auth_layer::Caller>>,
    State(s): State<AppState>,
    Extension(ext): Extension<Arc<Extensions>>,
    Path(name): Path<String>,
) -> Result<Json<McpServerSaved>, ApiError> {
    local_only(caller)?;
    let (c, module) = one(&s, &ext, &name).await?;
    if let Some(module) = module {
        return Err(ApiError::BadRequest(format!(
            "MCP server '{name}' belongs to the module '{module}': it is approved with its module"
        )));
    }
    let errors = config::validate(&name, &c);
    if !errors.is_empty() {
        return Err(ApiError::BadRequest(format!(
            "Invalid MCP server '{name}': {}",
            errors.join("; ")
        )));
    }
    approvals(&s)
        .set(&name, Some(&c))
        .map_err(|e| ApiError::internal_while("cannot record the approval", e))?;
    Ok(Json(McpServerSaved {
        success: true,
        server: view(&name, &c, None, &approvals(&s)),
    }))
}

/// Why a server could not be probed: its entry is invalid, or it failed to start or
/// answer; with a hint for the owner where one helps.
struct ProbeFailure {
    error: String,
    hint: Option<&'static str>,
}

/// The common path of `test` and `tools`: from this machine only, a server that may be
/// started here, a valid entry; then start it and ask.
async fn probe_named(
    caller: Option<Extension<crate::auth_layer::Caller>>,
    s: &AppState,
    ext: &Arc<Extensions>,
    name: &str,
) -> Result<Result<probe::Probed, ProbeFailure>, ApiError> {
    local_only(caller)?;
    let c = startable(s, ext, name).await?;
    let errors = config::validate(name, &c);
    if !errors.is_empty() {
        return Ok(Err(ProbeFailure {
            error: errors.join("; "),
            hint: Some("Fix the server's entry in .mcp.json"),
        }));
    }
    Ok(probe::probe(&c, &s.settings.paths.vault)
        .await
        .map_err(|error| {
            let hint = if error.contains("cannot start") {
                Some("Check that the command is installed and on the server's PATH")
            } else if error.contains("not set") {
                Some("Set the variable in the server's environment")
            } else {
                None
            };
            ProbeFailure { error, hint }
        }))
}

/// How a test went.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum McpTestStatus {
    Ok,
    Error,
}

/// The result of a test: the server answered, or why not.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
enum McpTestResult {
    Ok(McpTestOk),
    Failed(McpTestFailed),
}

/// The server started and answered.
#[derive(Serialize, ToSchema)]
struct McpTestOk {
    name: String,
    builtin: bool,
    /// `ok`.
    status: McpTestStatus,
    message: String,
    /// The server's own name and version, as it reported them.
    server: String,
    tools: Vec<probe::ToolInfo>,
}

/// The entry is invalid, or the server failed to start or answer.
#[derive(Serialize, ToSchema)]
struct McpTestFailed {
    name: String,
    builtin: bool,
    /// `error`.
    status: McpTestStatus,
    error: String,
    /// What to do about it, where that helps.
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<String>,
}

/// A server's tools; on failure none, with why.
#[derive(Serialize, ToSchema)]
struct McpTools {
    name: String,
    tools: Vec<probe::ToolInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Starts the server, performs the MCP handshake and lists its tools (within 15 s).
#[utoipa::path(post, path = "/api/mcps/{name}/test", tag = "mcp", params(("name" = String, Path, description = "Server name")),
    responses((status = 200, description = "`status: ok` with the server and its tools, or `status: error` with `error` and maybe a `hint`", body = McpTestResult),
        (status = 403, description = "Not from this machine, or a module's server not approved at full"),
        (status = 404, description = "No such server")))]
async fn test(
    caller: Option<Extension<crate::auth_layer::Caller>>,
    State(s): State<AppState>,
    Extension(ext): Extension<Arc<Extensions>>,
    Path(name): Path<String>,
) -> Result<Json<McpTestResult>, ApiError> {
    Ok(Json(match probe_named(caller, &s, &ext, &name).await? {
        Ok(p) => McpTestResult::Ok(McpTestOk {
            name,
            builtin: false,
            status: McpTestStatus::Ok,
            message: "Server started successfully".into(),
            server: p.server,
            tools: p.tools,
        }),
        Err(f) => McpTestResult::Failed(McpTestFailed {
            name,
            builtin: false,
            status: McpTestStatus::Error,
            error: f.error,
            hint: f.hint.map(str::to_string),
        }),
    }))
}

/// The server's tools, discovered by starting it and asking (MCP `tools/list`).
#[utoipa::path(get, path = "/api/mcps/{name}/tools", tag = "mcp", params(("name" = String, Path, description = "Server name")),
    responses((status = 200, description = "The tools, or none and `error`", body = McpTools),
        (status = 403, description = "Not from this machine, or a module's server not approved at full"),
        (status = 404, description = "No such server")))]
async fn tools(
    caller: Option<Extension<crate::auth_layer::Caller>>,
    State(s): State<AppState>,
    Extension(ext): Extension<Arc<Extensions>>,
    Path(name): Path<String>,
) -> Result<Json<McpTools>, ApiError> {
    Ok(Json(match probe_named(caller, &s, &ext, &name).await? {
        Ok(p) => McpTools {
            name,
            tools: p.tools,
            error: None,
        },
        Err(f) => McpTools {
            name,
            tools: Vec::new(),
            error: Some(f.error),
        },
    }))
}
