//! `/api/sandbox/status` and `POST /api/sandbox/build`: whether `sandboxed` sessions can
//! run here, and building their image offline (the app's trust settings call build),
//! streamed as `build_progress` lines and one `build_complete` or `build_error`.

use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use serde_json::{json, Value};
use utoipa_axum::{router::OpenApiRouter, routes};

use parachute_core::app::AppState;
use parachute_sandbox::engine::SandboxStatus;

use crate::error::ApiError;

/// One build at a time, server-wide.
static BUILDING: AtomicBool = AtomicBool::new(false);

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(status))
        .routes(routes!(build))
}

/// Whether the Docker engine answers and the sandbox image exists (it is never pulled).
#[utoipa::path(get, path = "/api/sandbox/status", tag = "sandbox",
    responses((status = 200, body = SandboxStatus)))]
async fn status(State(s): State<AppState>) -> Json<SandboxStatus> {
    Json(parachute_sandbox::engine::status(&s.settings.sandbox_image).await)
}

/// Builds the sandbox image offline (a Debian root filesystem from this machine's
/// mirror and the host's `claude` binary). SSE: `{"type":"build_progress","line"}`…, then
/// `{"type":"build_complete"}` or `{"type":"build_error","error"}`.
#[utoipa::path(post, path = "/api/sandbox/build", tag = "sandbox",
    responses((status = 200, description = "SSE build progress", content_type = "text/event-stream"),
        (status = 400, description = "Docker not available")))]
async fn build(State(s): State<AppState>) -> Result<Response, ApiError> {
    let docker = parachute_sandbox::engine::connect()
        .map_err(|_| ApiError::BadRequest("Docker not available".into()))?;
    if !parachute_sandbox::engine::available(&docker).await {
        return Err(ApiError::BadRequest("Docker not available".into()));
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    if BUILDING.swap(true, Ordering::SeqCst) {
        let _ = tx.send(json!({"type": "build_error", "error": "Build already in progress"}));
    } else {
        let (image, cli) = (
            s.settings.sandbox_image.clone(),
            s.settings.claude_cli_path.clone(),
        );
        tokio::spawn(async move {
            let progress_tx = tx.clone();
            let mut progress = move |line: String| {
                let _ = progress_tx.send(json!({"type": "build_progress", "line": line}));
            };
            let result =
                parachute_sandbox::image::build_offline(&docker, &image, &cli, &mut progress).await;
            BUILDING.store(false, Ordering::SeqCst);
            let last = match result {
                Ok(()) => json!({"type": "build_complete"}),
                Err(e) => json!({"type": "build_error", "error": e.to_string()}),
            };
            let _ = tx.send(last);
        });
    }
    let events =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) });
    let stream = events.map(|ev| {
        Ok::<_, std::convert::Infallible>(axum::body::Bytes::from(format!("data: {ev}\n\n")))
    });
    let mut r = axum::body::Body::from_stream(stream).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(r)
}
