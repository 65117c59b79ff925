//! The Telegram connector (teloxide's Bot API client): long polling with the update
//! offset kept across restarts, each message turned into an [`Incoming`] (commands,
//! mention entities, replies to the bot, group history), acknowledged with a reaction
//! at once, then handled in its chat's lane.

mod send;
mod voice;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use teloxide_core::prelude::*;
use teloxide_core::types::{
    AllowedUpdate, ChatId, Message, MessageEntityKind, MessageId, ReactionType, UpdateKind,
};

use crate::config::PlatformConfig;
use crate::flow::Incoming;
use crate::flow::Outbox;
use crate::group::{GroupHistory, GroupLine};
use crate::lanes::{LaneError, Lanes};
use crate::platform::{ChatKind, Platform};
use crate::policy::{self, Entity, EntityKind};
use crate::service::{ConnectorRun, Notifier};

pub use send::TelegramReply;

/// Seconds Telegram holds a `getUpdates` call open.
const POLL_SECONDS: u32 = 10;
/// A poll with no answer for this long has stalled: the connector restarts.
const STALL: Duration = Duration::from_secs(30);

fn bot(token: &str, api_url: Option<&str>) -> Result<Bot, String> {
    let bot = Bot::new(token);
    match api_url {
        None => Ok(bot),
        Some(u) => {
            let url = reqwest_url(u)?;
            Ok(bot.set_api_url(url))
        }
    }
}

fn reqwest_url(u: &str) -> Result<url::Url, String> {
    url::Url::parse(u).map_err(|e| format!("telegram.api_url is not a URL: {e}"))
}

/// `getMe`: the bot's name and username.
pub async fn get_me(token: &str, api_url: Option<&str>) -> Result<(String, String), String> {
    let me = bot(token, api_url)?
        .get_me()
        .await
        .map_err(|e| e.to_string())?;
    Ok((me.user.first_name.clone(), me.username().to_string()))
}

struct TgNotifier {
    bot: Bot,
}

impl Notifier for TgNotifier {
    fn notify(
        &self,
        chat_id: String,
        text: String,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>> {
        let bot = self.bot.clone();
        Box::pin(async move {
            let chat: i64 = chat_id
                .parse()
                .map_err(|_| format!("not a Telegram chat id: {chat_id}"))?;
            send::with_retry(|| bot.send_message(ChatId(chat), text.clone()).send())
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }
}

/// The connector's way to message a chat outside a conversation.
pub fn notifier(run: &ConnectorRun, cfg: &PlatformConfig) -> Arc<dyn Notifier> {
    let bot = bot(&run.token, cfg.api_url.as_deref()).unwrap_or_else(|_| Bot::new(&run.token));
    Arc::new(TgNotifier { bot })
}

/// One run of the connector: `getMe`, then polls until cancelled (`Ok`) or until the
/// API fails or stalls (`Err`, and the supervisor restarts it).
pub async fn run(
    r: ConnectorRun,
    api_url: Option<String>,
    offset: Arc<AtomicI64>,
    history: Arc<GroupHistory>,
) -> Result<(), String> {
    let bot = bot(&r.token, api_url.as_deref())?;
    let me = tokio::select! {
        _ = r.cancel.cancelled() => return Ok(()),
        me = tokio::time::timeout(STALL, bot.get_me()) => me
            .map_err(|_| "getMe timed out".to_string())?
            .map_err(|e| format!("getMe failed: {e}"))?,
    };
    if offset.load(Ordering::SeqCst) == 0 {
        // First start of this bot in this process: messages sent while Parachute was
        // not running are dropped, not answered hours late (`offset=-1` confirms all
        // but the last; the next offset confirms that one too).
        let pending = tokio::time::timeout(STALL, bot.get_updates().offset(-1).timeout(0).send())
            .await
            .map_err(|_| "getUpdates timed out".to_string())?
            .map_err(|e| format!("getUpdates failed: {e}"))?;
        let last = pending
            .iter()
            .map(|u| i64::from(u.id.0) + 1)
            .max()
            .unwrap_or(0);
        if last > 0 {
            tracing::info!(
                dropped_up_to = last,
                "telegram updates from before the start dropped"
            );
        }
        // Never 0 again in this process: a restart keeps what arrives meanwhile.
        offset.store(last.max(1), Ordering::SeqCst);
    }
    r.health.ok();
    let ctx = Arc::new(Ctx {
        bot: bot.clone(),
        core: r.core.clone(),
        username: me.username().to_string(),
        bot_id: me.user.id.0,
        history,
        lanes: r.lanes.clone(),
    });
    tracing::info!(username = %ctx.username, "telegram connector polling");
    loop {
        let at = offset.load(Ordering::SeqCst);
        let mut req = bot
            .get_updates()
            .timeout(POLL_SECONDS)
            .allowed_updates([AllowedUpdate::Message]);
        if at > 0 {
            req = req.offset(i32::try_from(at).unwrap_or(i32::MAX));
        }
        let started = Instant::now();
        let got = tokio::select! {
            _ = r.cancel.cancelled() => return Ok(()),
            got = tokio::time::timeout(STALL, req.send()) => got,
        };
        let updates = match got {
            Err(_) => return Err(format!("getUpdates stalled for {} s", STALL.as_secs())),
            Ok(Err(teloxide_core::RequestError::RetryAfter(s))) => {
                tokio::time::sleep(s.duration()).await;
                continue;
            }
            Ok(Err(e)) => return Err(format!("getUpdates failed: {e}")),
            Ok(Ok(u)) => u,
        };
        r.health.ok();
        let empty = updates.is_empty();
        for u in updates {
            offset.store(i64::from(u.id.0) + 1, Ordering::SeqCst);
            if let UpdateKind::Message(m) = u.kind {
                ctx.clone().on_message(m);
            }
        }
        // An API that answers at once instead of holding the poll is not hammered.
        if empty && started.elapsed() < Duration::from_millis(50) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

struct Ctx {
    bot: Bot,
    core: Arc<crate::flow::BotCore>,
    username: String,
    bot_id: u64,
    history: Arc<GroupHistory>,
    lanes: Arc<Lanes>,
}

fn entities(m: &Message) -> Vec<Entity> {
    m.entities()
        .or_else(|| m.caption_entities())
        .unwrap_or_default()
        .iter()
        .map(|e| Entity {
            kind: match &e.kind {
                MessageEntityKind::Mention => EntityKind::Mention,
                MessageEntityKind::TextMention { user } => EntityKind::TextMention(user.id.0),
                _ => EntityKind::Other,
            },
            offset: e.offset,
            length: e.length,
        })
        .collect()
}

impl Ctx {
    fn on_message(self: Arc<Self>, m: Message) {
        let Some(from) = m.from.clone().filter(|u| !u.is_bot) else {
            return;
        };
        let voice = m
            .voice()
            .map(|v| v.file.id.clone())
            .or_else(|| m.audio().map(|a| a.file.id.clone()));
        let raw = match (m.text().or_else(|| m.caption()), &voice) {
            (Some(t), _) => t.to_string(),
            // Filled with the transcript in the chat's lane.
            (None, Some(_)) => String::new(),
            (None, None) => return,
        };
        let kind = if m.chat.is_private() {
            ChatKind::Dm
        } else {
            ChatKind::Group
        };
        let chat_id = m.chat.id.0.to_string();
        let user_id = from.id.0.to_string();
        let display = from.full_name();
        let (mentioned, text) =
            policy::telegram_mention(&raw, &entities(&m), &self.username, self.bot_id);
        let reply_to_bot = m
            .reply_to_message()
            .and_then(|r| r.from.as_ref())
            .is_some_and(|u| u.id.0 == self.bot_id);
        let (command, text) = match policy::parse_command(&text, &self.username) {
            Some((c, rest)) => (Some(c), rest.to_string()),
            None => (None, text),
        };
        let cfg = self.core.config();
        let allowed = cfg.platform(Platform::Telegram).allows(&user_id);
        let message_id = m.id.0.to_string();
        let history = if kind == ChatKind::Group {
            if allowed && command.is_none() {
                self.history.record(
                    &chat_id,
                    GroupLine {
                        message_id: message_id.clone(),
                        user_id: user_id.clone(),
                        name: display.clone(),
                        text: raw.chars().take(crate::group::CHARS_PER_LINE).collect(),
                    },
                );
            }
            self.history.recent(&chat_id, &message_id)
        } else {
            Vec::new()
        };
        let incoming = Incoming {
            platform: Platform::Telegram,
            chat_id: chat_id.clone(),
            chat_kind: kind,
            user_id,
            user_display: display,
            message_id,
            text,
            addressed: mentioned || reply_to_bot,
            command,
            history,
        };
        let ack = cfg
            .telegram
            .ack_emoji
            .clone()
            .filter(|_| self.core.will_answer(&incoming));
        if let Some(emoji) = &ack {
            let (bot, chat, id, emoji) = (self.bot.clone(), m.chat.id, m.id, emoji.clone());
            tokio::spawn(async move {
                if let Err(e) = bot
                    .set_message_reaction(chat, id)
                    .reaction(vec![ReactionType::Emoji { emoji }])
                    .await
                {
                    tracing::debug!(error = %e, "ack reaction failed");
                }
            });
        }
        let reply = TelegramReply::new(self.bot.clone(), m.chat.id, m.id, kind == ChatKind::Group);
        let this = self.clone();
        let (chat, msg_id) = (m.chat.id, m.id);
        let job = Box::pin(async move {
            let mut incoming = incoming;
            let group_unaddressed = incoming.chat_kind == ChatKind::Group && !incoming.addressed;
            if let (Some(file), true, false) = (voice, incoming.text.is_empty(), group_unaddressed)
            {
                match this.voice_text(file, &incoming).await {
                    Ok(text) => incoming.text = text,
                    Err(why) => {
                        reply.notice(&why).await;
                        if ack.is_some() {
                            this.unack(chat, msg_id).await;
                        }
                        return;
                    }
                }
            }
            this.core.handle(incoming, &reply).await;
            if ack.is_some() {
                this.unack(chat, msg_id).await;
            }
        });
        match self.lanes.submit(&chat_id, job) {
            Ok(()) => {}
            Err(LaneError::ChatFull) => {
                let bot = self.bot.clone();
                tokio::spawn(async move {
                    let _ = bot.send_message(chat, crate::replies::BUSY).await;
                });
            }
            Err(LaneError::TooManyChats) => {
                tracing::warn!("too many active Telegram chats: a message was dropped");
            }
        }
    }

    /// The text of a voice message: its transcript for an allowed user; for anyone else
    /// a placeholder (their message only starts a pairing request).
    async fn voice_text(
        &self,
        file: teloxide_core::types::FileId,
        m: &Incoming,
    ) -> Result<String, String> {
        let cfg = self.core.config();
        let tg = &cfg.telegram;
        if !tg.allows(&m.user_id) {
            return Ok("(a voice message)".into());
        }
        let Some(url) = tg.transcription_url.clone() else {
            return Err(crate::replies::NO_TRANSCRIPTION.into());
        };
        let key = match self
            .core
            .state
            .secrets
            .get(parachute_core::config::secrets::SecretName::TranscriptionApiKey)
            .await
        {
            Ok(Some((k, _))) => Some(k.expose().to_string()),
            _ => None,
        };
        let t = voice::Transcriber {
            url,
            model: tg.transcription_model.clone(),
            key,
        };
        voice::transcribe(&self.bot, file, &t)
            .await
            .map_err(|e| format!("Could not transcribe the voice message: {e}"))
    }

    async fn unack(&self, chat: ChatId, id: MessageId) {
        if let Err(e) = send::with_retry(|| {
            self.bot
                .set_message_reaction(chat, id)
                .reaction(Vec::new())
                .send()
        })
        .await
        {
            tracing::debug!(error = %e, "removing the ack reaction failed");
        }
    }
}
