//! The journal tools: search, recent days, one day, and a new entry. A day is its page
//! `Daily/journals/{date}.md` (entries under `# para:daily:{id} HH:MM` headers, or the
//! whole page as one) and its Daily entries `Daily/entries/{date}-HH-MM*.md`; both
//! layouts are read, and new entries go through the one journal function.

use parachute_core::vault::journal::{self, JournalError};
use parachute_core::vault::VaultGate;
use serde_json::{json, Map, Value};

use crate::server::{AddJournalEntry, GetJournal, ListRecentJournals, SearchJournals, ToolOutcome};
use crate::sessions::clamp;
use crate::Vault;

/// Header of an entry on a day page.
const PAGE_HEADER: &str = "# para:daily:";

/// One entry of a day.
struct DayEntry {
    id: String,
    time: String,
    content: String,
    file: String,
}

fn journal_error(e: JournalError) -> String {
    match e {
        JournalError::Io(io) => {
            tracing::warn!(error = %io, "MCP journal tool: read failed");
            "The journal could not be read".into()
        }
        other => other.to_string(),
    }
}

/// The entries of `date`, page first, then Daily entries oldest first (blocking).
fn day_entries(gate: &VaultGate, date: &str) -> Result<Vec<DayEntry>, JournalError> {
    let mut out = Vec::new();
    let page_rel = format!("Daily/journals/{date}.md");
    match std::fs::read_to_string(gate.resolve(&page_rel)?) {
        Ok(text) => out.extend(page_entries(&text, date, &page_rel)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    let mut ids: Vec<String> = journal::entry_ids(gate)?
        .into_iter()
        .filter(|id| id.starts_with(date))
        .collect();
    ids.reverse();
    for id in ids {
        match journal::read_entry(gate, &id) {
            Ok(Some(e)) => out.push(DayEntry {
                time: id.get(11..16).unwrap_or("").replace('-', ":"),
                file: format!("Daily/entries/{id}.md"),
                id,
                content: e.content,
            }),
            Ok(None) => {}
            Err(e) => tracing::warn!(entry = %id, error = %e, "journal entry skipped"),
        }
    }
    Ok(out)
}

/// Splits a day page on its entry headers (a page without any is one entry).
fn page_entries(text: &str, date: &str, file: &str) -> Vec<DayEntry> {
    let (_, body) = parachute_core::vault::frontmatter::split(text);
    let mut out: Vec<DayEntry> = Vec::new();
    let mut preamble = String::new();
    for line in body.split_inclusive('\n') {
        if let Some(header) = line.strip_prefix(PAGE_HEADER) {
            let mut parts = header.split_whitespace();
            out.push(DayEntry {
                id: parts.next().unwrap_or("").to_string(),
                time: parts.next().unwrap_or("").to_string(),
                content: String::new(),
                file: file.to_string(),
            });
        } else if let Some(last) = out.last_mut() {
            last.content.push_str(line);
        } else {
            preamble.push_str(line);
        }
    }
    if out.is_empty() && !preamble.trim().is_empty() {
        out.push(DayEntry {
            id: date.to_string(),
            time: String::new(),
            content: preamble,
            file: file.to_string(),
        });
    }
    for e in &mut out {
        e.content = e.content.trim().to_string();
    }
    out
}

/// Up to 50 characters before the match and 100 after, on character boundaries.
fn snippet(text: &str, at: usize, len: usize) -> String {
    let before: String = text[..at]
        .chars()
        .rev()
        .take(50)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let after: String = text[at..].chars().take(len + 100).collect();
    format!("{before}{after}")
}

/// Where `needle` (lowercase) occurs in `text`, ignoring case: a byte offset in `text`.
fn find_ignoring_case(text: &str, needle: &str) -> Option<(usize, usize)> {
    let n = needle.chars().count();
    let lower = text.to_lowercase();
    // Usually lowercasing keeps every character's length: offsets carry over.
    if lower.len() == text.len() {
        let at = lower.find(needle)?;
        if text.is_char_boundary(at) {
            return Some((at, n));
        }
    } else if !lower.contains(needle) {
        return None;
    }
    text.char_indices().find_map(|(i, _)| {
        let window: String = text[i..].chars().take(n).collect();
        (window.to_lowercase() == needle).then_some((i, n))
    })
}

pub(crate) async fn search(v: &Vault, p: SearchJournals) -> ToolOutcome {
    let query = p.query.trim().to_lowercase();
    if query.is_empty() {
        return Err("Give some text to search for".into());
    }
    let gate = v.state.settings.vault_gate();
    let limit = clamp(p.limit) as usize;
    tokio::task::spawn_blocking(move || {
        let mut hits = Vec::new();
        for date in journal::dates(&gate).map_err(journal_error)? {
            if p.date_to.as_deref().is_some_and(|to| date.as_str() > to)
                || p.date_from
                    .as_deref()
                    .is_some_and(|from| date.as_str() < from)
            {
                continue;
            }
            for e in day_entries(&gate, &date).map_err(journal_error)? {
                if let Some((at, len)) = find_ignoring_case(&e.content, &query) {
                    hits.push(
                        json!({"date": date, "entry_header": format!("{} {}", e.id, e.time).trim(),
                        "snippet": snippet(&e.content, at, len), "file": e.file}),
                    );
                    if hits.len() >= limit {
                        return Ok(Value::Array(hits));
                    }
                }
            }
        }
        Ok(Value::Array(hits))
    })
    .await
    .map_err(|_| "The search stopped".to_string())?
}

pub(crate) async fn recent(v: &Vault, p: ListRecentJournals) -> ToolOutcome {
    let gate = v.state.settings.vault_gate();
    let limit = clamp(p.limit) as usize;
    tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        for date in journal::dates(&gate)
            .map_err(journal_error)?
            .into_iter()
            .take(limit)
        {
            let entries = day_entries(&gate, &date).map_err(journal_error)?;
            let file = entries.first().map(|e| e.file.clone());
            out.push(json!({"date": date, "entry_count": entries.len(), "file": file}));
        }
        Ok(Value::Array(out))
    })
    .await
    .map_err(|_| "The listing stopped".to_string())?
}

pub(crate) async fn get(v: &Vault, p: GetJournal) -> ToolOutcome {
    if !journal::is_date(&p.date) {
        return Err("A date is YYYY-MM-DD".into());
    }
    let gate = v.state.settings.vault_gate();
    tokio::task::spawn_blocking(move || {
        let entries = day_entries(&gate, &p.date).map_err(journal_error)?;
        let Some(raw) = journal::read_day(&gate, &p.date).map_err(journal_error)? else {
            return Err(format!("No journal for {}", p.date));
        };
        Ok(json!({
            "date": p.date,
            "file": entries.first().map(|e| e.file.clone()),
            "entry_count": entries.len(),
            "entries": entries.iter().map(|e| json!({"id": e.id, "time": e.time, "content": e.content})).collect::<Vec<_>>(),
            "raw_content": raw,
        }))
    })
    .await
    .map_err(|_| "The read stopped".to_string())?
}

pub(crate) async fn add(v: &Vault, p: AddJournalEntry, session: Option<String>) -> ToolOutcome {
    let gate = v.state.settings.vault_gate();
    let mut meta = Map::new();
    meta.insert("source".into(), json!("mcp"));
    if let Some(s) = &session {
        meta.insert("session_id".into(), json!(s));
    }
    let saved = tokio::task::spawn_blocking(move || {
        journal::save_entry(&gate, &p.content, &meta, chrono::Utc::now())
    })
    .await
    .map_err(|_| "The entry was not saved".to_string())?
    .map_err(journal_error)?;
    v.state
        .events
        .fire_blocking(
            "daily.entry.created",
            json!({"id": saved.id, "path": saved.relative_path, "created_at": saved.created_at,
                "source": "mcp", "session_id": session}),
        )
        .await;
    Ok(
        json!({"success": true, "id": saved.id, "path": saved.relative_path, "created_at": saved.created_at}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_split_on_headers_and_snippets_respect_characters() {
        let page = "---\ndate: x\n---\n# para:daily:abc 09:15\nFirst thought.\n\n# para:daily:def 18:02\nSecond — with ünïcode.\n";
        let e = page_entries(page, "2026-12-01", "Daily/journals/2026-12-01.md");
        assert_eq!(e.len(), 2);
        assert_eq!((e[0].id.as_str(), e[0].time.as_str()), ("abc", "09:15"));
        assert_eq!(e[1].content, "Second — with ünïcode.");
        let plain = page_entries("Just a day.\n", "2026-12-01", "f");
        assert_eq!(plain.len(), 1);
        assert_eq!(plain[0].id, "2026-12-01");
        let text = "ü".repeat(80) + "Needle" + &"é".repeat(200);
        let (at, len) = find_ignoring_case(&text, "needle").unwrap();
        let s = snippet(&text, at, len);
        assert!(s.starts_with(&"ü".repeat(50)) && s.contains("Needle"));
        assert_eq!(s.chars().count(), 50 + 6 + 100);
        assert_eq!(find_ignoring_case("abc", "zz"), None);
    }
}
