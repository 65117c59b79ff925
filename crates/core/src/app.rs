//! The shared state of a running server: settings, store, auth, workspaces, secrets.
//! Built once by [`AppState::open`] and handed to the HTTP layer as axum `State`.

use std::sync::Arc;
use std::time::Instant;

use crate::auth::AuthStore;
use crate::config::secrets::SecretStore;
use crate::config::Settings;
use crate::db::Store;
use crate::workspaces::WorkspaceStore;

/// Everything a request handler may need; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Settings resolved at start (flags, environment, config files).
    pub settings: Arc<Settings>,
    /// The session database.
    pub store: Store,
    /// API keys and the auth mode, loaded from `server.yaml`.
    pub auth: Arc<AuthStore>,
    /// The vault's workspace configs.
    pub workspaces: Arc<WorkspaceStore>,
    /// Stored credentials (the secrets file).
    pub secrets: Arc<SecretStore>,
    /// When the state was built; the health route reports uptime from it.
    pub started: Instant,
    /// Chat turns, their event logs and the warm CLI pool.
    pub chat: Arc<crate::chat::ChatService>,
    /// Serializes read-modify-write updates of a session's row and metadata.
    pub sessions: Arc<crate::sessions::SessionUpdates>,
    /// The desktop app's controls, when the server runs inside it.
    pub desktop: crate::desktop::Desktop,
    /// Where events for hooks are fired.
    pub events: Arc<crate::notify::EventBus>,
    /// Tokens that let each session's CLI call the server's own MCP server.
    pub mcp_grants: Arc<crate::auth::McpGrants>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The settings are invalid or unsafe (e.g. auth disabled off loopback).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    /// The auth configuration could not be loaded.
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),
    /// A folder the server needs could not be created.
    #[error("cannot create {path}: {reason}")]
    Dirs {
        /// The folder named in the message (the vault's `.parachute/`).
        path: String,
        /// The I/O error, as text.
        reason: String,
    },
    /// The address could not be bound, or serving on it failed.
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        /// The address asked for, as `host:port`.
        addr: String,
        /// The I/O error, as text.
        reason: String,
    },
}

impl AppState {
    /// Creates the folders, opens the store and loads auth.
    pub async fn open(settings: Settings) -> Result<AppState, StartError> {
        settings.paths.ensure_dirs().map_err(|e| StartError::Dirs {
            path: settings.paths.vault_dot().display().to_string(),
            reason: e.to_string(),
        })?;
        let store = Store::open(&settings.db_path).await?;
        let auth = AuthStore::load(
            settings.paths.server_yaml(),
            settings.auth_mode_default,
            settings.auth_mode_override,
        )?;
        if auth.mode() == crate::auth::AuthMode::Disabled && !settings.binds_loopback_only() {
            return Err(crate::config::ConfigError::DisabledAuthOffLoopback {
                host: settings.host.clone(),
            }
            .into());
        }
        let workspaces =
            WorkspaceStore::new(settings.vault_gate(), settings.paths.workspaces_dir());
        let secrets = Arc::new(SecretStore::new(settings.paths.secrets_file()));
        let settings = Arc::new(settings);
        let workspaces = Arc::new(workspaces);
        let events = Arc::new(crate::notify::EventBus::default());
        let chat = Arc::new(crate::chat::ChatService::new(
            settings.clone(),
            store.clone(),
            secrets.clone(),
            workspaces.clone(),
        ));
        chat.set_events(events.clone());
        Ok(AppState {
            settings,
            store,
            auth: Arc::new(auth),
            workspaces,
            secrets,
            chat,
            started: Instant::now(),
            sessions: Arc::default(),
            desktop: crate::desktop::Desktop::default(),
            events,
            mcp_grants: Arc::default(),
        })
    }
}
