//! The Discord connector (serenity): the gateway for messages and slash commands
//! (`/chat`, `/new`, `/journal`), REST for replies. DMs and guild messages with
//! mention gating (the bot among the message's mentions), an ack reaction, the typing
//! indicator, replies split at 2000 characters, and the channel's recent history as
//! group context. `discord.api_url` redirects REST (and so the gateway URL, which
//! comes from `GET /gateway`) to another server.

mod reply;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serenity::all::{
    ChannelId, ClientBuilder, Command as SlashCommand, CommandDataOptionValue, CommandInteraction,
    CommandOptionType, Context, CreateCommand, CreateCommandOption, CreateInteractionResponse,
    CreateInteractionResponseMessage, EventHandler, GatewayIntents, GetMessages, Http, HttpBuilder,
    Interaction, Message, MessageId, ReactionType, Ready,
};

use crate::flow::{BotCore, Incoming};
use crate::group::GroupLine;
use crate::lanes::{LaneError, Lanes};
use crate::platform::{ChatKind, Platform};
use crate::policy::{self, Command};
use crate::service::{ConnectorRun, Notifier};

pub use reply::DiscordReply;

/// History lines fetched for group context.
const HISTORY_FETCH: u8 = 25;

fn http(token: &str, api_url: Option<&str>) -> Http {
    let mut b = HttpBuilder::new(token);
    if let Some(u) = api_url {
        // The rate limiter sends to discord.com directly: with another server it is off.
        b = b.proxy(u).ratelimiter_disabled(true);
    }
    b.build()
}

/// `GET /users/@me`: the bot's name and id.
pub async fn get_me(token: &str, api_url: Option<&str>) -> Result<(String, String), String> {
    let me = http(token, api_url)
        .get_current_user()
        .await
        .map_err(|e| e.to_string())?;
    Ok((me.name.clone(), me.id.get().to_string()))
}

struct DcNotifier {
    http: Arc<Http>,
}

impl Notifier for DcNotifier {
    fn notify(
        &self,
        chat_id: String,
        text: String,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>> {
        let http = self.http.clone();
        Box::pin(async move {
            let id: u64 = chat_id
                .parse()
                .map_err(|_| format!("not a Discord channel id: {chat_id}"))?;
            ChannelId::new(id.max(1))
                .say(&http, text)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }
}

/// The connector's way to message a channel outside a conversation.
pub fn notifier(run: &ConnectorRun, api_url: Option<&str>) -> Arc<dyn Notifier> {
    Arc::new(DcNotifier {
        http: Arc::new(http(&run.token, api_url)),
    })
}

struct Handler {
    core: Arc<BotCore>,
    health: Arc<crate::service::Health>,
    bot_id: AtomicU64,
    lanes: Arc<Lanes>,
    /// Messages filed per channel by id, waiting for their lane job.
    pending: Arc<Mutex<HashMap<u64, BTreeMap<u64, Filed>>>>,
}

/// A message waiting in its channel: what the flow needs, and its ack reaction.
type Filed = (Incoming, Option<ReactionType>);

/// One run of the connector: until cancelled (`Ok`) or the gateway fails (`Err`).
pub async fn run(r: ConnectorRun, api_url: Option<String>) -> Result<(), String> {
    let http = http(&r.token, api_url.as_deref());
    // Ask for the gateway ourselves: serenity falls back to Discord's own gateway when
    // this call fails, which must never happen with another API server.
    let gateway = tokio::time::timeout(Duration::from_secs(30), http.get_gateway())
        .await
        .map_err(|_| "GET /gateway timed out".to_string())?
        .map_err(|e| format!("GET /gateway failed: {e}"))?;
    let intents = GatewayIntents::GUILDS
        | GatewayIntents::GUILD_MESSAGES
        | GatewayIntents::DIRECT_MESSAGES
        | GatewayIntents::MESSAGE_CONTENT;
    let handler = Handler {
        core: r.core.clone(),
        health: r.health.clone(),
        bot_id: AtomicU64::new(0),
        lanes: r.lanes.clone(),
        pending: Arc::default(),
    };
    let mut client = ClientBuilder::new_with_http(http, intents)
        .event_handler(handler)
        .await
        .map_err(|e| format!("discord client: {e}"))?;
    *client.ws_url.lock().await = gateway.url;
    let shards = client.shard_manager.clone();
    tokio::select! {
        _ = r.cancel.cancelled() => {
            let _ = tokio::time::timeout(Duration::from_secs(5), shards.shutdown_all()).await;
            Ok(())
        }
        res = client.start() => match res {
            Ok(()) => Err("the Discord gateway connection ended".into()),
            Err(e) => Err(format!("discord gateway: {e}")),
        },
    }
}

fn display_name(u: &serenity::all::User) -> String {
    u.global_name.clone().unwrap_or_else(|| u.name.clone())
}

fn commands() -> Vec<CreateCommand> {
    vec![
        CreateCommand::new("chat")
            .description("Chat with Parachute")
            .add_option(
                CreateCommandOption::new(CommandOptionType::String, "message", "Your message")
                    .required(true),
            ),
        CreateCommand::new("new")
            .description("Start a new conversation (archives the current one)"),
        CreateCommand::new("journal")
            .description("Save a Daily journal entry")
            .add_option(
                CreateCommandOption::new(CommandOptionType::String, "entry", "The entry")
                    .required(true),
            ),
    ]
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, ctx: Context, ready: Ready) {
        self.bot_id.store(ready.user.id.get(), Ordering::SeqCst);
        self.health.ok();
        tracing::info!(username = %ready.user.name, "discord connector connected");
        if let Err(e) = SlashCommand::set_global_commands(&ctx.http, commands()).await {
            tracing::warn!(error = %e, "could not register Discord slash commands");
        }
    }

    async fn message(&self, ctx: Context, msg: Message) {
        self.health.ok();
        let bot_id = self.bot_id.load(Ordering::SeqCst);
        if msg.author.bot || msg.author.id.get() == bot_id || msg.content.trim().is_empty() {
            return;
        }
        let kind = if msg.guild_id.is_some() {
            ChatKind::Group
        } else {
            ChatKind::Dm
        };
        let mentions: Vec<String> = msg
            .mentions
            .iter()
            .map(|u| u.id.get().to_string())
            .collect();
        let (mentioned, text) =
            policy::discord_mention(&msg.content, &mentions, &bot_id.to_string());
        let incoming = Incoming {
            platform: Platform::Discord,
            chat_id: msg.channel_id.get().to_string(),
            chat_kind: kind,
            user_id: msg.author.id.get().to_string(),
            user_display: display_name(&msg.author),
            message_id: msg.id.get().to_string(),
            text,
            addressed: mentioned,
            command: None,
            history: Vec::new(),
        };
        let cfg = self.core.config();
        let ack = cfg
            .discord
            .ack_emoji
            .clone()
            .filter(|_| self.core.will_answer(&incoming))
            .map(ReactionType::Unicode);
        if let Some(r) = ack.clone() {
            // Off the message's path, so the lane gets messages as fast as they come.
            let (http, channel, id) = (ctx.http.clone(), msg.channel_id, msg.id);
            tokio::spawn(async move {
                if let Err(e) = http.create_reaction(channel, id, &r).await {
                    tracing::debug!(error = %e, "ack reaction failed");
                }
            });
        }
        let core = self.core.clone();
        let http = ctx.http.clone();
        let (channel, id) = (msg.channel_id, msg.id);
        // serenity hands each event to its own task, so two messages may reach this
        // point out of order. Each one files itself under its id (ids grow with time)
        // and its lane job takes the channel's oldest filed message.
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(channel.get())
            .or_default()
            .insert(id.get(), (incoming, ack));
        let pending = self.pending.clone();
        let job = Box::pin(async move {
            let next = {
                let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
                let next = p.get_mut(&channel.get()).and_then(|m| m.pop_first());
                if p.get(&channel.get()).is_some_and(|m| m.is_empty()) {
                    p.remove(&channel.get());
                }
                next
            };
            let Some((id, (mut incoming, ack))) = next else {
                return;
            };
            let id = MessageId::new(id);
            if incoming.chat_kind == ChatKind::Group && core.will_answer(&incoming) {
                incoming.history = history(&http, channel, id, bot_id).await;
            }
            let reply = DiscordReply::to_message(http.clone(), channel, id);
            core.handle(incoming, &reply).await;
            if let Some(r) = &ack {
                if let Err(e) = http.delete_reaction_me(channel, id, r).await {
                    tracing::debug!(error = %e, "removing the ack reaction failed");
                }
            }
        });
        if !self
            .submit(&channel.get().to_string(), job, &ctx.http, channel)
            .await
        {
            // Not queued: not filed either.
            if let Some(m) = self
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_mut(&channel.get())
            {
                m.remove(&msg.id.get());
            }
        }
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        self.health.ok();
        let Interaction::Command(cmd) = interaction else {
            return;
        };
        let (command, text) = match cmd.data.name.as_str() {
            "chat" => (Some(Command::Ask), option(&cmd, "message")),
            "new" => (Some(Command::New), String::new()),
            "journal" => (Some(Command::Journal), option(&cmd, "entry")),
            _ => return,
        };
        // The answer may take a while: acknowledge now, answer with follow-ups. Someone
        // without access is answered privately.
        let allowed = self
            .core
            .config()
            .discord
            .allows(&cmd.user.id.get().to_string());
        let defer = CreateInteractionResponse::Defer(
            CreateInteractionResponseMessage::new().ephemeral(!allowed),
        );
        if let Err(e) = cmd.create_response(&ctx.http, defer).await {
            tracing::warn!(error = %e, "could not acknowledge a Discord command");
            return;
        }
        let kind = if cmd.guild_id.is_some() {
            ChatKind::Group
        } else {
            ChatKind::Dm
        };
        let incoming = Incoming {
            platform: Platform::Discord,
            chat_id: cmd.channel_id.get().to_string(),
            chat_kind: kind,
            user_id: cmd.user.id.get().to_string(),
            user_display: display_name(&cmd.user),
            message_id: cmd.id.get().to_string(),
            text,
            addressed: true,
            command,
            history: Vec::new(),
        };
        let core = self.core.clone();
        let reply = DiscordReply::to_interaction(ctx.http.clone(), cmd.clone());
        let job = Box::pin(async move { core.handle(incoming, &reply).await });
        self.submit(
            &cmd.channel_id.get().to_string(),
            job,
            &ctx.http,
            cmd.channel_id,
        )
        .await;
    }
}

fn option(cmd: &CommandInteraction, name: &str) -> String {
    cmd.data
        .options
        .iter()
        .find(|o| o.name == name)
        .and_then(|o| match &o.value {
            CommandDataOptionValue::String(s) => Some(s.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

impl Handler {
    /// Queues `job` in the chat's lane; `false` when it was refused.
    async fn submit(
        &self,
        chat: &str,
        job: crate::lanes::Job,
        http: &Arc<Http>,
        channel: ChannelId,
    ) -> bool {
        match self.lanes.submit(chat, job) {
            Ok(()) => true,
            Err(LaneError::ChatFull) => {
                let _ = channel.say(http, crate::replies::BUSY).await;
                false
            }
            Err(LaneError::TooManyChats) => {
                tracing::warn!("too many active Discord chats: a message was dropped");
                false
            }
        }
    }
}

/// The channel's recent messages before `before`, oldest first: not the bot's own, not
/// empty, at most 20.
async fn history(
    http: &Http,
    channel: ChannelId,
    before: MessageId,
    bot_id: u64,
) -> Vec<GroupLine> {
    let got = match channel
        .messages(http, GetMessages::new().before(before).limit(HISTORY_FETCH))
        .await
    {
        Ok(m) => m,
        Err(e) => {
            tracing::debug!(error = %e, "channel history not available");
            return Vec::new();
        }
    };
    let mut lines: Vec<GroupLine> = got
        .into_iter()
        .filter(|m| m.author.id.get() != bot_id && !m.content.trim().is_empty())
        .map(|m| GroupLine {
            message_id: m.id.get().to_string(),
            user_id: m.author.id.get().to_string(),
            name: display_name(&m.author),
            text: m.content.clone(),
        })
        .take(crate::group::LINES_IN_CONTEXT)
        .collect();
    // Discord answers newest first.
    lines.reverse();
    lines
}
