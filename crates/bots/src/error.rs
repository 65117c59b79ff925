//! The bots subsystem's one error type; the HTTP layer maps it to statuses.

use parachute_core::db::DbError;

/// Why a bots operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BotsError {
    /// `bots.yaml` or a config update has a bad value (the message names the field).
    #[error("{0}")]
    Config(String),
    /// The platform is not `telegram` or `discord`.
    #[error("{0}")]
    UnknownPlatform(String),
    /// The connector cannot start: not enabled, or no token.
    #[error("{0}")]
    NotReady(String),
    /// Starting a connector that already runs.
    #[error("{0} connector is already running")]
    AlreadyRunning(String),
    /// No pairing request with that id.
    #[error("Pairing request not found")]
    PairingNotFound,
    /// The pairing request was already approved or denied.
    #[error("Request already {0}")]
    AlreadyResolved(String),
    /// The store failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The secrets store failed (the message never holds a secret).
    #[error("secrets store: {0}")]
    Secrets(#[from] parachute_core::config::secrets::SecretsError),
    /// `bots.yaml` could not be written (a full disk among the causes).
    #[error("cannot write bots.yaml: {0}")]
    Write(#[source] std::io::Error),
    /// The platform API failed (message without the token).
    #[error("{0}")]
    Platform(String),
}
