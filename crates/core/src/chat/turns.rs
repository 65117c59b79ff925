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

/// Finished turns stay available for re-attach this long.
const KEEP_FINISHED: Duration = Duration::from_secs(300);

/// One turn's log and controls.
pub struct Turn {
    /// The session the turn belongs to; empty for a detached turn.
    pub session_id: String,
    events: Mutex<Vec<LoggedEvent>>,
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
            events: Mutex::new(Vec::new()),
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
        let logged = LoggedEvent {
            json: Arc::from(event.to_json()),
            event: Arc::new(event.clone()),
        };
        let n = {
            let mut ev = self.events.lock().unwrap_or_else(|p| p.into_inner());
            ev.push(logged);
            ev.len()
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
                let ev = self.events.lock().unwrap_or_else(|p| p.into_inner());
                if ev.len() > after {
                    return ev[after..]
                        .iter()
                        .cloned()
                        .enumerate()
                        .map(|(i, e)| (after + i + 1, e))
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
