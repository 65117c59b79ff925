//! Where spare CLI processes wait (see `spare`): the ready ones, the place under the
//! process cap of the one being started (a turn at the cap may take it), and the ids
//! of spares stopped without being adopted (their generated files are removed).

use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use super::pool::retire;
use crate::agent::AgentProcess;
use crate::trust::TrustLevel;

/// A spare that exits sooner than this after it was ready counts as a failed start.
const DIED_YOUNG: Duration = Duration::from_secs(10);

/// A process waiting to become a new chat.
pub struct Spare {
    /// The idle CLI, initialized, under its own new session id.
    pub process: AgentProcess,
    /// The secret store's generation when it was started (a later one may hold
    /// another credential).
    pub secrets_generation: u64,
    /// When it answered `initialize`.
    pub ready_at: Instant,
    /// The trust level it runs at.
    pub level: TrustLevel,
}

/// What [`SpareStore::drop_where`] found.
pub struct Dropped {
    /// The levels of spares that had exited soon after they were ready.
    pub died_young: Vec<TrustLevel>,
}

/// The spares and their bookkeeping.
#[derive(Default)]
pub struct SpareStore {
    ready: Mutex<Vec<Spare>>,
    /// The place of the spare being started, until it is ready.
    starting: Mutex<Option<OwnedSemaphorePermit>>,
    stop_starting: tokio::sync::Notify,
    retired: Mutex<Vec<String>>,
    /// Spares started (health, tests).
    pub spawned: AtomicU64,
    /// Spares a new chat adopted (health, tests).
    pub adopted: AtomicU64,
}

impl SpareStore {
    /// Adds a ready spare.
    pub(super) fn put(&self, spare: Spare) {
        self.ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(spare);
    }

    /// Takes a live spare at `level`, if there is one (exited ones are dropped on the
    /// way).
    pub fn take(&self, level: TrustLevel) -> Option<Spare> {
        loop {
            let mut s = {
                let mut ready = self.ready.lock().unwrap_or_else(|p| p.into_inner());
                let i = ready.iter().rposition(|s| s.level == level)?;
                ready.remove(i)
            };
            if s.process.is_alive() {
                return Some(s);
            }
            tracing::debug!(session = %s.process.session_id, "a spare CLI process had exited");
            self.retire(s.process);
        }
    }

    /// Stops the spares `stale` says are out of date, and those that exited.
    pub fn drop_where(&self, stale: impl Fn(&Spare) -> bool) -> Dropped {
        let mut gone = Vec::new();
        {
            let mut ready = self.ready.lock().unwrap_or_else(|p| p.into_inner());
            let mut keep = Vec::new();
            for mut s in ready.drain(..) {
                if !stale(&s) && s.process.is_alive() {
                    keep.push(s);
                } else {
                    gone.push(s);
                }
            }
            *ready = keep;
        }
        let mut died_young = Vec::new();
        for mut s in gone {
            if !s.process.is_alive() && s.ready_at.elapsed() < DIED_YOUNG {
                died_young.push(s.level);
            }
            tracing::debug!(session = %s.process.session_id, "stopped a spare CLI process");
            self.retire(s.process);
        }
        Dropped { died_young }
    }

    /// Holds the place of the spare about to be started.
    pub(super) fn begin_start(&self, permit: OwnedSemaphorePermit) {
        *self.starting.lock().unwrap_or_else(|p| p.into_inner()) = Some(permit);
    }

    /// The place of the spare that was being started; `None` when a turn took it.
    pub(super) fn finish_start(&self) -> Option<OwnedSemaphorePermit> {
        self.starting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Resolves when a turn took the place of the spare being started.
    pub(super) fn start_stopped(&self) -> tokio::sync::futures::Notified<'_> {
        self.stop_starting.notified()
    }

    /// The place of a spare, for a turn at the process cap: a ready spare's (it is
    /// stopped), else that of the one being started (told to stop).
    pub fn give_up_place(&self) -> Option<OwnedSemaphorePermit> {
        let ready = self.ready.lock().unwrap_or_else(|p| p.into_inner()).pop();
        if let Some(mut s) = ready {
            tracing::debug!(session = %s.process.session_id, "stopped a spare CLI process for a turn at the process cap");
            let permit = s.process.take_permit();
            self.retire(s.process);
            if permit.is_some() {
                return permit;
            }
        }
        let permit = self.finish_start()?;
        tracing::debug!("a turn at the process cap took the place of a spare being started");
        self.stop_starting.notify_waiters();
        Some(permit)
    }

    /// Stops a spare that no chat adopted (its generated files go later).
    pub(super) fn retire(&self, p: AgentProcess) {
        self.note_unused(p.session_id.clone());
        retire(p);
    }

    /// Notes spare `id` as never used (it did not start).
    pub(super) fn note_unused(&self, id: String) {
        self.retired
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(id);
    }

    /// The ids of spares stopped without being adopted since the last call.
    pub(super) fn take_retired(&self) -> Vec<String> {
        std::mem::take(&mut *self.retired.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Every ready spare's process (server shutdown).
    pub(super) fn drain(&self) -> Vec<AgentProcess> {
        self.ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .map(|s| s.process)
            .collect()
    }

    /// The spares waiting now.
    pub fn count(&self) -> usize {
        self.ready.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// The spares waiting now at `level`.
    pub fn count_at(&self, level: TrustLevel) -> usize {
        self.ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|s| s.level == level)
            .count()
    }

    /// The spares at `level` that have lived past their start (see `DIED_YOUNG`).
    pub fn settled_at(&self, level: TrustLevel) -> usize {
        self.ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|s| s.level == level && s.ready_at.elapsed() >= DIED_YOUNG)
            .count()
    }

    /// Each spare's session id, level, process fingerprint and working directory.
    pub(super) fn shapes(&self) -> Vec<(String, TrustLevel, u64, std::path::PathBuf)> {
        self.ready
            .lock()
            .map(|s| {
                s.iter()
                    .map(|s| {
                        let p = &s.process;
                        (p.session_id.clone(), s.level, p.fingerprint, p.cwd.clone())
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}
