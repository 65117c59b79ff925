//! The Docker engine: connecting (`DOCKER_HOST`, else the local socket), whether it
//! answers, and whether the sandbox image is there. Nothing is ever pulled.

use std::time::Duration;

use bollard::Docker;
use serde_json::{json, Value};

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

/// `{available, image, image_exists}`, as detailed health and `/api/sandbox/status`
/// report it.
pub async fn status(image: &str) -> Value {
    let Ok(docker) = connect() else {
        return json!({"available": false, "image": image, "image_exists": false});
    };
    let available = available(&docker).await;
    let image_exists = available && docker.inspect_image(image).await.is_ok();
    json!({"available": available, "image": image, "image_exists": image_exists})
}
