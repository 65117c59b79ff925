//! The clocks of a running turn: the model's, which runs while the turn waits on the
//! model and restarts with every sign of progress (`model_timeout_secs`), and, for a
//! sandboxed turn, a wall clock that does not restart (its container's `timeout`).

use std::time::Duration;

use tokio::time::Instant;

use super::error::TurnError;
use super::model_failure;
use crate::agent::ApiRetry;

/// The clocks of one turn.
pub struct Clocks {
    model_limit: Duration,
    model_deadline: Instant,
    wall: Option<(Duration, Instant)>,
    /// The CLI's last retry report, for the timeout message.
    pub last_retry: Option<ApiRetry>,
    base_url: Option<String>,
}

impl Clocks {
    /// Starts both clocks now: the model's at `model_limit`, the wall clock (if any) at
    /// `wall`.
    pub fn start(
        model_limit: Duration,
        wall: Option<Duration>,
        base_url: Option<String>,
    ) -> Clocks {
        let now = Instant::now();
        Clocks {
            model_limit,
            model_deadline: now + model_limit,
            wall: wall.map(|w| (w, now + w)),
            last_retry: None,
            base_url,
        }
    }

    /// The model made progress (or the owner answered): its clock starts over.
    pub fn progress(&mut self) {
        self.model_deadline = Instant::now() + self.model_limit;
    }

    /// Resolves when a clock runs out, with the error the turn ends with. The model's
    /// clock only counts while `waiting_on_model` (no tool is running).
    pub async fn expired(&self, waiting_on_model: bool) -> TurnError {
        let wall = async {
            match self.wall {
                Some((_, at)) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let model = async {
            if waiting_on_model {
                tokio::time::sleep_until(self.model_deadline).await
            } else {
                std::future::pending().await
            }
        };
        tokio::select! {
            _ = wall => TurnError::TimedOut(format!(
                "The sandboxed turn ran longer than its {} s limit (the workspace's \
                 sandbox.timeout, else sandbox_timeout_secs); its container was stopped",
                self.wall.map(|(w, _)| w.as_secs()).unwrap_or_default()
            )),
            _ = model => TurnError::ModelTimeout(model_failure::timed_out(
                self.model_limit.as_secs(),
                self.last_retry.as_ref(),
                self.base_url.as_deref(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_model_clock_restarts_with_progress_and_pauses_for_tools() {
        let mut c = Clocks::start(Duration::from_secs(10), None, None);
        tokio::time::advance(Duration::from_secs(8)).await;
        c.progress();
        // Eight seconds after progress: not expired yet.
        let early = tokio::time::timeout(Duration::from_secs(8), c.expired(true)).await;
        assert!(early.is_err());
        // While a tool runs the model's clock does not count.
        let paused = tokio::time::timeout(Duration::from_secs(60), c.expired(false)).await;
        assert!(paused.is_err());
        assert!(matches!(c.expired(true).await, TurnError::ModelTimeout(_)));
    }

    #[tokio::test(start_paused = true)]
    async fn the_wall_clock_does_not_restart() {
        let mut c = Clocks::start(Duration::from_secs(10), Some(Duration::from_secs(15)), None);
        tokio::time::advance(Duration::from_secs(9)).await;
        c.progress();
        tokio::time::advance(Duration::from_secs(9)).await;
        c.progress();
        match c.expired(true).await {
            TurnError::TimedOut(m) => assert!(m.contains("15 s limit"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
