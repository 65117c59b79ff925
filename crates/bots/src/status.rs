//! How the connectors run: `GET /api/bots/status` and the `bots` of detailed health.

use std::sync::atomic::Ordering;

use serde::Serialize;
use utoipa::ToSchema;

use crate::config::PlatformConfig;
use crate::service::Health;

/// Connector status and health.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct BotsStatus {
    /// Always `true`.
    pub configured: bool,
    /// Each platform's connector.
    pub connectors: BotConnectors,
    /// Why `bots.yaml` could not be read, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub config_error: Option<String>,
}

/// Each platform's connector.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct BotConnectors {
    /// The Telegram connector.
    pub telegram: BotConnectorStatus,
    /// The Discord connector.
    pub discord: BotConnectorStatus,
}

/// One connector's state and health.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct BotConnectorStatus {
    /// The connector runs.
    pub running: bool,
    /// When the platform last answered (RFC 3339).
    pub last_ok_at: Option<String>,
    /// How many times it was restarted after a failure.
    pub restarts: u64,
    /// The last failure, token removed.
    pub last_error: Option<String>,
    /// It starts with the server.
    pub enabled: bool,
    /// A bot token is stored.
    pub has_token: bool,
    /// How many platform users are allowed to talk to the agent.
    pub allowed_users_count: u64,
}

impl BotConnectorStatus {
    /// A connector's status from its health, its settings, whether it runs and whether
    /// a token is stored.
    pub(crate) fn new(health: &Health, running: bool, c: &PlatformConfig, has_token: bool) -> Self {
        BotConnectorStatus {
            running,
            last_ok_at: health.last_ok_at.lock().ok().and_then(|g| g.clone()),
            restarts: health.restarts.load(Ordering::SeqCst),
            last_error: health.last_error.lock().ok().and_then(|g| g.clone()),
            enabled: c.enabled,
            has_token,
            allowed_users_count: c.allowed_users.len() as u64,
        }
    }
}

/// Each bot connector, as detailed health shows it; the default: none runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct HealthBots {
    /// The Telegram connector.
    pub telegram: HealthBot,
    /// The Discord connector.
    pub discord: HealthBot,
}

/// One bot connector.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct HealthBot {
    /// The connector runs.
    pub running: bool,
}
