//! Sending on Discord: replies to a message (a reply chain) or follow-ups to a slash
//! command, formatted for Discord and split at 2000 characters. Discord shows no
//! streaming draft: the typing indicator runs while the agent works.

use std::sync::Arc;

use serenity::all::{
    ChannelId, CommandInteraction, CreateAllowedMentions, CreateInteractionResponseFollowup,
    CreateMessage, Http, MessageId,
};

use crate::flow::Outbox;
use crate::format::to_discord;
use crate::split::split_message;

const LIMIT: usize = 2000;

enum Target {
    Message(ChannelId, MessageId),
    Interaction(Box<CommandInteraction>),
}

/// Replies in one Discord conversation.
pub struct DiscordReply {
    http: Arc<Http>,
    target: Target,
}

impl DiscordReply {
    /// Replies to a message.
    pub fn to_message(http: Arc<Http>, channel: ChannelId, message: MessageId) -> DiscordReply {
        DiscordReply {
            http,
            target: Target::Message(channel, message),
        }
    }

    /// Answers a (deferred) slash command with follow-ups.
    pub fn to_interaction(http: Arc<Http>, cmd: CommandInteraction) -> DiscordReply {
        DiscordReply {
            http,
            target: Target::Interaction(Box::new(cmd)),
        }
    }

    async fn send(&self, text: &str) {
        let r = match &self.target {
            Target::Message(channel, message) => channel
                .send_message(
                    &self.http,
                    CreateMessage::new()
                        .content(text)
                        .reference_message((*channel, *message))
                        // The agent's text never pings @everyone, roles or users.
                        .allowed_mentions(CreateAllowedMentions::new()),
                )
                .await
                .map(|_| ()),
            Target::Interaction(cmd) => cmd
                .create_followup(
                    &self.http,
                    CreateInteractionResponseFollowup::new().content(text),
                )
                .await
                .map(|_| ()),
        };
        if let Err(e) = r {
            tracing::warn!(error = %e, "could not send a Discord message");
        }
    }

    fn channel(&self) -> ChannelId {
        match &self.target {
            Target::Message(c, _) => *c,
            Target::Interaction(cmd) => cmd.channel_id,
        }
    }
}

impl Outbox for DiscordReply {
    async fn notice(&self, text: &str) {
        self.send(text).await;
    }

    async fn typing(&self) {
        let _ = self.http.broadcast_typing(self.channel()).await;
    }

    async fn progress(&self, _text: &str) {}

    async fn finish(&self, markdown: &str) {
        for chunk in split_message(&to_discord(markdown), LIMIT) {
            self.send(&chunk).await;
        }
    }
}
