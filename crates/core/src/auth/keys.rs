//! API keys and the auth mode as stored in `{vault}/.parachute/server.yaml` — the one
//! source of truth for the mode (an `AUTH_MODE` environment variable overrides it for
//! a run). Keys are `para_` + 32 URL-safe characters, kept only as `sha256:<hex>` and
//! compared in constant time. Last-used times are kept in memory and written out by
//! [`AuthStore::flush`] (periodically and at shutdown), not on every request.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;

use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{AuthError, AuthMode};
use crate::util::disk_full::ErrorSource;
use crate::util::time::now_naive;

const KEY_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// One stored key (never the key itself).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiKeyInfo {
    /// Public identifier: `k_` + 12 random alphanumerics, unrelated to the key itself.
    pub id: String,
    /// Free-text label given when the key was created.
    pub label: String,
    /// `sha256:<hex>` of the key; empty (and not serialized) in listings and API answers.
    #[serde(skip_serializing_if = "String::is_empty", default)]
    #[schema(ignore)]
    pub key_hash: String,
    /// Creation time, UTC, `YYYY-MM-DDTHH:MM:SS.ffffff` with no offset.
    pub created_at: String,
    /// Last successful use (same format as `created_at`); `None` if never used.
    #[serde(default)]
    pub last_used_at: Option<String>,
}

/// A key just created: the only time its plaintext exists.
pub struct CreatedKey {
    /// The stored metadata, with `key_hash` blanked.
    pub info: ApiKeyInfo,
    /// The plaintext key (`para_` + 32 URL-safe characters); it is not stored anywhere.
    pub key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Security {
    #[serde(default = "default_mode")]
    require_auth: AuthMode,
    #[serde(default)]
    api_keys: Vec<ApiKeyInfo>,
}

fn default_mode() -> AuthMode {
    AuthMode::Remote
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ServerYaml {
    security: Security,
    #[serde(default = "default_server_section")]
    server: serde_json::Value,
}

fn default_server_section() -> serde_json::Value {
    serde_json::json!({"port": 3333, "expose_to_tailnet": false})
}

/// The auth state of a running server.
pub struct AuthStore {
    path: PathBuf,
    state: RwLock<ServerYaml>,
    dirty: AtomicBool,
    env_override: Option<AuthMode>,
    write_lock: tokio::sync::Mutex<()>,
    /// The hash of the desktop window's key: issued once per launch, never stored.
    window_key: std::sync::OnceLock<String>,
}

/// The key id the desktop window's per-launch key answers to.
pub const WINDOW_KEY_ID: &str = "k_desktop_window";

/// A new random key: `para_` and 32 alphanumerics.
fn new_key() -> String {
    let mut rng = rand::rngs::OsRng;
    let random: String = (0..32)
        .map(|_| KEY_ALPHABET[rng.gen_range(0..KEY_ALPHABET.len())] as char)
        .collect();
    format!("para_{random}")
}

fn hash_key(key: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(key.as_bytes())))
}

impl AuthStore {
    /// Loads `server.yaml`; a missing file starts with `initial_mode` and no keys. A file
    /// that cannot be parsed is an error: guessing could open the server to everyone.
    pub fn load(
        path: PathBuf,
        initial_mode: AuthMode,
        env_override: Option<AuthMode>,
    ) -> Result<AuthStore, AuthError> {
        let state = match std::fs::read_to_string(&path) {
            Ok(text) if !text.trim().is_empty() => serde_saphyr::from_str::<ServerYaml>(&text)
                .map_err(|e| AuthError::Unreadable {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?,
            Ok(_) => Self::fresh(initial_mode),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::fresh(initial_mode),
            Err(e) => {
                return Err(AuthError::Unreadable {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })
            }
        };
        Ok(AuthStore {
            path,
            state: RwLock::new(state),
            dirty: AtomicBool::new(false),
            env_override,
            write_lock: tokio::sync::Mutex::new(()),
            window_key: std::sync::OnceLock::new(),
        })
    }

    fn fresh(mode: AuthMode) -> ServerYaml {
        ServerYaml {
            security: Security {
                require_auth: mode,
                api_keys: Vec::new(),
            },
            server: default_server_section(),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, ServerYaml> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, ServerYaml> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The mode in force: `AUTH_MODE` if set, else `server.yaml`.
    pub fn mode(&self) -> AuthMode {
        self.env_override
            .unwrap_or_else(|| self.read().security.require_auth)
    }

    /// The `AUTH_MODE` override, if any.
    pub fn env_override(&self) -> Option<AuthMode> {
        self.env_override
    }

    /// How many keys are stored.
    pub fn key_count(&self) -> usize {
        self.read().security.api_keys.len()
    }

    /// Key metadata for listing (no hashes).
    pub fn list(&self) -> Vec<ApiKeyInfo> {
        self.read()
            .security
            .api_keys
            .iter()
            .map(|k| ApiKeyInfo {
                key_hash: String::new(),
                ..k.clone()
            })
            .collect()
    }

    /// Checks a presented key against every stored hash in constant time; on a match
    /// records the use in memory and returns the key id.
    pub fn verify(&self, presented: &str) -> Option<String> {
        let digest = hash_key(presented);
        if let Some(w) = self.window_key.get() {
            let eq: bool = w.as_bytes().ct_eq(digest.as_bytes()).into();
            if eq {
                return Some(WINDOW_KEY_ID.to_string());
            }
        }
        let mut found: Option<usize> = None;
        {
            let st = self.read();
            for (i, k) in st.security.api_keys.iter().enumerate() {
                let eq: bool = k.key_hash.as_bytes().ct_eq(digest.as_bytes()).into();
                if eq && found.is_none() {
                    found = Some(i);
                }
            }
        }
        let i = found?;
        let mut st = self.write();
        // A key revoked between the two locks shifts the list: check it is still ours.
        let key = st
            .security
            .api_keys
            .get_mut(i)
            .filter(|k| k.key_hash == digest)?;
        key.last_used_at = Some(now_naive());
        self.dirty.store(true, Ordering::Relaxed);
        Some(key.id.clone())
    }

    /// Issues the desktop window's key: valid until the server stops, kept only in
    /// memory (never listed, never saved), so the app's own window is let in whatever
    /// the auth mode while other local pages are not. Once per launch: `None` after.
    pub fn issue_window_key(&self) -> Option<String> {
        let key = new_key();
        self.window_key.set(hash_key(&key)).ok()?;
        Some(key)
    }

    /// Creates a key and saves it at once.
    pub async fn create(&self, label: &str) -> Result<CreatedKey, AuthError> {
        let mut rng = rand::rngs::OsRng;
        let key = new_key();
        let info = ApiKeyInfo {
            // The id is shown to every key holder: it must not reveal any of the key.
            id: format!(
                "k_{}",
                (0..12)
                    .map(|_| KEY_ALPHABET[rng.gen_range(0..62)] as char)
                    .collect::<String>()
            ),
            label: label.to_string(),
            key_hash: hash_key(&key),
            created_at: now_naive(),
            last_used_at: None,
        };
        self.write().security.api_keys.push(info.clone());
        self.persist().await?;
        Ok(CreatedKey {
            info: ApiKeyInfo {
                key_hash: String::new(),
                ..info
            },
            key,
        })
    }

    /// Revokes a key by id and saves at once.
    pub async fn delete(&self, id: &str) -> Result<(), AuthError> {
        {
            let mut st = self.write();
            let before = st.security.api_keys.len();
            st.security.api_keys.retain(|k| k.id != id);
            if st.security.api_keys.len() == before {
                return Err(AuthError::KeyNotFound(id.to_string()));
            }
        }
        self.persist().await
    }

    /// Changes the stored mode. `disabled` is refused unless the server listens on
    /// loopback only; any change is refused while `AUTH_MODE` overrides the file.
    pub async fn set_mode(&self, mode: AuthMode, bind_host: &str) -> Result<(), AuthError> {
        if let Some(env) = self.env_override {
            if env != mode {
                return Err(AuthError::OverriddenByEnv(env.as_str()));
            }
        }
        if mode == AuthMode::Disabled && !crate::config::host_is_loopback(bind_host) {
            return Err(AuthError::DisabledOffLoopback(bind_host.to_string()));
        }
        self.write().security.require_auth = mode;
        self.persist().await
    }

    /// Writes last-used times out if any changed since the last write.
    pub async fn flush(&self) -> Result<(), AuthError> {
        if self.dirty.load(Ordering::Relaxed) {
            self.persist().await?;
        }
        Ok(())
    }

    async fn persist(&self) -> Result<(), AuthError> {
        let _guard = self.write_lock.lock().await;
        self.dirty.store(false, Ordering::Relaxed);
        let snapshot = self.read().clone();
        let path = self.path.clone();
        let err_path = path.display().to_string();
        tokio::task::spawn_blocking(move || -> Result<(), ErrorSource> {
            let text = serde_saphyr::to_string(&snapshot)?;
            crate::util::fs::write_atomic(&path, text.as_bytes(), Some(0o600))?;
            Ok(())
        })
        .await
        .map_err(ErrorSource::from)
        .and_then(|r| r)
        .map_err(|source| {
            self.dirty.store(true, Ordering::Relaxed);
            AuthError::Unwritable {
                path: err_path,
                source,
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_window_key_is_accepted_once_issued_never_listed_and_issued_once() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            AuthStore::load(dir.path().join("server.yaml"), AuthMode::Always, None).unwrap();
        assert_eq!(store.verify("para_anything"), None);
        let key = store.issue_window_key().unwrap();
        assert!(key.starts_with("para_") && key.len() == 37, "{key}");
        assert_eq!(store.verify(&key).as_deref(), Some(WINDOW_KEY_ID));
        assert_eq!(store.verify("para_other"), None);
        // Not a stored key: nothing listed, nothing written.
        assert_eq!((store.key_count(), store.list().len()), (0, 0));
        assert!(!dir.path().join("server.yaml").exists());
        assert_eq!(store.issue_window_key(), None, "issued twice");
    }
}
