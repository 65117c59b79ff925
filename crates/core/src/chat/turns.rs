//! Running and recently finished turns, each with its numbered log of typed
//! [`TurnEvent`]s (kept with their JSON, serialized once). A client reads from any
//! position (`Last-Event-ID`), so a disconnect loses nothing; bots and the scheduler
//! read the typed events.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify};
// tokio's clock, so tests can pause and advance time.
use tokio::time::Instant;

use super::events::TurnEvent;

/// One logged event: typed, and its JSON for the SSE edge.
#[derive(Debug, Clone)]
pub struct LoggedEvent {
    pub event: Arc<TurnEvent>,
    pub json: Arc<str>,
}

/// One entry of a turn's log. A `text` event repeats its whole block so far, so keeping
/// each one whole would grow the log quadratically with the answer: text events are kept
/// as positions in their block's text (held once) and rebuilt when read.
#[derive(Debug, Clone)]
enum Entry {
    Whole(LoggedEvent),
    Text {
        /// Index of the block's text in [`Log::blocks`].
        block: usize,
        /// `content` is the block's text up to here.
        end: usize,
        delta: Delta,
    },
}

/// A text event's `delta`: normally the tail of its `content`.
#[derive(Debug, Clone)]
enum Delta {
    /// `content[start..]`.
    Tail(usize),
    /// Anything else, kept as is.
    Own(Arc<str>),
}

/// A turn's events, in order.
#[derive(Debug, Default)]
struct Log {
    entries: Vec<Entry>,
    /// The text of each block, appended to as its events arrive.
    blocks: Vec<String>,
}

impl Log {
    fn push(&mut self, event: &TurnEvent) {
        let TurnEvent::Text { content, delta } = event else {
            self.entries.push(Entry::Whole(LoggedEvent {
                json: Arc::from(event.to_json()),
                event: Arc::new(event.clone()),
            }));
            return;
        };
        // A continuation of the last block extends it; anything else starts a new one.
        // Either way the block's text up to `end` is exactly `content`.
        let block = match self.blocks.last_mut() {
            Some(b) if content.starts_with(b.as_str()) => {
                b.push_str(&content[b.len()..]);
                self.blocks.len() - 1
            }
            _ => {
                self.blocks.push(content.clone());
                self.blocks.len() - 1
            }
        };
        let end = content.len();
        let delta = if content.ends_with(delta.as_str()) {
            Delta::Tail(end - delta.len())
        } else {
            Delta::Own(Arc::from(delta.as_str()))
        };
        self.entries.push(Entry::Text { block, end, delta });
    }

    fn get(&self, i: usize) -> LoggedEvent {
        match &self.entries[i] {
            Entry::Whole(e) => e.clone(),
            Entry::Text { block, end, delta } => {
                let content = &self.blocks[*block][..*end];
                let delta = match delta {
                    Delta::Tail(start) => &content[*start..],
                    Delta::Own(d) => d,
                };
                let event = super::events::text(content, delta);
                LoggedEvent {
                    json: Arc::from(event.to_json()),
                    event: Arc::new(event),
                }
            }
        }
    }

    /// Bytes of text the log holds (JSON of whole events, block texts, own deltas).
    fn stored_bytes(&self) -> usize {
        let entries: usize = self
            .entries
            .iter()
            .map(|e| match e {
                Entry::Whole(w) => w.json.len(),
                Entry::Text {
                    delta: Delta::Own(d),
                    ..
                } => d.len(),
                Entry::Text { .. } => 0,
            })
            .sum();
        entries + self.blocks.iter().map(String::len).sum::<usize>()
    }
}

/// Finished turns stay available for re-attach this long.
const KEEP_FINISHED: Duration = Duration::from_secs(300);

/// One turn's log and controls.
pub struct Turn {
    /// The session the turn belongs to; empty for a detached turn.
    pub session_id: String,
    events: Mutex<Log>,
    count: watch::Sender<usize>,
    finished: AtomicBool,
    finished_at: Mutex<Option<Instant>>,
    abort_requested: AtomicBool,
    /// Notified when an abort is requested; the orchestrator waits on it to interrupt the CLI.
    pub abort: Notify,
}

impl Turn {
    fn new(session_id: String) -> Turn {
        Turn {
            session_id,
            events: Mutex::new(Log::default()),
            count: watch::channel(0).0,
            finished: AtomicBool::new(false),
            finished_at: Mutex::new(None),
            abort_requested: AtomicBool::new(false),
            abort: Notify::new(),
        }
    }

    /// A turn not registered under any session (a request refused before it began).
    pub fn detached() -> Turn {
        Turn::new(String::new())
    }

    /// Appends an event; its id is its 1-based position.
    pub fn push(&self, event: &TurnEvent) -> usize {
        let n = {
            let mut log = self.events.lock().unwrap_or_else(|p| p.into_inner());
            log.push(event);
            log.entries.len()
        };
        self.count.send_replace(n);
        n
    }

    /// Marks the turn over; subscribers drain and stop.
    pub fn finish(&self) {
        self.finished.store(true, Ordering::SeqCst);
        *self.finished_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        self.count.send_modify(|_| {});
    }

    /// Whether the turn has ended (no more events will be added).
    pub fn is_finished(&self) -> bool {
        self.finished.load(Ordering::SeqCst)
    }

    /// Bytes of text the turn's log holds: linear in the answer's length.
    pub fn stored_bytes(&self) -> usize {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .stored_bytes()
    }

    /// Requests an abort (the orchestrator interrupts the CLI).
    pub fn request_abort(&self) {
        self.abort_requested.store(true, Ordering::SeqCst);
        self.abort.notify_waiters();
        self.abort.notify_one();
    }

    /// Whether an abort was requested.
    pub fn abort_requested(&self) -> bool {
        self.abort_requested.load(Ordering::SeqCst)
    }

    /// Events after `after` (their ids and JSON), waiting for more while the turn runs;
    /// an empty result means the turn is over and everything was read.
    pub async fn next_after(&self, after: usize) -> Vec<(usize, Arc<str>)> {
        self.logged_after(after)
            .await
            .into_iter()
            .map(|(i, e)| (i, e.json))
            .collect()
    }

    /// [`Turn::next_after`] with the typed events (bots, the scheduler, the UI).
    pub async fn events_after(&self, after: usize) -> Vec<(usize, Arc<TurnEvent>)> {
        self.logged_after(after)
            .await
            .into_iter()
            .map(|(i, e)| (i, e.event))
            .collect()
    }

    async fn logged_after(&self, after: usize) -> Vec<(usize, LoggedEvent)> {
        let mut rx = self.count.subscribe();
        loop {
            {
                let log = self.events.lock().unwrap_or_else(|p| p.into_inner());
                if log.entries.len() > after {
                    return (after..log.entries.len())
                        .map(|i| (i + 1, log.get(i)))
                        .collect();
                }
            }
            if self.is_finished() {
                return Vec::new();
            }
            if rx.changed().await.is_err() {
                return Vec::new();
            }
        }
    }
}

/// Turns by session id, plus one lock per session so its turns run one at a time.
#[derive(Default)]
pub struct TurnHub {
    turns: Mutex<HashMap<String, Arc<Turn>>>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl TurnHub {
    /// Registers a new turn for `session_id`, replacing a finished one.
    pub fn begin(&self, session_id: &str) -> Arc<Turn> {
        Arc::new(Turn::new(session_id.to_string()))
    }

    /// Makes `t` the session's visible turn (for re-attach, status and abort). Called
    /// once the turn holds the session lock, so a queued turn never hides a running one.
    pub fn register(&self, t: &Arc<Turn>) {
        let session_id = t.session_id.clone();
        let mut turns = self.turns.lock().unwrap_or_else(|p| p.into_inner());
        turns.retain(|_, t| {
            !t.is_finished()
                || t.finished_at
                    .lock()
                    .map(|f| f.is_none_or(|at| at.elapsed() < KEEP_FINISHED))
                    .unwrap_or(false)
        });
        turns.insert(session_id, t.clone());
    }

    /// Drops finished turns older than the re-attach window (periodic sweep).
    pub fn prune(&self) {
        let mut turns = self.turns.lock().unwrap_or_else(|p| p.into_inner());
        turns.retain(|_, t| {
            !t.is_finished()
                || t.finished_at
                    .lock()
                    .map(|f| f.is_none_or(|at| at.elapsed() < KEEP_FINISHED))
                    .unwrap_or(false)
        });
    }

    /// The latest turn of a session (running or recently finished).
    pub fn get(&self, session_id: &str) -> Option<Arc<Turn>> {
        self.turns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(session_id)
            .cloned()
    }

    /// The running turn of a session.
    pub fn active(&self, session_id: &str) -> Option<Arc<Turn>> {
        self.get(session_id).filter(|t| !t.is_finished())
    }

    /// Ids of sessions with a running turn.
    pub fn active_ids(&self) -> Vec<String> {
        let turns = self.turns.lock().unwrap_or_else(|p| p.into_inner());
        let mut ids: Vec<String> = turns
            .values()
            .filter(|t| !t.is_finished())
            .map(|t| t.session_id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// The lock serializing a session's turns.
    pub fn session_lock(&self, session_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        locks.entry(session_id.to_string()).or_default().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::events::{text, tool_use, user_message};
    use serde_json::json;

    #[tokio::test]
    async fn text_is_stored_once_and_replayed_exactly() {
        let turn = Turn::detached();
        let mut pushed = Vec::new();
        let mut push = |e: TurnEvent| {
            pushed.push(e.to_json());
            turn.push(&e);
        };
        push(user_message("write a lot"));
        // A 100 KB answer in 1,000 deltas: each event repeats the block so far.
        let piece = "0123456789".repeat(10);
        let mut block = String::new();
        for _ in 0..1000 {
            block.push_str(&piece);
            push(text(&block, &piece));
        }
        // A tool call ends the block; the next one starts afresh; the result repeats all.
        push(tool_use(
            &json!("t1"),
            &json!("Read"),
            &json!({"file_path": "a.md"}),
        ));
        push(text("After the tool.", "After the tool."));
        push(text("After the tool. More.", " More."));
        let whole = format!("{block}After the tool. More.");
        push(text(&whole, &whole));
        let replayed: Vec<String> = turn
            .next_after(0)
            .await
            .into_iter()
            .map(|(_, j)| j.to_string())
            .collect();
        assert_eq!(replayed, pushed);
        // From the middle, too (a re-attach with Last-Event-ID).
        let tail = turn.next_after(500).await;
        assert_eq!(tail[0].0, 501);
        assert_eq!(&*tail[0].1, pushed[500].as_str());
        // Linear: the answer, the final repeat, and a little more; not ~50 MB.
        let stored = turn.stored_bytes();
        eprintln!("a 100 KB answer in 1,000 text events: {stored} bytes stored");
        assert!(
            stored < 250_000,
            "{stored} bytes stored for a 100 KB answer"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn finished_turns_stay_for_re_attach_then_go() {
        let hub = TurnHub::default();
        let turn = hub.begin("s1");
        hub.register(&turn);
        turn.push(&super::super::events::user_message("hi"));
        turn.finish();
        tokio::time::advance(KEEP_FINISHED - Duration::from_secs(1)).await;
        hub.prune();
        let kept = hub.get("s1").expect("still there to re-attach");
        assert_eq!(kept.next_after(0).await.len(), 1);
        tokio::time::advance(Duration::from_secs(2)).await;
        hub.prune();
        assert!(hub.get("s1").is_none(), "pruned after the window");
    }
}
