//! Running the server: bind, serve with each connection's peer address (auth decides
//! locality from it), run the start-up work that may be slow after listening, and shut
//! down cleanly on SIGINT/SIGTERM (flushing key last-used times, closing the store).

mod connections;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use parachute_core::app::{AppState, StartError};
use parachute_core::config::Settings;

/// What the CLI reads to find a running server.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone)]
pub struct RuntimeInfo {
    /// The server's process id.
    pub pid: u32,
    /// The address it was asked to bind.
    pub host: String,
    /// The port it listens on.
    pub port: u16,
    /// The vault it serves.
    pub vault: String,
    /// When it started (RFC 3339).
    pub started_at: String,
}

/// Runs the server from settings until SIGINT/SIGTERM: opens the state, binds, writes
/// the runtime file the command line reads, and serves.
pub async fn serve(settings: Settings) -> Result<(), StartError> {
    serve_until(settings, shutdown_signal()).await
}

/// [`serve`] until `shutdown` resolves instead of a signal: the one path for the daemon
/// and the tray app, which stops its embedded server from its Quit menu.
pub async fn serve_until(
    settings: Settings,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), StartError> {
    serve_until_with(settings, shutdown, |_| {}).await
}

/// [`serve_until`], calling `prepare` with the opened state before it listens (the tray
/// app issues its window's key there).
pub async fn serve_until_with(
    settings: Settings,
    shutdown: impl std::future::Future<Output = ()>,
    prepare: impl FnOnce(&AppState),
) -> Result<(), StartError> {
    let addr = format!("{}:{}", settings.host, settings.port);
    let state = AppState::open(settings).await?;
    prepare(&state);
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|e| StartError::Bind {
            addr: addr.clone(),
            reason: e.to_string(),
        })?;
    let local = listener.local_addr().map_err(|e| StartError::Bind {
        addr: addr.clone(),
        reason: e.to_string(),
    })?;
    let url = local_url(&state.settings.host, local.port());
    tracing::info!(addr = %local, vault = %state.settings.paths.vault.display(), auth_mode = state.auth.mode().as_str(),
        api = %format!("{url}/api"), docs = %format!("{url}/api/docs"), "parachute server listening");
    write_runtime_file(&state, local);
    let result = serve_with(state.clone(), listener, shutdown).await;
    let _ = std::fs::remove_file(state.settings.paths.runtime_file());
    result.map_err(|e| StartError::Bind {
        addr,
        reason: e.to_string(),
    })
}

/// Serves an opened `state` on `listener` until `shutdown` resolves, then stops the
/// warm CLI processes, saves key last-used times and closes the store. The entry for
/// embedding (the tray app) and for tests that run the server in-process.
pub async fn serve_with(
    state: AppState,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    // Turns at `sandboxed` run their CLI in Docker containers.
    state
        .chat
        .set_container_launcher(parachute_sandbox::DockerSandbox::new(
            &state.settings.sandbox_image,
        ));
    let cancel = CancellationToken::new();
    let bots = parachute_bots::Bots::load(state.clone());
    // Bundled modules are installed before the first request can ask for them.
    let extensions = parachute_extensions::Extensions::new(&state);
    state.events.set_listener(extensions.hooks.clone());
    extensions.start(state.settings.paths.runtime_dir()).await;
    state
        .chat
        .set_extras_source(parachute_extensions::session::VaultExtras::new(
            extensions.clone(),
            state.settings.paths.clone(),
            listener
                .local_addr()
                .ok()
                .map(|addr| parachute_extensions::session::OwnMcp {
                    url: own_mcp_url(addr),
                    grants: state.mcp_grants.clone(),
                }),
        ));
    // Scheduled agents (a missed run may start now; its CLI reaches this server's MCP
    // endpoint once the listener below accepts).
    if let Err(e) = extensions.scheduler.start().await {
        tracing::warn!(error = %e, "the scheduler could not start");
    }
    let scheduler = extensions.scheduler.clone();
    // CLIs started ahead: recent sessions resumed, then spares for new chats.
    let ahead = tokio::spawn({
        let chat = state.chat.clone();
        async move {
            tokio::join!(chat.prewarm_recent(), chat.clone().keep_spares());
        }
    });
    let background = tokio::spawn(after_listen(state.clone(), bots.clone(), cancel.clone()));
    let app = crate::router_with(state.clone(), bots.clone(), extensions);
    let limits = connections::ConnectionLimits {
        header_read_timeout: state.settings.header_read_timeout,
        max_per_peer: state.settings.max_connections_per_peer,
    };
    let result = connections::serve_connections(listener, app, limits, shutdown).await;
    // Blocking hooks of server.stopping run before anything is torn down.
    state
        .events
        .fire_blocking("server.stopping", serde_json::json!({}))
        .await;
    cancel.cancel();
    ahead.abort();
    let _ = ahead.await;
    let _ = background.await;
    scheduler.shutdown().await;
    bots.shutdown().await;
    // Warm CLI processes end with the server (dropping one kills its child).
    state.chat.pool.shutdown_all().await;
    if let Err(e) = state.auth.flush().await {
        tracing::warn!(error = %e, "could not save API key last-used times");
    }
    state.store.close().await;
    tracing::info!("parachute server stopped");
    result
}

/// Where a CLI on this machine reaches the MCP server of a server listening at `addr`.
fn own_mcp_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(v4) if v4.is_unspecified() => {
            std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
        }
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => {
            std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
        }
        ip => ip,
    };
    format!("http://{}/mcp", SocketAddr::new(ip, addr.port()))
}

/// The URL a person on this machine opens: a wildcard or loopback bind is reached as
/// `localhost`.
fn local_url(host: &str, port: u16) -> String {
    match host {
        "0.0.0.0" | "::" | "[::]" | "127.0.0.1" | "::1" | "localhost" => {
            format!("http://localhost:{port}")
        }
        h if h.contains(':') => format!("http://[{h}]:{port}"),
        h => format!("http://{h}:{port}"),
    }
}

fn write_runtime_file(state: &AppState, local: SocketAddr) {
    let info = RuntimeInfo {
        pid: std::process::id(),
        host: state.settings.host.clone(),
        port: local.port(),
        vault: state.settings.paths.vault.display().to_string(),
        started_at: parachute_core::util::time::now_rfc3339(),
    };
    let text = serde_json::to_string_pretty(&info).unwrap_or_default();
    if let Err(e) = parachute_core::util::fs::write_atomic(
        &state.settings.paths.runtime_file(),
        text.as_bytes(),
        Some(0o600),
    ) {
        tracing::warn!(error = %e, "could not write the runtime file");
    }
}

/// Work that must not delay the first answer: the legacy token migration, the bot
/// connectors, and the periodic flush of key last-used times.
async fn after_listen(
    state: AppState,
    bots: std::sync::Arc<parachute_bots::Bots>,
    cancel: CancellationToken,
) {
    match state
        .secrets
        .migrate_legacy_token(&state.settings.paths.legacy_token_file())
        .await
    {
        Ok(true) => tracing::info!("legacy token migrated"),
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "could not migrate the legacy .token file"),
    }
    state.events.fire(
        "server.started",
        serde_json::json!({"vault": state.settings.paths.vault.display().to_string(),
            "port": state.settings.port}),
    );
    // Enabled bot connectors start in the background; a failure is only logged.
    tokio::spawn(async move { bots.start_enabled().await });
    for w in &state.settings.warnings {
        tracing::warn!("{w}");
    }
    // Which credential chats will use (its kind and where it is, never the value).
    match state.secrets.claude_credential().await {
        Ok(Some(c)) => tracing::info!(
            kind = c.kind.as_str(),
            source = c.location.as_str(),
            "Claude credential set"
        ),
        Ok(None) => tracing::warn!(
            "no Claude credential: chats fail until `parachute setup-token` stores one"
        ),
        Err(e) => tracing::warn!(error = %e, "the Claude credential cannot be read"),
    }
    let mut flush = tokio::time::interval(Duration::from_secs(30));
    // Idle warm CLI processes are checked often enough to honour short idle limits.
    let sweep_every =
        (state.settings.warm_idle / 2).clamp(Duration::from_millis(250), Duration::from_secs(30));
    let mut sweep = tokio::time::interval(sweep_every);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = flush.tick() => {
                if let Err(e) = state.auth.flush().await {
                    tracing::warn!(error = %e, "could not save API key last-used times");
                }
            }
            _ = sweep.tick() => {
                state.chat.pool.evict_idle();
                state.chat.hub.prune();
            }
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutdown signal received");
}
