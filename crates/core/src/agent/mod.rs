//! The Claude Code CLI, driven the way the official Agent SDKs drive it: one `claude`
//! process per session speaking stream-json on stdin/stdout with the control protocol.
//! `process` owns the CLI (a local child, or a container through a
//! [`ContainerLauncher`]); `protocol` builds the lines we send and reads the ones we get.

mod container;
mod process;
pub(crate) mod protocol;

pub use container::{
    parse_memory, ContainerLauncher, ContainerLimits, ContainerRequest, LaunchFuture,
};
pub use process::{
    cli_args, AgentIo, AgentProcess, Runner, SpawnSpec, StartMode, PRE_TOOL_USE_HOOK,
    SETTING_SOURCES,
};
pub use protocol::ApiRetry;

/// A failure of the CLI process itself (not of the model).
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The CLI could not be started.
    #[error("cannot start the Claude CLI `{cli}`: {reason}. Install it with `npm install -g @anthropic-ai/claude-code` or set claude_cli_path")]
    Spawn {
        /// The CLI program as configured.
        cli: String,
        /// The operating system's error.
        reason: String,
    },
    /// The CLI ended; the text adds what it said last.
    #[error("the Claude CLI stopped unexpectedly{0}")]
    Exited(String),
    /// The CLI did not answer `initialize` as an idle CLI does.
    #[error("the Claude CLI did not become ready: {0}")]
    NotReady(String),
    /// Writing to the CLI's standard input failed.
    #[error("cannot write to the Claude CLI: {0}")]
    Write(String),
    /// The sandbox could not start a container for the CLI.
    #[error("the sandbox could not start the Claude CLI: {0}")]
    Sandbox(String),
}
