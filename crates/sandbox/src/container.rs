//! One sandboxed CLI: a container with no network, a read-only root filesystem, the
//! vault mounted read-only, a non-root user, memory, CPU and process limits, and no
//! credential — model traffic goes through the session's [`Relay`]. Its standard
//! streams become the [`AgentProcess`]'s; dropping the process removes the container.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;
use parachute_core::agent::{
    cli_args, AgentError, AgentIo, AgentProcess, ContainerRequest, Runner,
};
use tokio::io::AsyncWriteExt;

use crate::relay::{Relay, Upstream};
use crate::SandboxError;

/// Where things are inside the container.
pub const VAULT_IN: &str = "/vault";
/// The folder holding the relay socket and the system prompt.
pub const RUN_IN: &str = "/run/parachute";
/// The agent user's home; its `.claude` is the session's own folder on the host.
pub const HOME_IN: &str = "/home/agent";
/// The loopback port the entry program forwards to the relay socket.
pub const RELAY_PORT: u16 = 8377;
/// What the CLI inside is given instead of a credential.
pub const PLACEHOLDER_KEY: &str = "placeholder-the-relay-adds-the-real-one";
/// Label on every sandbox container (value: the session id).
pub const SESSION_LABEL: &str = "parachute.session";

/// The user the container runs as, never root: the server's own user; for a server
/// running as root, the vault's owner; else an unprivileged id.
pub fn container_user(vault: &Path) -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let (uid, gid) = parachute_core::util::sys::ids();
    if uid != 0 {
        return (uid, gid);
    }
    match std::fs::metadata(vault) {
        Ok(m) if m.uid() != 0 => (m.uid(), m.gid()),
        _ => (1000, 1000),
    }
}

/// Stops the container when dropped (and the relay with it).
struct ContainerRunner {
    docker: Docker,
    id: String,
    running: Arc<AtomicBool>,
    _relay: Relay,
}

impl ContainerRunner {
    fn remove(&self) -> impl Future<Output = ()> + Send + 'static {
        let (docker, id) = (self.docker.clone(), self.id.clone());
        async move {
            let opts = RemoveContainerOptionsBuilder::default().force(true).build();
            let _ = docker.remove_container(&id, Some(opts)).await;
        }
    }
}

impl Runner for ContainerRunner {
    fn is_running(&mut self) -> bool {
        self.running.load(Ordering::Relaxed)
    }
    fn pid(&self) -> Option<u32> {
        None
    }
    fn wait(&mut self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let running = self.running.clone();
        Box::pin(async move {
            while running.load(Ordering::Relaxed) {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        })
    }
    fn kill(&mut self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(self.remove())
    }
}

impl Drop for ContainerRunner {
    fn drop(&mut self) {
        if let Ok(h) = tokio::runtime::Handle::try_current() {
            h.spawn(self.remove());
        }
    }
}

/// The container's path for a host path inside the vault.
fn in_container(vault: &Path, host: &Path) -> String {
    match host.strip_prefix(vault) {
        Ok(rel) if !rel.as_os_str().is_empty() => format!("{VAULT_IN}/{}", rel.display()),
        _ => VAULT_IN.to_string(),
    }
}

/// Prepares the session's host folder: `claude/` (the CLI's state, owned by the
/// container's user) and `run/` (socket and prompt).
fn prepare_dirs(session_dir: &Path, uid: u32, gid: u32) -> std::io::Result<(PathBuf, PathBuf)> {
    use std::os::unix::fs::PermissionsExt;
    let (claude, run) = (session_dir.join("claude"), session_dir.join("run"));
    std::fs::create_dir_all(&claude)?;
    std::fs::create_dir_all(&run)?;
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755))?;
    if parachute_core::util::sys::ids().0 == 0 {
        parachute_core::util::sys::chown_tree(&claude, uid, gid)?;
    }
    Ok((claude, run))
}

/// Environment inside: where the model is, a placeholder key, and the quiet switches.
/// Never the credential.
fn container_env(uid_home: &str) -> Vec<String> {
    let mut env = vec![
        format!("ANTHROPIC_BASE_URL=http://127.0.0.1:{RELAY_PORT}"),
        format!("ANTHROPIC_API_KEY={PLACEHOLDER_KEY}"),
        format!("HOME={uid_home}"),
        format!("CLAUDE_CONFIG_DIR={HOME_IN}/.claude"),
        "CLAUDE_CODE_ENTRYPOINT=sdk-parachute".into(),
        "DISABLE_AUTOUPDATER=1".into(),
        "DISABLE_TELEMETRY=1".into(),
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1".into(),
        format!("PARACHUTE_RELAY_PORT={RELAY_PORT}"),
    ];
    // Tuning the owner set for the server's CLIs applies inside too.
    for k in ["CLAUDE_CODE_MAX_RETRIES", "API_TIMEOUT_MS"] {
        if let Ok(v) = std::env::var(k) {
            env.push(format!("{k}={v}"));
        }
    }
    env
}

/// The mounts: the vault read-only, its writable folders read-write over it (deeper
/// mounts come after), the CLI's state and the relay's folder.
fn binds(req: &ContainerRequest<'_>, claude_dir: &Path, run_dir: &Path) -> Vec<String> {
    let mut b = vec![format!("{}:{VAULT_IN}:ro", req.vault.display())];
    for w in &req.writable {
        b.push(format!(
            "{}:{}:rw",
            w.display(),
            in_container(&req.vault, w)
        ));
    }
    b.push(format!("{}:{HOME_IN}/.claude:rw", claude_dir.display()));
    b.push(format!("{}:{RUN_IN}:rw", run_dir.display()));
    b
}

/// The container of a sandboxed CLI: no network, read-only root, the vault read-only,
/// the session's own folders, a non-root user, the limits; removed when it stops.
fn container_body(
    image: &str,
    req: &ContainerRequest<'_>,
    (uid, gid): (u32, u32),
    prompt_in: Option<&Path>,
    (claude_dir, run_dir): (&Path, &Path),
    session: &str,
) -> ContainerCreateBody {
    let limits = &req.limits;
    let host_config = HostConfig {
        network_mode: Some("none".into()),
        readonly_rootfs: Some(true),
        tmpfs: Some(HashMap::from([
            ("/tmp".to_string(), "rw,nosuid,nodev,size=256m".to_string()),
            (
                HOME_IN.to_string(),
                format!("rw,nosuid,nodev,size=64m,uid={uid},gid={gid}"),
            ),
        ])),
        binds: Some(binds(req, claude_dir, run_dir)),
        memory: Some(limits.memory_bytes),
        memory_swap: Some(limits.memory_bytes),
        nano_cpus: Some(limits.nano_cpus),
        pids_limit: Some(limits.pids),
        cap_drop: Some(vec!["ALL".into()]),
        security_opt: Some(vec!["no-new-privileges".into()]),
        auto_remove: Some(true),
        init: Some(true),
        ..Default::default()
    };
    ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: Some(cli_args(req.spec, prompt_in)),
        env: Some(container_env(HOME_IN)),
        user: Some(format!("{uid}:{gid}")),
        working_dir: Some(in_container(&req.vault, &req.spec.cwd)),
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        open_stdin: Some(true),
        stdin_once: Some(true),
        tty: Some(false),
        network_disabled: Some(true),
        labels: Some(HashMap::from([(
            SESSION_LABEL.to_string(),
            session.to_string(),
        )])),
        host_config: Some(host_config),
        ..Default::default()
    }
}

/// Starts the CLI of `req` in a new container from `image`.
pub async fn launch(
    docker: &Docker,
    image: &str,
    req: ContainerRequest<'_>,
) -> Result<AgentProcess, SandboxError> {
    crate::engine::require_image(docker, image).await?;
    let (uid, gid) = container_user(&req.vault);
    let spec = req.spec;
    let (claude_dir, run_dir) = prepare_dirs(&req.session_dir, uid, gid)
        .map_err(|e| SandboxError::Setup(format!("the session folder: {e}")))?;
    let prompt_in = match &spec.system_prompt {
        Some(p) => {
            std::fs::write(run_dir.join("prompt.md"), p)
                .map_err(|e| SandboxError::Setup(format!("the system prompt: {e}")))?;
            Some(PathBuf::from(format!("{RUN_IN}/prompt.md")))
        }
        None => None,
    };
    let base = req
        .base_url
        .clone()
        .unwrap_or_else(|| "https://api.anthropic.com".into());
    let (kind, secret) = req.credential.clone();
    let relay = Relay::start(
        &run_dir.join("model.sock"),
        Upstream::new(&base, kind, secret),
    )
    .map_err(|e| SandboxError::Setup(format!("the model relay: {e}")))?;

    let session = match &spec.start {
        parachute_core::agent::StartMode::New(id)
        | parachute_core::agent::StartMode::Resume(id) => id.clone(),
    };
    let body = container_body(
        image,
        &req,
        (uid, gid),
        prompt_in.as_deref(),
        (&claude_dir, &run_dir),
        &session,
    );
    // Docker names allow [a-zA-Z0-9_.-]: keep a readable prefix of the id, nothing else.
    let prefix: String = session
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(8)
        .collect();
    let name = format!("parachute-{prefix}-{}", uuid::Uuid::new_v4().simple());
    let created = docker
        .create_container(
            Some(CreateContainerOptionsBuilder::default().name(&name).build()),
            body,
        )
        .await
        .map_err(|e| SandboxError::Engine(e.to_string()))?;
    let attach_opts = AttachContainerOptionsBuilder::default()
        .stdin(true)
        .stdout(true)
        .stderr(true)
        .stream(true)
        .build();
    let attached = match docker
        .attach_container(&created.id, Some(attach_opts))
        .await
    {
        Ok(a) => a,
        Err(e) => {
            let _ = docker
                .remove_container(
                    &created.id,
                    Some(RemoveContainerOptionsBuilder::default().force(true).build()),
                )
                .await;
            return Err(SandboxError::Engine(e.to_string()));
        }
    };
    let runner = ContainerRunner {
        docker: docker.clone(),
        id: created.id.clone(),
        running: Arc::new(AtomicBool::new(true)),
        _relay: relay,
    };
    if let Err(e) = docker.start_container(&created.id, None).await {
        return Err(SandboxError::Engine(e.to_string()));
    }
    tracing::info!(container = %name, session = %session, "sandbox container started");
    let (stdout, stderr) = split_output(attached.output, runner.running.clone());
    let io = AgentIo {
        stdin: Box::new(attached.input),
        stdout: Box::new(stdout),
        stderr: Some(Box::new(stderr)),
        runner: Box::new(runner),
    };
    AgentProcess::start(spec, io, None)
        .await
        .map_err(|e| SandboxError::Setup(e.to_string()))
}

/// Splits the attached output into the CLI's stdout and stderr; `running` goes false
/// when the container's output ends.
fn split_output(
    mut output: Pin<
        Box<
            dyn futures_util::Stream<
                    Item = Result<bollard::container::LogOutput, bollard::errors::Error>,
                > + Send,
        >,
    >,
    running: Arc<AtomicBool>,
) -> (tokio::io::DuplexStream, tokio::io::DuplexStream) {
    let (mut out_w, out_r) = tokio::io::duplex(1 << 16);
    let (mut err_w, err_r) = tokio::io::duplex(1 << 14);
    tokio::spawn(async move {
        while let Some(Ok(chunk)) = output.next().await {
            use bollard::container::LogOutput;
            let ok = match chunk {
                LogOutput::StdOut { message } | LogOutput::Console { message } => {
                    out_w.write_all(&message).await.is_ok()
                }
                LogOutput::StdErr { message } => {
                    let _ = err_w.write_all(&message).await;
                    true
                }
                LogOutput::StdIn { .. } => true,
            };
            if !ok {
                break;
            }
        }
        running.store(false, Ordering::Relaxed);
    });
    (out_r, err_r)
}

impl From<SandboxError> for AgentError {
    fn from(e: SandboxError) -> AgentError {
        AgentError::Sandbox(e.to_string())
    }
}
