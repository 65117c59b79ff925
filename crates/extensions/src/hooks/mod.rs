//! Hooks: executables that run when something happens (a session is created, a turn
//! completes, a bot message arrives, …). Two places:
//!
//! - `{vault}/.parachute/hooks/NAME` — protected: only the owner puts files there, so
//!   they run unconfined (with a scrubbed environment);
//! - `hooks/NAME` of an enabled module — at the level the module was approved for:
//!   `full` unconfined, `vault` under the same OS confinement as a `vault` session's
//!   commands, `sandboxed` not at all (there is no container runner for hooks; the
//!   listing says so).
//!
//! Settings are in [`config`]; running one in [`run`]. Non-blocking hooks run in the
//! background, at most [`MAX_CONCURRENT`] at once, and never delay the caller; blocking
//! ones run one after another and the caller waits (within their timeouts). Failures
//! and timeouts go into a ring buffer of the last [`MAX_ERRORS`].

pub mod config;
pub mod run;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use parachute_core::config::Settings;
use parachute_core::notify::EventListener;
use parachute_core::trust::os_sandbox::{confine_command, PrivatePlaces};
use parachute_core::trust::TrustLevel;
use serde::Serialize;
use serde_json::Value;
use sha2::Digest;

use crate::modules::Modules;

/// Most hooks running in the background at once.
pub const MAX_CONCURRENT: usize = 4;
/// Failures kept.
pub const MAX_ERRORS: usize = 50;

/// Where a hook comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HookSource {
    /// `{vault}/.parachute/hooks/`.
    Vault,
    /// An enabled module's `hooks/`.
    Module,
}

/// A hook as listed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HookInfo {
    /// Its file name (a module's: `module/NAME`).
    pub name: String,
    /// Its file.
    pub path: String,
    /// The events it runs for.
    pub events: Vec<String>,
    /// Whether the caller waits for it.
    pub blocking: bool,
    /// Seconds before it is killed.
    pub timeout: f64,
    /// Whether it runs.
    pub enabled: bool,
    /// What it does.
    pub description: Option<String>,
    /// Vault or module.
    pub source: HookSource,
    /// The module, for a module's hook.
    pub module: Option<String>,
    /// How it runs: `unconfined`, `vault` (OS confinement) or `disabled`.
    pub runs: &'static str,
    /// Why it does not run, when it does not.
    pub problem: Option<String>,
}

/// A hook failure.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HookFailure {
    /// The hook (the contract's key).
    pub hook_name: String,
    /// The hook (the app's key).
    pub hook: String,
    /// The event it ran for.
    pub event: String,
    /// What went wrong (the contract's key).
    pub error: String,
    /// What went wrong (the app's key).
    pub message: String,
    /// When (RFC 3339, UTC).
    pub timestamp: String,
}

struct Runnable {
    info: HookInfo,
    path: PathBuf,
    confine: bool,
    timeout: std::time::Duration,
    /// A module hook's SHA-256 as approved: checked again right before each run.
    expected: Option<String>,
}

/// The hooks of one server.
pub struct Hooks {
    settings: Arc<Settings>,
    modules: Arc<Modules>,
    errors: Mutex<VecDeque<HookFailure>>,
    slots: Arc<tokio::sync::Semaphore>,
    me: std::sync::Weak<Hooks>,
}

fn is_executable(meta: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        true
    }
}

impl Hooks {
    /// The hooks of the server with `settings`; modules' hooks come from `modules`.
    pub fn new(settings: Arc<Settings>, modules: Arc<Modules>) -> Arc<Hooks> {
        Arc::new_cyclic(|me| Hooks {
            settings,
            modules,
            errors: Mutex::new(VecDeque::new()),
            slots: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT)),
            me: me.clone(),
        })
    }

    fn hooks_dir(&self) -> PathBuf {
        self.settings.paths.vault_dot().join("hooks")
    }

    /// Every hook with its settings and how it runs (blocking file reads).
    fn discover(&self) -> Vec<Runnable> {
        let mut out = Vec::new();
        scan_dir(&self.hooks_dir(), None, &mut out);
        for m in self.modules.enabled() {
            scan_dir(&m.dir.join("hooks"), Some(&m), &mut out);
        }
        out
    }

    /// Every hook, as listed by `GET /api/hooks` (blocking).
    pub fn list(&self) -> Vec<HookInfo> {
        self.discover().into_iter().map(|r| r.info).collect()
    }

    /// The recent failures, newest last.
    pub fn errors(&self) -> Vec<HookFailure> {
        self.errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    fn record(&self, hook: &str, event: &str, error: String) {
        tracing::warn!(hook, event, error = %error, "hook failed");
        let mut errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if errors.len() >= MAX_ERRORS {
            errors.pop_front();
        }
        errors.push_back(HookFailure {
            hook_name: hook.to_string(),
            hook: hook.to_string(),
            event: event.to_string(),
            message: error.clone(),
            error,
            timestamp: chrono::Utc::now().to_rfc3339(),
        });
    }

    fn command(&self, r: &Runnable) -> std::process::Command {
        if r.confine {
            let private = PrivatePlaces {
                home: std::env::var_os("HOME").map(PathBuf::from),
                parachute_home: self.settings.paths.home.clone(),
                claude_config_dir: self.settings.claude_config_dir.clone(),
            };
            confine_command(
                &r.path,
                &self.settings.vault_gate(),
                &self.settings.db_path,
                &private,
            )
        } else {
            std::process::Command::new(&r.path)
        }
    }

    async fn run_one(&self, r: &Runnable, event: &'static str, payload: &Value) {
        // A module's hook may have waited for a slot: it runs only if it is still the
        // file that was approved.
        if let Some(expected) = &r.expected {
            let path = r.path.clone();
            let now = tokio::task::spawn_blocking(move || std::fs::read(path).ok())
                .await
                .ok()
                .flatten()
                .map(|b| hex::encode(sha2::Sha256::digest(&b)));
            if now.as_deref() != Some(expected.as_str()) {
                self.record(
                    &r.info.name,
                    event,
                    "not run: it changed since its module was approved".into(),
                );
                return;
            }
        }
        let cmd = self.command(r);
        if let Err(e) = run::run(cmd, event, payload, &self.settings.paths.vault, r.timeout).await {
            self.record(&r.info.name, event, e);
        }
    }

    /// The hooks that run for `event`, split into (blocking, background).
    async fn for_event(&self, event: &'static str) -> (Vec<Runnable>, Vec<Runnable>) {
        let Some(me) = self.me.upgrade() else {
            return (Vec::new(), Vec::new());
        };
        let all = tokio::task::spawn_blocking(move || me.discover())
            .await
            .unwrap_or_default();
        all.into_iter()
            .filter(|r| {
                r.info.enabled
                    && r.info.problem.is_none()
                    && r.info.events.iter().any(|e| e == event)
            })
            .partition(|r| r.info.blocking)
    }

    fn payload(event: &'static str, mut data: Value) -> Value {
        if let Value::Object(m) = &mut data {
            m.insert("event".into(), event.into());
            m.insert("timestamp".into(), chrono::Utc::now().to_rfc3339().into());
        }
        data
    }

    async fn fire(self: Arc<Self>, event: &'static str, data: Value, wait: bool) {
        let (blocking, background) = self.for_event(event).await;
        if blocking.is_empty() && background.is_empty() {
            return;
        }
        let payload = Arc::new(Self::payload(event, data));
        for r in background {
            let (me, payload) = (self.clone(), payload.clone());
            tokio::spawn(async move {
                let Ok(_slot) = me.slots.clone().acquire_owned().await else {
                    return;
                };
                me.run_one(&r, event, &payload).await;
            });
        }
        let blocking_run = {
            let me = self.clone();
            let payload = payload.clone();
            async move {
                for r in blocking {
                    me.run_one(&r, event, &payload).await;
                }
            }
        };
        if wait {
            blocking_run.await;
        } else {
            tokio::spawn(blocking_run);
        }
    }
}

fn scan_dir(dir: &Path, owner: Option<&crate::modules::EnabledModule>, out: &mut Vec<Runnable>) {
    let module = owner.map(|m| m.name.as_str());
    let level = owner.map_or(TrustLevel::Full, |m| m.trust_level);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for e in entries {
        let Ok(name) = e.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.')
            || name.starts_with('_')
            || name.ends_with(".yaml")
            || name.ends_with(".yml")
        {
            continue;
        }
        let path = e.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let config = config::load(&path);
        let (confine, runs, mut problem) = match (module, level) {
            (None, _) | (Some(_), TrustLevel::Full) => (false, "unconfined", None),
            (Some(_), TrustLevel::Vault) => {
                let missing = parachute_core::trust::os_sandbox::missing_programs();
                if missing.is_empty() {
                    (true, "vault", None)
                } else {
                    (
                        true,
                        "disabled",
                        Some(parachute_core::trust::os_sandbox::missing_message(&missing)),
                    )
                }
            }
            (Some(_), TrustLevel::Sandboxed) => (
                false,
                "disabled",
                Some(
                    "the module was approved at sandboxed, and hooks cannot run in a container yet"
                        .to_string(),
                ),
            ),
        };
        if problem.is_none() && !is_executable(&meta) {
            problem = Some("it is not executable (chmod +x)".into());
        }
        let (events, blocking, timeout, enabled, description) = match config {
            Ok(c) => (c.events, c.blocking, c.timeout, c.enabled, c.description),
            Err(e) => {
                problem.get_or_insert(e);
                (
                    Vec::new(),
                    false,
                    std::time::Duration::from_secs(30),
                    false,
                    None,
                )
            }
        };
        let runs = if problem.is_some() { "disabled" } else { runs };
        out.push(Runnable {
            info: HookInfo {
                name: match module {
                    Some(m) => format!("{m}/{name}"),
                    None => name,
                },
                path: path.display().to_string(),
                events,
                blocking,
                timeout: timeout.as_secs_f64(),
                enabled,
                description,
                source: if module.is_some() {
                    HookSource::Module
                } else {
                    HookSource::Vault
                },
                module: module.map(str::to_string),
                runs,
                problem,
            },
            expected: owner.and_then(|m| {
                m.digest
                    .files
                    .get(&format!("hooks/{}", e.file_name().to_string_lossy()))
                    .cloned()
            }),
            path,
            confine,
            timeout,
        });
    }
}

impl EventListener for Hooks {
    fn notify(&self, event: &'static str, data: Value) {
        if let Some(me) = self.me.upgrade() {
            tokio::spawn(me.fire(event, data, false));
        }
    }

    fn notify_blocking(
        &self,
        event: &'static str,
        data: Value,
    ) -> Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            if let Some(me) = self.me.upgrade() {
                me.fire(event, data, true).await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A module approved with one hook that would write a marker if it ever ran.
    fn approved_module_with_hook() -> (tempfile::TempDir, Arc<Hooks>, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let vault = d.path().join("vault");
        let settings = Arc::new(Settings::for_paths(vault.clone(), d.path().join("home")).unwrap());
        let dir = settings.paths.modules_dir().join("notes");
        std::fs::create_dir_all(dir.join("hooks")).unwrap();
        std::fs::write(
            dir.join("manifest.yaml"),
            "name: notes\ntrust_level: full\nrequests: {hooks: [mark]}\n",
        )
        .unwrap();
        let marker = d.path().join("marker");
        let hook = dir.join("hooks/mark");
        std::fs::write(
            &hook,
            format!(
                "#!/bin/sh\n# parachute-hook: events=server.started\ntouch {}\n",
                marker.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
        let modules = Arc::new(Modules::new(
            settings.paths.modules_dir(),
            settings.paths.module_hashes_file(),
        ));
        modules
            .approve("notes", Some(TrustLevel::Full), None)
            .unwrap();
        (d, Hooks::new(settings, modules), marker)
    }

    #[tokio::test]
    async fn a_module_hook_changed_after_discovery_is_not_run() {
        let (_d, hooks, marker) = approved_module_with_hook();
        let found = hooks.discover();
        let r = found
            .iter()
            .find(|r| r.info.name == "notes/mark")
            .expect("the approved module's hook is found");
        assert!(r.info.enabled && r.info.problem.is_none() && r.expected.is_some());
        hooks
            .run_one(r, "server.started", &serde_json::json!({}))
            .await;
        assert!(marker.exists(), "{:?}", hooks.errors());
        std::fs::remove_file(&marker).unwrap();
        // The bytes change between discovery and the run.
        std::fs::write(&r.path, "#!/bin/sh\nexit 0\n").unwrap();
        hooks
            .run_one(r, "server.started", &serde_json::json!({}))
            .await;
        assert!(!marker.exists());
        let errors = hooks.errors();
        assert_eq!(errors.len(), 1);
        assert!(errors[0].error.contains("changed since"), "{errors:?}");
        // And from now on the module waits for a new approval: its hook is not offered.
        assert!(hooks.discover().iter().all(|r| r.info.name != "notes/mark"));
    }
}
