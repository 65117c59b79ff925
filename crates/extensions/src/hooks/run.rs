//! Running one hook: the event as JSON on stdin, the vault as working directory, a
//! minimal environment (no credential or token of any kind), its own process group so
//! a timeout kills it with everything it started, and its output read but bounded.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use parachute_core::util::sys;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bytes of a hook's stderr kept for its error message.
const STDERR_KEPT: usize = 2048;

/// The only variables a hook inherits from the server's environment.
const KEPT_ENV: &[&str] = &[
    "PATH", "HOME", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME", "TMPDIR",
];

/// Runs `cmd` (the hook, maybe wrapped by a confinement) for `event`; an error says
/// how it failed (exit status and the end of its stderr, or the timeout).
pub async fn run(
    cmd: std::process::Command,
    event: &str,
    payload: &Value,
    vault: &Path,
    timeout: Duration,
) -> Result<(), String> {
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.env_clear();
    for k in KEPT_ENV {
        if let Some(v) = std::env::var_os(k) {
            cmd.env(k, v);
        }
    }
    cmd.env("PARACHUTE_EVENT", event)
        .env("PARACHUTE_VAULT", vault)
        .current_dir(vault)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    cmd.process_group(0);
    let mut child = cmd.spawn().map_err(|e| format!("cannot start: {e}"))?;
    let pid = child.id();
    let input = serde_json::to_vec(payload).unwrap_or_default();
    let mut stdin = child.stdin.take();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let work = async {
        // Written while the output is drained: a hook that writes before it reads
        // cannot deadlock against a large event.
        let feed = async {
            if let Some(mut s) = stdin.take() {
                // A hook that does not read its input is fine.
                let _ = s.write_all(&input).await;
                let _ = s.shutdown().await;
            }
        };
        let drain_out = async {
            if let Some(mut o) = stdout.take() {
                let mut sink = [0u8; 8192];
                while matches!(o.read(&mut sink).await, Ok(n) if n > 0) {}
            }
        };
        let keep_err = async {
            let mut kept = Vec::new();
            if let Some(mut e) = stderr.take() {
                let mut buf = [0u8; 4096];
                while let Ok(n) = e.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    kept.extend_from_slice(&buf[..n]);
                    if kept.len() > STDERR_KEPT * 2 {
                        kept.drain(..kept.len() - STDERR_KEPT);
                    }
                }
            }
            kept
        };
        let ((), (), err, status) = tokio::join!(feed, drain_out, keep_err, child.wait());
        (err, status)
    };
    match tokio::time::timeout(timeout, work).await {
        Ok((err, Ok(status))) if status.success() => {
            let _ = err;
            Ok(())
        }
        Ok((err, Ok(status))) => {
            let tail = String::from_utf8_lossy(&err);
            let tail = tail.trim();
            let tail: String = tail
                .chars()
                .rev()
                .take(STDERR_KEPT)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            Err(match status.code() {
                Some(code) if tail.is_empty() => format!("exited with status {code}"),
                Some(code) => format!("exited with status {code}: {tail}"),
                None => "was killed by a signal".to_string(),
            })
        }
        Ok((_, Err(e))) => Err(format!("could not be waited for: {e}")),
        Err(_) => {
            // The whole group: whatever the hook started goes with it.
            if let Some(pid) = pid {
                sys::signal_group(pid, sys::Signal::Kill);
            }
            let _ = child.kill().await;
            Err(format!(
                "timed out after {} s and was killed",
                timeout.as_secs_f64()
            ))
        }
    }
}
