//! A token check (`POST /api/bots/{platform}/test`): the bot as the platform knows it
//! (`getMe`, `users/@me`), or why the check failed.

use serde::Serialize;
use utoipa::ToSchema;

/// A token check: the bot as the platform knows it, or why the check failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum BotTestResult {
    /// Telegram knows the bot.
    Telegram(TelegramBotMe),
    /// Discord knows the bot.
    Discord(DiscordBotMe),
    /// The check failed.
    Failed(BotTestFailed),
}

impl BotTestResult {
    /// Telegram's answer to `getMe`: the bot's first name and username.
    pub fn telegram(bot_name: String, bot_username: String) -> Self {
        BotTestResult::Telegram(TelegramBotMe {
            success: true,
            bot_name,
            bot_username,
        })
    }

    /// Discord's answer to `users/@me`: the bot's name and id.
    pub fn discord(bot_name: String, bot_id: String) -> Self {
        BotTestResult::Discord(DiscordBotMe {
            success: true,
            bot_name,
            bot_id,
        })
    }

    /// The check failed; `error` must not hold the token.
    pub fn failed(error: String) -> Self {
        BotTestResult::Failed(BotTestFailed {
            success: false,
            error,
        })
    }
}

/// A Telegram bot's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TelegramBotMe {
    /// `true`.
    pub success: bool,
    /// The bot's first name.
    pub bot_name: String,
    /// The bot's username, without `@`.
    pub bot_username: String,
}

/// A Discord bot's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DiscordBotMe {
    /// `true`.
    pub success: bool,
    /// The bot's user name.
    pub bot_name: String,
    /// The bot's user id (a snowflake, as text).
    pub bot_id: String,
}

/// The platform refused the token or did not answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct BotTestFailed {
    /// `false`.
    pub success: bool,
    /// Why, token removed.
    pub error: String,
}
