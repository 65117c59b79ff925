//! The one journal function: a Daily entry at `Daily/entries/{YYYY-MM-DD-HH-MM}.md`
//! (the UTC minute it was made), Markdown with frontmatter. A second entry in the same
//! minute gets `-2` (then `-3`, …): an entry is never overwritten. The file is written
//! to a temporary name and linked into place, so a reader never sees half an entry.
//! Bots' `/journal`, the Daily routes and the MCP journal tool all call [`save_entry`].

use std::io::Write;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::{VaultGate, VaultPathError};

/// A saved entry.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedEntry {
    /// The entry id: the file name without `.md` (`2026-12-01-21-30` or `…-2`).
    pub id: String,
    /// The vault-relative path (`Daily/entries/{id}.md`).
    pub relative_path: String,
    /// The absolute path.
    pub path: PathBuf,
    /// When it was made (RFC 3339, UTC).
    pub created_at: String,
}

/// Why an entry was not saved.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The entry has no text.
    #[error("A journal entry needs some text")]
    Empty,
    /// The entry is longer than the limit.
    #[error("A journal entry is at most {0} characters")]
    TooLong(usize),
    /// The entries folder is not writable through the vault gate.
    #[error(transparent)]
    Path(#[from] VaultPathError),
    /// Writing failed.
    #[error("cannot write the journal entry: {0}")]
    Io(#[from] std::io::Error),
}

/// Most characters an entry may have.
pub const MAX_ENTRY_CHARS: usize = 100_000;

/// Most same-minute entries (`-2` … `-999`) before giving up.
const MAX_SUFFIX: u32 = 999;

/// Saves `content` as a new Daily entry made at `now`; `metadata` (e.g. `source`)
/// goes into the frontmatter after `entry_id` and `created_at`. Blocking file I/O.
pub fn save_entry(
    gate: &VaultGate,
    content: &str,
    metadata: &Map<String, Value>,
    now: DateTime<Utc>,
) -> Result<SavedEntry, JournalError> {
    let content = content.trim();
    if content.is_empty() {
        return Err(JournalError::Empty);
    }
    if content.chars().count() > MAX_ENTRY_CHARS {
        return Err(JournalError::TooLong(MAX_ENTRY_CHARS));
    }
    let dir = gate.resolve("Daily/entries")?;
    std::fs::create_dir_all(&dir)?;
    let stem = now.format("%Y-%m-%d-%H-%M").to_string();
    let created_at = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    for n in 1..=MAX_SUFFIX {
        let id = if n == 1 {
            stem.clone()
        } else {
            format!("{stem}-{n}")
        };
        let mut front = Map::new();
        front.insert("entry_id".into(), Value::from(id.as_str()));
        front.insert("created_at".into(), Value::from(created_at.as_str()));
        for (k, v) in metadata {
            if k != "entry_id" && k != "created_at" {
                front.insert(k.clone(), v.clone());
            }
        }
        let yaml = serde_saphyr::to_string(&Value::Object(front))
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let text = format!("---\n{}---\n\n{content}\n", ensure_newline(&yaml));
        let path = dir.join(format!("{id}.md"));
        if place_new(&dir, &path, text.as_bytes())? {
            return Ok(SavedEntry {
                relative_path: format!("Daily/entries/{id}.md"),
                id,
                path,
                created_at,
            });
        }
    }
    Err(JournalError::Io(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        "too many entries in one minute",
    )))
}

/// A saved entry, read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Its id (the file name without `.md`).
    pub id: String,
    /// When it was made, from its frontmatter.
    pub created_at: Option<String>,
    /// Its text.
    pub content: String,
    /// Its other frontmatter keys (caller metadata).
    pub metadata: Map<String, Value>,
    /// The ids of the Brain entities it names.
    pub brain_links: Vec<String>,
}

/// Whether `id` is an entry id: `YYYY-MM-DD-HH-MM`, optionally `-N`.
pub fn is_entry_id(id: &str) -> bool {
    let b = id.as_bytes();
    let stem_ok = b.len() >= 16
        && b[..16].iter().enumerate().all(|(i, c)| {
            if matches!(i, 4 | 7 | 10 | 13) {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    stem_ok
        && match id.get(16..) {
            Some("") => true,
            Some(rest) => rest.strip_prefix('-').is_some_and(|n| {
                !n.is_empty() && n.len() <= 3 && n.bytes().all(|c| c.is_ascii_digit())
            }),
            None => false,
        }
}

/// The sort key of an entry id: its minute, then its suffix as a number.
fn entry_order(id: &str) -> (&str, u32) {
    let (stem, n) = id.split_at(16.min(id.len()));
    (stem, n.trim_start_matches('-').parse().unwrap_or(1))
}

/// Whether `s` has the shape `YYYY-MM-DD`.
pub fn is_date(s: &str) -> bool {
    s.len() == 10
        && s.bytes().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
}

/// The days with a day page (`Daily/journals/{date}.md`) or an entry, newest first
/// (blocking).
pub fn dates(gate: &VaultGate) -> Result<Vec<String>, JournalError> {
    let mut days = std::collections::BTreeSet::new();
    let pages = gate.resolve("Daily/journals")?;
    match std::fs::read_dir(&pages) {
        Ok(entries) => days.extend(
            entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .filter_map(|e| e.file_name().into_string().ok())
                .filter_map(|n| n.strip_suffix(".md").map(str::to_string))
                .filter(|d| is_date(d)),
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    days.extend(
        entry_ids(gate)?
            .into_iter()
            .filter_map(|id| id.get(..10).map(str::to_string)),
    );
    Ok(days.into_iter().rev().collect())
}

/// The ids of the saved entries, newest first (blocking).
pub fn entry_ids(gate: &VaultGate) -> Result<Vec<String>, JournalError> {
    let dir = gate.resolve("Daily/entries")?;
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut ids: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".md").map(str::to_string))
        .filter(|id| is_entry_id(id))
        .collect();
    ids.sort_by(|a, b| entry_order(b).cmp(&entry_order(a)));
    Ok(ids)
}

/// Reads entry `id`; `None` when there is no such entry (blocking).
pub fn read_entry(gate: &VaultGate, id: &str) -> Result<Option<Entry>, JournalError> {
    if !is_entry_id(id) {
        return Ok(None);
    }
    let path = gate.resolve(&format!("Daily/entries/{id}.md"))?;
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let (mut front, body) = super::frontmatter::parse(&text);
    front.remove("entry_id");
    let created_at = match front.remove("created_at") {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    let brain_links = match front.remove("brain_links") {
        Some(Value::Array(items)) => items
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    Ok(Some(Entry {
        id: id.to_string(),
        created_at,
        content: body.trim_start_matches('\n').trim_end().to_string(),
        metadata: front,
        brain_links,
    }))
}

/// Everything written on `date` (`YYYY-MM-DD`): the day page `Daily/journals/{date}.md`
/// (the contract's place for daily agents) and then that day's entries in
/// `Daily/entries/`, oldest first, each under its time; `None` when there is neither.
/// Reading tools use this so both layouts work. Blocking.
pub fn read_day(gate: &VaultGate, date: &str) -> Result<Option<String>, JournalError> {
    if !is_date(date) {
        return Ok(None);
    }
    let mut parts = Vec::new();
    let page = gate.resolve(&format!("Daily/journals/{date}.md"))?;
    match std::fs::read_to_string(&page) {
        Ok(t) => parts.push(t.trim_end().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    let mut ids: Vec<String> = entry_ids(gate)?
        .into_iter()
        .filter(|id| id.starts_with(date))
        .collect();
    ids.reverse();
    for id in ids {
        match read_entry(gate, &id) {
            Ok(Some(e)) => {
                let time = id.get(11..16).unwrap_or("").replace('-', ":");
                parts.push(format!("## {time}\n\n{}", e.content));
            }
            Ok(None) => {}
            // One unreadable entry (not UTF-8, say) does not hide the day.
            Err(e) => tracing::warn!(entry = %id, error = %e, "journal entry skipped"),
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("\n\n")))
}

fn ensure_newline(s: &str) -> String {
    if s.ends_with('\n') {
        s.to_string()
    } else {
        format!("{s}\n")
    }
}

/// Writes `bytes` to a temporary file and hard-links it to `path` only if `path` does
/// not exist: `false` when it does (the caller tries the next name).
fn place_new(dir: &std::path::Path, path: &std::path::Path, bytes: &[u8]) -> std::io::Result<bool> {
    let tmp = dir.join(format!(
        ".entry.tmp.{}.{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    let placed = match std::fs::hard_link(&tmp, path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    };
    let _ = std::fs::remove_file(&tmp);
    placed
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn same_minute_entries_get_suffixes_and_never_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let gate = VaultGate::with_default_database(dir.path());
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 21, 30, 5).unwrap();
        let mut md = Map::new();
        md.insert("source".into(), "telegram".into());
        let a = save_entry(&gate, "first", &md, now).unwrap();
        let b = save_entry(&gate, "second", &md, now).unwrap();
        let c = save_entry(&gate, "third", &Map::new(), now).unwrap();
        assert_eq!(a.id, "2026-12-01-21-30");
        assert_eq!(b.id, "2026-12-01-21-30-2");
        assert_eq!(c.relative_path, "Daily/entries/2026-12-01-21-30-3.md");
        let text = std::fs::read_to_string(&a.path).unwrap();
        assert!(
            text.starts_with("---\nentry_id: 2026-12-01-21-30\n"),
            "{text}"
        );
        assert!(
            text.contains("source: telegram\n") && text.ends_with("\n\nfirst\n"),
            "{text}"
        );
        assert!(std::fs::read_to_string(&b.path)
            .unwrap()
            .ends_with("second\n"));
        let leftovers: Vec<_> = std::fs::read_dir(a.path.parent().unwrap())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".entry.tmp"))
            .collect();
        assert!(leftovers.is_empty());
        assert!(matches!(
            save_entry(&gate, "  ", &md, now),
            Err(JournalError::Empty)
        ));
    }

    #[test]
    fn entries_read_back_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let gate = VaultGate::with_default_database(dir.path());
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 21, 30, 5).unwrap();
        let mut md = Map::new();
        md.insert("brain_links".into(), serde_json::json!(["p-1"]));
        md.insert("mood".into(), "calm".into());
        for i in 0..11 {
            save_entry(&gate, &format!("entry {i}"), &md, now).unwrap();
        }
        save_entry(
            &gate,
            "earlier",
            &Map::new(),
            now - chrono::Duration::hours(1),
        )
        .unwrap();
        std::fs::write(dir.path().join("Daily/entries/notes.md"), "not an entry").unwrap();
        let ids = entry_ids(&gate).unwrap();
        assert_eq!(ids.len(), 12);
        assert_eq!(ids[0], "2026-12-01-21-30-11");
        assert_eq!(ids[1], "2026-12-01-21-30-10");
        assert_eq!(ids[9], "2026-12-01-21-30-2");
        assert_eq!(ids[10], "2026-12-01-21-30");
        assert_eq!(ids[11], "2026-12-01-20-30");
        let e = read_entry(&gate, "2026-12-01-21-30-2").unwrap().unwrap();
        assert_eq!(e.content, "entry 1");
        assert_eq!(e.brain_links, vec!["p-1"]);
        assert_eq!(e.metadata["mood"], "calm");
        assert!(e.created_at.unwrap().starts_with("2026-12-01T21:30:05"));
        assert_eq!(read_entry(&gate, "../../etc/passwd").unwrap(), None);
        assert_eq!(read_entry(&gate, "2026-12-01-21-31").unwrap(), None);
        assert!(!is_entry_id("2026-12-01-21-30-"));
        // A day reads the day page, then the entries, oldest first.
        std::fs::create_dir_all(dir.path().join("Daily/journals")).unwrap();
        std::fs::write(
            dir.path().join("Daily/journals/2026-12-01.md"),
            "# Monday\n",
        )
        .unwrap();
        let day = read_day(&gate, "2026-12-01").unwrap().unwrap();
        assert!(
            day.starts_with("# Monday\n\n## 20:30\n\nearlier\n\n## 21:30\n\nentry 0"),
            "{day}"
        );
        assert!(day.ends_with("entry 10"), "{day}");
        assert_eq!(read_day(&gate, "2026-12-02").unwrap(), None);
        assert_eq!(read_day(&gate, "../../x").unwrap(), None);
        assert!(!is_entry_id("2026-12-01-21-3x"));
    }
}
