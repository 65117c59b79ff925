//! Warm CLI processes, one per recently active session (a cold spawn costs ~1 s and
//! ~200 MB; a warm turn ~0.1 s). Bounded by count, evicting the least recently used,
//! and by idle time. A turn takes its session's process out and puts it back after.
//! Beside them wait the spares: processes started ahead under a new session id, each
//! ready to become the next new chat (see `spare`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

// tokio's clock, so tests can pause and advance time.
use tokio::time::Instant;

use crate::agent::AgentProcess;

/// Warm CLI processes by session id, bounded in number and in idle time.
pub struct WarmPool {
    max: usize,
    idle: Duration,
    procs: Mutex<HashMap<String, (AgentProcess, Instant)>>,
    /// Signalled when a process is put back (a queued turn may take its permit).
    returned: tokio::sync::Notify,
    /// Spares: started for no session yet (see `spare_store`).
    pub spares: super::spare_store::SpareStore,
    /// CLI processes started for turns since the server started (health, tests).
    pub spawned: AtomicU64,
    /// Sessions whose CLI was resumed ahead at start-up (`prewarm_recent`).
    pub prewarmed: AtomicU64,
}

/// Stops a process in the background: closes its stdin, waits briefly, kills, reaps.
pub(super) fn retire(p: AgentProcess) {
    match tokio::runtime::Handle::try_current() {
        Ok(h) => {
            h.spawn(p.shutdown());
        }
        Err(_) => drop(p),
    }
}

impl WarmPool {
    /// A pool of at most `max` warm processes (0 keeps none); [`WarmPool::evict_idle`]
    /// stops those unused for `idle`.
    pub fn new(max: usize, idle: Duration) -> WarmPool {
        WarmPool {
            max,
            idle,
            procs: Mutex::new(HashMap::new()),
            returned: tokio::sync::Notify::new(),
            spares: super::spare_store::SpareStore::default(),
            spawned: AtomicU64::new(0),
            prewarmed: AtomicU64::new(0),
        }
    }

    /// Adds a ready spare; a turn waiting for a place looks again (it may take this
    /// one's).
    pub fn put_spare(&self, spare: super::spare_store::Spare) {
        self.spares.put(spare);
        self.returned.notify_waiters();
    }

    /// Takes the live process of a session, if there is one.
    pub fn take(&self, session_id: &str) -> Option<AgentProcess> {
        let mut procs = self.procs.lock().unwrap_or_else(|p| p.into_inner());
        let (mut p, _) = procs.remove(session_id)?;
        p.is_alive().then_some(p)
    }

    /// Returns a process after a turn; evicts the least recently used beyond the bound.
    pub fn put(&self, session_id: &str, mut p: AgentProcess) {
        if self.max == 0 || !p.is_alive() {
            return;
        }
        let mut procs = self.procs.lock().unwrap_or_else(|p| p.into_inner());
        procs.insert(session_id.to_string(), (p, Instant::now()));
        self.returned.notify_waiters();
        while procs.len() > self.max {
            let oldest = procs
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    if let Some((p, _)) = procs.remove(&k) {
                        retire(p);
                    }
                    tracing::debug!(session = %k, "evicted a warm CLI process (pool full)");
                }
                None => break,
            }
        }
    }

    /// Stops the least recently used warm process and hands over its CLI-process
    /// permit (a turn at the `max_cli_processes` cap needs it more).
    /// A spare goes first (ready, else one being started): it serves no session yet.
    pub fn evict_lru_for_permit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        if let Some(permit) = self.spares.give_up_place() {
            return Some(permit);
        }
        let mut procs = self.procs.lock().unwrap_or_else(|p| p.into_inner());
        let oldest = procs
            .iter()
            .min_by_key(|(_, (_, at))| *at)
            .map(|(k, _)| k.clone())?;
        let (mut p, _) = procs.remove(&oldest)?;
        let permit = p.take_permit();
        tracing::debug!(session = %oldest, "evicted a warm CLI process for a turn at the process cap");
        retire(p);
        permit
    }

    /// Resolves when a process is next put back.
    pub fn returned(&self) -> tokio::sync::futures::Notified<'_> {
        self.returned.notified()
    }

    /// Whether a session has a warm process.
    pub fn contains(&self, session_id: &str) -> bool {
        self.procs
            .lock()
            .map(|p| p.contains_key(session_id))
            .unwrap_or(false)
    }

    /// Drops a session's process (session deleted).
    pub fn remove(&self, session_id: &str) {
        self.procs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(session_id);
    }

    /// Drops processes idle for longer than the idle timeout.
    pub fn evict_idle(&self) {
        let mut procs = self.procs.lock().unwrap_or_else(|p| p.into_inner());
        let idle: Vec<String> = procs
            .iter()
            .filter(|(_, (_, at))| at.elapsed() >= self.idle)
            .map(|(k, _)| k.clone())
            .collect();
        for k in idle {
            if let Some((p, _)) = procs.remove(&k) {
                tracing::debug!(session = %k, "evicted an idle warm CLI process");
                retire(p);
            }
        }
    }

    /// Number of warm processes.
    pub fn len(&self) -> usize {
        self.procs.lock().map(|p| p.len()).unwrap_or(0)
    }

    /// Whether no process is warm.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops every process and waits for them (server shutdown).
    pub async fn shutdown_all(&self) {
        let mut all: Vec<AgentProcess> = self
            .procs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, (p, _))| p)
            .collect();
        all.extend(self.spares.drain());
        futures_util::future::join_all(all.into_iter().map(AgentProcess::shutdown)).await;
    }

    /// Counts one CLI process spawned (see `spawned`).
    pub fn count_spawn(&self) {
        self.spawned.fetch_add(1, Ordering::Relaxed);
    }
}
