//! The model relay of a sandboxed session. The container has no network and no
//! credential: its CLI talks to `127.0.0.1` inside, where the entry program forwards to
//! a unix socket mounted from the host. Here, on that socket, each request is checked —
//! only `POST /v1/messages` and its `count_tokens` call pass — its credential headers
//! are replaced by the real credential, and it goes on to the configured model API with
//! the answer streamed back. Nothing else leaves the container.

use std::convert::Infallible;
use std::path::Path;

use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::{combinators::BoxBody, BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use parachute_core::config::secrets::{Secret, TokenKind};
use tokio::net::UnixListener;

/// The largest request body forwarded (a long conversation with images stays below).
const MAX_BODY: usize = 64 << 20;

/// The beta flag the model API wants with an OAuth token.
const OAUTH_BETA: &str = "oauth-2025-04-20";

/// Where model requests go, and the credential they get there.
#[derive(Clone)]
pub struct Upstream {
    /// The model API's base URL, e.g. `https://api.anthropic.com`.
    pub base_url: String,
    /// How the credential is sent.
    pub kind: TokenKind,
    /// The credential.
    pub secret: Secret,
    client: reqwest::Client,
}

impl Upstream {
    /// An upstream at `base_url` (no trailing slash needed) with this credential.
    pub fn new(base_url: &str, kind: TokenKind, secret: Secret) -> Upstream {
        Upstream {
            base_url: base_url.trim_end_matches('/').to_string(),
            kind,
            secret,
            client: reqwest::Client::new(),
        }
    }
}

/// A running relay; dropping it stops it.
pub struct Relay {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Relay {
    /// Listens on `socket` (replacing a stale one), readable and writable by the
    /// container's user, and serves until dropped.
    pub fn start(socket: &Path, upstream: Upstream) -> std::io::Result<Relay> {
        let _ = std::fs::remove_file(socket);
        let listener = UnixListener::bind(socket)?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o666))?;
        }
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                let up = upstream.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let up = up.clone();
                        async move { Ok::<_, Infallible>(forward(req, &up).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Relay { task })
    }
}

type Body = BoxBody<Bytes, std::io::Error>;

fn refuse(status: StatusCode, kind: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({"type": "error", "error": {"type": kind, "message": message}});
    let mut r = Response::new(
        Full::new(Bytes::from(body.to_string()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

/// Whether a request may leave the container: model calls only.
pub fn allowed(method: &hyper::Method, path: &str) -> bool {
    method == hyper::Method::POST && matches!(path, "/v1/messages" | "/v1/messages/count_tokens")
}

/// Request headers never forwarded: hop-by-hop, and any credential from inside.
fn dropped_header(name: &str) -> bool {
    matches!(
        name,
        "host"
            | "content-length"
            | "connection"
            | "transfer-encoding"
            | "keep-alive"
            | "upgrade"
            | "proxy-authorization"
            | "authorization"
            | "x-api-key"
            | "cookie"
    )
}

async fn forward(req: Request<Incoming>, up: &Upstream) -> Response<Body> {
    let (parts, body) = req.into_parts();
    if !allowed(&parts.method, parts.uri.path()) {
        tracing::warn!(method = %parts.method, path = parts.uri.path(), "sandbox relay refused a request");
        return refuse(
            StatusCode::FORBIDDEN,
            "permission_error",
            "the sandbox relay forwards only model requests",
        );
    }
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request_too_large",
                "request body too large",
            )
        }
    };
    let query = parts
        .uri
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let url = format!("{}{}{}", up.base_url, parts.uri.path(), query);
    let mut out = up.client.post(url).body(body);
    let mut beta = None;
    for (name, value) in &parts.headers {
        let n = name.as_str();
        if dropped_header(n) {
            continue;
        }
        if n == "anthropic-beta" {
            beta = value.to_str().ok().map(str::to_string);
            continue;
        }
        out = out.header(name, value);
    }
    match up.kind {
        TokenKind::ApiKey => {
            out = out.header("x-api-key", up.secret.expose());
            if let Some(b) = beta {
                out = out.header("anthropic-beta", b);
            }
        }
        TokenKind::OAuth => {
            out = out.bearer_auth(up.secret.expose());
            let b = match beta {
                Some(b) if b.split(',').any(|x| x.trim() == OAUTH_BETA) => b,
                Some(b) => format!("{b},{OAUTH_BETA}"),
                None => OAUTH_BETA.to_string(),
            };
            out = out.header("anthropic-beta", b);
        }
    }
    let res = match out.send().await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e.without_url(), "sandbox relay could not reach the model API");
            return refuse(
                StatusCode::BAD_GATEWAY,
                "api_error",
                "the model API could not be reached",
            );
        }
    };
    let mut resp = Response::builder().status(res.status().as_u16());
    for (name, value) in res.headers() {
        if !matches!(
            name.as_str(),
            "content-length" | "transfer-encoding" | "connection"
        ) {
            resp = resp.header(name, value);
        }
    }
    let stream = res
        .bytes_stream()
        .map_ok(Frame::data)
        .map_err(std::io::Error::other);
    resp.body(BodyExt::boxed(StreamBody::new(stream)))
        .unwrap_or_else(|_| refuse(StatusCode::BAD_GATEWAY, "api_error", "bad upstream answer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_model_calls_pass() {
        assert!(allowed(&hyper::Method::POST, "/v1/messages"));
        assert!(allowed(&hyper::Method::POST, "/v1/messages/count_tokens"));
        assert!(!allowed(&hyper::Method::GET, "/v1/messages"));
        assert!(!allowed(&hyper::Method::POST, "/v1/files"));
        assert!(!allowed(&hyper::Method::POST, "/api/oauth/usage"));
        assert!(dropped_header("x-api-key") && dropped_header("authorization"));
    }
}
