//! The router driven in-process (no socket), where a connection's peer address is
//! unknown: such a request must be treated as remote.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use parachute_core::config::Settings;
use parachute_core::AppState;
use tower::ServiceExt;

use crate::support::Dirs;

#[tokio::test]
async fn an_unknown_peer_address_is_treated_as_remote() {
    let d = Dirs::new();
    let settings = Settings::for_paths(d.vault.clone(), d.home.clone()).unwrap();
    let state = AppState::open(settings).await.unwrap();
    let app = parachute_api::router(state);
    // No ConnectInfo: the peer is unknown, even with a loopback Host header.
    let req = Request::get("/api/chat")
        .header("Host", "localhost:3333")
        .body(Body::empty())
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let req = Request::get("/api/health").body(Body::empty()).unwrap();
    assert_eq!(app.oneshot(req).await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn a_remote_key_holder_cannot_add_or_start_mcp_servers() {
    let d = Dirs::new();
    let settings = Settings::for_paths(d.vault.clone(), d.home.clone()).unwrap();
    let state = AppState::open(settings).await.unwrap();
    let key = state.auth.create("phone").await.unwrap().key;
    std::fs::write(d.vault.join(".mcp.json"), r#"{"x": {"command": "true"}}"#).unwrap();
    let app = parachute_api::router(state);
    let call = |method: &str, path: &str, body: &str| {
        Request::builder()
            .method(method)
            .uri(path)
            .header("X-API-Key", &key)
            .header("Content-Type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    // Reading is fine for a key holder; running or changing programs is not.
    let res = app
        .clone()
        .oneshot(call("GET", "/api/mcps", ""))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    for (method, path, body) in [
        (
            "POST",
            "/api/mcps",
            r#"{"name": "evil", "config": {"command": "sh", "args": ["-c", "id"]}}"#,
        ),
        ("DELETE", "/api/mcps/x", ""),
        ("POST", "/api/mcps/x/test", ""),
        ("GET", "/api/mcps/x/tools", ""),
    ] {
        let res = app.clone().oneshot(call(method, path, body)).await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{method} {path}");
    }
    let file = std::fs::read_to_string(d.vault.join(".mcp.json")).unwrap();
    assert!(!file.contains("evil") && file.contains("\"x\""), "{file}");
}
