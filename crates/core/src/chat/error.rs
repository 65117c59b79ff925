//! Why a turn failed, by kind. Every failure reaches the client as one `error` event
//! whose text is this error's message; the kinds let bots and the scheduler tell a
//! refusal (fix the request) from a busy server (retry) or a broken CLI (report).

use super::budget::BudgetError;
use crate::agent::AgentError;
use crate::db::DbError;
use crate::workspaces::WorkspaceError;

/// A turn that could not run or finish.
#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    /// Something the request names is not acceptable (trust level, working directory,
    /// agent file, context, attachment): fix the request.
    #[error("{0}")]
    Refused(String),
    /// No Claude credential is configured.
    #[error("{}", super::orchestrator::NO_TOKEN)]
    NoToken,
    /// The CLI-process cap and its queue are full: retry shortly.
    #[error(transparent)]
    Busy(#[from] BudgetError),
    /// The workspace the session belongs to could not be read.
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    /// Starting or talking to the CLI failed.
    #[error(transparent)]
    Agent(#[from] AgentError),
    /// The store failed while recording the session.
    #[error("could not save the session: {0}")]
    Store(#[from] DbError),
    /// The model API gave no progress within `model_timeout_secs`; the CLI was stopped.
    #[error("{0}")]
    ModelTimeout(String),
    /// A sandboxed turn ran past its wall-clock limit; its container was stopped.
    #[error("{0}")]
    TimedOut(String),
    /// The CLI's stream ended without a result.
    #[error("{0}")]
    Stream(String),
}

/// The text of a turn's `error` when the disk (or quota) is full.
pub const DISK_FULL: &str = "The disk is full, so the session could not be saved. \
Free some space and try again.";

impl TurnError {
    /// The text of the turn's `error` event: this error's message, or [`DISK_FULL`]
    /// when it was caused by a full disk (told from its type, see
    /// [`crate::util::disk_full`]).
    pub fn message(&self) -> String {
        if crate::util::disk_full::is_disk_full(self) {
            DISK_FULL.to_string()
        } else {
            self.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_turn_that_failed_on_a_full_disk_says_so_in_plain_words() {
        let full = TurnError::Workspace(WorkspaceError::Io {
            path: "ws.yaml".into(),
            source: Box::new(std::io::Error::from_raw_os_error(28)),
        });
        assert_eq!(full.message(), DISK_FULL);
        let other = TurnError::Stream("the stream ended".into());
        assert_eq!(other.message(), "the stream ended");
    }
}
