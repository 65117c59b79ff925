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
