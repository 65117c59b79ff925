//! MCP servers: the vault's `.mcp.json` ([`config`]) and checking that a server really
//! starts and answers the MCP handshake ([`probe`]).

pub mod approvals;
pub mod config;
pub mod probe;
