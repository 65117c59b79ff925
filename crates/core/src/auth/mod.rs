//! API-key authentication: the auth mode, the keys stored
//! hashed in `{vault}/.parachute/server.yaml`, and the pure policy deciding whether a
//! request is local and whether it needs a key. The HTTP middleware in
//! `api::auth_layer` only wires these together.

mod keys;
mod policy;

pub use keys::{ApiKeyInfo, AuthStore, CreatedKey};
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

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("Key not found: {0}")]
    KeyNotFound(String),
    #[error("Invalid auth mode: {0}. Must be 'always', 'remote', or 'disabled'")]
    InvalidMode(String),
    #[error("auth mode 'disabled' needs the server to listen on loopback only (it listens on {0}); restart it with --host 127.0.0.1 first")]
    DisabledOffLoopback(String),
    #[error("AUTH_MODE is set in the environment ({0}); unset it to change the mode here")]
    OverriddenByEnv(&'static str),
    #[error("cannot read {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("cannot save {path}: {reason}")]
    Unwritable { path: String, reason: String },
}
