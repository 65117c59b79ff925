//! The bots config as `GET /api/bots/config` shows it: every setting, tokens only as
//! `has_token`.

use serde::Serialize;
use utoipa::ToSchema;

use parachute_core::trust::TrustLevel;

use crate::config::{PlatformConfig, ResponseMode};
use crate::platform::Platform;

/// The bots config, tokens only as `has_token`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct BotsConfigView {
    /// The Telegram settings.
    pub telegram: PlatformConfigView,
    /// The Discord settings.
    pub discord: PlatformConfigView,
}

/// One platform's settings.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PlatformConfigView {
    /// The connector starts with the server.
    pub enabled: bool,
    /// A bot token is stored.
    pub has_token: bool,
    /// The platform users allowed to talk to the agent.
    pub allowed_users: Vec<BotUserId>,
    /// Trust level of direct-message chats.
    pub dm_trust_level: TrustLevel,
    /// Trust level of group chats.
    pub group_trust_level: TrustLevel,
    /// Default response mode in groups.
    pub group_mention_mode: ResponseMode,
    /// The reaction put on a message when it arrives; `null`: none.
    pub ack_emoji: Option<String>,
    /// The platform API's base URL; `null`: the official one.
    pub api_url: Option<String>,
}

impl PlatformConfigView {
    /// The view of `c`, the settings of `p`; `has_token`: a token is stored.
    pub(crate) fn new(p: Platform, c: &PlatformConfig, has_token: bool) -> Self {
        PlatformConfigView {
            enabled: c.enabled,
            has_token,
            allowed_users: c
                .allowed_users
                .iter()
                .map(|u| BotUserId::new(p, u))
                .collect(),
            dm_trust_level: c.dm_trust_level,
            group_trust_level: c.group_trust_level,
            group_mention_mode: c.group_mention_mode,
            ack_emoji: c.ack_emoji.clone(),
            api_url: c.api_url.clone(),
        }
    }
}

/// A platform user id: a number for Telegram (text when it does not fit), text for Discord.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum BotUserId {
    /// A Telegram user id.
    Number(i64),
    /// A Discord user id, or a Telegram one that is not a 64-bit number.
    Text(String),
}

impl BotUserId {
    /// The id `u` of a user of `p`, as the config view shows it.
    fn new(p: Platform, u: &str) -> Self {
        match (p, u.parse::<i64>()) {
            (Platform::Telegram, Ok(n)) => BotUserId::Number(n),
            _ => BotUserId::Text(u.to_string()),
        }
    }
}
