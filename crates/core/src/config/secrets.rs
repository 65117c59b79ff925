//! The secrets service: the Claude OAuth token, the Anthropic API key and bot
//! tokens. Order of lookup: environment variable > OS keychain > a 0600 file under
//! `PARACHUTE_HOME`. Keychain calls run off the async runtime with a time limit (a D-Bus
//! call can hang on a headless machine) and only when a secret is first needed.
//!
//! A [`Secret`] never prints its value: `Debug` and `Display` show `***`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const SERVICE: &str = "parachute";
const KEYRING_TIMEOUT: Duration = Duration::from_secs(3);
const CACHE_TTL: Duration = Duration::from_secs(300);

/// The secrets Parachute knows about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretName {
    /// Claude Code OAuth token (`CLAUDE_CODE_OAUTH_TOKEN`).
    ClaudeOauthToken,
    /// Anthropic API key (`ANTHROPIC_API_KEY`).
    AnthropicApiKey,
    /// Telegram bot token (`TELEGRAM_BOT_TOKEN`).
    TelegramBotToken,
    /// Discord bot token (`DISCORD_BOT_TOKEN`).
    DiscordBotToken,
    /// Key of the speech-to-text service for bots' voice messages (`TRANSCRIPTION_API_KEY`).
    TranscriptionApiKey,
}

impl SecretName {
    /// The environment variable that overrides the stored value.
    pub fn env_var(self) -> &'static str {
        match self {
            SecretName::ClaudeOauthToken => "CLAUDE_CODE_OAUTH_TOKEN",
            SecretName::AnthropicApiKey => "ANTHROPIC_API_KEY",
            SecretName::TelegramBotToken => "TELEGRAM_BOT_TOKEN",
            SecretName::DiscordBotToken => "DISCORD_BOT_TOKEN",
            SecretName::TranscriptionApiKey => "TRANSCRIPTION_API_KEY",
        }
    }
    /// The account name in the keychain and the key in the fallback file.
    pub fn account(self) -> &'static str {
        match self {
            SecretName::ClaudeOauthToken => "claude_code_oauth_token",
            SecretName::AnthropicApiKey => "anthropic_api_key",
            SecretName::TelegramBotToken => "telegram_bot_token",
            SecretName::DiscordBotToken => "discord_bot_token",
            SecretName::TranscriptionApiKey => "transcription_api_key",
        }
    }
}

/// The two kinds of Claude credential, told apart by their prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A subscription OAuth token from `claude setup-token` (`sk-ant-oat…`), sent by the
    /// CLI as `Authorization: Bearer`.
    OAuth,
    /// An Anthropic Console API key (`sk-ant-api…`), sent by the CLI as `x-api-key`.
    ApiKey,
}

impl TokenKind {
    /// The kind a value's prefix says it is; `None` when it looks like neither.
    pub fn detect(value: &str) -> Option<TokenKind> {
        let v = value.trim();
        if v.starts_with("sk-ant-oat") {
            Some(TokenKind::OAuth)
        } else if v.starts_with("sk-ant-api") {
            Some(TokenKind::ApiKey)
        } else {
            None
        }
    }
    /// Where this kind is stored, and the environment variable the CLI reads it from.
    pub fn secret_name(self) -> SecretName {
        match self {
            TokenKind::OAuth => SecretName::ClaudeOauthToken,
            TokenKind::ApiKey => SecretName::AnthropicApiKey,
        }
    }
    /// The other kind.
    pub fn other(self) -> TokenKind {
        match self {
            TokenKind::OAuth => TokenKind::ApiKey,
            TokenKind::ApiKey => TokenKind::OAuth,
        }
    }
    /// A short name for people: "OAuth token" or "API key".
    pub fn label(self) -> &'static str {
        match self {
            TokenKind::OAuth => "OAuth token",
            TokenKind::ApiKey => "API key",
        }
    }
    /// The name used in JSON reports: `oauth` or `api_key`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::OAuth => "oauth",
            TokenKind::ApiKey => "api_key",
        }
    }
}

/// The Claude credential a turn would use: its kind, value and where it was found.
#[derive(Debug, Clone)]
pub struct ClaudeCredential {
    /// What the value is, by its prefix (or by the name it is stored under when its
    /// prefix says neither).
    pub kind: TokenKind,
    /// The value.
    pub secret: Secret,
    /// Where it was found.
    pub location: Location,
}

/// A secret value; its formatting never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value as is (no trimming or validation).
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    /// The value itself, for the one place that must hand it on (the CLI's environment).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}
impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Where a secret was found or stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// The secret's environment variable (see [`SecretName::env_var`]).
    Env,
    /// The OS keychain, under the `parachute` service.
    Keychain,
    /// The 0600 fallback file (normally `$PARACHUTE_HOME/secrets.json`).
    File,
}

impl Location {
    /// Human-readable name of the location, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Location::Env => "environment",
            Location::Keychain => "OS keychain",
            Location::File => "secrets file",
        }
    }
}

/// Failures of the secrets service.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// A value to store was empty or contained whitespace.
    #[error("the secret is empty or contains whitespace")]
    InvalidValue,
    /// The fallback file could not be read or is not a JSON map of strings.
    #[error("cannot read the secrets file {path}: {reason}")]
    FileRead {
        /// The file (empty if the blocking read task itself failed).
        path: PathBuf,
        /// The underlying I/O or parse error.
        reason: String,
    },
    /// A Claude credential whose prefix says neither OAuth token nor API key.
    #[error("this looks like neither a Claude OAuth token (sk-ant-oat…, from `claude setup-token`) nor an Anthropic API key (sk-ant-api…)")]
    UnknownCredential,
    /// The fallback file could not be written, or the legacy token file removed.
    #[error("cannot write the secrets file {path}: {source}")]
    FileWrite {
        /// The file that failed (empty if the blocking write task itself failed).
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: crate::util::disk_full::ErrorSource,
    },
}

/// Whether the OS keychain is tried at all: `PARACHUTE_KEYRING=off` (or `file`, `0`,
/// `false`) makes every secret use the 0600 file.
pub fn keychain_enabled() -> bool {
    keyring_enabled_by_env()
}

/// Whether the keychain is tried at all (`PARACHUTE_KEYRING=off` forces the file).
fn keyring_enabled_by_env() -> bool {
    !matches!(
        std::env::var("PARACHUTE_KEYRING")
            .unwrap_or_default()
            .to_ascii_lowercase()
            .as_str(),
        "off" | "file" | "0" | "false"
    )
}

/// The secrets service; cheap to share behind an `Arc`.
pub struct SecretStore {
    file: PathBuf,
    keyring: bool,
    cache: Mutex<HashMap<SecretName, (Secret, Location, Instant)>>,
    /// Counts changes made through this store (see [`SecretStore::generation`]).
    generation: std::sync::atomic::AtomicU64,
}

impl SecretStore {
    /// A store whose fallback file is `file` (normally `$PARACHUTE_HOME/secrets.json`).
    pub fn new(file: PathBuf) -> SecretStore {
        SecretStore {
            file,
            keyring: keyring_enabled_by_env(),
            cache: Mutex::new(HashMap::new()),
            generation: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// A store that never touches the keychain (tests, or `PARACHUTE_KEYRING=off`).
    pub fn file_only(file: PathBuf) -> SecretStore {
        SecretStore {
            file,
            keyring: false,
            cache: Mutex::new(HashMap::new()),
            generation: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Grows with every secret stored or removed through this store: what was started
    /// with a credential can tell it may be out of date.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn changed(&self, name: SecretName) {
        // Under the cache's lock: a lookup that began before cannot cache the old value
        // after this (see `get`).
        let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        c.remove(&name);
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Looks a secret up: environment, then keychain (time-limited), then the file.
    pub async fn get(&self, name: SecretName) -> Result<Option<(Secret, Location)>, SecretsError> {
        if let Some(v) = std::env::var(name.env_var())
            .ok()
            .filter(|v| !v.trim().is_empty())
        {
            return Ok(Some((Secret(v.trim().to_string()), Location::Env)));
        }
        if let Some((s, l, at)) = self
            .cache
            .lock()
            .map(|c| c.get(&name).cloned())
            .ok()
            .flatten()
        {
            if at.elapsed() < CACHE_TTL {
                return Ok(Some((s, l)));
            }
        }
        let generation = self.generation();
        let found = if let Some(s) = self.keyring_get(name).await {
            Some((s, Location::Keychain))
        } else {
            let file = self.file.clone();
            let v = tokio::task::spawn_blocking(move || read_file(&file))
                .await
                .unwrap_or_else(|e| {
                    Err(SecretsError::FileRead {
                        path: PathBuf::new(),
                        reason: e.to_string(),
                    })
                })?;
            v.get(name.account())
                .map(|s| (Secret(s.clone()), Location::File))
        };
        if let Some((s, l)) = &found {
            if let Ok(mut c) = self.cache.lock() {
                // Not when the secret changed while it was read: the value may be old.
                if self.generation() == generation {
                    c.insert(name, (s.clone(), *l, Instant::now()));
                }
            }
        }
        Ok(found)
    }

    /// The Claude credential turns use: the OAuth token, else the API key (each from the
    /// environment, the keychain or the file). A value stored under one name whose prefix
    /// says it is the other kind (an API key saved as the OAuth token by an older
    /// version) is used as what it is, so the CLI sends it the right way.
    pub async fn claude_credential(&self) -> Result<Option<ClaudeCredential>, SecretsError> {
        for stored_as in [TokenKind::OAuth, TokenKind::ApiKey] {
            if let Some((secret, location)) = self.get(stored_as.secret_name()).await? {
                let kind = TokenKind::detect(secret.expose()).unwrap_or(stored_as);
                return Ok(Some(ClaudeCredential {
                    kind,
                    secret,
                    location,
                }));
            }
        }
        Ok(None)
    }

    /// Stores a secret: in the keychain when it answers, else in the 0600 file (with a
    /// logged warning). Returns where it went.
    pub async fn set(&self, name: SecretName, value: &str) -> Result<Location, SecretsError> {
        let value = value.trim();
        if value.is_empty() || value.chars().any(char::is_whitespace) {
            return Err(SecretsError::InvalidValue);
        }
        self.changed(name);
        let at = if self.keyring_set(name, value).await {
            // The keychain holds it now: make sure no stale copy stays in the file.
            self.file_update(name, None).await?;
            Location::Keychain
        } else {
            tracing::warn!(secret = name.account(), file = %self.file.display(),
                "no OS keychain answered; storing the secret in the 0600 fallback file");
            self.file_update(name, Some(value.to_string())).await?;
            Location::File
        };
        // Counted again once written: a reader between the two saw the old value.
        self.changed(name);
        Ok(at)
    }

    /// Stores the Claude credential under the name of its kind (recognised by prefix;
    /// with `force`, anything else is stored as an OAuth token), and removes a stored
    /// credential of the other kind so only one is in force. Returns the kind, where it
    /// went, and whether another kind was removed.
    pub async fn set_claude_credential(
        &self,
        value: &str,
        force: bool,
    ) -> Result<(TokenKind, Location, bool), SecretsError> {
        let value = value.trim();
        let kind = match TokenKind::detect(value) {
            Some(k) => k,
            None if force => TokenKind::OAuth,
            None => return Err(SecretsError::UnknownCredential),
        };
        let at = self.set(kind.secret_name(), value).await?;
        let other = self.get(kind.other().secret_name()).await?;
        let removed = other.is_some_and(|(_, at)| at != Location::Env);
        if removed {
            self.delete(kind.other().secret_name()).await?;
        }
        Ok((kind, at, removed))
    }

    /// Removes the stored Claude credential of both kinds (values in the environment stay:
    /// they are not ours to remove).
    pub async fn clear_claude_credential(&self) -> Result<(), SecretsError> {
        for k in [TokenKind::OAuth, TokenKind::ApiKey] {
            self.delete(k.secret_name()).await?;
        }
        Ok(())
    }

    /// Removes a secret from the keychain and the file.
    pub async fn delete(&self, name: SecretName) -> Result<(), SecretsError> {
        self.changed(name);
        if self.keyring {
            let _ = with_timeout(move || {
                keyring::Entry::new(SERVICE, name.account()).and_then(|e| e.delete_credential())
            })
            .await;
        }
        let r = self.file_update(name, None).await;
        self.changed(name);
        r
    }

    async fn keyring_get(&self, name: SecretName) -> Option<Secret> {
        if !self.keyring {
            return None;
        }
        match with_timeout(move || {
            keyring::Entry::new(SERVICE, name.account()).and_then(|e| e.get_password())
        })
        .await
        {
            Some(Ok(v)) if !v.is_empty() => Some(Secret(v)),
            Some(Ok(_)) | Some(Err(keyring::Error::NoEntry)) => None,
            Some(Err(e)) => {
                tracing::debug!(error = %e, "keychain read failed; using the fallback file");
                None
            }
            None => {
                tracing::warn!(
                    "keychain did not answer within {KEYRING_TIMEOUT:?}; using the fallback file"
                );
                None
            }
        }
    }

    async fn keyring_set(&self, name: SecretName, value: &str) -> bool {
        if !self.keyring {
            return false;
        }
        let value = value.to_string();
        matches!(
            with_timeout(move || keyring::Entry::new(SERVICE, name.account())
                .and_then(|e| e.set_password(&value)))
            .await,
            Some(Ok(()))
        )
    }

    async fn file_update(
        &self,
        name: SecretName,
        value: Option<String>,
    ) -> Result<(), SecretsError> {
        let file = self.file.clone();
        tokio::task::spawn_blocking(move || {
            let mut map = read_file(&file)?;
            let changed = match value {
                Some(v) => {
                    map.insert(name.account().to_string(), v.clone()).as_deref() != Some(v.as_str())
                }
                None => map.remove(name.account()).is_some(),
            };
            if !changed {
                return Ok(());
            }
            let text = serde_json::to_string_pretty(&map).unwrap_or_else(|_| "{}".into());
            crate::util::fs::write_atomic(&file, text.as_bytes(), Some(0o600)).map_err(|e| {
                SecretsError::FileWrite {
                    path: file.clone(),
                    source: e.into(),
                }
            })
        })
        .await
        .unwrap_or_else(|e| {
            Err(SecretsError::FileWrite {
                path: PathBuf::new(),
                source: e.into(),
            })
        })
    }

    /// Moves a Python-era `{vault}/.parachute/.token` into the store and removes it.
    pub async fn migrate_legacy_token(&self, legacy: &Path) -> Result<bool, SecretsError> {
        let text = match tokio::fs::read_to_string(legacy).await {
            Ok(t) => t,
            Err(_) => return Ok(false),
        };
        let token = text.lines().next().unwrap_or("").trim().to_string();
        if !token.is_empty() {
            let kind = TokenKind::detect(&token).unwrap_or(TokenKind::OAuth);
            let at = self.set(kind.secret_name(), &token).await?;
            tracing::info!(
                stored_in = at.as_str(),
                "migrated the legacy .token file into the secrets store"
            );
        }
        tokio::fs::remove_file(legacy)
            .await
            .map_err(|e| SecretsError::FileWrite {
                path: legacy.into(),
                source: e.into(),
            })?;
        Ok(true)
    }
}

async fn with_timeout<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let handle = tokio::task::spawn_blocking(f);
    match tokio::time::timeout(KEYRING_TIMEOUT, handle).await {
        Ok(Ok(v)) => Some(v),
        _ => None,
    }
}

fn read_file(path: &Path) -> Result<BTreeMap<String, String>, SecretsError> {
    match std::fs::read_to_string(path) {
        Ok(t) if t.trim().is_empty() => Ok(BTreeMap::new()),
        Ok(t) => serde_json::from_str(&t).map_err(|e| SecretsError::FileRead {
            path: path.into(),
            reason: format!("not a JSON map ({}:{})", e.line(), e.column()),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(SecretsError::FileRead {
            path: path.into(),
            reason: e.to_string(),
        }),
    }
}

/// Whether the OS keychain answers a read (blocking: run it off the async runtime).
/// A missing probe entry counts as an answer.
pub fn probe_keychain() -> Result<(), keyring::Error> {
    keyring::Entry::new("parachute", "doctor-probe").and_then(|e| match e.get_password() {
        Err(keyring::Error::NoEntry) => Ok(()),
        other => other.map(|_| ()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_formatting_hides_the_value() {
        let s = Secret::new("sk-ant-very-secret");
        assert_eq!(format!("{s:?} {s}"), "Secret(***) ***");
    }

    #[test]
    fn token_kind_is_told_by_prefix() {
        assert_eq!(
            TokenKind::detect("sk-ant-oat01-abc"),
            Some(TokenKind::OAuth)
        );
        assert_eq!(
            TokenKind::detect(" sk-ant-api03-abc\n"),
            Some(TokenKind::ApiKey)
        );
        assert_eq!(TokenKind::detect("sk-ant-xyz"), None);
        assert_eq!(TokenKind::detect("hello"), None);
        assert_eq!(
            TokenKind::OAuth.secret_name().env_var(),
            "CLAUDE_CODE_OAUTH_TOKEN"
        );
        assert_eq!(
            TokenKind::ApiKey.secret_name().env_var(),
            "ANTHROPIC_API_KEY"
        );
    }

    #[tokio::test]
    async fn an_api_key_stored_as_the_oauth_token_is_used_as_an_api_key() {
        if std::env::var_os("CLAUDE_CODE_OAUTH_TOKEN").is_some()
            || std::env::var_os("ANTHROPIC_API_KEY").is_some()
        {
            return; // the environment would override the stored values
        }
        let dir = tempfile::tempdir().unwrap();
        let store = SecretStore::file_only(dir.path().join("secrets.json"));
        assert!(store.claude_credential().await.unwrap().is_none());
        store
            .set(SecretName::ClaudeOauthToken, "sk-ant-api03-legacy")
            .await
            .unwrap();
        let c = store.claude_credential().await.unwrap().unwrap();
        assert_eq!((c.kind, c.location), (TokenKind::ApiKey, Location::File));
        assert_eq!(c.secret.expose(), "sk-ant-api03-legacy");
    }
}
