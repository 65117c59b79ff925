//! The bots service: the config (`bots.yaml`, tokens in the secrets store), the
//! running connectors — each an owned task, restarted with backoff when it fails or
//! stalls, never able to take the server down — their health, and the pairing
//! decisions of the owner.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use parachute_core::app::AppState;
use parachute_core::config::secrets::SecretName;
use parachute_core::db::{PairingRow, PairingStatus, SessionRow};
use parachute_core::sessions::metadata_object;
use parachute_core::trust::TrustLevel;

use crate::config::BotsConfig;
use crate::config_view::{BotsConfigView, PlatformConfigView};
use crate::flow::BotCore;
use crate::platform::Platform;
use crate::status::{BotConnectorStatus, BotConnectors, BotsStatus, HealthBot, HealthBots};
use crate::token_check::BotTestResult;
use crate::{replies, BotsError};

/// Sends a plain message to a chat of a running connector (approval, activation).
pub trait Notifier: Send + Sync {
    /// Sends `text` to `chat_id`.
    fn notify(
        &self,
        chat_id: String,
        text: String,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
}

/// A connector's health, as `/api/bots/status` shows it.
#[derive(Debug, Default)]
pub struct Health {
    /// The connector task runs (it may be between restarts).
    pub running: AtomicBool,
    /// When the platform last answered (RFC 3339).
    pub last_ok_at: Mutex<Option<String>>,
    /// How many times it was restarted after a failure.
    pub restarts: AtomicU64,
    /// The last failure, token removed.
    pub last_error: Mutex<Option<String>>,
}

impl Health {
    /// The platform answered.
    pub fn ok(&self) {
        if let Ok(mut g) = self.last_ok_at.lock() {
            *g = Some(parachute_core::util::time::now_rfc3339());
        }
    }

    fn failed(&self, e: &str) {
        if let Ok(mut g) = self.last_error.lock() {
            *g = Some(e.to_string());
        }
    }
}

struct Running {
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    notifier: Arc<dyn Notifier>,
}

/// What a connector needs to run once; the supervisor calls it again after a failure.
pub struct ConnectorRun {
    /// The shared flow state.
    pub core: Arc<BotCore>,
    /// The platform token.
    pub token: String,
    /// Health to update.
    pub health: Arc<Health>,
    /// Ends the connector.
    pub cancel: CancellationToken,
    /// The per-chat lanes, kept across restarts so a chat never has two.
    pub lanes: Arc<crate::lanes::Lanes>,
}

/// The bots of one server.
pub struct Bots {
    core: Arc<BotCore>,
    path: PathBuf,
    config_error: Mutex<Option<String>>,
    write_lock: tokio::sync::Mutex<()>,
    running: Mutex<HashMap<Platform, Running>>,
    health: HashMap<Platform, Arc<Health>>,
    /// Telegram's update offset, kept across restarts of its connector.
    pub(crate) telegram_offset: Arc<std::sync::atomic::AtomicI64>,
    /// Telegram's group history, kept across restarts.
    telegram_history: Arc<crate::group::GroupHistory>,
    /// Each platform's per-chat lanes, kept across restarts.
    lanes: HashMap<Platform, Arc<crate::lanes::Lanes>>,
}

/// First and longest wait between restarts.
const BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(60));

/// Replaces the token in an error text (HTTP client errors may quote the URL).
pub fn scrub(text: &str, token: &str) -> String {
    if token.len() < 4 {
        return text.to_string();
    }
    text.replace(token, "<token>")
}

fn secret_name(p: Platform) -> SecretName {
    match p {
        Platform::Telegram => SecretName::TelegramBotToken,
        Platform::Discord => SecretName::DiscordBotToken,
    }
}

impl Bots {
    /// Loads `bots.yaml` (a bad file leaves both connectors off, with the reason shown
    /// in the status) for `state`.
    pub fn load(state: AppState) -> Arc<Bots> {
        let path = state.settings.paths.vault_dot().join("bots.yaml");
        let (config, error) = match BotsConfig::load(&path) {
            Ok(c) => (c, None),
            Err(e) => {
                tracing::error!(error = %e, "bots.yaml is invalid: bots stay off until it is fixed");
                (BotsConfig::default(), Some(e.to_string()))
            }
        };
        Arc::new(Bots {
            core: Arc::new(BotCore::new(state, config)),
            path,
            config_error: Mutex::new(error),
            write_lock: tokio::sync::Mutex::new(()),
            running: Mutex::default(),
            health: Platform::ALL
                .iter()
                .map(|p| (*p, Arc::new(Health::default())))
                .collect(),
            telegram_offset: Arc::default(),
            telegram_history: Arc::default(),
            lanes: Platform::ALL
                .iter()
                .map(|p| {
                    let lanes = crate::lanes::Lanes::new(100, 10_000, Duration::from_secs(120));
                    (*p, Arc::new(lanes))
                })
                .collect(),
        })
    }

    /// The shared flow state.
    pub fn core(&self) -> &Arc<BotCore> {
        &self.core
    }

    fn health(&self, p: Platform) -> Arc<Health> {
        self.health.get(&p).cloned().unwrap_or_default()
    }

    /// At server start: moves tokens found in `bots.yaml` into the secrets store, then
    /// starts each enabled connector that has a token. Failures are logged only.
    pub async fn start_enabled(self: &Arc<Self>) {
        if let Err(e) = self.move_file_tokens().await {
            tracing::warn!(error = %e, "could not move bot tokens out of bots.yaml");
        }
        for p in Platform::ALL {
            if !self.core.config().platform(p).enabled {
                continue;
            }
            match self.start(p).await {
                Ok(m) => tracing::info!(platform = %p, "{m}"),
                Err(e) => tracing::warn!(platform = %p, error = %e, "bot connector not started"),
            }
        }
    }

    async fn move_file_tokens(&self) -> Result<(), BotsError> {
        let _w = self.write_lock.lock().await;
        let mut cfg = self.core.config();
        let mut moved = false;
        for p in Platform::ALL {
            let t = std::mem::take(&mut cfg.platform_mut(p).file_token);
            if !t.is_empty() {
                self.core.state.secrets.set(secret_name(p), &t).await?;
                moved = true;
                tracing::info!(platform = %p, "bot token moved from bots.yaml to the secrets store");
            }
        }
        if moved {
            cfg.save(&self.path)?;
            *self.core.config.write().unwrap_or_else(|e| e.into_inner()) = cfg;
        }
        Ok(())
    }

    async fn token(&self, p: Platform) -> Option<String> {
        match self.core.state.secrets.get(secret_name(p)).await {
            Ok(Some((s, _))) => Some(s.expose().to_string()),
            _ => None,
        }
    }

    /// Whether the connector of `p` runs.
    pub fn is_running(&self, p: Platform) -> bool {
        self.running
            .lock()
            .map(|m| m.get(&p).is_some_and(|r| !r.task.is_finished()))
            .unwrap_or(false)
    }

    /// The config and token of `p`, when it is enabled and has a token.
    async fn ready(&self, p: Platform) -> Result<(BotsConfig, String), BotsError> {
        let cfg = self.core.config();
        if !cfg.platform(p).enabled {
            return Err(BotsError::NotReady(format!(
                "{p} connector is not enabled in bots.yaml"
            )));
        }
        let token = self
            .token(p)
            .await
            .ok_or_else(|| BotsError::NotReady(format!("No bot token configured for {p}")))?;
        Ok((cfg, token))
    }

    /// Starts the connector of `p` under supervision.
    pub async fn start(self: &Arc<Self>, p: Platform) -> Result<String, BotsError> {
        let (cfg, token) = self.ready(p).await?;
        if self.is_running(p) {
            return Err(BotsError::AlreadyRunning(p.to_string()));
        }
        let cancel = CancellationToken::new();
        let health = self.health(p);
        let run = ConnectorRun {
            core: self.core.clone(),
            token: token.clone(),
            health: health.clone(),
            cancel: cancel.clone(),
            lanes: self.lanes.get(&p).cloned().unwrap_or_else(|| {
                Arc::new(crate::lanes::Lanes::new(
                    100,
                    10_000,
                    Duration::from_secs(120),
                ))
            }),
        };
        let api_url = cfg.platform(p).api_url.clone();
        let notifier: Arc<dyn Notifier> = match p {
            Platform::Telegram => crate::telegram::notifier(&run, cfg.platform(p)),
            Platform::Discord => crate::discord::notifier(&run, api_url.as_deref()),
        };
        let (offset, history) = (self.telegram_offset.clone(), self.telegram_history.clone());
        health.running.store(true, Ordering::SeqCst);
        let task = tokio::spawn(supervise(p, run, move |r| {
            let (offset, history) = (offset.clone(), history.clone());
            let api_url = api_url.clone();
            Box::pin(async move {
                match p {
                    Platform::Telegram => crate::telegram::run(r, api_url, offset, history).await,
                    Platform::Discord => crate::discord::run(r, api_url).await,
                }
            })
        }));
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                p,
                Running {
                    cancel,
                    task,
                    notifier,
                },
            );
        Ok(format!("{p} connector started"))
    }

    /// Stops the connector of `p`; `false` when it was not running.
    pub async fn stop(&self, p: Platform) -> bool {
        let r = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&p);
        let Some(r) = r else { return false };
        r.cancel.cancel();
        let abort = r.task.abort_handle();
        if tokio::time::timeout(Duration::from_secs(5), r.task)
            .await
            .is_err()
        {
            // Never two pollers for one bot: a connector that does not stop is ended.
            abort.abort();
        }
        self.health(p).running.store(false, Ordering::SeqCst);
        true
    }

    /// Stops every connector (server shutdown).
    pub async fn shutdown(&self) {
        for p in Platform::ALL {
            self.stop(p).await;
        }
    }

    /// Checks the token with the platform (`getMe`).
    pub async fn test(&self, p: Platform) -> Result<BotTestResult, BotsError> {
        let (cfg, token) = self.ready(p).await?;
        let api_url = cfg.platform(p).api_url.as_deref();
        let me = match p {
            Platform::Telegram => crate::telegram::get_me(&token, api_url)
                .await
                .map(|(name, username)| BotTestResult::telegram(name, username)),
            Platform::Discord => crate::discord::get_me(&token, api_url)
                .await
                .map(|(name, id)| BotTestResult::discord(name, id)),
        };
        Ok(me.unwrap_or_else(|e| BotTestResult::failed(scrub(&e, &token))))
    }

    /// `GET /api/bots/status`.
    pub async fn status(&self) -> BotsStatus {
        let cfg = self.core.config();
        BotsStatus {
            configured: true,
            connectors: BotConnectors {
                telegram: self.connector_status(Platform::Telegram, &cfg).await,
                discord: self.connector_status(Platform::Discord, &cfg).await,
            },
            config_error: self.config_error.lock().ok().and_then(|g| g.clone()),
        }
    }

    async fn connector_status(&self, p: Platform, cfg: &BotsConfig) -> BotConnectorStatus {
        let has_token = self.token(p).await.is_some();
        BotConnectorStatus::new(
            &self.health(p),
            self.is_running(p),
            cfg.platform(p),
            has_token,
        )
    }

    /// `GET /api/bots/config`: every setting, tokens only as `has_token`.
    pub async fn config_view(&self) -> BotsConfigView {
        let cfg = self.core.config();
        BotsConfigView {
            telegram: self.platform_view(Platform::Telegram, &cfg).await,
            discord: self.platform_view(Platform::Discord, &cfg).await,
        }
    }

    async fn platform_view(&self, p: Platform, cfg: &BotsConfig) -> PlatformConfigView {
        let has_token = self.token(p).await.is_some();
        PlatformConfigView::new(p, cfg.platform(p), has_token)
    }

    /// `PUT /api/bots/config`: all or nothing. A bad field is refused naming it and
    /// changes nothing (a running connector keeps running); a token in the body goes to
    /// the secrets store; connectors of the platforms in the body restart. `from` says
    /// whether the caller is on this machine (only it may change the API URLs).
    pub async fn put_config(
        self: &Arc<Self>,
        body: &Value,
        from: crate::config::Source,
    ) -> Result<BotsConfigView, BotsError> {
        let body = body
            .as_object()
            .ok_or_else(|| BotsError::Config("expected a JSON object".into()))?;
        let touched: Vec<Platform> = Platform::ALL
            .into_iter()
            .filter(|p| body.get(p.as_str()).is_some_and(Value::is_object))
            .collect();
        {
            let _w = self.write_lock.lock().await;
            let mut cfg = self.core.config();
            cfg.apply(body, from)?;
            let mut tokens = Vec::new();
            for p in &touched {
                match body[p.as_str()].get("bot_token") {
                    None | Some(Value::Null) => {}
                    Some(Value::String(t)) if t.trim().is_empty() => {}
                    Some(Value::String(t))
                        if t.trim().len() <= 512 && !t.trim().contains(char::is_whitespace) =>
                    {
                        tokens.push((*p, t.trim().to_string()))
                    }
                    Some(_) => {
                        return Err(BotsError::Config(format!(
                            "{p}.bot_token: expected the bot token as one line of text"
                        )))
                    }
                }
            }
            for (p, t) in tokens {
                if p == Platform::Telegram {
                    // Another bot's update ids start elsewhere.
                    self.telegram_offset.store(0, Ordering::SeqCst);
                }
                self.core.state.secrets.set(secret_name(p), &t).await?;
            }
            cfg.save(&self.path)?;
            *self.core.config.write().unwrap_or_else(|e| e.into_inner()) = cfg;
            if let Ok(mut g) = self.config_error.lock() {
                *g = None;
            }
        }
        for p in touched {
            let was = self.stop(p).await;
            if was || self.core.config().platform(p).enabled {
                if let Err(e) = self.start(p).await {
                    tracing::warn!(platform = %p, error = %e, "bot connector not restarted");
                }
            }
        }
        Ok(self.config_view().await)
    }

    /// Pending pairing requests, newest first.
    pub async fn pending(&self) -> Result<Vec<PairingRow>, BotsError> {
        Ok(self.core.state.store.pending_pairings().await?)
    }

    /// Approves a request: the user joins the allowlist, their pending session is
    /// released at `level`, and they are told.
    pub async fn approve(&self, id: &str, level: TrustLevel) -> Result<PairingRow, BotsError> {
        let row = self
            .resolve(id, PairingStatus::Approved, Some(level))
            .await?;
        let p: Platform = row.platform.parse().map_err(BotsError::UnknownPlatform)?;
        {
            let _w = self.write_lock.lock().await;
            let mut cfg = self.core.config();
            let pc = cfg.platform_mut(p);
            if !pc.allows(&row.platform_user_id) {
                pc.allowed_users.push(row.platform_user_id.clone());
            }
            cfg.save(&self.path)?;
            *self.core.config.write().unwrap_or_else(|e| e.into_inner()) = cfg;
        }
        if let Some(s) = self.pending_session(&row).await {
            let _ = self
                .core
                .state
                .sessions
                .modify(&self.core.state.store, &s.id, |md, c| {
                    md.remove("pending_approval");
                    c.trust_level = Some(Some(level.as_str().into()));
                })
                .await;
        }
        self.notify(p, &row.platform_chat_id, replies::APPROVED)
            .await;
        Ok(row)
    }

    /// Denies a request: its pending session is archived.
    pub async fn deny(&self, id: &str) -> Result<PairingRow, BotsError> {
        let row = self.resolve(id, PairingStatus::Denied, None).await?;
        if let Some(s) = self.pending_session(&row).await {
            let _ = self
                .core
                .state
                .sessions
                .modify(&self.core.state.store, &s.id, |_, c| {
                    c.archived = Some(true)
                })
                .await;
        }
        Ok(row)
    }

    async fn resolve(
        &self,
        id: &str,
        status: PairingStatus,
        level: Option<TrustLevel>,
    ) -> Result<PairingRow, BotsError> {
        match self
            .core
            .state
            .store
            .resolve_pairing(id, status, level.map(TrustLevel::as_str))
            .await?
        {
            None => Err(BotsError::PairingNotFound),
            Some(Err(row)) => Err(BotsError::AlreadyResolved(row.status)),
            Some(Ok(row)) => Ok(row),
        }
    }

    async fn pending_session(&self, row: &PairingRow) -> Option<SessionRow> {
        let s = self
            .core
            .state
            .store
            .latest_linked_session(&row.platform, &row.platform_chat_id)
            .await
            .ok()??;
        metadata_object(&s)
            .contains_key("pending_approval")
            .then_some(s)
    }

    async fn notify(&self, p: Platform, chat_id: &str, text: &str) {
        let n = self
            .running
            .lock()
            .ok()
            .and_then(|m| m.get(&p).map(|r| r.notifier.clone()));
        match n {
            Some(n) => {
                if let Err(e) = n.notify(chat_id.to_string(), text.to_string()).await {
                    tracing::warn!(platform = %p, error = %e, "could not notify a bot chat");
                }
            }
            None => {
                tracing::info!(platform = %p, "connector not running: the chat was not notified")
            }
        }
    }

    /// After `POST /api/chat/{id}/activate`: the chat's nudges are forgotten and it is
    /// told it can start.
    pub async fn session_activated(&self, row: &SessionRow) {
        let (Some(p), Some(chat)) = (
            row.linked_bot_platform.as_deref(),
            row.linked_bot_chat_id.as_deref(),
        ) else {
            return;
        };
        let Ok(p) = p.parse::<Platform>() else { return };
        self.core.clear_nudges(p, chat);
        self.notify(p, chat, replies::ACTIVATED).await;
    }

    /// `bots` in `/api/health?detailed=true`.
    pub fn health_summary(&self) -> HealthBots {
        let bot = |p| HealthBot {
            running: self.is_running(p),
        };
        HealthBots {
            telegram: bot(Platform::Telegram),
            discord: bot(Platform::Discord),
        }
    }
}

type RunFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// Runs a connector until cancelled: each failure (an error, a panic, a stall the
/// connector detects) is recorded and the connector restarted after a backoff that
/// doubles up to a minute and resets after a healthy run.
async fn supervise(
    p: Platform,
    run: ConnectorRun,
    once: impl Fn(ConnectorRun) -> RunFuture + Send + 'static,
) {
    let mut wait = BACKOFF.0;
    loop {
        let attempt = ConnectorRun {
            core: run.core.clone(),
            token: run.token.clone(),
            health: run.health.clone(),
            cancel: run.cancel.clone(),
            lanes: run.lanes.clone(),
        };
        let started = std::time::Instant::now();
        let result = tokio::spawn(once(attempt)).await;
        if run.cancel.is_cancelled() {
            break;
        }
        let why = match result {
            Ok(Ok(())) => "the connector stopped".to_string(),
            Ok(Err(e)) => scrub(&e, &run.token),
            Err(e) => format!("the connector panicked: {e}"),
        };
        run.health.failed(&why);
        run.health.restarts.fetch_add(1, Ordering::SeqCst);
        if started.elapsed() > Duration::from_secs(300) {
            wait = BACKOFF.0;
        }
        tracing::warn!(platform = %p, error = %why, wait_s = wait.as_secs(), "bot connector failed; restarting");
        tokio::select! {
            _ = run.cancel.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(BACKOFF.1);
    }
    run.health.running.store(false, Ordering::SeqCst);
}
