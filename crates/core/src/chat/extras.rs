//! What the vault adds to a session's CLI besides its prompt: skills (plugin folders
//! for `--plugin-dir`), sub-agents (the `agents` of `initialize`) and MCP servers (a
//! private `--mcp-config` file). The core only carries them to the process; the
//! extensions crate decides them ([`ExtrasSource`]), per trust level and workspace.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use serde_json::{Map, Value};

use crate::trust::TrustLevel;
use crate::workspaces::Capabilities;

/// For whom extras are asked.
#[derive(Debug, Clone)]
pub struct ExtrasQuery {
    /// The session (its id names its generated files).
    pub session_id: String,
    /// The level the turn runs at.
    pub level: TrustLevel,
    /// The workspace's capability filters (all, when there is no workspace).
    pub capabilities: Capabilities,
}

/// The name sessions know Parachute's own MCP server by (its tools are
/// `mcp__parachute__*`). Its calls never prompt the owner: the server answers each
/// session only within that session's confinement.
pub const OWN_MCP_SERVER: &str = "parachute";

/// What a session's CLI gets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionExtras {
    /// Plugin folders (`--plugin-dir`).
    pub plugin_dirs: Vec<PathBuf>,
    /// The `--mcp-config` file, when there are servers (it may hold secrets: 0600).
    pub mcp_config: Option<PathBuf>,
    /// The MCP server names offered (for logs and events).
    pub mcp_servers: Vec<String>,
    /// Sub-agents: `{name: {description, prompt, tools?, model?}}`.
    pub agents: Map<String, Value>,
    /// Identifies all of it: a warm process made with other extras is not reused.
    pub digest: String,
}

/// Decides a session's extras.
pub trait ExtrasSource: Send + Sync {
    /// The extras for `query`; never fails a turn (what cannot be used is left out and
    /// logged).
    fn extras(
        &self,
        query: ExtrasQuery,
    ) -> Pin<Box<dyn Future<Output = SessionExtras> + Send + '_>>;

    /// Removes what was made for a session that will never run (a spare stopped before
    /// any chat adopted it). Blocking file work.
    fn forget(&self, _session_id: &str) {}
}
