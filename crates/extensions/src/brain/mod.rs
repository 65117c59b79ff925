//! Brain: search over the entities in `{vault}/Brain/entities/**/*.md`, indexed in the
//! store's SQLite FTS5 table. The files are the truth. The index is brought up to date
//! before a query when the last check is more than [`FRESH_FOR`] old: a walk that
//! compares each file's size and modification time with the index and re-reads only
//! what changed, so an edit on disk shows within a second or two without a watcher.

pub mod entity;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use parachute_core::db::{BrainEntityDoc, BrainEntityRow, BrainHit, DbError, Store};
use serde::Serialize;
use serde_json::{Map, Value};

/// How long an index check stays good.
pub const FRESH_FOR: Duration = Duration::from_secs(1);
/// Most entity files indexed.
pub const MAX_ENTITIES: usize = 100_000;
/// Most results a search returns.
pub const MAX_RESULTS: i64 = 200;

/// Why a Brain operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BrainError {
    /// The store failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The walk of the entities folder failed.
    #[error("cannot read Brain/entities: {0}")]
    Io(String),
}

/// A search result as the contract shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SearchResult {
    /// The entity's id.
    pub para_id: String,
    /// Its name.
    pub name: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// The matching part of its body (at most 200 characters).
    pub snippet: String,
}

/// A Daily entry's link to an entity.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct BrainLink {
    /// The entity's id.
    pub para_id: String,
    /// Its name.
    pub name: String,
    /// The words of the entry that named it.
    pub matched_term: String,
}

/// The Brain of one vault.
pub struct Brain {
    store: Store,
    vault: PathBuf,
    checked: Mutex<Option<Instant>>,
    refresh: tokio::sync::Mutex<()>,
}

struct OnDisk {
    under: String,
    path: PathBuf,
    size: i64,
    mtime_ns: i64,
}

impl Brain {
    /// The Brain of `vault`, indexed in `store`.
    pub fn new(store: Store, vault: PathBuf) -> Brain {
        Brain {
            store,
            vault,
            checked: Mutex::new(None),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    /// `Brain/entities` through the vault gate: a symlink that leads out of the vault
    /// gives no folder (so nothing outside the vault is ever indexed).
    fn entities_dir(&self) -> Option<PathBuf> {
        parachute_core::vault::VaultGate::with_default_database(&self.vault)
            .resolve("Brain/entities")
            .ok()
    }

    /// Brings the index up to date unless it was checked less than [`FRESH_FOR`] ago.
    pub async fn ensure_fresh(&self) -> Result<(), BrainError> {
        let fresh = |c: &Mutex<Option<Instant>>| {
            c.lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_some_and(|t| t.elapsed() < FRESH_FOR)
        };
        if fresh(&self.checked) {
            return Ok(());
        }
        let _one = self.refresh.lock().await;
        if fresh(&self.checked) {
            return Ok(());
        }
        self.sync().await?;
        *self.checked.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        Ok(())
    }

    /// Re-reads every entity file now; the number indexed.
    pub async fn reload(&self) -> Result<i64, BrainError> {
        let _one = self.refresh.lock().await;
        self.store.brain_clear().await?;
        self.sync().await?;
        *self.checked.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        Ok(self.store.brain_count().await?)
    }

    /// How many entities are indexed (after a freshness check).
    pub async fn count(&self) -> Result<i64, BrainError> {
        self.ensure_fresh().await?;
        Ok(self.store.brain_count().await?)
    }

    async fn sync(&self) -> Result<(), BrainError> {
        let dir = self.entities_dir();
        let on_disk = tokio::task::spawn_blocking(move || dir.map_or(Ok(Vec::new()), |d| walk(&d)))
            .await
            .map_err(|e| BrainError::Io(e.to_string()))??;
        let indexed: BTreeMap<String, (i64, i64)> = self
            .store
            .brain_files()
            .await?
            .into_iter()
            .map(|(p, s, m)| (p, (s, m)))
            .collect();
        let mut seen = HashSet::new();
        let mut changed = Vec::new();
        for f in on_disk {
            let rel = format!("Brain/entities/{}", f.under);
            if indexed.get(&rel) != Some(&(f.size, f.mtime_ns)) {
                changed.push(f);
            }
            seen.insert(rel);
        }
        let removed: Vec<String> = indexed.into_keys().filter(|p| !seen.contains(p)).collect();
        if changed.is_empty() && removed.is_empty() {
            return Ok(());
        }
        let docs = tokio::task::spawn_blocking(move || read_docs(changed))
            .await
            .map_err(|e| BrainError::Io(e.to_string()))?;
        for batch in docs.chunks(500) {
            self.store.brain_apply(batch, &[]).await?;
        }
        self.store.brain_apply(&[], &removed).await?;
        tracing::debug!(
            updated = docs.len(),
            removed = removed.len(),
            "brain index updated"
        );
        Ok(())
    }

    /// Entities matching `q` (every word, as a prefix), best first.
    pub async fn search(&self, q: &str, limit: i64) -> Result<Vec<SearchResult>, BrainError> {
        self.ensure_fresh().await?;
        let Some(expr) = fts_expression(q) else {
            return Ok(Vec::new());
        };
        let hits = self
            .store
            .brain_search(&expr, limit.clamp(1, MAX_RESULTS))
            .await?;
        Ok(hits.into_iter().map(result).collect())
    }

    /// The entity with id `para_id`, read fresh from its file.
    pub async fn entity(&self, para_id: &str) -> Result<Option<BrainEntity>, BrainError> {
        self.ensure_fresh().await?;
        let Some(row) = self.store.brain_by_id(para_id).await? else {
            return Ok(None);
        };
        Ok(self.render(row).await)
    }

    /// The entity named `name` (case-insensitive, exact).
    pub async fn resolve(&self, name: &str) -> Result<Option<BrainEntity>, BrainError> {
        self.ensure_fresh().await?;
        let rows = self
            .store
            .brain_by_names(&[name.trim().to_lowercase()])
            .await?;
        match rows.into_iter().next() {
            Some(row) => Ok(self.render(row).await),
            None => Ok(None),
        }
    }

    /// The entities named in `text` by runs of capitalized words ("Ada", "Ada
    /// Lovelace"), each once, in order of first mention.
    pub async fn links(&self, text: &str) -> Result<Vec<BrainLink>, BrainError> {
        let owned = text.to_string();
        let terms = tokio::task::spawn_blocking(move || capitalized_terms(&owned))
            .await
            .unwrap_or_default();
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        self.ensure_fresh().await?;
        let lower: Vec<String> = terms.iter().map(|t| t.to_lowercase()).collect();
        let rows = self.store.brain_by_names(&lower).await?;
        let mut out: Vec<BrainLink> = Vec::new();
        for term in &terms {
            let l = term.to_lowercase();
            for r in rows.iter().filter(|r| r.name.to_lowercase() == l) {
                if !out.iter().any(|o| o.para_id == r.para_id) {
                    out.push(BrainLink {
                        para_id: r.para_id.clone(),
                        name: r.name.clone(),
                        matched_term: term.clone(),
                    });
                }
            }
        }
        Ok(out)
    }

    async fn render(&self, row: BrainEntityRow) -> Option<BrainEntity> {
        // Still a regular file (not swapped for a symlink since it was indexed), read
        // where the gate resolves it.
        let path = self.vault.join(&row.path);
        if !tokio::fs::symlink_metadata(&path).await.ok()?.is_file() {
            return None;
        }
        let path = self
            .entities_dir()?
            .join(row.path.strip_prefix("Brain/entities/")?);
        let text = tokio::fs::read_to_string(&path).await.ok()?;
        let (_, body) = parachute_core::vault::frontmatter::parse(&text);
        let mut frontmatter: Map<String, Value> =
            serde_json::from_str(&row.frontmatter).unwrap_or_default();
        for served in BrainEntity::KEYS {
            frontmatter.shift_remove(served);
        }
        Some(BrainEntity {
            frontmatter,
            para_id: row.para_id,
            name: row.name,
            tags: serde_json::from_str(&row.tags).unwrap_or_default(),
            content: body.to_string(),
            path: row.path,
        })
    }
}

/// An entity as served: its other frontmatter keys (any JSON, as written in its file)
/// come first, then these.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BrainEntity {
    /// The entity's other frontmatter keys, as written in its file.
    #[serde(flatten)]
    pub frontmatter: Map<String, Value>,
    /// The entity's id.
    pub para_id: String,
    /// Its name.
    pub name: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// The body of its file, without the frontmatter.
    pub content: String,
    /// Vault-relative path of its file.
    pub path: String,
}

impl BrainEntity {
    /// The keys the server fills in; a frontmatter key of the same name gives way.
    const KEYS: [&'static str; 5] = ["para_id", "name", "tags", "content", "path"];
}

fn result(h: BrainHit) -> SearchResult {
    SearchResult {
        para_id: h.para_id,
        name: h.name,
        tags: serde_json::from_str(&h.tags).unwrap_or_default(),
        snippet: h.snippet.chars().take(200).collect(),
    }
}

/// The FTS5 expression for a user's query: each word quoted (so no operator or syntax
/// error can come from the input) and matched as a prefix; all words must match.
pub fn fts_expression(q: &str) -> Option<String> {
    let words: Vec<String> = q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(16)
        .map(|w| format!("\"{w}\"*"))
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// Runs of capitalized words in `text`, and every shorter run inside them (up to four
/// words), longest first within a run.
pub fn capitalized_terms(text: &str) -> Vec<String> {
    let mut terms: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut run: Vec<&str> = Vec::new();
    let mut flush = |run: &mut Vec<&str>, terms: &mut Vec<String>| {
        for len in (1..=run.len().min(4)).rev() {
            for start in 0..=run.len() - len {
                let t = run[start..start + len].join(" ");
                if terms.len() < MAX_TERMS && seen.insert(t.clone()) {
                    terms.push(t);
                }
            }
        }
        run.clear();
    };
    for token in text.split(char::is_whitespace) {
        let word = token.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'' && c != '-');
        let capitalized = word.chars().next().is_some_and(char::is_uppercase);
        if capitalized {
            run.push(word);
        }
        // Punctuation after a word (a comma, a full stop) ends the run there; so does
        // length (no name has more than eight words).
        let ends =
            !capitalized || token.ends_with([',', '.', ';', ':', '!', '?']) || run.len() >= 8;
        if ends && !run.is_empty() {
            flush(&mut run, &mut terms);
        }
        if terms.len() >= MAX_TERMS {
            return terms;
        }
    }
    if !run.is_empty() {
        flush(&mut run, &mut terms);
    }
    terms
}

/// Most candidate names taken from one text.
const MAX_TERMS: usize = 500;

fn walk(dir: &Path) -> Result<Vec<OnDisk>, BrainError> {
    let mut out = Vec::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((d, prefix)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let Ok(kind) = e.file_type() else { continue };
            let under = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            // Symlinks are never followed: they could lead out of the vault.
            if kind.is_dir() {
                stack.push((e.path(), under));
            } else if kind.is_file() && name.ends_with(".md") {
                let Ok(meta) = e.metadata() else { continue };
                if out.len() >= MAX_ENTITIES {
                    tracing::warn!(
                        max = MAX_ENTITIES,
                        "Brain/entities has too many files; the rest are not indexed"
                    );
                    return Ok(out);
                }
                out.push(OnDisk {
                    under,
                    path: e.path(),
                    size: i64::try_from(meta.len()).unwrap_or(i64::MAX),
                    mtime_ns: mtime_ns(&meta),
                });
            }
        }
    }
    Ok(out)
}

fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn read_docs(files: Vec<OnDisk>) -> Vec<BrainEntityDoc> {
    files
        .into_iter()
        .filter_map(|f| {
            let bytes = std::fs::read(&f.path).ok()?;
            let text = String::from_utf8_lossy(&bytes);
            Some(entity::parse(&f.under, &text, f.size, f.mtime_ns))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_cannot_inject_fts_syntax() {
        assert_eq!(
            fts_expression("ada OR \"x"),
            Some("\"ada\"* \"OR\"* \"x\"*".into())
        );
        assert_eq!(fts_expression("  ()*:^ "), None);
        assert_eq!(
            fts_expression("naïve café"),
            Some("\"naïve\"* \"café\"*".into())
        );
    }

    #[test]
    fn capitalized_runs_and_their_parts() {
        let t = capitalized_terms("Met Ada Lovelace at the Royal Society, then Bob.");
        assert!(t.contains(&"Ada Lovelace".to_string()));
        assert!(t.contains(&"Royal Society".to_string()));
        assert!(t.contains(&"Ada".to_string()));
        assert!(t.contains(&"Bob".to_string()));
        assert!(!t
            .iter()
            .any(|x| x.contains("Society Bob") || x.contains("Society then")));
        // A huge run of capitalized words stays bounded.
        let long: String = (0..200_000).map(|i| format!("Aa{i} ")).collect();
        assert_eq!(capitalized_terms(&long).len(), MAX_TERMS);
    }
}
