//! Parachute: a personal AI computer. This library is the whole server — settings,
//! store, auth, HTTP API — and the `parachute` binary is a thin command line over it.
//!
//! Data flows one way: HTTP input → auth (`api::auth_layer`) → handler (`api/`) →
//! core (`sessions`, `workspaces`, `vault`, `trust`) → store (`db/`).

pub mod agent;
pub mod api;
pub mod app;
pub mod auth;
pub mod chat;
pub mod cli;
pub mod config;
pub mod db;
pub mod logging;
pub mod server;
pub mod sessions;
pub mod trust;
pub mod util;
pub mod vault;
pub mod workspaces;

pub use app::AppState;
pub use config::Settings;
pub use server::serve;
