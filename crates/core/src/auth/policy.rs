//! The pure part of auth: is a request local, and does it need a key. Decided from the
//! socket peer address and never from `X-Forwarded-For`; the loopback bypass also
//! requires a loopback `Host` and no foreign `Origin` (DNS-rebinding defence).

use std::net::{IpAddr, SocketAddr};

use super::AuthMode;

/// The verdict for one request before any key is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessDecision {
    /// Let it through without a key.
    Pass,
    /// A valid key is required.
    NeedKey,
}

fn ip_is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// `localhost`, `127.x.y.z` or `[::1]`, with or without a port.
fn host_is_loopback_name(host: &str) -> bool {
    let host = host.trim().to_ascii_lowercase();
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((inner, after)) if after.is_empty() || after.starts_with(':') => inner.to_string(),
            _ => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((n, port)) if port.chars().all(|c| c.is_ascii_digit()) => n.to_string(),
            Some(_) => return false,
            None => host.clone(),
        }
    };
    name == "localhost" || name.parse::<IpAddr>().map(ip_is_loopback).unwrap_or(false)
}

/// Origins of the tray app's window (Tauri serves it from its own scheme).
const TRAY_ORIGINS: &[&str] = &[
    "tauri://localhost",
    "http://tauri.localhost",
    "https://tauri.localhost",
];

/// The origin of a page that may act as this machine: the server's own origin (its UI,
/// or the tray window loading it over HTTP) — the same scheme-less authority as the
/// `Host` the request was sent to — or the tray window. A page on another port of
/// this machine is a foreign origin: it could otherwise create keys cross-site.
fn origin_is_own(origin: &str, host: &str) -> bool {
    let origin = origin.trim();
    if TRAY_ORIGINS.iter().any(|t| origin.eq_ignore_ascii_case(t)) {
        return true;
    }
    let rest = match origin.split_once("://") {
        Some((scheme, rest))
            if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") =>
        {
            rest
        }
        _ => return false,
    };
    !rest.contains('/')
        && host_is_loopback_name(rest)
        && with_default_port(rest, origin) == with_default_port(host.trim(), origin)
}

/// `host[:port]` lower-cased, with the scheme's default port made explicit.
fn with_default_port(authority: &str, origin: &str) -> String {
    let a = authority.to_ascii_lowercase();
    let has_port = match a.rsplit_once(':') {
        Some((h, p)) => {
            !h.ends_with(':')
                && !p.is_empty()
                && p.chars().all(|c| c.is_ascii_digit())
                && (!h.starts_with('[') || h.ends_with(']'))
        }
        None => false,
    };
    if has_port {
        a
    } else if origin.to_ascii_lowercase().starts_with("https:") {
        format!("{a}:443")
    } else {
        format!("{a}:80")
    }
}

/// A request is local when its socket peer is loopback, its `Host` names loopback and
/// any `Origin` is a loopback origin. An unknown peer is remote.
pub fn is_local_request(
    peer: Option<SocketAddr>,
    host: Option<&str>,
    origin: Option<&str>,
) -> bool {
    is_local(
        peer,
        &RequestHints {
            host,
            origin,
            ..Default::default()
        },
    )
}

/// The headers locality looks at (besides the peer address).
#[derive(Debug, Default, Clone, Copy)]
pub struct RequestHints<'a> {
    /// The `Host` header, if sent.
    pub host: Option<&'a str>,
    /// The `Origin` header, if sent.
    pub origin: Option<&'a str>,
    /// `Sec-Fetch-Site`: a browser saying the request comes from another site.
    pub sec_fetch_site: Option<&'a str>,
    /// `Forwarded` / `X-Forwarded-For` / `X-Real-IP` present: a proxy relayed it, so
    /// the loopback peer is the proxy, not the client.
    pub proxied: bool,
}

/// Locality with every hint: headers can only make a request *less* local.
pub fn is_local(peer: Option<SocketAddr>, h: &RequestHints) -> bool {
    // `Sec-Fetch-Site`: only the server's own pages (`same-origin`) and requests no
    // page started (`none`: typed URL, curl-like clients) count; `same-site` is another
    // port of this machine, `cross-site` anything else.
    if h.proxied
        || h.sec_fetch_site.is_some_and(|s| {
            !s.eq_ignore_ascii_case("same-origin") && !s.eq_ignore_ascii_case("none")
        })
    {
        return false;
    }
    let (host, origin) = (h.host, h.origin);
    let Some(peer) = peer else { return false };
    if !ip_is_loopback(peer.ip()) {
        return false;
    }
    let Some(host) = host else { return false };
    if !host_is_loopback_name(host) {
        return false;
    }
    origin.is_none_or(|o| origin_is_own(o, host))
}

/// Whether a request to `path` needs a key under `mode`.
pub fn requires_key(mode: AuthMode, path: &str, local: bool, key_count: usize) -> AccessDecision {
    let under_api = path == "/api" || path.starts_with("/api/");
    // The web UI's pages show what the API shows, so they are guarded alike; only its
    // static assets (stylesheet, scripts, icon: nothing about this machine) are public,
    // so the key prompt can load them.
    let ui_page = path == "/ui" || (path.starts_with("/ui/") && !path.starts_with("/ui/assets/"));
    // The MCP server reaches what the API reaches.
    let mcp = path == "/mcp" || path.starts_with("/mcp/");
    if path == "/api/health" || !(under_api || ui_page || mcp) {
        return AccessDecision::Pass;
    }
    // The MCP server over HTTP answers only a key or a session's grant, even on this
    // machine (where `parachute mcp` serves it over stdio): a program that can reach
    // loopback gets nothing from it without one.
    if mcp && mode != AuthMode::Disabled {
        return AccessDecision::NeedKey;
    }
    match mode {
        // No keys exist in this mode, so only this machine (checked as for the loopback
        // bypass: Host, Origin) may come in; the server listens on loopback anyway.
        AuthMode::Disabled if local => AccessDecision::Pass,
        AuthMode::Remote if local => AccessDecision::Pass,
        // `always` with no key yet: only this machine may come in (to create the first).
        AuthMode::Always if key_count == 0 && local => AccessDecision::Pass,
        _ => AccessDecision::NeedKey,
    }
}

/// The key a client presented: `X-API-Key`, else `Authorization: Bearer …`.
pub fn extract_presented_key<'a>(
    x_api_key: Option<&'a str>,
    authorization: Option<&'a str>,
) -> Option<&'a str> {
    if let Some(k) = x_api_key.map(str::trim).filter(|k| !k.is_empty()) {
        return Some(k);
    }
    let auth = authorization?.trim();
    let (scheme, token) = auth.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> Option<SocketAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn locality_table() {
        type Case<'a> = (Option<SocketAddr>, Option<&'a str>, Option<&'a str>, bool);
        let cases: &[Case] = &[
            (sa("127.0.0.1:5000"), Some("localhost:3333"), None, true),
            (sa("127.0.0.1:5000"), Some("127.0.0.1:3333"), None, true),
            (sa("[::1]:5000"), Some("[::1]:3333"), None, true),
            (sa("[::ffff:127.0.0.1]:5000"), Some("localhost"), None, true),
            (
                sa("127.0.0.1:5000"),
                Some("localhost:3333"),
                Some("http://localhost:3333"),
                true,
            ),
            (sa("127.0.0.1:5000"), Some("evil.example:3333"), None, false),
            (
                sa("127.0.0.1:5000"),
                Some("localhost:3333"),
                Some("http://evil.example"),
                false,
            ),
            (
                sa("127.0.0.1:5000"),
                Some("localhost:3333"),
                Some("null"),
                false,
            ),
            (
                sa("127.0.0.1:5000"),
                Some("localhost.evil.example"),
                None,
                false,
            ),
            (sa("127.0.0.1:5000"), Some("[::1]evil"), None, false),
            // Another port of this machine is another origin (cross-site requests).
            (
                sa("127.0.0.1:5000"),
                Some("127.0.0.1:3333"),
                Some("http://127.0.0.1:8080"),
                false,
            ),
            (
                sa("127.0.0.1:5000"),
                Some("localhost:3333"),
                Some("http://127.0.0.1:3333"),
                false,
            ),
            (
                sa("127.0.0.1:5000"),
                Some("localhost"),
                Some("http://localhost:80"),
                true,
            ),
            (
                sa("127.0.0.1:5000"),
                Some("[::1]:3333"),
                Some("http://[::1]:3333"),
                true,
            ),
            (
                sa("127.0.0.1:5000"),
                Some("127.0.0.1:3333"),
                Some("tauri://localhost"),
                true,
            ),
            (
                sa("127.0.0.1:5000"),
                Some("127.0.0.1:3333"),
                Some("http://tauri.localhost"),
                true,
            ),
            (
                sa("127.0.0.1:5000"),
                Some("127.0.0.1:3333"),
                Some("tauri://evil"),
                false,
            ),
            (sa("127.0.0.1:5000"), None, None, false),
            (sa("10.0.0.2:5000"), Some("localhost:3333"), None, false),
            (sa("192.168.1.5:5000"), Some("127.0.0.1"), None, false),
            (None, Some("localhost"), None, false),
        ];
        for (peer, host, origin, want) in cases {
            assert_eq!(
                is_local_request(*peer, *host, *origin),
                *want,
                "{peer:?} {host:?} {origin:?}"
            );
        }
    }

    #[test]
    fn hints_only_make_requests_less_local() {
        let lo = sa("127.0.0.1:5000");
        let base = RequestHints {
            host: Some("localhost:3333"),
            ..Default::default()
        };
        assert!(is_local(lo, &base));
        assert!(!is_local(
            lo,
            &RequestHints {
                proxied: true,
                ..base
            }
        ));
        assert!(!is_local(
            lo,
            &RequestHints {
                sec_fetch_site: Some("cross-site"),
                ..base
            }
        ));
        assert!(is_local(
            lo,
            &RequestHints {
                sec_fetch_site: Some("same-origin"),
                ..base
            }
        ));
        for other in ["same-site", "cross-site", "SAME-SITE", "bogus"] {
            assert!(!is_local(
                lo,
                &RequestHints {
                    sec_fetch_site: Some(other),
                    ..base
                }
            ));
        }
        assert!(!is_local(
            sa("10.0.0.2:1"),
            &RequestHints {
                sec_fetch_site: Some("none"),
                ..base
            }
        ));
    }

    #[test]
    fn key_requirement_table() {
        use AccessDecision::*;
        use AuthMode::*;
        let cases = [
            (Remote, "/api/chat", true, 0, Pass),
            (Remote, "/api/chat", false, 0, NeedKey),
            (Remote, "/api/chat", false, 2, NeedKey),
            (Always, "/api/chat", true, 0, Pass),
            (Always, "/api/chat", false, 0, NeedKey),
            (Always, "/api/chat", true, 1, NeedKey),
            (Always, "/api/auth/keys", true, 1, NeedKey),
            (Always, "/api/health", false, 1, Pass),
            (Always, "/", false, 1, Pass),
            (Always, "/api", false, 1, NeedKey),
            (Always, "/apix", false, 1, Pass),
            (Disabled, "/api/chat", true, 0, Pass),
            (Disabled, "/api/chat", false, 0, NeedKey),
            // The UI's pages are guarded like the API; its assets are not.
            (Remote, "/ui/", false, 1, NeedKey),
            (Remote, "/ui/chat", true, 1, Pass),
            (Always, "/ui", false, 1, NeedKey),
            (Always, "/ui/keys", true, 1, NeedKey),
            (Always, "/ui/assets/app.js", false, 1, Pass),
            (Remote, "/uix", false, 1, Pass),
            // So is the MCP server.
            (Remote, "/mcp", false, 1, NeedKey),
            (Remote, "/mcp", true, 1, NeedKey),
            (Remote, "/mcp", true, 0, NeedKey),
            (Disabled, "/mcp", true, 0, Pass),
            (Always, "/mcp", true, 1, NeedKey),
            (Remote, "/mcpx", false, 1, Pass),
        ];
        for (mode, path, local, n, want) in cases {
            assert_eq!(
                requires_key(mode, path, local, n),
                want,
                "{mode:?} {path} {local} {n}"
            );
        }
    }

    #[test]
    fn presented_key_headers() {
        assert_eq!(extract_presented_key(Some("para_x"), None), Some("para_x"));
        assert_eq!(
            extract_presented_key(None, Some("Bearer para_y")),
            Some("para_y")
        );
        assert_eq!(
            extract_presented_key(None, Some("bearer  para_y ")),
            Some("para_y")
        );
        assert_eq!(extract_presented_key(None, Some("Basic abc")), None);
        assert_eq!(extract_presented_key(Some(""), Some("Bearer z")), Some("z"));
    }
}
