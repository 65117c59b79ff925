//! Vault browsing (`/api/ls`, `/api/read`, `/api/write`), context folders and the prompt
//! preview: shapes, and a confinement table none of whose rows may reach outside the
//! vault or answer 500.

use std::os::unix::fs::symlink;

use serde_json::{json, Value};

use crate::support::{seed_sessions, Dirs, Server};

fn setup(d: &Dirs) -> std::path::PathBuf {
    let outside = d.tmp.path().join("outside");
    let sibling = d.tmp.path().join("vault2");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::create_dir_all(&sibling).unwrap();
    std::fs::write(outside.join("secret.txt"), "outside secret").unwrap();
    std::fs::write(sibling.join("x.md"), "sibling").unwrap();
    std::fs::create_dir_all(d.vault.join("Notes/deep")).unwrap();
    std::fs::write(d.vault.join("Notes/a.md"), "# A\nhello").unwrap();
    std::fs::write(d.vault.join(".hidden.md"), "hidden").unwrap();
    std::fs::write(d.vault.join("blob.bin"), [0u8, 159, 146, 150, 0, 1]).unwrap();
    symlink(outside.join("secret.txt"), d.vault.join("leaf-link.txt")).unwrap();
    symlink(&outside, d.vault.join("link-out")).unwrap();
    outside
}

#[tokio::test]
async fn ls_read_write_shapes() {
    let d = Dirs::new();
    setup(&d);
    let s = Server::start(&d).await;
    let (st, v) = s.get("/api/ls").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["path"], "");
    let names: Vec<&str> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"Notes")
            && !names.contains(&".hidden.md")
            && !names.contains(&".parachute"),
        "{names:?}"
    );
    let notes = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "Notes")
        .unwrap();
    let keys: Vec<&String> = notes.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "name",
            "type",
            "path",
            "relativePath",
            "isDirectory",
            "isFile",
            "isSymlink",
            "isBrokenSymlink",
            "symlinkTarget",
            "hasAgentsMd",
            "hasClaudeMd",
            "isGitRepo",
            "size",
            "lastModified"
        ]
    );
    assert_eq!(
        (notes["type"].as_str(), notes["isDirectory"].as_bool()),
        (Some("directory"), Some(true))
    );
    let link = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "leaf-link.txt")
        .unwrap();
    assert_eq!(link["isSymlink"], true);
    let (_, hidden) = s.get("/api/ls?includeHidden=true").await;
    let names: Vec<&str> = hidden["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&".hidden.md") && !names.contains(&".parachute"),
        "{names:?}"
    );
    let (_, sub) = s.get("/api/ls?path=Notes").await;
    assert_eq!(sub["entries"][0]["relativePath"], "Notes/a.md");

    let (st, r) = s.get("/api/read?path=Notes/a.md").await;
    assert_eq!(st, 200);
    assert_eq!(r["content"], "# A\nhello");
    assert_eq!(r["size"], 9);
    let (st, w) = s
        .send(
            "PUT",
            "/api/write",
            Some(json!({"path": "New/Dir/b.md", "content": "written"})),
        )
        .await;
    assert_eq!(st, 200, "{w}");
    assert_eq!(
        (w["success"].as_bool(), w["size"].as_u64()),
        (Some(true), Some(7))
    );
    assert_eq!(
        std::fs::read_to_string(d.vault.join("New/Dir/b.md")).unwrap(),
        "written"
    );
    let (st, _) = s
        .send(
            "PUT",
            "/api/write",
            Some(json!({"path": "Notes/a.md", "content": "replaced"})),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(
        std::fs::read_to_string(d.vault.join("Notes/a.md")).unwrap(),
        "replaced"
    );

    assert_eq!(
        s.get("/api/read?path=blob.bin").await,
        (400, json!({"detail": "File is not text"}))
    );
    assert_eq!(
        s.get("/api/read?path=Notes").await,
        (400, json!({"detail": "Path is not a file"}))
    );
    assert_eq!(
        s.get("/api/ls?path=Notes/a.md").await,
        (400, json!({"detail": "Path is not a directory"}))
    );
    assert_eq!(s.get("/api/read?path=nope.md").await.0, 404);
    let (st, _) = s
        .send(
            "PUT",
            "/api/write",
            Some(json!({"path": "Notes/a.md/x", "content": "x"})),
        )
        .await;
    assert_eq!(
        st, 400,
        "a file used as a folder is the client's mistake, not a 500"
    );
    let (st, _) = s
        .send(
            "PUT",
            "/api/write",
            Some(json!({"path": "Chat/sessions.db", "content": "x"})),
        )
        .await;
    assert_eq!(st, 403, "the live database is not writable through the API");
    assert_eq!(s.get("/api/read").await.0, 422);
}

#[tokio::test]
async fn the_confinement_table_holds() {
    let d = Dirs::new();
    let outside = setup(&d);
    let s = Server::start(&d).await;
    let bad = [
        "../outside/secret.txt",
        "/etc/passwd",
        "%2e%2e/outside/secret.txt",
        "..%2Foutside%2Fsecret.txt",
        "leaf-link.txt",
        "link-out/secret.txt",
        "../vault2/x.md",
        ".parachute/server.yaml",
        ".parachute",
    ];
    for p in bad {
        let enc: String = p
            .chars()
            .map(|c| {
                if c == '%' {
                    "%25".to_string()
                } else {
                    c.to_string()
                }
            })
            .collect();
        let (st, v) = s.get(&format!("/api/read?path={enc}")).await;
        assert!(st == 403 || st == 404 || st == 400, "read {p}: {st} {v}");
        assert!(
            !v.to_string().contains("outside secret") && !v.to_string().contains("sibling"),
            "read {p} leaked"
        );
        let (st, v) = s.get(&format!("/api/ls?path={enc}")).await;
        assert!(st == 403 || st == 404 || st == 400, "ls {p}: {st} {v}");
        let (st, v) = s
            .send(
                "PUT",
                "/api/write",
                Some(json!({"path": p, "content": "pwned"})),
            )
            .await;
        assert!(st == 403 || st == 400, "write {p}: {st} {v}");
    }
    // Nothing was written outside or into .parachute.
    assert_eq!(
        std::fs::read_to_string(outside.join("secret.txt")).unwrap(),
        "outside secret"
    );
    assert!(!outside.join("pwned").exists());
    assert!(
        !std::fs::read_to_string(d.vault.join(".parachute/server.yaml"))
            .unwrap_or_default()
            .contains("pwned")
    );
    assert_eq!(
        std::fs::read_to_string(d.tmp.path().join("vault2/x.md")).unwrap(),
        "sibling"
    );
    // A 50 MB body is refused before anything is written.
    let big = json!({"path": "big.md", "content": "z".repeat(50 * 1024 * 1024)}).to_string();
    let r = s
        .client
        .put(s.url("/api/write"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await;
    if let Ok(r) = r {
        assert_eq!(r.status(), 413);
    }
    assert!(!d.vault.join("big.md").exists());
}

#[tokio::test]
async fn context_folders_chain_session_contexts_and_prompt_preview() {
    let d = Dirs::new();
    std::fs::create_dir_all(d.vault.join("Projects/my_app-v2")).unwrap();
    std::fs::create_dir_all(d.vault.join("node_modules/pkg")).unwrap();
    std::fs::write(d.vault.join("CLAUDE.md"), "root rules").unwrap();
    std::fs::write(
        d.vault.join("Projects/my_app-v2/AGENTS.md"),
        "app rules: use tabs",
    )
    .unwrap();
    std::fs::write(d.vault.join("node_modules/pkg/CLAUDE.md"), "ignored").unwrap();
    std::fs::create_dir_all(d.vault.join("agents")).unwrap();
    std::fs::write(
        d.vault.join("agents/helper.md"),
        "---\nname: Helper\n---\nYou help.",
    )
    .unwrap();
    let ids = seed_sessions(&d, 1, |_, _| {}).await;
    let s = Server::start(&d).await;

    let (st, v) = s.get("/api/contexts/folders").await;
    assert_eq!(st, 200);
    assert_eq!(v["count"], 2, "{v}");
    assert_eq!(
        v["folders"][0],
        json!({"path": "", "context_file": "CLAUDE.md", "has_agents_md": false, "has_claude_md": true, "display_name": "Root"})
    );
    assert_eq!(v["folders"][1]["display_name"], "My App V2");
    assert_eq!(v["folders"][1]["context_file"], "AGENTS.md");

    let (st, c) = s
        .get("/api/contexts/chain?folders=,Projects/my_app-v2&max_tokens=2")
        .await;
    assert_eq!(st, 200, "{c}");
    assert_eq!(c["files"][1]["path"], "Projects/my_app-v2/AGENTS.md");
    assert_eq!(c["files"][1]["level"], "direct");
    assert_eq!(c["truncated"], true);
    assert_eq!(s.get("/api/contexts/chain?folders=../outside").await.0, 403);

    let id = &ids[0];
    let (st, v) = s
        .send(
            "PUT",
            &format!("/api/contexts/session/{id}"),
            Some(json!({"folder_paths": ["", "Projects/my_app-v2"]})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v,
        json!({"session_id": id, "folder_paths": ["", "Projects/my_app-v2"], "chain": null})
    );
    let (_, v) = s
        .send(
            "DELETE",
            &format!("/api/contexts/session/{id}/remove?folder_path="),
            None,
        )
        .await;
    assert_eq!(v["folder_paths"], json!(["Projects/my_app-v2"]));
    let (_, v) = s
        .send(
            "POST",
            &format!("/api/contexts/session/{id}/add?folder_path=Projects"),
            None,
        )
        .await;
    assert_eq!(v["folder_paths"].as_array().unwrap().len(), 2);
    let (_, v) = s
        .get(&format!("/api/contexts/session/{id}?include_chain=true"))
        .await;
    assert!(v["chain"]["files"].is_array(), "{v}");
    assert_eq!(s.get("/api/contexts/session/nope").await.0, 404);
    assert_eq!(
        s.send(
            "POST",
            &format!("/api/contexts/session/{id}/add?folder_path=../outside"),
            None
        )
        .await
        .0,
        403
    );

    let (st, p) = s
        .get("/api/prompt/preview?contexts=Projects/my_app-v2")
        .await;
    assert_eq!(st, 200, "{p}");
    let keys: Vec<&String> = p.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "prompt",
            "promptSource",
            "promptSourcePath",
            "contextFiles",
            "contextTokens",
            "contextTruncated",
            "agentName",
            "availableAgents",
            "basePromptTokens",
            "totalPromptTokens",
            "workingDirectory",
            "workingDirectoryClaudeMd"
        ]
    );
    assert!(p["prompt"]
        .as_str()
        .unwrap()
        .contains("app rules: use tabs"));
    assert_eq!(p["promptSource"], "claude_code_preset");
    assert_eq!(p["workingDirectoryClaudeMd"], "CLAUDE.md");
    let (_, p) = s
        .get("/api/prompt/preview?agentPath=agents/helper.md")
        .await;
    assert_eq!(
        (
            p["promptSource"].as_str(),
            p["agentName"].as_str(),
            p["prompt"].as_str()
        ),
        (Some("agent"), Some("Helper"), Some("You help."))
    );
    assert_eq!(
        s.get("/api/prompt/preview?agentPath=agents/none.md")
            .await
            .0,
        404
    );
    assert_eq!(
        s.get("/api/prompt/preview?agentPath=../../etc/passwd")
            .await
            .0,
        400
    );
    let (_, p) = s.get("/api/prompt/preview?customPrompt=Be%20terse").await;
    assert_eq!(
        (p["promptSource"].as_str(), p["prompt"].as_str()),
        (Some("custom"), Some("Be terse"))
    );
    let _: Value = p;
}
