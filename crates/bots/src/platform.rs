//! The platforms a connector talks to, and the kinds of chat they have.

use std::str::FromStr;

/// A messaging platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Platform {
    /// Telegram (Bot API, long polling).
    Telegram,
    /// Discord (REST + gateway).
    Discord,
}

impl Platform {
    /// Both platforms, in the order they are listed.
    pub const ALL: [Platform; 2] = [Platform::Telegram, Platform::Discord];

    /// The lowercase name used in paths, `bots.yaml` and the `source` of sessions.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Telegram => "telegram",
            Platform::Discord => "discord",
        }
    }

    /// The capitalized name, as in session titles.
    pub fn title(self) -> &'static str {
        match self {
            Platform::Telegram => "Telegram",
            Platform::Discord => "Discord",
        }
    }

    /// The longest message the platform accepts, in characters.
    pub fn max_message_chars(self) -> usize {
        match self {
            Platform::Telegram => 4096,
            Platform::Discord => 2000,
        }
    }
}

impl FromStr for Platform {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "telegram" => Ok(Platform::Telegram),
            "discord" => Ok(Platform::Discord),
            _ => Err(format!(
                "Unknown platform: {s}. Must be 'telegram' or 'discord'"
            )),
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A direct conversation with one user, or a group/channel with several.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatKind {
    /// A private chat (Telegram `private`, a Discord DM).
    Dm,
    /// A group, supergroup, channel or guild channel.
    Group,
}

impl ChatKind {
    /// `dm` or `group`, as stored in `linked_bot_chat_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChatKind::Dm => "dm",
            ChatKind::Group => "group",
        }
    }
}
