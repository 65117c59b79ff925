//! The core of Parachute, a personal AI computer: settings and secrets, the SQLite
//! store, auth policy and API keys, the vault gate, sessions, workspaces, trust levels,
//! the Claude Code CLI process and its protocol, and the chat turn (orchestrator, warm
//! pool, process cap, event log). No HTTP here: `parachute-api` serves it, the
//! `parachute` binary and the tray app embed it.
//!
//! Data flows one way: HTTP/bot/scheduler input → auth → API handler →
//! [`chat::ChatService`] → [`agent`] (the CLI) → event log → client, with
//! the store ([`db`]) beside the orchestrator.

#![warn(missing_docs)]

pub mod agent;
pub mod app;
pub mod auth;
pub mod chat;
pub mod config;
pub mod db;
pub mod desktop;
pub mod logging;
pub mod notify;
pub mod sessions;
pub mod trust;
pub mod util;
pub mod vault;
pub mod workspaces;

pub use app::AppState;
pub use config::Settings;
