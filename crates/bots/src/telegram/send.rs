//! Sending on Telegram: a draft message edited as the reply streams in (at most once
//! a second in a DM, every three seconds in a group — inside Telegram's limits), then
//! the final reply formatted as HTML and split at 4096 characters, with a plain-text
//! fallback when Telegram rejects the formatting. A 429 is waited out (`retry_after`).

use std::future::Future;
use std::time::{Duration, Instant};

use teloxide_core::prelude::*;
use teloxide_core::types::{ChatAction, ChatId, Message, MessageId, ParseMode, ReplyParameters};
use teloxide_core::{ApiError, RequestError};
use tokio::sync::Mutex;

use crate::flow::Outbox;
use crate::format::{to_plain, to_telegram_html};
use crate::split::split_message;

/// Calls the API, waiting out `retry_after` on a 429 (three tries).
pub async fn with_retry<T, F, Fut>(f: F) -> Result<T, RequestError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, RequestError>>,
{
    let mut tries = 0;
    loop {
        match f().await {
            Err(RequestError::RetryAfter(s)) if tries < 3 => {
                tries += 1;
                tracing::info!(retry_after_s = s.seconds(), "telegram asked to slow down");
                tokio::time::sleep(s.duration()).await;
            }
            r => return r,
        }
    }
}

const LIMIT: usize = 4096;

#[derive(Default)]
struct Draft {
    id: Option<MessageId>,
    last_edit: Option<Instant>,
    shown: String,
    failed: bool,
}

/// Replies in one Telegram chat, to one message.
pub struct TelegramReply {
    bot: Bot,
    chat: ChatId,
    reply_to: MessageId,
    every: Duration,
    draft: Mutex<Draft>,
}

impl TelegramReply {
    /// Replies to `reply_to` in `chat`; groups get a slower draft cadence.
    pub fn new(bot: Bot, chat: ChatId, reply_to: MessageId, group: bool) -> TelegramReply {
        TelegramReply {
            bot,
            chat,
            reply_to,
            every: if group {
                Duration::from_secs(3)
            } else {
                Duration::from_secs(1)
            },
            draft: Mutex::new(Draft::default()),
        }
    }

    fn preview(text: &str) -> String {
        let limit = LIMIT - 20;
        if text.chars().count() > limit {
            let cut: String = text.chars().take(limit).collect();
            format!("{cut} …")
        } else {
            format!("{text} …")
        }
    }

    async fn send(&self, text: &str, html: bool) -> Result<Message, RequestError> {
        with_retry(|| {
            let mut r = self
                .bot
                .send_message(self.chat, text.to_string())
                .reply_parameters(
                    ReplyParameters::new(self.reply_to).allow_sending_without_reply(),
                );
            if html {
                r = r.parse_mode(ParseMode::Html);
            }
            r.send()
        })
        .await
    }

    async fn edit(&self, id: MessageId, text: &str, html: bool) -> Result<(), RequestError> {
        let r = with_retry(|| {
            let mut r = self.bot.edit_message_text(self.chat, id, text.to_string());
            if html {
                r = r.parse_mode(ParseMode::Html);
            }
            r.send()
        })
        .await;
        match r {
            Ok(_) | Err(RequestError::Api(ApiError::MessageNotModified)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Sends one chunk formatted, or plain when the formatting is refused; into the
    /// draft when there is one.
    async fn deliver(&self, chunk: &str, into: Option<MessageId>) {
        let html = to_telegram_html(chunk);
        let plain = to_plain(chunk);
        if let Some(id) = into {
            if self.edit(id, &html, true).await.is_ok() {
                return;
            }
            if self.edit(id, &plain, false).await.is_ok() {
                return;
            }
        }
        match self.send(&html, true).await {
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(error = %e, "formatted message refused; sending plain text");
                if let Err(e) = self.send(&plain, false).await {
                    tracing::warn!(error = %e, "could not send a Telegram message");
                }
            }
        }
    }
}

impl Outbox for TelegramReply {
    async fn notice(&self, text: &str) {
        if let Err(e) = self.send(text, false).await {
            tracing::warn!(error = %e, "could not send a Telegram notice");
        }
    }

    async fn typing(&self) {
        let _ = self
            .bot
            .send_chat_action(self.chat, ChatAction::Typing)
            .await;
    }

    async fn progress(&self, text: &str) {
        let mut d = self.draft.lock().await;
        if d.failed || text.trim().is_empty() {
            return;
        }
        if d.last_edit.is_some_and(|t| t.elapsed() < self.every) {
            return;
        }
        let shown = Self::preview(text);
        if shown == d.shown {
            return;
        }
        match d.id {
            None => match self.send(&shown, false).await {
                Ok(m) => d.id = Some(m.id),
                Err(e) => {
                    tracing::debug!(error = %e, "draft not sent");
                    d.failed = true;
                }
            },
            Some(id) => {
                if let Err(e) = self.edit(id, &shown, false).await {
                    tracing::debug!(error = %e, "draft edit failed");
                    d.failed = true;
                }
            }
        }
        d.last_edit = Some(Instant::now());
        d.shown = shown;
    }

    async fn finish(&self, markdown: &str) {
        let draft = self.draft.lock().await.id;
        let chunks = split_message(markdown, LIMIT);
        for (i, chunk) in chunks.iter().enumerate() {
            self.deliver(chunk, if i == 0 { draft } else { None }).await;
        }
        if chunks.is_empty() {
            if let Some(id) = draft {
                let _ = self.bot.delete_message(self.chat, id).await;
            }
        }
    }
}
