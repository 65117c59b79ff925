//! The Claude Code CLI, driven the way the official Agent SDKs drive it
//!: one `claude` process per session speaking stream-json on
//! stdin/stdout with the control protocol. [`process`] owns the child; [`protocol`]
//! builds the lines we send and reads the ones we get.

pub mod process;
pub mod protocol;

pub use process::{AgentProcess, SpawnSpec, StartMode};
pub use protocol::ApiRetry;

/// A failure of the CLI process itself (not of the model).
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("cannot start the Claude CLI `{cli}`: {reason}. Install it with `npm install -g @anthropic-ai/claude-code` or set claude_cli_path")]
    Spawn { cli: String, reason: String },
    #[error("the Claude CLI stopped unexpectedly{0}")]
    Exited(String),
    #[error("cannot write to the Claude CLI: {0}")]
    Write(String),
}
