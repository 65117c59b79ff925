//! `/api/modules…`: the vault's modules (status, approval) and the module folders'
//! prompts and stats, per the contract. The work is the extensions crate's [`Modules`].

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use parachute_core::app::AppState;
use parachute_core::trust::TrustLevel;
use parachute_extensions::{prompts, Extensions, ModuleView};

use crate::error::ApiError;
use crate::extract::{ApiJson, OptionalJson};

/// Most bytes a module prompt may have.
const MAX_PROMPT_BYTES: usize = 1024 * 1024;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(approve))
        .routes(routes!(get_prompt, put_prompt))
        .routes(routes!(stats))
}

/// The module list.
#[derive(Serialize, ToSchema)]
struct ModuleList {
    modules: Vec<ModuleView>,
}

/// Runs blocking module work on a worker thread.
async fn blocking<T: Send + 'static>(
    ext: &Arc<Extensions>,
    f: impl FnOnce(&Extensions) -> Result<T, parachute_extensions::ModuleError> + Send + 'static,
) -> Result<T, ApiError> {
    let ext = ext.clone();
    tokio::task::spawn_blocking(move || f(&ext))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(Into::into)
}

/// Every module: loaded, pending approval (with what it provides and requests, and
/// what changed since the last approval) or invalid (with the reason).
#[utoipa::path(get, path = "/api/modules", tag = "modules",
    responses((status = 200, body = ModuleList)))]
async fn list(Extension(ext): Extension<Arc<Extensions>>) -> Result<Json<ModuleList>, ApiError> {
    let modules = blocking(&ext, |e| e.modules.list()).await?;
    Ok(Json(ModuleList { modules }))
}

/// The approval's options.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
struct ApproveBody {
    /// The level to approve it at (default: the one its manifest asks for; never above).
    trust_level: Option<TrustLevel>,
    /// The hash the approver was shown (full, or at least its first 12 characters):
    /// refused with 409 if the module changed since.
    hash: Option<String>,
}

/// The approval.
#[derive(Serialize, ToSchema)]
struct Approved {
    approved: bool,
    name: String,
    message: String,
    module: ModuleView,
}

/// Approves a new or changed module as it is now; it is enabled at once.
#[utoipa::path(post, path = "/api/modules/{name}/approve", tag = "modules",
    params(("name" = String, Path, description = "Module name")), request_body(content = ApproveBody, description = "Optional"),
    responses((status = 200, body = Approved), (status = 400, description = "Invalid module or level"),
        (status = 403, description = "At `full`, from another machine"),
        (status = 404, description = "No such module, or not pending approval"),
        (status = 409, description = "Changed since shown")))]
async fn approve(
    caller: Option<Extension<crate::auth_layer::Caller>>,
    Extension(ext): Extension<Arc<Extensions>>,
    Path(name): Path<String>,
    OptionalJson(body): OptionalJson,
) -> Result<Json<Approved>, ApiError> {
    let body: ApproveBody = match body {
        None => ApproveBody::default(),
        Some(v) => crate::extract::from_value_with_loc(v, "body")?,
    };
    if let Some(h) = &body.hash {
        if h.len() < 12 || h.len() > 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ApiError::invalid(
                "string_pattern_mismatch",
                vec![json!("body"), json!("hash")],
                "The hash is the module's hash as shown: 12 to 64 hex characters",
                json!(h),
                None,
            ));
        }
    }
    // At `full` a module's hooks and MCP servers run on this machine unconfined: only
    // someone at this machine approves that. From elsewhere the level is named
    // explicitly, so a manifest changed meanwhile cannot raise it.
    let local = caller.is_some_and(|Extension(c)| c.local);
    let mut body = body;
    if !local {
        let n = name.clone();
        let view = blocking(&ext, move |e| e.modules.get(&n)).await?;
        let level = body
            .trust_level
            .or(view.trust_level)
            .unwrap_or(TrustLevel::Vault);
        if level == TrustLevel::Full {
            return Err(ApiError::Forbidden(format!(
                "Approving '{name}' at full lets it run programs on this machine unconfined: approve it from this machine (the desktop app, the web UI on localhost or `parachute module approve {name}`), or at vault from here"
            )));
        }
        body.trust_level = Some(level);
    }
    let n = name.clone();
    let module = blocking(&ext, move |e| {
        e.modules
            .approve(&n, body.trust_level, body.hash.as_deref())
    })
    .await?;
    Ok(Json(Approved {
        approved: true,
        message: format!("Module '{name}' approved and enabled"),
        name,
        module,
    }))
}

/// A module folder's prompt.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct PromptInfo {
    module: String,
    path: String,
    exists: bool,
    content: Option<String>,
    default_prompt: String,
}

/// The vault-relative and the resolved path of a module folder's prompt.
fn prompt_path(state: &AppState, module: &str) -> Result<(String, std::path::PathBuf), ApiError> {
    let rel = prompts::folder(module)
        .map(|f| format!("{f}/CLAUDE.md"))
        .ok_or_else(|| ApiError::NotFound(format!("Module '{module}' not found")))?;
    let path = state
        .settings
        .vault_gate()
        .resolve(&rel)
        .map_err(|e| ApiError::Forbidden(e.to_string()))?;
    Ok((rel, path))
}

/// Reads `{vault}/{Module}/CLAUDE.md` (module: chat, daily, brain or build).
#[utoipa::path(get, path = "/api/modules/{module}/prompt", tag = "modules",
    params(("module" = String, Path, description = "chat, daily, brain or build")),
    responses((status = 200, body = PromptInfo), (status = 404, description = "Unknown module")))]
async fn get_prompt(
    State(state): State<AppState>,
    Path(module): Path<String>,
) -> Result<Json<PromptInfo>, ApiError> {
    let (rel, path) = prompt_path(&state, &module)?;
    let content = match tokio::fs::read_to_string(&path).await {
        Ok(c) => Some(c),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(ApiError::internal_while(&format!("cannot read {rel}"), e)),
    };
    Ok(Json(PromptInfo {
        module: module.to_ascii_lowercase(),
        exists: content.is_some(),
        content,
        path: rel,
        default_prompt: prompts::default_prompt(&module).to_string(),
    }))
}

/// A prompt change: new content, or a reset to the default.
#[derive(Deserialize, ToSchema)]
struct PromptBody {
    content: Option<String>,
    #[serde(default)]
    reset: bool,
}

/// A prompt change's result: `{success, path}` when written, `{success, reset}` when reset.
#[derive(Serialize, ToSchema)]
struct PromptSaved {
    success: bool,
    /// The prompt's vault-relative path; present when written.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    path: Option<String>,
    /// `true`; present when reset.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    reset: Option<bool>,
}

/// Writes (atomically) or resets (removes, so the default applies) a module prompt.
#[utoipa::path(put, path = "/api/modules/{module}/prompt", tag = "modules",
    params(("module" = String, Path, description = "chat, daily, brain or build")), request_body = PromptBody,
    responses((status = 200, description = "`{success, path}` or `{success, reset}`", body = PromptSaved),
        (status = 400, description = "content or reset required"), (status = 404, description = "Unknown module")))]
async fn put_prompt(
    State(state): State<AppState>,
    Path(module): Path<String>,
    ApiJson(body): ApiJson<PromptBody>,
) -> Result<Json<PromptSaved>, ApiError> {
    let (rel, path) = prompt_path(&state, &module)?;
    if body.reset {
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(ApiError::internal_while(&format!("cannot reset {rel}"), e)),
        }
        return Ok(Json(PromptSaved {
            success: true,
            path: None,
            reset: Some(true),
        }));
    }
    let Some(content) = body.content else {
        return Err(ApiError::BadRequest("content or reset required".into()));
    };
    if content.len() > MAX_PROMPT_BYTES {
        return Err(ApiError::BadRequest(format!(
            "A module prompt is at most {} KB",
            MAX_PROMPT_BYTES / 1024
        )));
    }
    tokio::task::spawn_blocking(move || {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        parachute_core::util::fs::write_atomic(&path, content.as_bytes(), None)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(|e| ApiError::internal_while(&format!("cannot write {rel}"), e))?;
    Ok(Json(PromptSaved {
        success: true,
        path: Some(rel),
        reset: None,
    }))
}

/// A module folder's size.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct FolderStats {
    module: String,
    file_count: u64,
    total_size: u64,
    has_prompt: bool,
}

/// File count and size of `{vault}/{Module}`.
#[utoipa::path(get, path = "/api/modules/{module}/stats", tag = "modules",
    params(("module" = String, Path, description = "chat, daily, brain or build")),
    responses((status = 200, body = FolderStats), (status = 404, description = "Unknown module")))]
async fn stats(
    State(state): State<AppState>,
    Path(module): Path<String>,
) -> Result<Json<FolderStats>, ApiError> {
    let folder = prompts::folder(&module)
        .ok_or_else(|| ApiError::NotFound(format!("Module '{module}' not found")))?;
    let dir = state
        .settings
        .vault_gate()
        .resolve(folder)
        .map_err(|e| ApiError::Forbidden(e.to_string()))?;
    let (file_count, total_size, has_prompt) = tokio::task::spawn_blocking(move || {
        let (n, b) = prompts::folder_stats(&dir);
        (n, b, dir.join("CLAUDE.md").is_file())
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(FolderStats {
        module: module.to_ascii_lowercase(),
        file_count,
        total_size,
        has_prompt,
    }))
}
