//! The turn: a chat message run through the Claude CLI as one agent turn whose events
//! are streamed to whoever is attached. Turns belong to the server, not to an HTTP
//! connection: [`turns`] keeps each turn's numbered event log so clients can detach and
//! re-attach; [`orchestrator`] runs the turn; [`events`] builds the contract's events;
//! [`pool`] keeps CLI processes warm between turns.

pub mod budget;
pub mod claude_code;
pub mod error;
pub mod events;
pub mod imports;
pub mod orchestrator;
pub mod pending;
pub mod pool;
pub mod prompt;
pub mod quota;
pub mod stream_state;
pub mod transcript;
pub mod turns;

pub use orchestrator::{ChatRequest, ChatService};
pub use turns::{Turn, TurnHub};
