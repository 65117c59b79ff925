//! Auth: decided from the socket peer, never from headers; remote peers are
//! real hosts in a network namespace talking to the server's non-loopback address.

use serde_json::{json, Value};

use crate::support::{Dirs, NetNs, Opts, Server};

async fn lan_server(d: &Dirs, env: &[(&str, &str)]) -> Server {
    let opts = Opts {
        host: Some("0.0.0.0".into()),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    Server::start_with(d, opts).await
}

async fn create_key(s: &Server, label: &str) -> String {
    let (st, v) = s
        .send("POST", "/api/auth/keys", Some(json!({"label": label})))
        .await;
    assert_eq!(st, 200, "{v}");
    v["key"].as_str().unwrap().to_string()
}

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or(Value::Null)
}

#[tokio::test]
async fn remote_peer_needs_a_key_in_remote_mode_and_loopback_does_not() {
    let d = Dirs::new();
    let s = lan_server(&d, &[]).await;
    let ns = NetNs::create();

    // Loopback bypass.
    let (st, _) = s.get("/api/chat").await;
    assert_eq!(st, 200);

    // No key exists yet: a remote peer is still refused, and told how to get one.
    let (st, body) = ns.curl("GET", s.port, "/api/chat", &[], None);
    assert_eq!(st, 401, "{body}");
    let v = parse(&body);
    assert_eq!(v["error"], "Unauthorized");
    assert!(v["message"].as_str().unwrap().contains("/api/auth/keys"));
    assert!(v["detail"].is_string());

    // Spoofed proxy headers change nothing.
    let (st, _) = ns.curl(
        "GET",
        s.port,
        "/api/chat",
        &[
            ("X-Forwarded-For", "127.0.0.1"),
            ("X-Real-IP", "127.0.0.1"),
            ("Host", "localhost:3333"),
        ],
        None,
    );
    assert_eq!(st, 401);

    // Health and root stay open.
    assert_eq!(ns.curl("GET", s.port, "/api/health", &[], None).0, 200);
    assert_eq!(ns.curl("GET", s.port, "/", &[], None).0, 200);

    let key = create_key(&s, "phone").await;
    assert_eq!(
        ns.curl("GET", s.port, "/api/chat", &[("X-API-Key", &key)], None)
            .0,
        200
    );
    let bearer = format!("Bearer {key}");
    assert_eq!(
        ns.curl(
            "GET",
            s.port,
            "/api/chat",
            &[("Authorization", &bearer)],
            None
        )
        .0,
        200
    );
    assert_eq!(
        ns.curl(
            "GET",
            s.port,
            "/api/chat",
            &[("X-API-Key", "para_wrongwrongwrongwrongwrongwrong12")],
            None
        )
        .0,
        401
    );

    // A remote client, even with a key, can neither mint keys nor change the mode.
    let (st, body) = ns.curl(
        "POST",
        s.port,
        "/api/auth/keys",
        &[("X-API-Key", &key)],
        Some(r#"{"label":"x"}"#),
    );
    assert_eq!(st, 403, "{body}");
    let (st, _) = ns.curl(
        "PUT",
        s.port,
        "/api/auth/settings",
        &[("X-API-Key", &key)],
        Some(r#"{"require_auth":"always"}"#),
    );
    assert_eq!(st, 403);
    let (_, v) = s.get("/api/auth/settings").await;
    assert_eq!(
        (v["require_auth"].clone(), v["key_count"].clone()),
        (json!("remote"), json!(1))
    );

    // Revoked keys fail.
    let (_, list) = s.get("/api/auth/keys").await;
    let id = list["keys"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        s.send("DELETE", &format!("/api/auth/keys/{id}"), None)
            .await
            .0,
        200
    );
    assert_eq!(
        ns.curl("GET", s.port, "/api/chat", &[("X-API-Key", &key)], None)
            .0,
        401
    );
}

#[tokio::test]
async fn always_mode_with_zero_keys_admits_loopback_only() {
    let d = Dirs::new();
    let s = lan_server(&d, &[]).await;
    let ns = NetNs::create();
    let (st, v) = s
        .send(
            "PUT",
            "/api/auth/settings",
            Some(json!({"require_auth": "always"})),
        )
        .await;
    assert_eq!(
        (st, v),
        (
            200,
            json!({"require_auth": "always", "key_count": 0, "env_override": null})
        )
    );
    assert_eq!(
        s.get("/api/chat").await.0,
        200,
        "loopback may come in to create the first key"
    );
    assert_eq!(
        ns.curl("GET", s.port, "/api/chat", &[], None).0,
        401,
        "the original let everyone in here"
    );
    assert_eq!(
        ns.curl(
            "POST",
            s.port,
            "/api/auth/keys",
            &[],
            Some(r#"{"label":"x"}"#)
        )
        .0,
        401
    );

    // With a key, everyone needs one — loopback included — except /api/health and /.
    let key = create_key(&s, "first").await;
    assert_eq!(s.get("/api/chat").await.0, 401);
    assert_eq!(
        s.get("/api/auth/keys").await.0,
        401,
        "no local bypass for /api/auth in always mode"
    );
    assert_eq!(s.get("/api/health").await.0, 200);
    assert_eq!(s.get("/").await.0, 200);
    let r = s
        .client
        .get(s.url("/api/chat"))
        .header("X-API-Key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        ns.curl("GET", s.port, "/api/chat", &[("X-API-Key", &key)], None)
            .0,
        200
    );
    assert_eq!(ns.curl("GET", s.port, "/api/chat", &[], None).0, 401);

    // The mode is stored in server.yaml and survives a restart.
    drop(s);
    let s = lan_server(&d, &[]).await;
    assert_eq!(s.get("/api/chat").await.0, 401);
    let r = s
        .client
        .get(s.url("/api/auth/settings"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["require_auth"], "always");
}

#[tokio::test]
async fn loopback_with_a_foreign_host_or_origin_is_not_local() {
    let d = Dirs::new();
    let s = Server::start(&d).await;
    let r = s
        .client
        .get(s.url("/api/chat"))
        .header("Host", "evil.example:3333")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        401,
        "DNS rebinding: loopback peer but foreign Host"
    );
    let r = s
        .client
        .get(s.url("/api/chat"))
        .header("Origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "foreign Origin");
    let r = s
        .client
        .post(s.url("/api/auth/keys"))
        .header("Host", "evil.example")
        .json(&json!({"label": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = s
        .client
        .get(s.url("/api/chat"))
        .header("Origin", format!("http://127.0.0.1:{}", s.port))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the local UI's own origin is fine");
    let r = s
        .client
        .get(s.url("/api/chat"))
        .header("Host", format!("localhost:{}", s.port))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn keys_are_stored_hashed_and_last_use_is_saved() {
    let d = Dirs::new();
    let mut s = Server::start(&d).await;
    let key = create_key(&s, "laptop").await;
    let yaml = std::fs::read_to_string(d.vault.join(".parachute/server.yaml")).unwrap();
    assert!(!yaml.contains(&key), "plaintext key must never be stored");
    assert!(yaml.contains("sha256:"), "{yaml}");
    let r = s
        .client
        .get(s.url("/api/chat"))
        .header("X-API-Key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.stop().await;
    let yaml = std::fs::read_to_string(d.vault.join(".parachute/server.yaml")).unwrap();
    assert!(
        yaml.contains("last_used_at: '20")
            || yaml.contains("last_used_at: \"20")
            || yaml.contains("last_used_at: 20"),
        "{yaml}"
    );
    assert!(!s.log_text().contains(&key), "the key must not be logged");
}

#[tokio::test]
async fn auth_mode_env_override_wins_and_is_reported() {
    let d = Dirs::new();
    let s = Server::start_with(
        &d,
        Opts {
            env: vec![("AUTH_MODE".into(), "always".into())],
            ..Default::default()
        },
    )
    .await;
    create_key(&s, "k").await;
    assert_eq!(
        s.get("/api/chat").await.0,
        401,
        "AUTH_MODE=always takes effect (the original ignored it)"
    );
    drop(s);
    let s = Server::start(&d).await;
    assert_eq!(
        s.get("/api/chat").await.0,
        200,
        "server.yaml still says remote"
    );
    let s2 = Server::start_with(
        &d,
        Opts {
            env: vec![("AUTH_MODE".into(), "always".into())],
            ..Default::default()
        },
    )
    .await;
    let yaml = std::fs::read_to_string(d.vault.join(".parachute/server.yaml")).unwrap();
    assert!(yaml.contains("require_auth: remote"), "{yaml}");
    drop(s2);
    drop(s);
}

#[tokio::test]
async fn disabled_mode_is_refused_off_loopback() {
    let d = Dirs::new();
    let s = lan_server(&d, &[]).await;
    let (st, v) = s
        .send(
            "PUT",
            "/api/auth/settings",
            Some(json!({"require_auth": "disabled"})),
        )
        .await;
    assert_eq!(st, 400);
    assert!(v["detail"].as_str().unwrap().contains("loopback"), "{v}");
    drop(s);
    // And a server configured for `disabled` will not start on 0.0.0.0.
    let out = d
        .cmd()
        .args([
            "server",
            "-f",
            "--host",
            "0.0.0.0",
            "--port",
            &crate::support::free_port().to_string(),
        ])
        .env("AUTH_MODE", "disabled")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("disabled"));
    // On loopback it is allowed.
    let s = Server::start(&d).await;
    let (st, _) = s
        .send(
            "PUT",
            "/api/auth/settings",
            Some(json!({"require_auth": "disabled"})),
        )
        .await;
    assert_eq!(st, 200);
    // Without keys, only this machine's own pages may come in: a foreign Host (DNS
    // rebinding), a foreign Origin or a cross-site fetch is refused.
    assert_eq!(s.get("/api/chat").await.0, 200);
    for (h, v) in [
        ("Host", "evil.example:3333"),
        ("Origin", "http://evil.example"),
        ("Sec-Fetch-Site", "cross-site"),
    ] {
        let r = s
            .client
            .get(s.url("/api/chat"))
            .header(h, v)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{h}: {v}");
    }
}

#[tokio::test]
async fn cors_allows_only_configured_origins() {
    let d = Dirs::new();
    let s = Server::start(&d).await;
    let preflight = |origin: &'static str| {
        s.client
            .request(reqwest::Method::OPTIONS, s.url("/api/chat"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "GET")
            .send()
    };
    let ok = preflight("http://localhost:3333").await.unwrap();
    assert_eq!(
        ok.headers().get("access-control-allow-origin").unwrap(),
        "http://localhost:3333"
    );
    let evil = preflight("http://evil.example").await.unwrap();
    assert!(evil.headers().get("access-control-allow-origin").is_none());
}
