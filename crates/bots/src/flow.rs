//! What happens to one incoming message, whatever the platform: commands, pairing of
//! unknown users, response gating, the chat's session (created waiting for the
//! owner's activation, with two nudges at most), and the turn through the one turn
//! interface (`ChatService::start`), streamed to the platform through an [`Outbox`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use parachute_core::app::AppState;
use parachute_core::chat::{ChatRequest, TurnEvent};
use parachute_core::db::{LinkedBot, NewSession, PairingRow, PairingStatus, SessionRow};
use parachute_core::sessions::metadata_object;
use parachute_core::trust::TrustLevel;

use crate::config::{BotsConfig, ResponseMode};
use crate::group::{with_group_context, GroupLine};
use crate::platform::{ChatKind, Platform};
use crate::policy::{self, Command};
use crate::replies;

/// A message as the connector hands it over.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// Where it came from.
    pub platform: Platform,
    /// The chat's id.
    pub chat_id: String,
    /// DM or group.
    pub chat_kind: ChatKind,
    /// The sender's id.
    pub user_id: String,
    /// The sender's display name.
    pub user_display: String,
    /// The message's id.
    pub message_id: String,
    /// The text, without the bot's mention and without the command word.
    pub text: String,
    /// Addressed to the bot: a mention entity, a reply to it, or `/ask`.
    pub addressed: bool,
    /// The command it is, if any.
    pub command: Option<Command>,
    /// Recent group messages (groups only), oldest first.
    pub history: Vec<GroupLine>,
}

/// How a flow talks back to the chat. Implementations log their own failures.
pub trait Outbox: Send + Sync {
    /// Sends a plain-text notice.
    fn notice(&self, text: &str) -> impl Future<Output = ()> + Send;
    /// Shows that the agent is working (typing indicator).
    fn typing(&self) -> impl Future<Output = ()> + Send;
    /// The reply so far (Markdown); the platform decides whether to show it now.
    fn progress(&self, text: &str) -> impl Future<Output = ()> + Send;
    /// The final reply (Markdown): formatted, split and sent.
    fn finish(&self, markdown: &str) -> impl Future<Output = ()> + Send;
}

/// Entries kept in the small in-memory maps before they are cleared.
const MAX_TRACKED: usize = 10_000;
/// How often a waiting user hears that their request is pending.
const PENDING_REPLY_EVERY: Duration = Duration::from_secs(600);

/// State shared by the connectors: the config, nudge counters, the pending-reply
/// limiter and the approved levels.
pub struct BotCore {
    /// The server's state (store, sessions, chat).
    pub state: AppState,
    /// The current `bots.yaml`.
    pub config: RwLock<BotsConfig>,
    nudges: Mutex<HashMap<(Platform, String), u32>>,
    pending_replies: Mutex<HashMap<(Platform, String), Instant>>,
}

fn bounded_insert<K: std::hash::Hash + Eq, V>(m: &mut HashMap<K, V>, k: K, v: V) {
    if m.len() >= MAX_TRACKED && !m.contains_key(&k) {
        m.clear();
    }
    m.insert(k, v);
}

impl BotCore {
    /// A core over `state` with `config`.
    pub fn new(state: AppState, config: BotsConfig) -> BotCore {
        BotCore {
            state,
            config: RwLock::new(config),
            nudges: Mutex::default(),
            pending_replies: Mutex::default(),
        }
    }

    /// The current config (a copy).
    pub fn config(&self) -> BotsConfig {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Forgets a chat's nudges (its session was activated or re-initialized).
    pub fn clear_nudges(&self, platform: Platform, chat_id: &str) {
        self.nudges
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(platform, chat_id.to_string()));
    }

    /// Whether a message from `user_id` is likely to be answered, decided at once from
    /// the config (for the ack reaction on receipt; the flow decides for real).
    pub fn will_answer(&self, m: &Incoming) -> bool {
        let cfg = self.config();
        let c = cfg.platform(m.platform);
        c.allows(&m.user_id)
            && (m.command.is_none() || m.command == Some(Command::Ask))
            && policy::should_answer(
                policy::response_mode(m.chat_kind, c.group_mention_mode, None),
                m.addressed,
            )
    }

    /// Handles one message (called in the chat's lane, so a chat's messages are
    /// handled in order).
    pub async fn handle(&self, m: Incoming, out: &impl Outbox) {
        let cfg = self.config();
        let pc = cfg.platform(m.platform).clone();
        let allowed = pc.allows(&m.user_id);
        let mut addressed = m.addressed;
        match m.command {
            Some(Command::Help) => return out.notice(replies::HELP).await,
            Some(Command::Start) if allowed => return out.notice(replies::CONNECTED).await,
            Some(Command::New | Command::Init | Command::Journal) if !allowed => {
                return out.notice(replies::NO_ACCESS).await
            }
            Some(Command::New) => {
                self.archive_linked(&m).await;
                return out.notice(replies::NEW_SESSION).await;
            }
            Some(Command::Init) => {
                self.archive_linked(&m).await;
                self.clear_nudges(m.platform, &m.chat_id);
                let level = self.level_for(&m, &pc).await;
                if let Err(e) = self.create_session(&m, level).await {
                    tracing::warn!(platform = %m.platform, error = %e, "could not create a bot session");
                }
                return out.notice(replies::REINITIALIZED).await;
            }
            Some(Command::Journal) => return self.journal(&m, out).await,
            Some(Command::Ask) if m.text.trim().is_empty() => {
                return out.notice(replies::ASK_USAGE).await
            }
            Some(Command::Ask) => addressed = true,
            Some(Command::Start) | None => {}
        }
        if !allowed {
            return match m.chat_kind {
                ChatKind::Dm => self.unknown_user(&m, out).await,
                // Access is asked for in a DM: a group's session is never replaced by a
                // stranger's pending one, and members who do not address the bot cause
                // nothing at all.
                ChatKind::Group if addressed || m.command.is_some() => {
                    self.remind_in_group(&m, out).await
                }
                ChatKind::Group => {}
            };
        }
        let linked = match self
            .state
            .store
            .latest_linked_session(m.platform.as_str(), &m.chat_id)
            .await
        {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(platform = %m.platform, error = %e, "bot session lookup failed");
                return out.notice("Service unavailable.").await;
            }
        };
        let session_mode = linked.as_ref().and_then(|s| {
            metadata_object(s)
                .get("bot_settings")
                .and_then(|b| b.get("response_mode"))
                .and_then(Value::as_str)
                .and_then(ResponseMode::parse)
        });
        let mode = policy::response_mode(m.chat_kind, pc.group_mention_mode, session_mode);
        if !policy::should_answer(mode, addressed) || m.text.trim().is_empty() {
            return;
        }
        let level = self.level_for(&m, &pc).await;
        let session = match linked {
            Some(s) => s,
            None => match self.create_session(&m, level).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(platform = %m.platform, error = %e, "could not create a bot session");
                    return out.notice("Service unavailable.").await;
                }
            },
        };
        let md = metadata_object(&session);
        if md.contains_key("pending_initialization") {
            let n = {
                let mut g = self.nudges.lock().unwrap_or_else(|e| e.into_inner());
                let key = (m.platform, m.chat_id.clone());
                let n = g.get(&key).copied().unwrap_or(0);
                bounded_insert(&mut g, key, n.saturating_add(1));
                n
            };
            if let Some(text) = policy::nudge(n) {
                out.notice(text).await;
            }
            return;
        }
        if md.contains_key("pending_approval") {
            // The owner allowlisted the user by hand while their request waited.
            let _ = self
                .state
                .sessions
                .modify(&self.state.store, &session.id, |md, _| {
                    md.remove("pending_approval");
                })
                .await;
        }
        let level = self.turn_level(level, &session).await;
        let message = match m.chat_kind {
            ChatKind::Group => with_group_context(&m.history, &m.user_id, m.text.trim()),
            ChatKind::Dm => m.text.trim().to_string(),
        };
        self.run_turn(&session, message, level, out).await;
    }

    /// The level a turn asks for: the most restricted of the user's level, the session's
    /// and its workspace's (a request below a floor would be refused).
    async fn turn_level(&self, level: TrustLevel, session: &SessionRow) -> TrustLevel {
        let stored = session
            .trust_level
            .as_deref()
            .map(|s| s.parse().unwrap_or(TrustLevel::Sandboxed))
            .unwrap_or(TrustLevel::Full);
        let workspace = match session.workspace_id.as_deref().filter(|w| !w.is_empty()) {
            Some(slug) => self
                .state
                .workspaces
                .get(slug)
                .await
                .ok()
                .map(|w| w.trust_level),
            None => None,
        };
        TrustLevel::most_restricted([level, stored].into_iter().chain(workspace))
    }

    /// The user's trust level in this chat (the approved level from their pairing).
    async fn level_for(&self, m: &Incoming, pc: &crate::config::PlatformConfig) -> TrustLevel {
        let approved = match self
            .state
            .store
            .latest_pairing(m.platform.as_str(), &m.user_id)
            .await
        {
            Ok(Some(p)) if p.status == PairingStatus::Approved.as_str() => {
                p.approved_trust_level.and_then(|l| l.parse().ok())
            }
            _ => None,
        };
        policy::user_level(m.chat_kind, pc, approved)
    }

    fn linked_bot(m: &Incoming) -> (LinkedBot, Value) {
        let link = LinkedBot {
            platform: m.platform.as_str().into(),
            chat_id: m.chat_id.clone(),
            chat_type: m.chat_kind.as_str().into(),
        };
        let json = json!({
            "platform": m.platform.as_str(),
            "chat_id": m.chat_id,
            "chat_type": m.chat_kind.as_str(),
            "user_display": crate::group::sanitize_name(&m.user_display),
            "linked_at": parachute_core::util::time::now_session(),
        });
        (link, json)
    }

    /// A new session for the chat, waiting for the owner's activation.
    async fn create_session(&self, m: &Incoming, level: TrustLevel) -> Result<SessionRow, String> {
        let (link, json) = Self::linked_bot(m);
        let mut md = Map::new();
        md.insert("linked_bot".into(), json);
        md.insert("pending_initialization".into(), Value::Bool(true));
        let s = NewSession {
            id: uuid::Uuid::new_v4().to_string(),
            title: Some(format!(
                "{} - {}",
                m.platform.title(),
                crate::group::sanitize_name(&m.user_display)
            )),
            module: "chat".into(),
            source: m.platform.as_str().into(),
            trust_level: Some(level.as_str().into()),
            metadata: Some(Value::Object(md).to_string()),
            linked_bot: Some(link),
            ..Default::default()
        };
        self.state
            .store
            .insert_session(&s)
            .await
            .map_err(|e| e.to_string())
    }

    async fn archive_linked(&self, m: &Incoming) {
        if let Ok(Some(s)) = self
            .state
            .store
            .latest_linked_session(m.platform.as_str(), &m.chat_id)
            .await
        {
            let _ = self
                .state
                .sessions
                .modify(&self.state.store, &s.id, |_, c| c.archived = Some(true))
                .await;
        }
    }

    /// An unknown user: one pending request (and its pending session) per user; while
    /// it waits, a reminder at most every ten minutes; never the agent.
    async fn unknown_user(&self, m: &Incoming, out: &impl Outbox) {
        let store = &self.state.store;
        let latest = match store.latest_pairing(m.platform.as_str(), &m.user_id).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(platform = %m.platform, error = %e, "pairing lookup failed");
                return out.notice("Service unavailable.").await;
            }
        };
        if latest
            .as_ref()
            .is_some_and(|p| p.status == PairingStatus::Pending.as_str())
        {
            return self.remind_pending(m, out).await;
        }
        let cfg = self.config();
        let level = cfg
            .platform(m.platform)
            .default_level(m.chat_kind == ChatKind::Group);
        let request_id = uuid::Uuid::new_v4().to_string();
        let (link, json) = Self::linked_bot(m);
        let display = crate::group::sanitize_name(&m.user_display);
        let md = json!({
            "linked_bot": json,
            "pending_approval": true,
            "pairing_request_id": request_id,
            "first_message": m.text.chars().take(500).collect::<String>(),
        });
        let row = PairingRow {
            id: request_id,
            platform: m.platform.as_str().into(),
            platform_user_id: m.user_id.clone(),
            platform_user_display: Some(display.clone()),
            platform_chat_id: m.chat_id.clone(),
            status: "pending".into(),
            approved_trust_level: None,
            created_at: parachute_core::util::time::now_session(),
            resolved_at: None,
            resolved_by: None,
        };
        let session = NewSession {
            id: uuid::Uuid::new_v4().to_string(),
            title: Some(format!("{display} ({})", m.platform.title())),
            source: m.platform.as_str().into(),
            trust_level: Some(level.as_str().into()),
            metadata: Some(md.to_string()),
            linked_bot: Some(link),
            ..Default::default()
        };
        match store.insert_pairing(&row, &session).await {
            Ok(true) => {
                tracing::info!(platform = %m.platform, request = %row.id, "pairing requested");
                self.state.events.fire(
                    "pairing.requested",
                    serde_json::json!({"platform": m.platform.as_str(), "request_id": row.id,
                        "user_id": m.user_id, "user_display": m.user_display, "chat_id": m.chat_id}),
                );
                self.mark_pending_reply(m);
                out.notice(replies::REQUEST_SENT).await;
            }
            Ok(false) => self.remind_pending(m, out).await,
            Err(e) => {
                tracing::warn!(platform = %m.platform, error = %e, "could not record a pairing request");
                out.notice("Service unavailable.").await;
            }
        }
    }

    /// A stranger addressing the bot in a group is told (at most every ten minutes) to
    /// ask for access in a direct message.
    async fn remind_in_group(&self, m: &Incoming, out: &impl Outbox) {
        let due = {
            let mut g = self
                .pending_replies
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let key = (m.platform, format!("group:{}", m.user_id));
            let due = g
                .get(&key)
                .is_none_or(|t| t.elapsed() >= PENDING_REPLY_EVERY);
            if due {
                bounded_insert(&mut g, key, Instant::now());
            }
            due
        };
        if due {
            out.notice(replies::ASK_IN_DM).await;
        }
    }

    fn mark_pending_reply(&self, m: &Incoming) {
        let mut g = self
            .pending_replies
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        bounded_insert(&mut g, (m.platform, m.user_id.clone()), Instant::now());
    }

    async fn remind_pending(&self, m: &Incoming, out: &impl Outbox) {
        let due = {
            let mut g = self
                .pending_replies
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let key = (m.platform, m.user_id.clone());
            let due = g
                .get(&key)
                .is_none_or(|t| t.elapsed() >= PENDING_REPLY_EVERY);
            if due {
                bounded_insert(&mut g, key, Instant::now());
            }
            due
        };
        if due {
            out.notice(replies::REQUEST_PENDING).await;
        }
    }

    async fn journal(&self, m: &Incoming, out: &impl Outbox) {
        if m.text.trim().is_empty() {
            return out.notice(replies::JOURNAL_USAGE).await;
        }
        let gate = self.state.settings.vault_gate();
        let text = m.text.clone();
        let mut md = Map::new();
        md.insert("source".into(), m.platform.as_str().into());
        let saved = tokio::task::spawn_blocking(move || {
            parachute_core::vault::journal::save_entry(&gate, &text, &md, chrono::Utc::now())
        })
        .await;
        match saved {
            Ok(Ok(e)) => {
                self.state.events.fire(
                    "daily.entry.created",
                    serde_json::json!({"id": e.id, "path": e.relative_path, "created_at": e.created_at,
                        "source": m.platform.as_str()}),
                );
                out.notice(&format!("Journal entry saved: {}", e.relative_path))
                    .await
            }
            Ok(Err(e)) => out.notice(&format!("Journal entry not saved: {e}")).await,
            Err(_) => out.notice("Journal entry not saved: internal error").await,
        }
    }

    /// Runs the turn through the one turn interface and streams it to `out`.
    async fn run_turn(
        &self,
        session: &SessionRow,
        message: String,
        level: TrustLevel,
        out: &impl Outbox,
    ) {
        out.typing().await;
        self.state
            .events
            .fire_blocking(
                "bot.message.received",
                serde_json::json!({"platform": session.source, "session_id": session.id, "message": message}),
            )
            .await;
        let req = ChatRequest {
            message,
            session_id: Some(session.id.clone()),
            module: Some("chat".into()),
            trust_level: Some(level.as_str().into()),
            ..Default::default()
        };
        // A server at its process cap refuses turns beyond its queue: the chat's lane
        // keeps its order, so the turn waits and tries again (up to ~2 minutes).
        let mut wait = std::time::Duration::from_secs(1);
        let (reply, error) = loop {
            let turn = self.state.chat.start(req.clone()).await;
            let (reply, error, texts) = consume(&turn, out).await;
            let busy = error
                .as_deref()
                .is_some_and(|e| e.starts_with(parachute_core::chat::BUSY_MESSAGE_START));
            if busy && !texts && wait <= std::time::Duration::from_secs(32) {
                tokio::time::sleep(wait).await;
                wait *= 2;
                out.typing().await;
                continue;
            }
            break (reply, error);
        };
        match error {
            Some(e) if reply.trim().is_empty() => {
                out.finish(&format!("Something went wrong: {e}")).await
            }
            Some(e) => {
                out.finish(&format!("{reply}\n\n(Something went wrong: {e})"))
                    .await
            }
            None if reply.trim().is_empty() => out.finish(replies::NO_RESPONSE).await,
            None => out.finish(&reply).await,
        }
        self.state
            .events
            .fire_blocking(
                "bot.message.sent",
                serde_json::json!({"platform": session.source, "session_id": session.id, "response": reply}),
            )
            .await;
    }
}

/// Reads a turn to its end, streaming text to `out`: the reply (the `done` response, else
/// the text streamed), the error if any, and whether any text came.
async fn consume(
    turn: &parachute_core::chat::Turn,
    out: &impl Outbox,
) -> (String, Option<String>, bool) {
    let (mut seen, mut done_text, mut current) = (0usize, String::new(), String::new());
    let (mut reply, mut error, mut asked) = (None::<String>, None::<String>, false);
    loop {
        let events = turn.events_after(seen).await;
        if events.is_empty() {
            break;
        }
        for (i, ev) in events {
            seen = i;
            match &*ev {
                TurnEvent::Text { content, .. } => {
                    if !content.starts_with(current.as_str()) {
                        done_text.push_str(&current);
                        done_text.push_str("\n\n");
                    }
                    current.clone_from(content);
                    out.progress(&format!("{done_text}{current}")).await;
                }
                TurnEvent::Done { response, .. } => reply = Some(response.clone()),
                TurnEvent::Error { error: e, .. } => error = Some(e.clone()),
                TurnEvent::UserQuestion { .. } | TurnEvent::PermissionRequest(_) if !asked => {
                    asked = true;
                    out.notice(replies::NEEDS_OWNER).await;
                }
                _ => {}
            }
        }
    }
    let texts = !current.is_empty() || !done_text.is_empty();
    let reply = reply.unwrap_or_else(|| format!("{done_text}{current}"));
    (reply, error, texts)
}

/// `Arc<BotCore>` is what connectors hold.
pub type SharedCore = Arc<BotCore>;
