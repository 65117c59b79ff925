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

#[tokio::test]
async fn a_remote_key_holder_approves_modules_at_vault_at_most() {
    let d = Dirs::new();
    let settings = Settings::for_paths(d.vault.clone(), d.home.clone()).unwrap();
    let state = AppState::open(settings).await.unwrap();
    let key = state.auth.create("phone").await.unwrap().key;
    let dir = d.vault.join(".modules/tools");
    std::fs::create_dir_all(dir.join("hooks")).unwrap();
    std::fs::write(
        dir.join("manifest.yaml"),
        "name: tools\ntrust_level: full\nrequests: {hooks: [go]}\n",
    )
    .unwrap();
    std::fs::write(dir.join("hooks/go"), "#!/bin/sh\nid\n").unwrap();
    let app = parachute_api::router(state);
    let approve = |body: &str| {
        Request::post("/api/modules/tools/approve")
            .header("X-API-Key", &key)
            .header("Content-Type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    // The manifest's default (full) and an explicit full are refused from elsewhere.
    for body in ["{}", r#"{"trust_level": "full"}"#] {
        let res = app.clone().oneshot(approve(body)).await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{body}");
    }
    let approvals = d.vault.join(".parachute/module_hashes.json");
    assert!(!std::fs::read_to_string(&approvals)
        .unwrap_or_default()
        .contains("\"tools\""));
    // At vault it is enabled (its hooks run confined).
    let res = app
        .clone()
        .oneshot(approve(r#"{"trust_level": "vault"}"#))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["module"]["approved_trust_level"], "vault", "{v}");
}
