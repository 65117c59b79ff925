//! Workspaces: CRUD, slugs, storage, and detaching sessions.

use serde_json::{json, Value};

use crate::support::{seed_sessions, Dirs, Server};

#[tokio::test]
async fn workspace_crud_and_storage() {
    let d = Dirs::new();
    let ids = seed_sessions(&d, 2, |i, s| {
        if i == 0 {
            s.workspace_id = Some("my-project".into());
        }
    })
    .await;
    std::fs::create_dir_all(d.vault.join("Projects")).unwrap();
    let s = Server::start(&d).await;
    assert_eq!(
        s.get("/api/workspaces").await,
        (200, json!({"workspaces": []}))
    );

    let (st, v) = s
        .send("POST", "/api/workspaces", Some(json!({"name": "My Project", "default_trust_level": "vault",
            "working_directory": "Projects", "sandbox": {"memory": "1g", "cpu": "2", "timeout": 600}})))
        .await;
    assert_eq!(st, 201, "{v}");
    let w = &v["workspace"];
    let keys: Vec<&String> = w.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "name",
            "slug",
            "description",
            "trust_level",
            "working_directory",
            "model",
            "capabilities",
            "sandbox"
        ]
    );
    assert_eq!(w["slug"], "my-project");
    assert_eq!(w["trust_level"], "vault");
    assert_eq!(
        w["capabilities"],
        json!({"mcps": "all", "skills": "all", "agents": "all", "plugins": {"include_user": true, "dirs": []}})
    );
    assert_eq!(
        w["sandbox"],
        json!({"memory": "1g", "cpu": "2", "timeout": 600})
    );

    let file = d.vault.join(".parachute/workspaces/my-project/config.yaml");
    let yaml = std::fs::read_to_string(&file).unwrap();
    assert!(
        !yaml.contains("slug") && !yaml.contains("null"),
        "slug excluded, nulls dropped:\n{yaml}"
    );
    assert!(yaml.contains("trust_level: vault"));

    // Collisions get -2.
    let (st, v2) = s
        .send(
            "POST",
            "/api/workspaces",
            Some(json!({"name": "my project!"})),
        )
        .await;
    assert_eq!(st, 201);
    assert_eq!(v2["workspace"]["slug"], "my-project-2");
    assert_eq!(v2["workspace"]["trust_level"], "full");

    let (st, v) = s
        .send(
            "PUT",
            "/api/workspaces/my-project",
            Some(json!({"model": "opus", "description": "d"})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["workspace"]["model"], "opus");
    assert_eq!(
        v["workspace"]["trust_level"], "vault",
        "partial update keeps the rest"
    );
    let (_, got) = s.get("/api/workspaces/my-project").await;
    assert_eq!(got["workspace"]["description"], "d");

    let (st, v) = s.get("/api/workspaces/my-project/sessions").await;
    assert_eq!(st, 200);
    assert_eq!(v["workspace"]["slug"], "my-project");
    assert_eq!(v["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(v["sessions"][0]["id"], ids[0].as_str());

    let (st, v) = s.send("DELETE", "/api/workspaces/my-project", None).await;
    assert_eq!((st, v), (200, json!({"deleted": "my-project"})));
    assert!(!file.exists());
    let (_, sess) = s.get(&format!("/api/chat/{}", ids[0])).await;
    assert_eq!(sess["workspaceId"], Value::Null, "sessions detached");
    assert_eq!(s.get("/api/workspaces/my-project").await.0, 404);
    let (_, list) = s.get("/api/workspaces").await;
    assert_eq!(list["workspaces"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn workspace_input_is_validated() {
    let d = Dirs::new();
    let s = Server::start(&d).await;
    for (body, needle) in [
        (json!({"name": ""}), "name"),
        (
            json!({"name": "x", "trust_level": "admin"}),
            "Invalid trust level",
        ),
        (
            json!({"name": "x", "working_directory": "../../etc"}),
            "working_directory",
        ),
        (
            json!({"name": "x", "working_directory": "/etc"}),
            "working_directory",
        ),
        (
            json!({"name": "x", "sandbox": {"memory": "lots"}}),
            "memory",
        ),
        (json!({"name": "x", "sandbox": {"cpu": "-1"}}), "cpu"),
        (json!({"name": "x", "sandbox": {"timeout": 0}}), "timeout"),
    ] {
        let (st, v) = s.send("POST", "/api/workspaces", Some(body.clone())).await;
        assert_eq!(st, 400, "{body}: {v}");
        assert!(
            v["detail"].as_str().unwrap().contains(needle),
            "{body}: {v}"
        );
    }
    let (st, v) = s
        .send(
            "POST",
            "/api/workspaces",
            Some(json!({"name": "x", "capabilities": {"mcps": "some"}})),
        )
        .await;
    assert_eq!(st, 422, "{v}");
    let (_, list) = s.get("/api/workspaces").await;
    assert_eq!(list["workspaces"], json!([]), "nothing half-created");
}
