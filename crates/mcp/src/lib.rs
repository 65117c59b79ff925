//! Parachute's own MCP server: the vault's sessions and tags, journals, Brain and notes
//! as MCP tools, built on the official Rust MCP SDK (rmcp).
//!
//! - over stdio: `parachute mcp --vault …` (for any MCP client on this machine);
//! - over streamable HTTP at `/mcp`, behind the API's auth (remote peers need a key);
//!   each chat session's CLI is given it as the server `parachute` with a grant token
//!   naming its session and trust level ([`parachute_core::auth::McpGrants`]).
//!
//! What a caller sees follows its confinement ([`access`]): at `full` every tool; at
//! `vault` only what such a session could reach itself (journals, Brain, notes — not
//! other sessions' transcripts, which live in the database it cannot read); at
//! `sandboxed` nothing.

pub mod access;
mod daily;
pub mod http;
mod journals;
mod notes;
mod server;
mod sessions;
pub mod stdio;

use std::sync::Arc;

use parachute_core::app::AppState;
use parachute_core::trust::TrustLevel;
use parachute_extensions::Extensions;

pub use server::VaultTools;

/// What the tools work on.
pub struct Vault {
    /// The server's state (settings, the session store, events).
    pub state: AppState,
    /// Modules and the Brain.
    pub ext: Arc<Extensions>,
    /// The level of a caller that carries no grant: over HTTP the owner (`full`, the
    /// API's auth already let it in); over stdio the level the command was given.
    pub default_level: TrustLevel,
}

impl Vault {
    /// Tools over `state` and `ext`, for callers without a grant at `default_level`.
    pub fn new(state: AppState, ext: Arc<Extensions>, default_level: TrustLevel) -> Arc<Vault> {
        Arc::new(Vault {
            state,
            ext,
            default_level,
        })
    }
}
