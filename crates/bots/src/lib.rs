#![warn(missing_docs)]
//! Parachute's bot connectors. Platform-independent parts first: the config
//! ([`config`]), the decisions ([`policy`]), what happens to a message ([`flow`]),
//! per-chat ordering ([`lanes`]), group context ([`group`]), splitting ([`split`]) and
//! formatting ([`format`]); then the platforms ([`telegram`]) and the supervised
//! service that runs them ([`service::Bots`]), with what it shows: [`status`],
//! [`config_view`] and [`token_check`]. Every turn goes through the one turn
//! interface, `ChatService::start`.

pub mod config;
pub mod config_view;
pub mod discord;
mod error;
pub mod flow;
pub mod format;
pub mod group;
pub mod lanes;
pub mod platform;
pub mod policy;
pub mod replies;
pub mod service;
pub mod split;
pub mod status;
pub mod telegram;
pub mod token_check;

pub use error::BotsError;
pub use platform::Platform;
pub use service::Bots;
