//! Imports of Claude.ai and ChatGPT exports: each conversation becomes
//! a session (source `claude` / `chatgpt`) whose history is kept as Markdown under
//! `Chat/sessions/imported/` and seeds its first turn. The session id is derived from
//! the export's own id, so importing the same export twice adds nothing.

use std::path::Path;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// One conversation read from an export.
#[derive(Debug, Clone)]
pub struct Conversation {
    /// `claude` or `chatgpt`: the export it came from (also the session's source).
    pub source: &'static str,
    /// The conversation's id in the export (`uuid` for Claude.ai, `conversation_id` or
    /// `id` for ChatGPT).
    pub external_id: String,
    /// The conversation's title in the export; `None` when absent or empty.
    pub title: Option<String>,
    /// When the conversation was created, as the export gives it (ChatGPT's epoch
    /// seconds as ISO 8601 UTC).
    pub created_at: Option<String>,
    /// `(role, text, timestamp)`, role `user` or `assistant`.
    pub messages: Vec<(String, String, Option<String>)>,
}

impl Conversation {
    /// The Parachute session id: the export's UUID, or one derived from it (the CLI
    /// needs a UUID to start the session under).
    pub fn session_id(&self) -> String {
        if let Ok(u) = uuid::Uuid::parse_str(&self.external_id) {
            return u.to_string();
        }
        let digest = Sha256::digest(format!("{}:{}", self.source, self.external_id).as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string()
    }

    /// The history as Markdown (`### Human | ts` / `### Assistant | ts` blocks).
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        for (role, text, ts) in &self.messages {
            let who = if role == "user" { "Human" } else { "Assistant" };
            out.push_str(&format!(
                "### {who} | {}\n\n{}\n\n",
                ts.as_deref().unwrap_or(""),
                text.trim()
            ));
        }
        out
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| {
                p.as_str()
                    .map(str::to_string)
                    .or_else(|| p.get("text").and_then(Value::as_str).map(str::to_string))
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn epoch_to_iso(v: &Value) -> Option<String> {
    let secs = v.as_f64()?;
    chrono::DateTime::from_timestamp(secs as i64, ((secs.fract()) * 1e9) as u32)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
}

fn claude_ai(c: &Value) -> Result<Conversation, String> {
    let id = c
        .get("uuid")
        .and_then(Value::as_str)
        .ok_or("a Claude conversation without `uuid`")?;
    let msgs = c
        .get("chat_messages")
        .and_then(Value::as_array)
        .ok_or("`chat_messages` is not a list")?;
    let messages = msgs
        .iter()
        .filter_map(|m| {
            let role = match m.get("sender").and_then(Value::as_str)? {
                "human" => "user",
                "assistant" => "assistant",
                _ => return None,
            };
            let text = m
                .get("text")
                .map(text_of)
                .filter(|t| !t.is_empty())
                .or_else(|| m.get("content").map(text_of))?;
            Some((
                role.to_string(),
                text,
                m.get("created_at")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            ))
        })
        .collect();
    Ok(Conversation {
        source: "claude",
        external_id: id.to_string(),
        title: c
            .get("name")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_string),
        created_at: c
            .get("created_at")
            .and_then(Value::as_str)
            .map(str::to_string),
        messages,
    })
}

fn chatgpt(c: &Value) -> Result<Conversation, String> {
    let id = c
        .get("conversation_id")
        .or_else(|| c.get("id"))
        .and_then(Value::as_str)
        .ok_or("a ChatGPT conversation without `id`")?;
    let mapping = c
        .get("mapping")
        .and_then(Value::as_object)
        .ok_or("`mapping` is not an object")?;
    let mut nodes: Vec<(f64, String, String, Option<String>)> = mapping
        .values()
        .filter_map(|n| {
            let m = n.get("message")?;
            let role = m.pointer("/author/role").and_then(Value::as_str)?;
            if role != "user" && role != "assistant" {
                return None;
            }
            let text = m.pointer("/content/parts").map(text_of).unwrap_or_default();
            if text.trim().is_empty() {
                return None;
            }
            let t = m.get("create_time").and_then(Value::as_f64).unwrap_or(0.0);
            Some((
                t,
                role.to_string(),
                text,
                epoch_to_iso(m.get("create_time").unwrap_or(&Value::Null)),
            ))
        })
        .collect();
    nodes.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    Ok(Conversation {
        source: "chatgpt",
        external_id: id.to_string(),
        title: c
            .get("title")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_string),
        created_at: c.get("create_time").and_then(epoch_to_iso),
        messages: nodes.into_iter().map(|(_, r, t, ts)| (r, t, ts)).collect(),
    })
}

/// Reads one entry of an export, whichever of the two formats it is.
pub fn parse_entry(c: &Value) -> Result<Conversation, String> {
    if !c.is_object() {
        return Err("not a conversation object".into());
    }
    if c.get("chat_messages").is_some() {
        claude_ai(c)
    } else if c.get("mapping").is_some() {
        chatgpt(c)
    } else {
        Err("neither a Claude.ai (`chat_messages`) nor a ChatGPT (`mapping`) conversation".into())
    }
}

/// The entries of an export: a list, a single conversation, or `{conversations: [...]}`.
pub fn entries(data: &Value) -> Vec<Value> {
    match data {
        Value::Array(a) => a.clone(),
        Value::Object(o) => match o.get("conversations") {
            Some(Value::Array(a)) => a.clone(),
            _ => vec![data.clone()],
        },
        _ => Vec::new(),
    }
}

/// Writes a conversation's Markdown history into the vault.
pub fn write_history(
    gate: &crate::vault::VaultGate,
    conv: &Conversation,
    session_id: &str,
) -> Result<(), String> {
    let rel = format!("Chat/sessions/imported/{}-{session_id}.md", conv.source);
    let target = gate.resolve(&rel).map_err(|e| e.to_string())?;
    crate::util::fs::write_atomic(&target, conv.markdown().as_bytes(), None)
        .map_err(|e| e.to_string())
}

/// What happened to one conversation.
pub enum Outcome {
    /// Imported as a new session with this id.
    Imported(String),
    /// Skipped: a session with its id exists or was deleted.
    Skipped,
}

/// Imports one conversation: history file, then the session row (archived if asked).
/// An existing or deleted session with the same id is skipped.
pub async fn import_one(
    store: &crate::db::Store,
    gate: &crate::vault::VaultGate,
    conv: &Conversation,
    archived: bool,
) -> Result<Outcome, String> {
    use crate::db::SessionChanges;
    let id = conv.session_id();
    let exists = store
        .get_session(&id)
        .await
        .map_err(|e| e.to_string())?
        .is_some();
    if exists
        || store
            .session_was_deleted(&id)
            .await
            .map_err(|e| e.to_string())?
    {
        return Ok(Outcome::Skipped);
    }
    let (g, c, i) = (gate.clone(), conv.clone(), id.clone());
    tokio::task::spawn_blocking(move || write_history(&g, &c, &i))
        .await
        .map_err(|e| e.to_string())??;
    let title = conv.title.clone().or_else(|| {
        conv.messages
            .iter()
            .find(|m| m.0 == "user")
            .and_then(|m| super::events::title_from_message(&m.1))
    });
    let new = crate::db::NewSession {
        id: id.clone(),
        title,
        module: "chat".into(),
        source: conv.source.into(),
        message_count: conv.messages.len() as i64,
        metadata: Some(
            json!({"imported_at": crate::util::time::now_session(), "external_id": conv.external_id}).to_string(),
        ),
        created_at: conv.created_at.as_deref().map(crate::util::time::to_session_format),
        ..Default::default()
    };
    store
        .insert_session(&new)
        .await
        .map_err(|e| e.to_string())?;
    if archived {
        let ch = SessionChanges {
            archived: Some(true),
            ..Default::default()
        };
        store
            .update_session(&id, &ch)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(Outcome::Imported(id))
}

/// How much an import may read after decompression: a small zip can expand to
/// gigabytes (a zip bomb), so entries and the total are counted as they stream.
#[derive(Debug, Clone, Copy)]
pub struct ImportLimits {
    /// Largest single conversation (one element of the top-level array).
    pub max_entry_bytes: u64,
    /// Largest export in total.
    pub max_total_bytes: u64,
}

/// Counts bytes as they are read and fails the read once a limit is passed, so
/// nothing past the limit is ever decompressed or held in memory.
struct Limited<R> {
    inner: R,
    limits: ImportLimits,
    read: std::rc::Rc<std::cell::Cell<u64>>,
    entry_start: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: std::io::Read> std::io::Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let total = self.read.get() + n as u64;
        self.read.set(total);
        if total > self.limits.max_total_bytes {
            return Err(std::io::Error::other(format!(
                "the export is larger than {} bytes after decompression (setting import_max_total_bytes)",
                self.limits.max_total_bytes
            )));
        }
        if total - self.entry_start.get() > self.limits.max_entry_bytes {
            return Err(std::io::Error::other(format!(
                "a conversation is larger than {} bytes (setting import_max_entry_bytes)",
                self.limits.max_entry_bytes
            )));
        }
        Ok(n)
    }
}

/// Reads an export file (a `conversations.json`, or a zip holding one) entry by entry,
/// without loading the whole export: each top-level array element is parsed on its own
/// and handed to `on_entry`, which returns `false` to stop. Returns the number of entries.
/// Reading stops with an error as soon as an entry or the total passes `limits`.
pub fn stream_file(
    path: &Path,
    limits: ImportLimits,
    on_entry: &mut dyn FnMut(usize, Value) -> bool,
) -> Result<usize, String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut magic = [0u8; 2];
    let n = f.read(&mut magic).map_err(|e| e.to_string())?;
    drop(f);
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    if n == 2 && &magic == b"PK" {
        let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file))
            .map_err(|e| format!("not a valid zip: {e}"))?;
        let name = (0..archive.len())
            .filter_map(|i| archive.by_index(i).ok().map(|f| f.name().to_string()))
            .find(|n| n == "conversations.json" || n.ends_with("/conversations.json"))
            .ok_or("the zip has no conversations.json")?;
        let entry = archive.by_name(&name).map_err(|e| e.to_string())?;
        stream_reader(entry, limits, on_entry)
    } else {
        stream_reader(file, limits, on_entry)
    }
}

fn stream_reader<R: std::io::Read>(
    reader: R,
    limits: ImportLimits,
    on_entry: &mut dyn FnMut(usize, Value) -> bool,
) -> Result<usize, String> {
    use serde::de::{DeserializeSeed, Deserializer, SeqAccess, Visitor};
    use std::cell::Cell;
    use std::rc::Rc;
    struct Each<'a> {
        on_entry: &'a mut dyn FnMut(usize, Value) -> bool,
        read: Rc<Cell<u64>>,
        entry_start: Rc<Cell<u64>>,
    }
    impl<'de> Visitor<'de> for Each<'_> {
        type Value = usize;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of conversations")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
            let mut i = 0;
            loop {
                // Each entry is measured from where the previous one ended (the reader
                // runs at most a buffer ahead of the parser).
                self.entry_start.set(self.read.get());
                let Some(v) = seq.next_element::<Value>()? else {
                    break;
                };
                i += 1;
                if !(self.on_entry)(i - 1, v) {
                    // Nobody wants the rest (the client left): stop reading.
                    return Err(serde::de::Error::custom("import cancelled"));
                }
            }
            Ok(i)
        }
    }
    impl<'de> DeserializeSeed<'de> for Each<'_> {
        type Value = usize;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
            d.deserialize_seq(self)
        }
    }
    let read = Rc::new(Cell::new(0));
    let entry_start = Rc::new(Cell::new(0));
    let limited = Limited {
        inner: reader,
        limits,
        read: read.clone(),
        entry_start: entry_start.clone(),
    };
    let mut de = serde_json::Deserializer::from_reader(std::io::BufReader::new(limited));
    Each {
        on_entry,
        read,
        entry_start,
    }
    .deserialize(&mut de)
    .map_err(|e| {
        if e.is_io() {
            format!("import refused: {e}")
        } else {
            format!("invalid export JSON: {e}")
        }
    })
}

/// A conversation that could not be imported.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct ImportEntryError {
    /// Its index in the export.
    pub index: usize,
    /// Its id in the export; `null` when it could not be read.
    pub id: Option<String>,
    /// Why it was not imported.
    pub error: String,
}

/// The `errors` item for entry `index`.
pub fn entry_error(index: usize, conv_id: Option<&str>, error: &str) -> ImportEntryError {
    ImportEntryError {
        index,
        id: conv_id.map(str::to_string),
        error: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_with_trailing_space_is_kept_in_the_markdown() {
        // Found by the property below: the Markdown trims each message's ends.
        let data = serde_json::json!({"conversations": [{"conversation_id": "", "id": "",
            "create_time": null, "mapping": {"a": {"message": {"author": {"role": "user"},
            "content": {"parts": ["😀 "]}, "create_time": 0.0}}}}]});
        let entry = entries(&data).remove(0);
        let c = parse_entry(&entry).expect("a conversation");
        assert!(c.markdown().contains("\n\n😀\n\n"), "{}", c.markdown());
    }

    #[test]
    fn ids_are_stable_uuids() {
        let c = Conversation {
            source: "chatgpt",
            external_id: "abc".into(),
            title: None,
            created_at: None,
            messages: vec![],
        };
        let a = c.session_id();
        assert_eq!(a, c.session_id());
        assert!(uuid::Uuid::parse_str(&a).is_ok());
    }
}

/// The export readers over generated conversations, well- and ill-formed: every entry
/// is read or refused with a reason, never a panic, and what is read has a stable id.
#[cfg(test)]
mod props {
    use super::*;
    use crate::util::arb;
    use proptest::prelude::*;

    fn claude_conversation() -> impl Strategy<Value = Value> {
        (
            prop_oneof![Just(Value::from("8c1d0a6e-2f43-4a59-9d7e-1b2c3d4e5f60")), arb::json()],
            prop::collection::vec(
                arb::object_with(&["sender", "text", "content", "created_at"]),
                0..6,
            ),
            arb::json(),
        )
            .prop_map(|(uuid, msgs, name)| {
                serde_json::json!({"uuid": uuid, "name": name, "chat_messages": msgs})
            })
    }

    fn chatgpt_conversation() -> impl Strategy<Value = Value> {
        let node = (
            prop_oneof![Just("user"), Just("assistant"), Just("system")],
            arb::json(),
            prop_oneof![any::<f64>().prop_map(Value::from), arb::json()],
        )
            .prop_map(|(role, parts, t)| {
                serde_json::json!({"message": {"author": {"role": role}, "content": {"parts": parts}, "create_time": t}})
            });
        (
            arb::json(),
            prop::collection::vec(("[a-z0-9]{1,6}", prop_oneof![node, arb::json()]), 0..6),
            arb::json(),
        )
            .prop_map(|(id, nodes, t)| {
                let mapping: serde_json::Map<String, Value> = nodes.into_iter().collect();
                serde_json::json!({"conversation_id": id, "id": id, "create_time": t, "mapping": mapping})
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1500))]

        #[test]
        fn every_entry_is_read_or_refused_with_a_reason(
            data in prop_oneof![
                prop::collection::vec(prop_oneof![claude_conversation(), chatgpt_conversation(), arb::json()], 0..4)
                    .prop_map(Value::Array),
                claude_conversation(),
                chatgpt_conversation().prop_map(|c| serde_json::json!({"conversations": [c]})),
                arb::json(),
            ],
        ) {
            for entry in entries(&data) {
                match parse_entry(&entry) {
                    Ok(c) => {
                        let id = c.session_id();
                        prop_assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
                        prop_assert_eq!(&id, &c.session_id(), "the id is stable");
                        let md = c.markdown();
                        // Each message's text is kept (the Markdown trims its ends).
                        for (_, text, _) in &c.messages {
                            prop_assert!(md.contains(text.trim()), "{text:?} in {md:?}");
                        }
                    }
                    Err(why) => prop_assert!(!why.is_empty()),
                }
            }
        }
    }
}
