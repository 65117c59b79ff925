//! Contract shapes: keys, casing, status
//! codes and ordering, as the mobile app reads them.

use serde_json::{json, Value};

use crate::support::{seed_sessions, Dirs, Server};

const SESSION_KEYS: &[&str] = &[
    "id",
    "title",
    "module",
    "source",
    "workingDirectory",
    "vaultRoot",
    "model",
    "messageCount",
    "archived",
    "createdAt",
    "lastAccessed",
    "continuedFrom",
    "agentType",
    "trustLevel",
    "linkedBotPlatform",
    "linkedBotChatId",
    "linkedBotChatType",
    "workspaceId",
    "metadata",
];

fn keys(v: &Value) -> Vec<String> {
    v.as_object().expect("an object").keys().cloned().collect()
}

fn assert_session_shape(s: &Value) {
    let k = keys(s);
    assert_eq!(
        k,
        SESSION_KEYS
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
        "SessionJSON keys in order"
    );
    assert!(s["archived"].is_boolean());
    assert!(s["messageCount"].is_i64());
    for t in ["createdAt", "lastAccessed"] {
        let ts = s[t].as_str().unwrap();
        assert!(ts.ends_with('Z') && ts.len() == 27, "{t} = {ts}");
    }
}

#[tokio::test]
async fn root_and_basic_health_match_the_contract() {
    let d = Dirs::new();
    let s = Server::start(&d).await;
    let (st, root) = s.get("/").await;
    assert_eq!(st, 200);
    assert_eq!(
        root,
        json!({"name": "Parachute Computer", "version": "0.1.0", "status": "running"})
    );
    let (st, h) = s.get("/api/health").await;
    assert_eq!(st, 200);
    assert_eq!(keys(&h), ["status", "timestamp", "version"]);
    assert_eq!(h["status"], "ok");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!(
        (h["timestamp"].as_i64().unwrap() - now_ms).abs() < 60_000,
        "timestamp is epoch milliseconds"
    );
}

#[tokio::test]
async fn detailed_health_has_every_key_and_probes_docker() {
    let d = Dirs::new();
    let s = Server::start(&d).await;
    let (st, h) = s.get("/api/health?detailed=true").await;
    assert_eq!(st, 200);
    for k in [
        "status",
        "timestamp",
        "version",
        "vault",
        "modules",
        "docker",
        "bots",
        "uptime",
    ] {
        assert!(h.get(k).is_some(), "missing {k}: {h}");
    }
    assert_eq!(h["vault"]["path"], d.vault.display().to_string());
    assert_eq!(h["vault"]["status"], "ok");
    assert!(h["modules"].is_array());
    assert_eq!(h["docker"]["image"], "parachute-sandbox:latest");
    assert!(h["uptime"].is_f64());
    assert_eq!(
        h["bots"],
        json!({"telegram": {"running": false}, "discord": {"running": false}})
    );
    // Honest probe: with no Docker socket, Docker cannot be available.
    let sock = std::path::Path::new("/var/run/docker.sock");
    if !sock.exists() && std::env::var("DOCKER_HOST").is_err() {
        assert_eq!(h["docker"]["available"], false);
    }
    assert!(h["docker"]["available"].is_boolean());
}

#[tokio::test]
async fn session_list_is_ordered_paged_and_filtered() {
    let d = Dirs::new();
    let ids = seed_sessions(&d, 6, |i, s| {
        if i == 1 {
            s.module = "daily".into();
        }
        if i == 2 {
            s.workspace_id = Some("research".into());
        }
        if i == 3 {
            s.title = Some("Budget planning".into());
        }
    })
    .await;
    let s = Server::start(&d).await;
    let (st, v) = s.get("/api/chat").await;
    assert_eq!(st, 200);
    assert_eq!(keys(&v), ["sessions"]);
    let list = v["sessions"].as_array().unwrap();
    assert_eq!(list.len(), 6);
    for item in list {
        assert_session_shape(item);
    }
    // Most recently used first.
    let got: Vec<&str> = list.iter().map(|x| x["id"].as_str().unwrap()).collect();
    let want: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    assert_eq!(got, want);
    // offset is honoured (the original ignored it).
    let (_, page) = s.get("/api/chat?limit=2&offset=2").await;
    let page: Vec<&str> = page["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert_eq!(page, want[2..4].to_vec());
    let (_, m) = s.get("/api/chat?module=daily").await;
    assert_eq!(m["sessions"][0]["id"], ids[1].as_str());
    assert_eq!(m["sessions"].as_array().unwrap().len(), 1);
    let (_, w) = s.get("/api/chat?workspaceId=research").await;
    assert_eq!(w["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(w["sessions"][0]["workspaceId"], "research");
    let (_, q) = s.get("/api/chat?search=budget").await;
    assert_eq!(q["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(q["sessions"][0]["title"], "Budget planning");
    // LIKE wildcards in the search text are literal.
    let (_, pct) = s.get("/api/chat?search=%25").await;
    assert_eq!(pct["sessions"].as_array().unwrap().len(), 0);
    let (_, none) = s.get("/api/chat?archived=true").await;
    assert_eq!(none, json!({"sessions": []}));
}

#[tokio::test]
async fn stats_get_delete_archive_and_unarchive() {
    let d = Dirs::new();
    let ids = seed_sessions(&d, 3, |i, s| {
        if i == 2 {
            s.module = "daily".into();
        }
    })
    .await;
    let s = Server::start(&d).await;
    let (st, stats) = s.get("/api/chat/stats").await;
    assert_eq!(st, 200);
    assert_eq!(
        stats,
        json!({"total": 3, "active": 3, "archived": 0, "by_module": {"chat": 2, "daily": 1, "build": 0}})
    );

    let (st, one) = s.get(&format!("/api/chat/{}", ids[0])).await;
    assert_eq!(st, 200);
    let mut k = SESSION_KEYS
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>();
    k.push("messages".into());
    assert_eq!(keys(&one), k);
    assert!(one["messages"].is_array());

    let (st, a) = s
        .send("POST", &format!("/api/chat/{}/archive", ids[0]), None)
        .await;
    assert_eq!(st, 200);
    assert_eq!(keys(&a), ["success", "session"]);
    assert_eq!(a["success"], true);
    assert_eq!(a["session"]["archived"], true);
    assert_session_shape(&a["session"]);
    let (_, archived) = s.get("/api/chat?archived=true").await;
    assert_eq!(archived["sessions"][0]["id"], ids[0].as_str());
    let (_, stats) = s.get("/api/chat/stats").await;
    assert_eq!(
        (stats["active"].as_i64(), stats["archived"].as_i64()),
        (Some(2), Some(1))
    );
    let (st, u) = s
        .send("POST", &format!("/api/chat/{}/unarchive", ids[0]), None)
        .await;
    assert_eq!(st, 200);
    assert_eq!(u["session"]["archived"], false);

    let (st, del) = s
        .send("DELETE", &format!("/api/chat/{}", ids[1]), None)
        .await;
    assert_eq!(st, 200);
    assert_eq!(del, json!({"success": true, "deleted": ids[1]}));
    for (m, p) in [
        ("GET", format!("/api/chat/{}", ids[1])),
        ("DELETE", format!("/api/chat/{}", ids[1])),
    ] {
        let (st, body) = s.send(m, &p, None).await;
        assert_eq!(
            (st, body),
            (404, json!({"detail": "Session not found"})),
            "{m} {p}"
        );
    }
    let (st, body) = s
        .send(
            "POST",
            "/api/chat/00000000-0000-0000-0000-000000000000/archive",
            None,
        )
        .await;
    assert_eq!((st, body), (404, json!({"detail": "Session not found"})));
}

#[tokio::test]
async fn literal_routes_win_over_session_ids() {
    let d = Dirs::new();
    seed_sessions(&d, 1, |_, s| s.id = "stats".into()).await;
    let s = Server::start(&d).await;
    let (st, v) = s.get("/api/chat/stats").await;
    assert_eq!(st, 200);
    assert_eq!(v["total"], 1, "stats, not the session called `stats`: {v}");
}

#[tokio::test]
async fn patch_config_updates_fields_and_metadata() {
    let d = Dirs::new();
    let ids = seed_sessions(&d, 1, |_, _| {}).await;
    let s = Server::start(&d).await;
    let path = format!("/api/chat/{}/config", ids[0]);
    let (st, v) = s
        .send(
            "PATCH",
            &path,
            Some(json!({"module": "chat", "responseMode": "all_messages"})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(keys(&v), ["success", "session"]);
    assert_eq!(
        v["session"]["metadata"],
        json!({"bot_settings": {"response_mode": "all_messages"}})
    );
    let before = v["session"]["lastAccessed"].as_str().unwrap().to_string();
    assert!(
        before.as_str() > "2026-01-01T00:00:00.000000Z",
        "lastAccessed bumped"
    );

    let (st, v) = s
        .send("PATCH", &path, Some(json!({"trustLevel": "vault", "configOverrides": {"system_prompt": "hi"}, "workspaceId": "ws-1"})))
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["session"]["trustLevel"], "vault");
    assert_eq!(v["session"]["workspaceId"], "ws-1");
    assert_eq!(
        v["session"]["metadata"]["config_overrides"],
        json!({"system_prompt": "hi"})
    );
    assert_eq!(
        v["session"]["metadata"]["bot_settings"]["response_mode"], "all_messages",
        "merged, not replaced"
    );
    // snake_case is accepted too; an empty workspaceId clears it.
    let (st, v) = s
        .send(
            "PATCH",
            &path,
            Some(json!({"trust_level": "sandboxed", "workspaceId": ""})),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(v["session"]["trustLevel"], "sandboxed");
    assert_eq!(v["session"]["workspaceId"], Value::Null);

    let (st, v) = s
        .send("PATCH", &path, Some(json!({"trustLevel": "root"})))
        .await;
    assert_eq!((st, v), (400, json!({"detail": "Invalid trust level"})));
    let (st, v) = s.send("PATCH", &path, Some(json!({}))).await;
    assert_eq!((st, v), (400, json!({"detail": "No fields to update"})));
    let (st, v) = s
        .send(
            "PATCH",
            "/api/chat/nope/config",
            Some(json!({"module": "x"})),
        )
        .await;
    assert_eq!((st, v), (404, json!({"detail": "Session not found"})));
}

#[tokio::test]
async fn activate_only_pending_bot_sessions() {
    let d = Dirs::new();
    let ids = seed_sessions(&d, 2, |i, s| {
        if i == 1 {
            s.metadata = Some(
                json!({"pending_initialization": true, "linked_bot": {"platform": "telegram"}})
                    .to_string(),
            );
        }
    })
    .await;
    let s = Server::start(&d).await;
    let (st, v) = s
        .send(
            "POST",
            &format!("/api/chat/{}/activate", ids[0]),
            Some(json!({"trustLevel": "vault"})),
        )
        .await;
    assert_eq!(
        (st, v),
        (
            400,
            json!({"detail": "Session is not pending initialization"})
        )
    );
    let (st, v) = s
        .send(
            "POST",
            &format!("/api/chat/{}/activate", ids[1]),
            Some(json!({"trustLevel": "vault", "responseMode": "mention_only"})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["session"]["trustLevel"], "vault");
    assert!(v["session"]["metadata"]
        .get("pending_initialization")
        .is_none());
    assert_eq!(
        v["session"]["metadata"]["bot_settings"]["response_mode"],
        "mention_only"
    );
    assert_eq!(
        v["session"]["metadata"]["linked_bot"]["platform"],
        "telegram"
    );
    let (st, _) = s
        .send(
            "POST",
            &format!("/api/chat/{}/activate", ids[1]),
            Some(json!({"trustLevel": "vault"})),
        )
        .await;
    assert_eq!(st, 400, "no longer pending");
}

#[tokio::test]
async fn auth_routes_match_the_contract() {
    let d = Dirs::new();
    let s = Server::start(&d).await;
    let (st, v) = s.get("/api/auth/keys").await;
    assert_eq!((st, v), (200, json!({"keys": [], "auth_mode": "remote"})));
    let (st, created) = s
        .send("POST", "/api/auth/keys", Some(json!({"label": "bench"})))
        .await;
    assert_eq!(st, 200);
    assert_eq!(keys(&created), ["id", "label", "key", "created_at"]);
    let key = created["key"].as_str().unwrap();
    assert!(key.starts_with("para_") && key.len() == 37, "{key}");
    assert!(key[5..]
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    // The id looks like the original's (`k_` + 12 characters) but, unlike it, gives
    // away nothing of the key, since every key holder can list ids.
    let kid = created["id"].as_str().unwrap();
    assert!(kid.starts_with("k_") && kid.len() == 14, "{kid}");
    assert!(!key.contains(&kid[2..]), "the id is not part of the key");
    assert!(
        !created["created_at"].as_str().unwrap().ends_with('Z'),
        "naive timestamps for keys"
    );
    let (_, list) = s.get("/api/auth/keys").await;
    assert_eq!(
        keys(&list["keys"][0]),
        ["id", "label", "created_at", "last_used_at"]
    );
    let (st, v) = s.get("/api/auth/settings").await;
    assert_eq!(st, 200);
    assert_eq!(
        (v["require_auth"].clone(), v["key_count"].clone()),
        (json!("remote"), json!(1))
    );
    let (st, v) = s
        .send(
            "PUT",
            "/api/auth/settings",
            Some(json!({"require_auth": "bogus"})),
        )
        .await;
    assert_eq!(
        (st, v),
        (
            400,
            json!({"detail": "Invalid auth mode: bogus. Must be 'always', 'remote', or 'disabled'"})
        )
    );
    let (st, v) = s
        .send("POST", "/api/auth/keys", Some(json!({"label": ""})))
        .await;
    assert_eq!(st, 422);
    assert_eq!(v["detail"][0]["type"], "string_too_short");
    assert_eq!(v["detail"][0]["loc"], json!(["body", "label"]));
    let (st, v) = s.send("DELETE", "/api/auth/keys/k_nope", None).await;
    assert_eq!((st, v), (404, json!({"detail": "Key not found: k_nope"})));
    let id = created["id"].as_str().unwrap();
    let (st, v) = s
        .send("DELETE", &format!("/api/auth/keys/{id}"), None)
        .await;
    assert_eq!((st, v), (200, json!({"status": "deleted", "id": id})));
}

#[tokio::test]
async fn openapi_lists_every_route_and_docs_render() {
    let d = Dirs::new();
    let s = Server::start(&d).await;
    let (st, doc) = s.get("/api/openapi.json").await;
    assert_eq!(st, 200);
    let paths = doc["paths"].as_object().unwrap();
    let expected: &[(&str, &[&str])] = &[
        ("/", &["get"]),
        ("/api/health", &["get"]),
        ("/api/chat", &["get"]),
        ("/api/chat/stats", &["get"]),
        ("/api/chat/{session_id}", &["get", "delete"]),
        ("/api/chat/{session_id}/archive", &["post"]),
        ("/api/chat/{session_id}/unarchive", &["post"]),
        ("/api/chat/{session_id}/config", &["patch"]),
        ("/api/chat/{session_id}/activate", &["post"]),
        ("/api/auth/keys", &["get", "post"]),
        ("/api/auth/keys/{key_id}", &["delete"]),
        ("/api/auth/settings", &["get", "put"]),
        ("/api/workspaces", &["get", "post"]),
        ("/api/workspaces/{slug}", &["get", "put", "delete"]),
        ("/api/workspaces/{slug}/sessions", &["get"]),
    ];
    for (p, methods) in expected {
        let item = paths
            .get(*p)
            .unwrap_or_else(|| panic!("{p} missing from the OpenAPI document"));
        for m in *methods {
            assert!(item.get(*m).is_some(), "{m} {p} missing");
        }
    }
    let html = s.client.get(s.url("/api/docs")).send().await.unwrap();
    assert_eq!(html.status(), 200);
    let text = html.text().await.unwrap();
    assert!(text.contains("/api/chat/{session_id}/config") && text.contains("PATCH"));
    // The handlers' Markdown is rendered: code spans become <code>, no raw backticks.
    assert!(!text.contains('`'), "raw Markdown on the docs page");
    assert!(
        text.contains("<code>session</code>"),
        "code spans not rendered"
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let d = Dirs::new();
    let s = Server::start(&d).await;
    let (st, v) = s.get("/api/nope").await;
    assert_eq!((st, v), (404, json!({"detail": "Not Found"})));
    let (st, v) = s.send("PUT", "/api/chat/stats", None).await;
    assert_eq!((st, v), (405, json!({"detail": "Method Not Allowed"})));
}

#[tokio::test]
async fn every_version_report_is_the_package_version() {
    let d = Dirs::new();
    let s = Server::start(&d).await;
    let want = env!("CARGO_PKG_VERSION");
    assert_eq!(s.get("/").await.1["version"], want);
    assert_eq!(s.get("/api/health").await.1["version"], want);
    assert_eq!(s.get("/api/openapi.json").await.1["info"]["version"], want);
}

#[tokio::test]
async fn the_openapi_document_describes_every_turn_event() {
    let d = Dirs::new();
    let s = Server::start(&d).await;
    let (st, doc) = s.get("/api/openapi.json").await;
    assert_eq!(st, 200);
    let schema = &doc["components"]["schemas"]["TurnEvent"];
    let variants = schema["oneOf"].as_array().expect("TurnEvent is a oneOf");
    let text = schema.to_string();
    for kind in [
        "session",
        "prompt_metadata",
        "user_message",
        "queued",
        "init",
        "model",
        "text",
        "tool_use",
        "tool_result",
        "user_question",
        "permission_request",
        "done",
        "error",
    ] {
        assert!(
            text.contains(&format!("\"{kind}\"")),
            "{kind} missing: {text}"
        );
    }
    assert!(variants.len() >= 13);
    let chat = &doc["paths"]["/api/chat"]["post"]["responses"]["200"]["content"];
    assert!(
        chat["text/event-stream"]["schema"]
            .to_string()
            .contains("TurnEvent"),
        "{chat}"
    );
}
