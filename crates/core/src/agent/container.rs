//! The seam to the `sandboxed` level: a [`ContainerLauncher`] (the sandbox crate's,
//! over Docker) starts the CLI inside a container and hands back an [`AgentProcess`]
//! that the turn drives like a local one.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use super::{AgentError, AgentProcess, SpawnSpec};
use crate::config::secrets::{Secret, TokenKind};

/// The resource limits of one sandboxed session's container.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerLimits {
    /// Memory cap in bytes.
    pub memory_bytes: i64,
    /// CPU cap in billionths of a core.
    pub nano_cpus: i64,
    /// Most processes the container may hold.
    pub pids: i64,
    /// Longest a turn may run before its container is stopped.
    pub timeout: Duration,
}

/// Parses a memory size: digits with an optional `k`, `m` or `g` suffix.
pub fn parse_memory(s: &str) -> Option<i64> {
    let s = s.trim().to_ascii_lowercase();
    let (digits, unit) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1i64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (&s[..], 1),
    };
    digits.parse::<i64>().ok()?.checked_mul(unit)
}

/// Everything a container launch needs.
pub struct ContainerRequest<'a> {
    /// The CLI as it would run locally; its `cwd` is the host working directory.
    pub spec: &'a SpawnSpec,
    /// The vault on the host (resolved), mounted read-only.
    pub vault: PathBuf,
    /// Folders of the vault (resolved host paths) mounted read-write over it.
    pub writable: Vec<PathBuf>,
    /// A host folder of this session's own (the CLI's transcripts, the relay socket).
    pub session_dir: PathBuf,
    /// The credential the relay adds to model requests; never inside the container.
    pub credential: (TokenKind, Secret),
    /// The model API the relay forwards to (`None`: Anthropic's).
    pub base_url: Option<String>,
    /// The container's limits.
    pub limits: ContainerLimits,
}

/// A future that launches a container.
pub type LaunchFuture<'a> =
    Pin<Box<dyn Future<Output = Result<AgentProcess, AgentError>> + Send + 'a>>;

/// Starts CLIs inside containers (implemented by the sandbox crate).
pub trait ContainerLauncher: Send + Sync {
    /// Starts the CLI of `req` in a fresh container and sends `initialize`.
    fn launch<'a>(&'a self, req: ContainerRequest<'a>) -> LaunchFuture<'a>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_parse() {
        assert_eq!(parse_memory("512m"), Some(512 << 20));
        assert_eq!(parse_memory("2G"), Some(2 << 30));
        assert_eq!(parse_memory("1024"), Some(1024));
        assert_eq!(parse_memory("m"), None);
        assert_eq!(parse_memory("12x"), None);
    }
}
