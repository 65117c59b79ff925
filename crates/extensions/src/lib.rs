//! Parachute's extensions over the core: what the vault adds to the agent besides its
//! prompt. [`modules`] are folders under `{vault}/.modules/` enabled only as approved
//! (whole-tree hash); [`brain`] indexes `Brain/entities/` for search; [`prompts`] are
//! the module folders' `CLAUDE.md` files; [`skills`], [`agents`] and [`mcp`] servers
//! reach each session's CLI through [`session::VaultExtras`].

#![warn(missing_docs)]

pub mod agents;
pub mod brain;
pub mod hooks;
pub mod mcp;
pub mod modules;
pub mod prompts;
pub mod scheduler;
pub mod session;
pub mod skills;

use std::sync::Arc;

use parachute_core::app::AppState;

pub use brain::{Brain, BrainEntity, BrainError};
pub use modules::{ModuleError, ModuleStatus, ModuleView, Modules};

/// The extensions of one running server, shared by the API, the CLI and the chat.
pub struct Extensions {
    /// The vault's modules.
    pub modules: Arc<Modules>,
    /// The hooks that run on events.
    pub hooks: Arc<hooks::Hooks>,
    /// The Brain index.
    pub brain: Brain,
    /// Serializes changes to the vault's protected configuration (`.skills/`, `.mcp.json`).
    pub config_writes: tokio::sync::Mutex<()>,
    /// Scheduled agents.
    pub scheduler: Arc<scheduler::Scheduler>,
}

impl Extensions {
    /// The extensions of the server in `state` (nothing is read yet).
    pub fn new(state: &AppState) -> Arc<Extensions> {
        let modules = Arc::new(Modules::for_paths(&state.settings.paths));
        modules.set_events(state.events.clone());
        Arc::new(Extensions {
            hooks: hooks::Hooks::new(state.settings.clone(), modules.clone()),
            scheduler: scheduler::Scheduler::new(state.clone(), modules.clone()),
            modules,
            brain: Brain::new(state.store.clone(), state.settings.paths.vault.clone()),
            config_writes: tokio::sync::Mutex::new(()),
        })
    }

    /// Start-up work: installs the bundled modules not installed before and logs what
    /// waits for approval. Never fails the start.
    pub async fn start(self: &Arc<Self>, runtime_dir: std::path::PathBuf) {
        let me = self.clone();
        let result = tokio::task::spawn_blocking(move || {
            // What earlier runs generated for their sessions (skill plugins, MCP configs
            // with resolved secrets): no process uses them now, and a session that
            // runs again gets them anew.
            for kind in ["skills", "mcp"] {
                let _ = std::fs::remove_dir_all(runtime_dir.join(kind));
            }
            let installed = me.modules.install_bundled()?;
            Ok::<_, ModuleError>((installed, me.modules.list()?))
        })
        .await;
        match result {
            Ok(Ok((installed, list))) => {
                if !installed.is_empty() {
                    tracing::info!(modules = ?installed, "bundled modules installed");
                }
                for v in list.iter().filter(|v| v.status != ModuleStatus::Loaded) {
                    tracing::warn!(module = %v.name, status = ?v.status, error = v.error.as_deref().unwrap_or(""),
                        "module disabled until approved (parachute module approve NAME)");
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "modules could not be read"),
            Err(e) => tracing::warn!(error = %e, "modules could not be read"),
        }
    }

    /// Whether module `name` is enabled (blocking work on a worker thread).
    pub async fn module_enabled(self: &Arc<Self>, name: &'static str) -> bool {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.modules.is_enabled(name))
            .await
            .unwrap_or(false)
    }
}

/// The data of a `module.loaded` or `module.unloaded` event.
pub fn module_event(v: &ModuleView) -> serde_json::Value {
    serde_json::json!({"name": v.name, "version": v.version, "hash": v.current_hash,
        "trust_level": v.approved_trust_level.or(v.trust_level), "bundled": v.bundled})
}
