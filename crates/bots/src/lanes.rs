//! Per-chat ordering: each chat has a lane, a task that runs its messages one at a
//! time in the order they came; different chats run concurrently. A lane ends itself
//! after a while without messages, so idle chats hold no memory, and both the queue
//! of a lane and the number of lanes are bounded.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

/// A unit of work of one chat.
pub type Job = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Why a message was not queued.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum LaneError {
    /// The chat already has this many messages waiting.
    #[error("too many messages waiting in this chat")]
    ChatFull,
    /// Too many chats are active at once.
    #[error("too many active chats")]
    TooManyChats,
}

/// The lanes of one connector.
pub struct Lanes {
    lanes: Arc<Mutex<HashMap<String, mpsc::Sender<Job>>>>,
    per_chat: usize,
    max_chats: usize,
    idle: Duration,
}

impl Lanes {
    /// Lanes holding up to `per_chat` waiting messages each, at most `max_chats` at
    /// once, each ending after `idle` without messages.
    pub fn new(per_chat: usize, max_chats: usize, idle: Duration) -> Lanes {
        Lanes {
            lanes: Arc::default(),
            per_chat: per_chat.max(1),
            max_chats: max_chats.max(1),
            idle,
        }
    }

    /// Queues `job` behind the chat's earlier messages.
    pub fn submit(&self, chat: &str, job: Job) -> Result<(), LaneError> {
        let mut map = self.lanes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = map.get(chat) {
            return match tx.try_send(job) {
                Ok(()) => Ok(()),
                Err(mpsc::error::TrySendError::Full(_)) => Err(LaneError::ChatFull),
                // The lane ended between its last check and now: start a new one.
                Err(mpsc::error::TrySendError::Closed(job)) => {
                    map.remove(chat);
                    drop(map);
                    self.submit(chat, job)
                }
            };
        }
        if map.len() >= self.max_chats {
            return Err(LaneError::TooManyChats);
        }
        let (tx, rx) = mpsc::channel(self.per_chat);
        let _ = tx.try_send(job);
        map.insert(chat.to_string(), tx);
        tokio::spawn(run_lane(
            self.lanes.clone(),
            chat.to_string(),
            rx,
            self.idle,
        ));
        Ok(())
    }

    /// Chats with a live lane.
    pub fn active(&self) -> usize {
        self.lanes.lock().map(|m| m.len()).unwrap_or(0)
    }
}

async fn run_lane(
    lanes: Arc<Mutex<HashMap<String, mpsc::Sender<Job>>>>,
    chat: String,
    mut rx: mpsc::Receiver<Job>,
    idle: Duration,
) {
    loop {
        match tokio::time::timeout(idle, rx.recv()).await {
            Ok(Some(job)) => {
                // A job that panics must not end the lane with messages still queued.
                if let Err(e) = tokio::spawn(job).await {
                    tracing::error!(chat = %chat, error = %e, "a bot message handler failed");
                }
            }
            Ok(None) => return,
            Err(_) => {
                // Idle: leave, unless a message arrived meanwhile (senders hold the map
                // lock while sending, so this check cannot miss one).
                let mut map = lanes.lock().unwrap_or_else(|e| e.into_inner());
                match rx.try_recv() {
                    Ok(job) => {
                        drop(map);
                        if let Err(e) = tokio::spawn(job).await {
                            tracing::error!(chat = %chat, error = %e, "a bot message handler failed");
                        }
                    }
                    Err(_) => {
                        map.remove(&chat);
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex as StdMutex;

    #[tokio::test(start_paused = true)]
    async fn one_chat_in_order_chats_concurrently_idle_lanes_end() {
        let lanes = Lanes::new(100, 10, Duration::from_secs(5));
        let log = Arc::new(StdMutex::new(Vec::new()));
        for chat in ["a", "b"] {
            for i in 0..5 {
                let log = log.clone();
                let chat_s = chat.to_string();
                lanes
                    .submit(
                        chat,
                        Box::pin(async move {
                            // Later messages are quicker: order must still hold.
                            tokio::time::sleep(Duration::from_millis(50 - i * 10)).await;
                            log.lock().unwrap().push(format!("{chat_s}{i}"));
                        }),
                    )
                    .unwrap();
            }
        }
        assert_eq!(lanes.active(), 2);
        tokio::time::sleep(Duration::from_millis(400)).await;
        let got = log.lock().unwrap().clone();
        let only = |c: char| {
            got.iter()
                .filter(|s| s.starts_with(c))
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(only('a'), vec!["a0", "a1", "a2", "a3", "a4"]);
        assert_eq!(only('b'), vec!["b0", "b1", "b2", "b3", "b4"]);
        // Both chats ran at once: the first message of each finished before the second of either.
        assert!(
            got[..2].contains(&"a0".to_string()) && got[..2].contains(&"b0".to_string()),
            "{got:?}"
        );
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert_eq!(lanes.active(), 0);
        // A chat that went idle gets a new lane.
        let log2 = log.clone();
        lanes
            .submit(
                "a",
                Box::pin(async move { log2.lock().unwrap().push("again".into()) }),
            )
            .unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(log.lock().unwrap().last().unwrap(), "again");
    }

    #[tokio::test(start_paused = true)]
    async fn queues_and_chats_are_bounded() {
        let lanes = Lanes::new(2, 1, Duration::from_secs(5));
        let slow = || -> Job { Box::pin(tokio::time::sleep(Duration::from_secs(1))) };
        lanes.submit("a", slow()).unwrap();
        tokio::task::yield_now().await;
        lanes.submit("a", slow()).unwrap();
        lanes.submit("a", slow()).unwrap();
        assert_eq!(lanes.submit("a", slow()), Err(LaneError::ChatFull));
        assert_eq!(lanes.submit("b", slow()), Err(LaneError::TooManyChats));
    }
}
