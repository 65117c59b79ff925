//! Integration tests: they start the real `parachute` binary on temp vaults and drive
//! it over HTTP like a client (and, for remote peers, from a network namespace).

// A failed unwrap is how a test reports; long scenario tests read top to bottom.
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

mod support;

mod app_compat;
mod auth;
mod bad_input;
mod bots;
mod chat;
mod claude_code;
mod cli;
mod contract;
mod durability;
mod extensions;
mod faults;
mod files;
mod hooks;
mod imports;
mod keychain;
mod legacy_db;
mod load;
mod mcp;
mod model_failures;
mod modules;
mod router;
mod sandbox;
mod scheduler;
mod secrets;
mod security;
mod spare;
mod sync;
mod trust;
mod ui;
mod vault_paths;
mod workspaces;
