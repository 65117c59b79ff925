//! Parachute's `sandboxed` trust level: the Claude CLI runs inside a Docker container
//! driven with bollard — no network, a read-only root filesystem, the vault mounted
//! read-only, a non-root user, memory/CPU/process limits, a wall-clock limit, and no
//! credential inside. The model is reached through a relay on a unix socket that adds
//! the credential outside ([`relay`]). The image is built offline from the machine's
//! Debian mirror and the host's own `claude` binary ([`image`]); nothing is pulled.

#![warn(missing_docs)]

pub mod container;
pub mod engine;
pub mod image;
pub mod relay;

use std::sync::Arc;

use parachute_core::agent::{ContainerLauncher, ContainerRequest, LaunchFuture};

/// Why a sandboxed CLI could not start, or an image could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The Docker engine does not answer.
    #[error("Docker is not available: {0}")]
    Unavailable(String),
    /// The sandbox image is not there (it is never pulled).
    #[error("the sandbox image {0} is missing: build it with `parachute sandbox build` (nothing is pulled)")]
    ImageMissing(String),
    /// The engine refused a request.
    #[error("Docker: {0}")]
    Engine(String),
    /// Preparing the session's files or relay failed.
    #[error("cannot prepare the sandbox: {0}")]
    Setup(String),
    /// Building the image failed.
    #[error("cannot build the sandbox image: {0}")]
    Build(String),
}

/// The container launcher the chat service uses for `sandboxed` turns.
pub struct DockerSandbox {
    image: String,
}

impl DockerSandbox {
    /// A launcher for containers of `image`.
    pub fn new(image: &str) -> Arc<DockerSandbox> {
        Arc::new(DockerSandbox {
            image: image.to_string(),
        })
    }
}

impl ContainerLauncher for DockerSandbox {
    fn launch<'a>(&'a self, req: ContainerRequest<'a>) -> LaunchFuture<'a> {
        Box::pin(async move {
            // The relay socket is bind-mounted into the container: that needs the
            // engine on this kernel. Docker Desktop's VM cannot see it; fail closed.
            if !cfg!(target_os = "linux") {
                return Err(SandboxError::Unavailable(
                    "sandboxed sessions need a Linux Docker host (the model relay's socket \
                     cannot reach Docker Desktop's VM yet)"
                        .into(),
                )
                .into());
            }
            let docker = engine::connect()?;
            Ok(container::launch(&docker, &self.image, req).await?)
        })
    }
}
