//! The cap on CLI processes (`max_cli_processes`): every live process — running a
//! turn or kept warm — holds one permit for its whole life. A turn that needs a new
//! process takes a free permit, else the permit of the least recently used idle warm
//! process (which is stopped), else waits in a bounded queue (telling its client with a
//! `queued` event), else is refused as busy. Nothing ever spawns beyond the cap.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::pool::WarmPool;

/// Permits for CLI processes, and the queue of turns waiting for one.
pub struct ProcessBudget {
    permits: Arc<Semaphore>,
    max: usize,
    waiting: AtomicUsize,
    max_waiting: usize,
}

/// How a busy refusal's message begins: callers that can wait (bots, the scheduler)
/// recognise it in a turn's `error` event and try again later.
pub const BUSY_MESSAGE_START: &str = "The server is busy:";

/// Why a turn got no process.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BudgetError {
    #[error("The server is busy: {in_use} Claude processes are in use (max_cli_processes = {max}) and {waiting} turns are already waiting. Try again in a moment.")]
    Busy {
        in_use: usize,
        max: usize,
        waiting: usize,
    },
}

/// Where a queued turn stands, for its `queued` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuePosition {
    /// 1 = next in line.
    pub position: usize,
    /// Processes in use (running turns and warm ones that are not idle-evictable).
    pub in_use: usize,
    pub max: usize,
}

/// Decrements the waiting count however the wait ends (granted, or the turn dropped).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl ProcessBudget {
    /// A budget of `max` process permits whose queue holds at most `max_waiting` turns.
    pub fn new(max: usize, max_waiting: usize) -> ProcessBudget {
        ProcessBudget {
            permits: Arc::new(Semaphore::new(max)),
            max,
            waiting: AtomicUsize::new(0),
            max_waiting,
        }
    }

    /// Processes holding a permit now.
    pub fn in_use(&self) -> usize {
        self.max - self.permits.available_permits()
    }

    /// Turns waiting for a permit now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// The cap.
    pub fn max(&self) -> usize {
        self.max
    }

    /// A permit for a new process: free, else taken from an idle warm process, else
    /// after waiting in the queue (`on_queued` is called once, when the turn starts
    /// waiting). Refused at once when the queue is full.
    pub async fn acquire(
        &self,
        pool: &WarmPool,
        on_queued: impl FnOnce(QueuePosition),
    ) -> Result<OwnedSemaphorePermit, BudgetError> {
        if let Some(p) = self.try_now(pool) {
            return Ok(p);
        }
        let position = self.waiting.fetch_add(1, Ordering::SeqCst) + 1;
        let _waiting = Waiting(&self.waiting);
        if position > self.max_waiting {
            return Err(BudgetError::Busy {
                in_use: self.in_use(),
                max: self.max,
                waiting: position - 1,
            });
        }
        on_queued(QueuePosition {
            position,
            in_use: self.in_use(),
            max: self.max,
        });
        loop {
            // Registered before looking, so a process returned in between is not missed.
            let returned = pool.returned();
            let mut returned = std::pin::pin!(returned);
            returned.as_mut().enable();
            if let Some(p) = self.try_now(pool) {
                return Ok(p);
            }
            tokio::select! {
                p = self.permits.clone().acquire_owned() => {
                    // The semaphore is never closed.
                    if let Ok(p) = p {
                        return Ok(p);
                    }
                }
                _ = returned => {}
            }
        }
    }

    /// A permit that is free now, for work no turn waits on (a spare, a pre-warmed
    /// session): nothing is stopped for it, and none is taken while a turn waits.
    pub fn try_free(&self) -> Option<OwnedSemaphorePermit> {
        if self.waiting() > 0 {
            return None;
        }
        self.permits.clone().try_acquire_owned().ok()
    }

    fn try_now(&self, pool: &WarmPool) -> Option<OwnedSemaphorePermit> {
        self.permits
            .clone()
            .try_acquire_owned()
            .ok()
            .or_else(|| pool.evict_lru_for_permit())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn the_busy_message_starts_as_callers_expect() {
        let e = BudgetError::Busy {
            in_use: 1,
            max: 1,
            waiting: 1,
        };
        assert!(e.to_string().starts_with(BUSY_MESSAGE_START));
    }

    #[tokio::test]
    async fn permits_are_capped_and_the_queue_is_bounded() {
        let pool = WarmPool::new(4, Duration::from_secs(60));
        let budget = ProcessBudget::new(2, 1);
        let a = budget.acquire(&pool, |_| panic!("not queued")).await;
        let b = budget.acquire(&pool, |_| panic!("not queued")).await;
        assert!(a.is_ok() && b.is_ok());
        assert_eq!(budget.in_use(), 2);

        // The third waits (position 1) until a permit is released.
        let queued = std::cell::Cell::new(None);
        let third = budget.acquire(&pool, |q| queued.set(Some(q)));
        let mut third = std::pin::pin!(third);
        let waited = tokio::time::timeout(Duration::from_millis(50), third.as_mut()).await;
        assert!(waited.is_err(), "the third turn waits");
        assert_eq!(
            queued.get(),
            Some(QueuePosition {
                position: 1,
                in_use: 2,
                max: 2
            })
        );
        assert_eq!(budget.waiting(), 1);

        // The fourth finds the queue full.
        let err = budget
            .acquire(&pool, |_| panic!("refused, not queued"))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            BudgetError::Busy {
                in_use: 2,
                max: 2,
                waiting: 1
            }
        );
        assert!(err.to_string().contains("max_cli_processes = 2"));

        drop(a);
        let c = third.await;
        assert!(c.is_ok());
        assert_eq!(budget.waiting(), 0);
        assert_eq!(budget.in_use(), 2);
    }
}
