//! API-key authentication: the auth mode, the keys stored
//! hashed in `{vault}/.parachute/server.yaml`, and the pure policy deciding whether a
//! request is local and whether it needs a key. The HTTP middleware in
//! `api::auth_layer` only wires these together.

mod keys;
mod mcp_grant;
mod policy;

pub use keys::{ApiKeyInfo, AuthStore, CreatedKey};
pub use mcp_grant::{McpGrant, McpGrants};
pub use policy::{
    extract_presented_key, is_local, is_local_request, requires_key, AccessDecision, RequestHints,
};

use std::str::FromStr;

/// Who must present a key.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Loopback clients need no key; everyone else does.
    Remote,
    /// Every request needs a key (`/` and `/api/health` excepted).
    Always,
    /// No key is ever asked for (only allowed when listening on loopback).
    Disabled,
}

impl AuthMode {
    /// The lowercase name used in `server.yaml`, `AUTH_MODE` and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::Remote => "remote",
            AuthMode::Always => "always",
            AuthMode::Disabled => "disabled",
        }
    }
}

impl FromStr for AuthMode {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s.trim().to_ascii_lowercase().as_str() {
            "remote" => Ok(AuthMode::Remote),
            "always" => Ok(AuthMode::Always),
            "disabled" => Ok(AuthMode::Disabled),
            _ => Err(()),
        }
    }
}

/// Failures of key and auth-mode management.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No stored key has this id.
    #[error("Key not found: {0}")]
    KeyNotFound(String),
    /// The given text is not `always`, `remote` or `disabled`.
    #[error("Invalid auth mode: {0}. Must be 'always', 'remote', or 'disabled'")]
    InvalidMode(String),
    /// `disabled` was requested while the server listens on this non-loopback host.
    #[error("auth mode 'disabled' needs the server to listen on loopback only (it listens on {0}); restart it with --host 127.0.0.1 first")]
    DisabledOffLoopback(String),
    /// The mode cannot be changed because `AUTH_MODE` (this value) overrides it.
    #[error("AUTH_MODE is set in the environment ({0}); unset it to change the mode here")]
    OverriddenByEnv(&'static str),
    /// `server.yaml` could not be read or parsed.
    #[error("cannot read {path}: {reason}")]
    Unreadable {
        /// The file that failed.
        path: String,
        /// The underlying I/O or parse error.
        reason: String,
    },
    /// `server.yaml` could not be written.
    #[error("cannot save {path}: {source}")]
    Unwritable {
        /// The file that failed.
        path: String,
        /// The underlying serialization or I/O error.
        #[source]
        source: crate::util::disk_full::ErrorSource,
    },
}
