//! The server inside the app: started in-process with the same library the
//! `parachute server` daemon runs, or, when a Parachute already answers on the port,
//! attached to instead of starting a second.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use parachute_core::app::StartError;
use parachute_core::config::Settings;
use parachute_core::desktop::DesktopControl;
use parachute_core::util::probe::get_loopback;

/// How the app reaches its server.
pub enum Server {
    /// Running in this process; stopped through `shutdown`.
    Embedded {
        /// Ends the server gracefully.
        shutdown: oneshot::Sender<()>,
        /// Finishes once the server has stopped (turns ended, store closed).
        task: JoinHandle<Result<(), StartError>>,
        /// Its port.
        port: u16,
        /// The window's per-launch key (see `AuthStore::issue_window_key`).
        window_key: Option<String>,
    },
    /// Another Parachute (the daemon) answers on the port: the app uses it.
    Attached {
        /// Its port.
        port: u16,
    },
    /// No server: why, in words for the tray and the window.
    Unavailable {
        /// What went wrong.
        reason: String,
    },
}

impl Server {
    /// The port the window and the status poll use, if there is a server.
    pub fn port(&self) -> Option<u16> {
        match self {
            Server::Embedded { port, .. } | Server::Attached { port } => Some(*port),
            Server::Unavailable { .. } => None,
        }
    }

    /// The window's key, when the server runs inside the app.
    pub fn window_key(&self) -> Option<String> {
        match self {
            Server::Embedded { window_key, .. } => window_key.clone(),
            _ => None,
        }
    }

    /// A short description for the log and the status line.
    pub fn describe(&self) -> String {
        match self {
            Server::Embedded { port, .. } => format!("running inside the app on port {port}"),
            Server::Attached { port } => {
                format!("using the Parachute already running on port {port}")
            }
            Server::Unavailable { reason } => reason.clone(),
        }
    }

    /// Stops an embedded server gracefully and waits for it; an attached one keeps running.
    pub async fn stop(self) {
        if let Server::Embedded { shutdown, task, .. } = self {
            let _ = shutdown.send(());
            match task.await {
                Ok(Ok(())) => tracing::info!("embedded server stopped"),
                Ok(Err(e)) => tracing::warn!(error = %e, "embedded server ended with an error"),
                Err(e) => tracing::warn!(error = %e, "embedded server task failed"),
            }
        }
    }
}

/// What answers on a port's `/api/health`.
#[derive(Debug, PartialEq, Eq)]
pub enum Occupant {
    /// Nothing listens.
    Free,
    /// A Parachute server.
    Parachute,
    /// Something else.
    Other,
}

/// Whether a reply to `GET /api/health` comes from a Parachute server.
pub fn is_parachute_health(status: u16, body: &str) -> bool {
    status == 200
        && serde_json::from_str::<Value>(body).is_ok_and(|v| {
            v["status"] == "ok" && v["version"].is_string() && v["timestamp"].is_u64()
        })
}

/// Who occupies `port` on this machine.
pub async fn occupant(port: u16) -> Occupant {
    match get_loopback(port, "/api/health", Duration::from_secs(2)).await {
        Ok(r) if is_parachute_health(r.status, &r.body) => Occupant::Parachute,
        Ok(_) => Occupant::Other,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Occupant::Free,
        // A listener that does not answer HTTP in time is someone else's.
        Err(_) => Occupant::Other,
    }
}

/// Attaches to a Parachute on the configured port, or starts one in this process,
/// lending it the app's `desktop` controls.
pub async fn start(settings: Settings, desktop: Arc<dyn DesktopControl>) -> Server {
    let port = settings.port;
    match occupant(port).await {
        Occupant::Parachute => return Server::Attached { port },
        Occupant::Other => {
            return Server::Unavailable {
                reason: format!(
                    "Port {port} is used by another program. Stop it, or choose another port \
                     with `parachute config set port N`, then start Parachute again."
                ),
            }
        }
        Occupant::Free => {}
    }
    let (shutdown, rx) = oneshot::channel::<()>();
    let (key_tx, key_rx) = std::sync::mpsc::channel::<String>();
    let mut task = tokio::spawn(parachute_api::server::serve_until_with(
        settings,
        async {
            let _ = rx.await;
        },
        move |state| {
            state.desktop.install(desktop);
            if let Some(k) = state.auth.issue_window_key() {
                let _ = key_tx.send(k);
            }
        },
    ));
    // Healthy, or failed to start (the port taken meanwhile, an unreadable store…).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if occupant(port).await == Occupant::Parachute {
            return Server::Embedded {
                shutdown,
                task,
                port,
                window_key: key_rx.try_recv().ok(),
            };
        }
        tokio::select! {
            done = &mut task => {
                let reason = match done {
                    Ok(Err(e)) => format!("The server could not start: {e}"),
                    Ok(Ok(())) => "The server stopped as it started.".to_string(),
                    Err(e) => format!("The server failed: {e}"),
                };
                return Server::Unavailable { reason };
            }
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
        if Instant::now() > deadline {
            return Server::Embedded {
                shutdown,
                task,
                port,
                window_key: key_rx.try_recv().ok(),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_parachute_health;

    #[test]
    fn only_parachute_health_counts_as_parachute() {
        assert!(is_parachute_health(
            200,
            r#"{"status":"ok","timestamp":1764600000000,"version":"0.1.0"}"#
        ));
        assert!(!is_parachute_health(200, r#"{"status":"ok"}"#));
        assert!(!is_parachute_health(404, "Not Found"));
        assert!(!is_parachute_health(200, "<html>hello</html>"));
    }
}
