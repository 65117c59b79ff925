//! The auth middleware: decides locality from the socket peer (never from headers
//! such as `X-Forwarded-For`), applies the mode, and checks the presented key. Handlers
//! that must be local-only (key creation, mode change) read the [`Caller`] it leaves.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use parachute_core::app::AppState;
use parachute_core::auth::{
    extract_presented_key, is_local, requires_key, AccessDecision, RequestHints,
};

/// Who is calling, as decided by the middleware.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Loopback peer, loopback `Host`, no foreign `Origin`.
    pub local: bool,
    /// The id of the key presented, if one was valid.
    pub key_id: Option<String>,
}

fn header_str<'a>(h: &'a HeaderMap, name: &header::HeaderName) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// A CORS preflight from an origin CORS allows: answered by the CORS layer without a
/// key, since browsers never send credentials on a preflight.
fn is_allowed_preflight(req: &Request, allowed: &[String]) -> bool {
    req.method() == axum::http::Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        && header_str(req.headers(), &header::ORIGIN)
            .is_some_and(|o| allowed.iter().any(|a| a.eq_ignore_ascii_case(o)))
}

/// The auth middleware: lets allowed CORS preflights through, decides locality, applies
/// the auth mode, checks the presented key, and leaves a [`Caller`] for the handlers.
pub async fn require_auth(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if is_allowed_preflight(&req, &state.settings.cors_origins) {
        return next.run(req).await;
    }
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let headers = req.headers();
    let hints = RequestHints {
        host: header_str(headers, &header::HOST),
        origin: header_str(headers, &header::ORIGIN),
        sec_fetch_site: headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()),
        proxied: ["forwarded", "x-forwarded-for", "x-real-ip"]
            .iter()
            .any(|h| headers.contains_key(*h)),
    };
    let local = is_local(peer, &hints);
    let path = req.uri().path().to_string();
    let mode = state.auth.mode();
    let presented = extract_presented_key(
        header_str(headers, &header::HeaderName::from_static("x-api-key")),
        header_str(headers, &header::AUTHORIZATION),
    );
    // A session's CLI calls the MCP server with the grant it was handed (never a key).
    let is_mcp = path == "/mcp" || path.starts_with("/mcp/");
    let grant = presented
        .filter(|_| is_mcp)
        .and_then(|t| state.mcp_grants.verify(t));
    // A grant that does not verify (another server's, a forged one) is refused outright.
    if is_mcp && grant.is_none() && presented.is_some_and(|t| t.starts_with("pmcp.")) {
        tracing::info!(peer = ?peer, "refused an MCP call with an invalid grant");
        return ApiError::Unauthorized.into_response();
    }
    if let Some(g) = grant {
        tracing::debug!(session_id = %g.session_id, level = %g.level, "MCP call with a session grant");
        req.extensions_mut().insert(g);
        req.extensions_mut().insert(Caller {
            local,
            key_id: None,
        });
        return next.run(req).await;
    }
    let key_id = presented.and_then(|k| state.auth.verify(k));
    if requires_key(mode, &path, local, state.auth.key_count()) == AccessDecision::NeedKey
        && key_id.is_none()
    {
        tracing::info!(peer = ?peer, path = %path, mode = mode.as_str(), "refused a request without a valid API key");
        // A browser opening a UI page gets the key prompt (its script then loads the page
        // with the key); every other client gets the API's JSON answer.
        if path.starts_with("/ui") && parachute_ui::wants_html(req.headers()) {
            return parachute_ui::key_prompt();
        }
        return ApiError::Unauthorized.into_response();
    }
    if let Some(id) = &key_id {
        tracing::debug!(key_id = %id, path = %path, "request with an API key");
    }
    req.extensions_mut().insert(Caller { local, key_id });
    next.run(req).await
}
