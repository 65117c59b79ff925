//! The turn: a chat message run through the Claude CLI as one agent turn whose events
//! are streamed to whoever is attached. Turns belong to the server, not to an HTTP
//! connection: [`turns`] keeps each turn's numbered event log so clients can detach and
//! re-attach; [`orchestrator`] runs the turn; [`events`] builds the contract's events;
//! [`pool`] keeps CLI processes warm between turns; [`spare`] starts them ahead for
//! new chats, and [`prewarm`] for recent sessions when the server starts.

mod budget;
pub mod claude_code;
mod clocks;
mod error;
mod events;
pub mod extras;
pub mod imports;
mod model_failure;
mod orchestrator;
mod pending;
mod pool;
mod prewarm;
pub mod prompt;
pub mod quota;
mod spare;
mod spare_store;
mod stream_state;
pub mod transcript;
mod turns;

pub use budget::{ProcessBudget, BUSY_MESSAGE_START};
pub use error::TurnError;
pub use events::{PermissionRequest, ToolCall, TurnEvent};
pub use orchestrator::{ChatRequest, ChatService};
pub use pending::{Answer, PendingPermission, PromptKind};
pub use pool::WarmPool;
pub use turns::{Turn, TurnHub};
