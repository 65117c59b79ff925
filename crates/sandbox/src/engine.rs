//! The Docker engine: connecting (`DOCKER_HOST`, else the local socket), whether it
//! answers, and whether the sandbox image is there. Nothing is ever pulled.

use std::time::Duration;

use bollard::Docker;
use serde::Serialize;
use utoipa::ToSchema;

use crate::SandboxError;

/// A client for the local engine (`DOCKER_HOST=unix://…`, else `/var/run/docker.sock`).
pub fn connect() -> Result<Docker, SandboxError> {
    Docker::connect_with_local_defaults().map_err(|e| SandboxError::Unavailable(e.to_string()))
}

/// Whether the engine answers within two seconds.
pub async fn available(docker: &Docker) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(2), docker.ping()).await,
        Ok(Ok(_))
    )
}

/// Fails clearly when the engine does not answer or `image` is missing.
pub async fn require_image(docker: &Docker, image: &str) -> Result<(), SandboxError> {
    if !available(docker).await {
        return Err(SandboxError::Unavailable(
            "no Docker engine answers (start Docker, or set DOCKER_HOST)".into(),
        ));
    }
    match docker.inspect_image(image).await {
        Ok(_) => Ok(()),
        Err(_) => Err(SandboxError::ImageMissing(image.to_string())),
    }
}

/// Whether sandboxed sessions can run here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SandboxStatus {
    /// The Docker engine answers.
    pub available: bool,
    /// The sandbox image's name.
    pub image: String,
    /// The image exists locally.
    pub image_exists: bool,
}

impl SandboxStatus {
    /// Both the engine answers and the image is there: sandboxed sessions can run.
    pub fn ready(&self) -> bool {
        self.available && self.image_exists
    }
}

/// Whether the engine answers and `image` exists (it is never pulled).
pub async fn status(image: &str) -> SandboxStatus {
    let Ok(docker) = connect() else {
        return SandboxStatus {
            available: false,
            image: image.to_string(),
            image_exists: false,
        };
    };
    let available = available(&docker).await;
    let image_exists = available && docker.inspect_image(image).await.is_ok();
    SandboxStatus {
        available,
        image: image.to_string(),
        image_exists,
    }
}
