//! Vault modules: `{vault}/.modules/{name}/`, each with a `manifest.yaml`. A module is
//! enabled only while its whole tree ([`tree`]) equals what the owner approved
//! ([`approvals`]) or the version embedded in this program ([`bundled`]). Anything new
//! or changed waits, disabled, and is reported with what it provides, what it asks for
//! and what changed since the last approval.
//!
//! [`Modules`] re-reads the folder on every call, but re-hashes a module only when a
//! file's size, times or inode changed, so checking is cheap and a tampered byte is
//! noticed on the next use.

pub mod approvals;
pub mod bundled;
pub mod contents;
pub mod manifest;
pub mod tree;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use parachute_core::trust::TrustLevel;
use serde::Serialize;
use sha2::{Digest, Sha256};

use approvals::{Approval, ApprovalFile};
use manifest::{Manifest, Requests};
use tree::{TreeChanges, TreeDigest};

/// Why a module operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// No module folder of that name.
    #[error("Module '{0}' not found")]
    NotFound(String),
    /// The module is enabled already (nothing to approve).
    #[error("Module '{0}' not pending approval")]
    NotPending(String),
    /// The module cannot be approved as it is.
    #[error("Module '{name}' cannot be approved: {reason}")]
    Invalid {
        /// The module.
        name: String,
        /// Why.
        reason: String,
    },
    /// The tree changed since the owner looked at it.
    #[error("Module '{0}' changed since it was shown; look at it again before approving")]
    Changed(String),
    /// Approval at a level above the one the module asks for.
    #[error("Module '{name}' asks for {asked}; it cannot be approved at {given}")]
    AboveRequested {
        /// The module.
        name: String,
        /// The level its manifest asks for.
        asked: TrustLevel,
        /// The level given.
        given: TrustLevel,
    },
    /// The approvals file could not be read or written.
    #[error("{0}")]
    Approvals(String),
}

/// A module's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ModuleStatus {
    /// Approved and enabled.
    Loaded,
    /// New or changed: disabled until the owner approves it.
    PendingApproval,
    /// Its manifest or tree is unusable: disabled, with the reason in `error`.
    Invalid,
}

/// What `GET /api/modules` and `parachute module list` show of one module.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ModuleView {
    /// The module's name (its folder).
    pub name: String,
    /// Loaded, pending approval, or invalid.
    pub status: ModuleStatus,
    /// `new` (never approved) or `modified` (changed since the approval), when pending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<&'static str>,
    /// The first 12 hex characters of the current tree hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// The full current tree hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_hash: Option<String>,
    /// The approved tree hash, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub known_hash: Option<String>,
    /// The manifest's version.
    pub version: Option<String>,
    /// The manifest's description.
    pub description: Option<String>,
    /// Interfaces it provides.
    pub provides: Vec<String>,
    /// The level it asks to run at.
    pub trust_level: Option<TrustLevel>,
    /// The level it was approved at (when loaded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved_trust_level: Option<TrustLevel>,
    /// What its tree holds that reaches agents or runs.
    pub requests: Requests,
    /// Files added, modified and removed since the last approval (when modified).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<TreeChanges>,
    /// Embedded in this program.
    pub bundled: bool,
    /// It serves routes under `/api/` (brain, daily).
    pub has_router: bool,
    /// Size of its tree in bytes.
    pub size: u64,
    /// Why it is invalid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An enabled module, for the features that use modules' contents.
#[derive(Debug, Clone)]
pub struct EnabledModule {
    /// Its name.
    pub name: String,
    /// Its folder.
    pub dir: PathBuf,
    /// The level it was approved at.
    pub trust_level: TrustLevel,
    /// What it holds.
    pub requests: Requests,
    /// Its tree digest (each file's SHA-256), to check files read later.
    pub digest: TreeDigest,
}

/// The modules of one vault.
pub struct Modules {
    dir: PathBuf,
    approvals: ApprovalFile,
    /// Per folder: the fingerprint of its files' metadata and the digest it gave.
    cache: Mutex<HashMap<String, (String, TreeDigest)>>,
    /// Serializes approvals (read-modify-write of the file).
    write: Mutex<()>,
    /// The modules loaded when last looked at, with their event data (none before the
    /// first look).
    loaded: Mutex<Option<BTreeMap<String, serde_json::Value>>>,
    /// Where `module.loaded` / `module.unloaded` go.
    events: std::sync::OnceLock<Arc<parachute_core::notify::EventBus>>,
}

struct Scanned {
    name: String,
    dir: PathBuf,
    manifest: Result<Manifest, String>,
    requests: Requests,
    digest: Result<TreeDigest, String>,
}

impl Modules {
    /// The modules in `modules_dir`, approvals in `approvals_file`.
    pub fn new(modules_dir: PathBuf, approvals_file: PathBuf) -> Modules {
        Modules {
            dir: modules_dir,
            approvals: ApprovalFile::new(approvals_file),
            cache: Mutex::default(),
            write: Mutex::default(),
            loaded: Mutex::default(),
            events: std::sync::OnceLock::new(),
        }
    }

    /// Sends `module.loaded` when a module becomes enabled (the first look counts) and
    /// `module.unloaded` when one stops being enabled (changed, invalid or removed), to
    /// `events`. Set once.
    pub fn set_events(&self, events: Arc<parachute_core::notify::EventBus>) {
        let _ = self.events.set(events);
    }

    /// Compares the loaded modules with the last look and fires the transitions.
    fn note_loaded(&self, views: &[ModuleView]) {
        let Some(bus) = self.events.get() else {
            return;
        };
        let now: BTreeMap<String, serde_json::Value> = views
            .iter()
            .filter(|v| v.status == ModuleStatus::Loaded)
            .map(|v| (v.name.clone(), crate::module_event(v)))
            .collect();
        let before = self
            .loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace(now.clone())
            .unwrap_or_default();
        for (name, data) in &now {
            if !before.contains_key(name) {
                bus.fire("module.loaded", data.clone());
            }
        }
        for (name, mut data) in before {
            if !now.contains_key(&name) {
                let why = views
                    .iter()
                    .find(|v| v.name == name)
                    .map_or("removed", |v| match v.status {
                        ModuleStatus::Invalid => "invalid",
                        _ => "changed",
                    });
                data["reason"] = serde_json::json!(why);
                bus.fire("module.unloaded", data);
            }
        }
    }

    /// The modules of the vault at `paths`.
    pub fn for_paths(paths: &parachute_core::config::paths::Paths) -> Modules {
        Modules::new(paths.modules_dir(), paths.module_hashes_file())
    }

    /// The modules folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Installs the bundled modules that were never installed (no folder and no
    /// approval on record): an owner who deleted one keeps it deleted. A bundled module
    /// still exactly as an older version of this program installed it is replaced by
    /// this version's; one the owner changed is left alone. Blocking.
    pub fn install_bundled(&self) -> Result<Vec<&'static str>, ModuleError> {
        bundled::recover(&self.dir);
        let known = self.approvals.read().map_err(ModuleError::Approvals)?;
        let mut installed = Vec::new();
        for b in bundled::all() {
            let result = match known.get(b.name) {
                None => bundled::install(&self.dir, b),
                Some(a) if a.bundled && a.hash != b.digest.hash => {
                    let dir = self.dir.join(b.name);
                    let untouched = tree::digest_dir(&dir).is_ok_and(|d| d.hash == a.hash);
                    if untouched {
                        bundled::replace(&self.dir, b)
                    } else {
                        Ok(false)
                    }
                }
                Some(_) => Ok(false),
            };
            match result {
                Ok(true) => installed.push(b.name),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(module = b.name, error = %e, "cannot install a bundled module");
                }
            }
        }
        Ok(installed)
    }

    /// Every module's state, sorted by name. Blocking (reads and maybe hashes trees).
    pub fn list(&self) -> Result<Vec<ModuleView>, ModuleError> {
        let known = self.approvals.read().map_err(ModuleError::Approvals)?;
        let mut views = Vec::new();
        let mut newly_bundled = Vec::new();
        for s in self.scan() {
            let (view, record) = self.view(&s, known.get(&s.name));
            views.push(view);
            newly_bundled.extend(record);
        }
        self.note_loaded(&views);
        if !newly_bundled.is_empty() {
            // Record bundled approvals so the file shows what is enabled and why.
            let _guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
            let mut all = self.approvals.read().map_err(ModuleError::Approvals)?;
            for (name, a) in newly_bundled {
                all.insert(name, a);
            }
            self.approvals.write(&all).map_err(ModuleError::Approvals)?;
        }
        Ok(views)
    }

    /// One module's state.
    pub fn get(&self, name: &str) -> Result<ModuleView, ModuleError> {
        self.list()?
            .into_iter()
            .find(|v| v.name == name)
            .ok_or_else(|| ModuleError::NotFound(name.to_string()))
    }

    /// The enabled modules, with their contents. Blocking.
    pub fn enabled(&self) -> Vec<EnabledModule> {
        let Ok(known) = self.approvals.read() else {
            return Vec::new();
        };
        let mut views = Vec::new();
        let enabled = self
            .scan()
            .into_iter()
            .filter_map(|s| {
                let (view, _) = self.view(&s, known.get(&s.name));
                let loaded = view.status == ModuleStatus::Loaded;
                let level = view.approved_trust_level.unwrap_or(TrustLevel::Vault);
                views.push(view);
                if !loaded {
                    return None;
                }
                Some(EnabledModule {
                    name: s.name,
                    dir: s.dir,
                    trust_level: level,
                    requests: s.requests,
                    digest: s.digest.ok()?,
                })
            })
            .collect();
        self.note_loaded(&views);
        enabled
    }

    /// Whether module `name` is enabled.
    pub fn is_enabled(&self, name: &str) -> bool {
        self.enabled().iter().any(|m| m.name == name)
    }

    /// Approves module `name` as it is now, at `level` (default: the level it asks
    /// for; never above it). With `expected_hash`, refuses if the tree is no longer the
    /// one the owner was shown. Blocking.
    pub fn approve(
        &self,
        name: &str,
        level: Option<TrustLevel>,
        expected_hash: Option<&str>,
    ) -> Result<ModuleView, ModuleError> {
        let _guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let mut all = self.approvals.read().map_err(ModuleError::Approvals)?;
        let s = self
            .scan()
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| ModuleError::NotFound(name.to_string()))?;
        let (view, _) = self.view(&s, all.get(name));
        match view.status {
            ModuleStatus::Loaded => return Err(ModuleError::NotPending(name.to_string())),
            ModuleStatus::Invalid => {
                return Err(ModuleError::Invalid {
                    name: name.to_string(),
                    reason: view.error.unwrap_or_default(),
                })
            }
            ModuleStatus::PendingApproval => {}
        }
        let (Ok(manifest), Ok(digest)) = (&s.manifest, &s.digest) else {
            return Err(ModuleError::Invalid {
                name: name.to_string(),
                reason: "it cannot be read".into(),
            });
        };
        if let Some(h) = expected_hash {
            if h.len() < 12 || !digest.hash.starts_with(h) {
                return Err(ModuleError::Changed(name.to_string()));
            }
        }
        let level = level.unwrap_or(manifest.trust_level);
        if level < manifest.trust_level {
            return Err(ModuleError::AboveRequested {
                name: name.to_string(),
                asked: manifest.trust_level,
                given: level,
            });
        }
        all.insert(
            name.to_string(),
            Approval {
                hash: digest.hash.clone(),
                files: digest.files.clone(),
                trust_level: level,
                approved_at: chrono::Utc::now().to_rfc3339(),
                bundled: false,
            },
        );
        self.approvals.write(&all).map_err(ModuleError::Approvals)?;
        tracing::info!(module = name, hash = %&digest.hash[..12], level = %level, "module approved");
        let (view, _) = self.view(&s, all.get(name));
        drop(_guard);
        // The approval is a transition: module.loaded fires now.
        let _ = self.list();
        Ok(view)
    }

    /// Reads every module folder (hashing only what changed).
    fn scan(&self) -> Vec<Scanned> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut names: Vec<(String, PathBuf)> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                (!name.starts_with('.')).then(|| (name, e.path()))
            })
            .collect();
        names.sort();
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.retain(|k, _| names.iter().any(|(n, _)| n == k));
        names
            .into_iter()
            .map(|(name, dir)| {
                let digest = digest_cached(&mut cache, &name, &dir);
                let requests = contents::scan(&dir);
                let manifest = if !manifest::valid_name(&name) {
                    Err("a module folder's name is lowercase letters, digits, '-' and '_'".into())
                } else {
                    match (&digest, &requests) {
                        (Err(e), _) | (_, Err(e)) => Err(e.clone()),
                        (Ok(_), Ok(found)) => manifest::load(&dir, &name, found),
                    }
                };
                Scanned {
                    name,
                    dir,
                    manifest,
                    requests: requests.unwrap_or_default(),
                    digest,
                }
            })
            .collect()
    }

    /// The view of a scanned module, and the approval to record when it is enabled as
    /// the bundled version for the first time.
    fn view(
        &self,
        s: &Scanned,
        known: Option<&Approval>,
    ) -> (ModuleView, Option<(String, Approval)>) {
        let bundled = bundled::get(&s.name);
        let manifest = s.manifest.as_ref().ok();
        let digest = s.digest.as_ref().ok();
        let mut view = ModuleView {
            name: s.name.clone(),
            status: ModuleStatus::Invalid,
            approval: None,
            hash: digest.map(|d| d.hash[..12].to_string()),
            current_hash: digest.map(|d| d.hash.clone()),
            known_hash: known.map(|a| a.hash.clone()),
            version: manifest.and_then(|m| m.version.clone()),
            description: manifest.and_then(|m| m.description.clone()),
            provides: manifest.map(|m| m.provides.clone()).unwrap_or_default(),
            trust_level: manifest.map(|m| m.trust_level),
            approved_trust_level: None,
            requests: s.requests.clone(),
            changes: None,
            bundled: bundled.is_some(),
            has_router: bundled.is_some() && matches!(s.name.as_str(), "brain" | "daily"),
            size: digest.map(|d| d.bytes).unwrap_or(0),
            error: s.manifest.as_ref().err().cloned(),
        };
        let (Some(manifest), Some(digest)) = (manifest, digest) else {
            return (view, None);
        };
        let matches_bundled = bundled.is_some_and(|b| b.digest.hash == digest.hash);
        match known {
            Some(a) if a.hash == digest.hash => {
                view.status = ModuleStatus::Loaded;
                view.approved_trust_level = Some(a.trust_level.max(manifest.trust_level));
                (view, None)
            }
            _ if matches_bundled => {
                view.status = ModuleStatus::Loaded;
                view.approved_trust_level = Some(manifest.trust_level);
                let record = Approval {
                    hash: digest.hash.clone(),
                    files: digest.files.clone(),
                    trust_level: manifest.trust_level,
                    approved_at: chrono::Utc::now().to_rfc3339(),
                    bundled: true,
                };
                (view, Some((s.name.clone(), record)))
            }
            Some(a) => {
                view.status = ModuleStatus::PendingApproval;
                view.approval = Some("modified");
                view.changes = Some(TreeChanges::between(&a.files, &digest.files));
                (view, None)
            }
            None => {
                view.status = ModuleStatus::PendingApproval;
                view.approval = Some("new");
                (view, None)
            }
        }
    }
}

/// The digest of `dir`, re-hashed only when its files' metadata changed.
fn digest_cached(
    cache: &mut HashMap<String, (String, TreeDigest)>,
    name: &str,
    dir: &Path,
) -> Result<TreeDigest, String> {
    let meta = std::fs::symlink_metadata(dir).map_err(|e| e.to_string())?;
    if meta.file_type().is_symlink() {
        return Err("the module folder is a symlink".into());
    }
    if !meta.is_dir() {
        return Err("not a folder".into());
    }
    let files = tree::list_files(dir).map_err(|e| e.to_string())?;
    let (print, newest) = fingerprint(&files).map_err(|e| e.to_string())?;
    if let Some((p, d)) = cache.get(name) {
        if *p == print {
            return Ok(d.clone());
        }
    }
    let now = std::time::SystemTime::now();
    let digest = tree::digest_dir(dir).map_err(|e| e.to_string())?;
    // A file changed within the last second could change again within the same tick of
    // the file system's clock, leaving its times as they are: such a tree is hashed
    // again on its next look, until its files are older than that.
    let settled = newest.is_none_or(|n| {
        now.duration_since(n)
            .is_ok_and(|age| age > std::time::Duration::from_secs(1))
    });
    if settled {
        cache.insert(name.to_string(), (print, digest.clone()));
    } else {
        cache.remove(name);
    }
    Ok(digest)
}

/// A digest of every file's path, size, modification and change times and inode (any
/// write to a file changes its change time, which no one can set back), and the newest
/// of those times.
fn fingerprint(
    files: &BTreeMap<String, PathBuf>,
) -> std::io::Result<(String, Option<std::time::SystemTime>)> {
    let mut h = Sha256::new();
    let mut newest: Option<std::time::SystemTime> = None;
    for (rel, path) in files {
        let m = std::fs::symlink_metadata(path)?;
        #[cfg(unix)]
        let changed = {
            use std::os::unix::fs::MetadataExt;
            std::time::UNIX_EPOCH.checked_add(std::time::Duration::new(
                u64::try_from(m.ctime()).unwrap_or(0),
                u32::try_from(m.ctime_nsec()).unwrap_or(0),
            ))
        };
        #[cfg(not(unix))]
        let changed = m.modified().ok();
        newest = newest.max(changed);
        h.update(rel.as_bytes());
        h.update([0]);
        h.update(m.len().to_be_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            for n in [m.mtime(), m.mtime_nsec(), m.ctime(), m.ctime_nsec()] {
                h.update(n.to_be_bytes());
            }
            h.update(m.ino().to_be_bytes());
        }
        #[cfg(not(unix))]
        if let Ok(t) = m.modified() {
            h.update(format!("{t:?}").as_bytes());
        }
    }
    Ok((hex::encode(h.finalize()), newest))
}

#[cfg(test)]
mod tests;
