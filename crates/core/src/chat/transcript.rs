//! Where the CLI keeps a session's transcript: `$CLAUDE_CONFIG_DIR/projects/<slug>/<id>.jsonl`.
//! The slug encoding is the CLI's own business, so lookups scan the project folders.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

/// The transcript file of `session_id`, if the CLI has one.
pub fn find(config_dir: &Path, session_id: &str) -> Option<PathBuf> {
    // A session id is a file name: refuse anything that could walk the tree.
    if session_id.is_empty()
        || !session_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return None;
    }
    let file = format!("{session_id}.jsonl");
    let projects = std::fs::read_dir(config_dir.join("projects")).ok()?;
    projects
        .flatten()
        .map(|e| e.path().join(&file))
        .find(|p| p.is_file())
}

/// Reads a transcript's JSON lines (unparseable lines skipped).
pub fn read_events(path: &Path) -> std::io::Result<Vec<Value>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect())
}

fn user_text(content: &Value) -> Option<String> {
    match content {
        Value::String(s) => Some(s.clone()),
        Value::Array(blocks) => {
            let texts: Vec<&str> = blocks
                .iter()
                .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .collect();
            (!texts.is_empty()).then(|| texts.join("\n"))
        }
        _ => None,
    }
}

/// Who said a transcript message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MessageRole {
    /// The person (or the client speaking for them).
    User,
    /// The agent.
    Assistant,
}

/// One message of a session's conversation, read from the CLI's transcript.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TranscriptMessage {
    /// Who said it.
    pub role: MessageRole,
    /// Its text (an assistant message's text blocks joined by newlines).
    pub content: String,
    /// The transcript line's `timestamp` as written there (normally an RFC 3339
    /// string); null when the line has none.
    pub timestamp: Value,
}

/// The conversation as `{role, content, timestamp}`: user prompts and the
/// assistant's text, one message per assistant API message (its blocks are separate
/// transcript lines sharing one id). Tool results, replays and meta lines are left out.
pub fn messages(events: &[Value]) -> Vec<TranscriptMessage> {
    let mut out: Vec<TranscriptMessage> = Vec::new();
    let mut last_assistant_id: Option<String> = None;
    for e in events {
        if e.get("isMeta").and_then(Value::as_bool) == Some(true)
            || e.get("isSidechain").and_then(Value::as_bool) == Some(true)
            || e.get("isCompactSummary").and_then(Value::as_bool) == Some(true)
        {
            continue;
        }
        let ts = e.get("timestamp").cloned().unwrap_or(Value::Null);
        match e.get("type").and_then(Value::as_str) {
            Some("user") => {
                last_assistant_id = None;
                let Some(text) = e.pointer("/message/content").and_then(user_text) else {
                    continue;
                };
                if text.starts_with("<local-command") || text.starts_with("<command-") {
                    continue;
                }
                out.push(TranscriptMessage {
                    role: MessageRole::User,
                    content: text,
                    timestamp: ts,
                });
            }
            Some("assistant") => {
                let msg = e.get("message").unwrap_or(&Value::Null);
                let text: Vec<&str> = msg
                    .get("content")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
                    .filter_map(|b| b.get("text").and_then(Value::as_str))
                    .collect();
                if text.is_empty() {
                    continue;
                }
                let id = msg.get("id").and_then(Value::as_str).map(str::to_string);
                let joined = text.join("\n");
                match (out.last_mut(), &id) {
                    (Some(prev), Some(id))
                        if prev.role == MessageRole::Assistant
                            && last_assistant_id.as_ref() == Some(id) =>
                    {
                        prev.content.push('\n');
                        prev.content.push_str(&joined);
                    }
                    _ => out.push(TranscriptMessage {
                        role: MessageRole::Assistant,
                        content: joined,
                        timestamp: ts,
                    }),
                }
                last_assistant_id = id;
            }
            _ => {}
        }
    }
    out
}

/// One compaction segment of a transcript.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TranscriptSegment {
    /// Its position, from 0.
    pub index: usize,
    /// A compaction boundary follows it (every segment but the last).
    pub is_compacted: bool,
    /// Number of user messages.
    pub message_count: usize,
    /// Number of transcript lines.
    pub event_count: usize,
    /// Its first timestamp; null when it has none.
    pub start_time: Option<String>,
    /// Its last timestamp; null when it has none.
    pub end_time: Option<String>,
    /// The first user message, whitespace collapsed, cut to 100 characters; null when
    /// there is none.
    pub preview: Option<String>,
    /// Its lines are in `events`.
    pub loaded: bool,
}

/// A session's transcript, split at compaction boundaries
/// (`GET /api/chat/{id}/transcript`).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionTranscript {
    /// The session's id.
    pub session_id: String,
    /// The loaded segment's transcript lines as the CLI wrote them (all segments' with
    /// `full`, or when neither `after_compact` nor `segment` picks one).
    pub events: Vec<Value>,
    /// The last model the transcript names (normally a string); null when none.
    pub model: Value,
    /// The first working directory the transcript names (normally a string); null
    /// when none.
    pub cwd: Value,
    /// Number of `events`.
    pub event_count: usize,
    /// Number of lines in the whole transcript, boundaries included.
    pub total_event_count: usize,
    /// Every segment's summary, in order.
    pub segments: Vec<TranscriptSegment>,
    /// Number of `segments` (compaction boundaries + 1).
    pub segment_count: usize,
    /// The segment in `events`; null when all are.
    pub loaded_segment_index: Option<usize>,
}

/// One compaction segment's summary.
fn segment_info(
    index: usize,
    events: &[Value],
    compacted: bool,
    loaded: bool,
) -> TranscriptSegment {
    let user_msgs: Vec<String> = events
        .iter()
        .filter(|e| e.get("type").and_then(Value::as_str) == Some("user"))
        .filter_map(|e| e.pointer("/message/content").and_then(user_text))
        .collect();
    let preview = user_msgs.first().map(|t| {
        let collapsed = t.split_whitespace().collect::<Vec<_>>().join(" ");
        if collapsed.chars().count() > 100 {
            format!("{}...", collapsed.chars().take(97).collect::<String>())
        } else {
            collapsed
        }
    });
    let times: Vec<&str> = events
        .iter()
        .filter_map(|e| e.get("timestamp").and_then(Value::as_str))
        .collect();
    TranscriptSegment {
        index,
        is_compacted: compacted,
        message_count: user_msgs.len(),
        event_count: events.len(),
        start_time: times.first().map(|t| t.to_string()),
        end_time: times.last().map(|t| t.to_string()),
        preview,
        loaded,
    }
}

/// `GET /api/chat/{id}/transcript`: events split at `compact_boundary` markers; by
/// default only the last segment (`after_compact`), or one `segment`, or all (`full`).
pub fn segmented(
    session_id: &str,
    events: Vec<Value>,
    after_compact: bool,
    segment: Option<usize>,
    full: bool,
) -> SessionTranscript {
    let total = events.len();
    let mut segments: Vec<Vec<Value>> = vec![Vec::new()];
    let mut model = Value::Null;
    let mut cwd = Value::Null;
    for e in events {
        if cwd.is_null() {
            if let Some(c) = e.get("cwd") {
                cwd = c.clone();
            }
        }
        if e.get("type").and_then(Value::as_str) == Some("assistant") {
            if let Some(m) = e
                .pointer("/message/model")
                .filter(|m| m.as_str() != Some("<synthetic>"))
            {
                model = m.clone();
            }
        }
        if e.get("type").and_then(Value::as_str) == Some("system")
            && e.get("subtype").and_then(Value::as_str) == Some("compact_boundary")
        {
            segments.push(Vec::new());
            continue;
        }
        if let Some(last) = segments.last_mut() {
            last.push(e);
        }
    }
    let count = segments.len();
    let loaded: Option<usize> = if full {
        None
    } else if let Some(i) = segment {
        Some(i.min(count - 1))
    } else if after_compact {
        Some(count - 1)
    } else {
        None
    };
    let infos: Vec<TranscriptSegment> = segments
        .iter()
        .enumerate()
        .map(|(i, seg)| segment_info(i, seg, i + 1 < count, loaded.is_none_or(|l| l == i)))
        .collect();
    let events: Vec<Value> = match loaded {
        Some(i) => segments.swap_remove(i),
        None => segments.into_iter().flatten().collect(),
    };
    SessionTranscript {
        session_id: session_id.to_string(),
        event_count: events.len(),
        events,
        model,
        cwd,
        total_event_count: total,
        segments: infos,
        segment_count: count,
        loaded_segment_index: loaded,
    }
}

/// What `/api/import/sync` needs of one transcript.
pub struct Summary {
    /// The session id (the transcript's file name, a UUID).
    pub id: String,
    /// A title from the first user message; `None` when there is none.
    pub title: Option<String>,
    /// The last model the transcript names; `None` when it names none.
    pub model: Option<String>,
    /// Number of user and assistant messages.
    pub message_count: i64,
    /// The first timestamp in the transcript, as the CLI wrote it.
    pub created_at: Option<String>,
}

/// Every session transcript in the CLI config dir.
pub fn all_summaries(config_dir: &Path) -> Vec<Summary> {
    let Ok(projects) = std::fs::read_dir(config_dir.join("projects")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for p in projects.flatten() {
        let Ok(files) = std::fs::read_dir(p.path()) else {
            continue;
        };
        for f in files.flatten() {
            let path = f.path();
            if path.extension().and_then(|e| e.to_str()) != Some("jsonl") {
                continue;
            }
            let Some(id) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .map(str::to_string)
            else {
                continue;
            };
            if uuid::Uuid::parse_str(&id).is_err() {
                continue;
            }
            let Ok(events) = read_events(&path) else {
                continue;
            };
            let msgs = messages(&events);
            let first = msgs
                .iter()
                .find(|m| m.role == MessageRole::User)
                .map(|m| m.content.as_str());
            out.push(Summary {
                title: first.and_then(super::events::title_from_message),
                model: events
                    .iter()
                    .filter_map(|e| e.pointer("/message/model").and_then(Value::as_str))
                    .rfind(|m| *m != "<synthetic>")
                    .map(str::to_string),
                message_count: msgs.len() as i64,
                created_at: events
                    .iter()
                    .find_map(|e| e.get("timestamp").and_then(Value::as_str))
                    .map(str::to_string),
                id,
            });
        }
    }
    out
}
