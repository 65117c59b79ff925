//! Logging: to stderr in the foreground, to daily-rotated files under
//! `PARACHUTE_HOME/logs/` for the daemon. Structured fields; secrets never logged.

use std::io::IsTerminal;
use std::path::Path;

use tracing_subscriber::EnvFilter;

/// Keeps the file writer flushing; drop it at exit.
pub struct LogGuard(#[allow(dead_code)] Option<tracing_appender::non_blocking::WorkerGuard>);

/// File name prefix of the daily log files (`parachute.log.YYYY-MM-DD`, seven kept).
pub const LOG_FILE_PREFIX: &str = "parachute.log";

/// Initialises logging at `level` (a tracing filter such as `info`), once.
pub fn init(level: &str, to_dir: Option<&Path>) -> LogGuard {
    let filter = EnvFilter::try_from_env("RUST_LOG")
        .or_else(|_| EnvFilter::try_new(format!("{level},sqlx=warn,hyper=warn")))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    match to_dir {
        Some(dir) => {
            let appender = tracing_appender::rolling::Builder::new()
                .rotation(tracing_appender::rolling::Rotation::DAILY)
                .filename_prefix(LOG_FILE_PREFIX)
                .max_log_files(7)
                .build(dir);
            match appender {
                Ok(appender) => {
                    let (writer, guard) = tracing_appender::non_blocking(appender);
                    let _ = tracing_subscriber::fmt()
                        .with_env_filter(filter)
                        .with_ansi(false)
                        .with_writer(writer)
                        .try_init();
                    LogGuard(Some(guard))
                }
                Err(e) => {
                    let _ = tracing_subscriber::fmt()
                        .with_env_filter(filter)
                        .with_ansi(stderr_colours())
                        .with_writer(std::io::stderr)
                        .try_init();
                    tracing::warn!(error = %e, "cannot write log files; logging to stderr");
                    LogGuard(None)
                }
            }
        }
        None => {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_ansi(stderr_colours())
                .with_writer(std::io::stderr)
                .try_init();
            LogGuard(None)
        }
    }
}

/// Colour codes only for a person at a terminal: not in a file, a pipe or journald, and
/// never when `NO_COLOR` is set.
fn stderr_colours() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
