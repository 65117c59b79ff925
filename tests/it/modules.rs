//! Modules, Brain and Daily through the real server: bundled modules installed and
//! approved on first start, edits kept but disabled until approved, a tampered byte
//! anywhere in a tree noticed, third-party modules waiting; Brain search following the
//! files on disk; Daily entries never overwriting one another.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{Dirs, Server};

fn module<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no module {name} in {list}"))
}

fn write(d: &Dirs, rel: &str, text: &str) {
    let p = d.vault.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn cli(d: &Dirs, args: &[&str]) -> (bool, String) {
    let out = d.cmd().args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn bundled_modules_are_installed_approved_and_an_owners_edit_survives_disabled() {
    let d = Dirs::new();
    let mut s = Server::start(&d).await;
    let (status, list) = s.get("/api/modules").await;
    assert_eq!(status, 200);
    for name in ["brain", "chat", "daily"] {
        let m = module(&list, name);
        assert_eq!(m["status"], "loaded", "{m}");
        assert_eq!(m["bundled"], true);
        assert_eq!(m["hash"].as_str().unwrap().len(), 12);
        assert!(d
            .vault
            .join(".modules")
            .join(name)
            .join("manifest.yaml")
            .is_file());
    }
    let hashes = crate::support::read_json(&d.vault.join(".parachute/module_hashes.json"));
    assert_eq!(hashes["brain"]["bundled"], true, "{hashes}");
    let (_, health) = s.get("/api/health?detailed=true").await;
    assert!(
        health["modules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "brain" && m["status"] == "loaded"),
        "{health}"
    );
    assert_eq!(s.get("/api/brain/search?q=x").await.0, 200);

    // The owner edits a bundled module: kept, but disabled until approved.
    write(&d, ".modules/brain/CLAUDE.md", "# My brain\n");
    let (_, list) = s.get("/api/modules").await;
    let brain = module(&list, "brain");
    assert_eq!(brain["status"], "pending_approval", "{brain}");
    assert_eq!(brain["approval"], "modified");
    assert_eq!(brain["changes"]["modified"], json!(["CLAUDE.md"]));
    let (status, body) = s.get("/api/brain/search?q=x").await;
    assert_eq!(status, 503, "{body}");
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("parachute module approve brain"));

    s.stop().await;
    let mut s = Server::start(&d).await;
    assert_eq!(
        std::fs::read_to_string(d.vault.join(".modules/brain/CLAUDE.md")).unwrap(),
        "# My brain\n",
        "a restart never overwrites an owner's edit"
    );
    let (_, list) = s.get("/api/modules").await;
    assert_eq!(module(&list, "brain")["status"], "pending_approval");

    // The command line shows what changed and approves; the running server sees it.
    let (ok, out) = cli(&d, &["module", "status", "brain"]);
    assert!(ok && out.contains("~ CLAUDE.md"), "{out}");
    let (ok, out) = cli(&d, &["module", "approve", "brain"]);
    assert!(ok && out.contains("Approved 'brain'"), "{out}");
    let (_, list) = s.get("/api/modules").await;
    assert_eq!(module(&list, "brain")["status"], "loaded");
    assert_eq!(s.get("/api/brain/search?q=x").await.0, 200);
    let (ok, out) = cli(&d, &["module", "list"]);
    assert!(
        ok && out.contains("brain") && out.contains("enabled"),
        "{out}"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_third_party_module_waits_and_a_tampered_byte_anywhere_disables_it() {
    let d = Dirs::new();
    write(
        &d,
        ".modules/notes/manifest.yaml",
        "name: notes\nversion: 1.0.0\ndescription: Tidy notes\ntrust_level: vault\nprovides: [Tidy]\nrequests:\n  skills: [tidy]\n  agents: [sorter]\n",
    );
    write(
        &d,
        ".modules/notes/skills/tidy.md",
        "---\nname: tidy\ndescription: Tidy a note\n---\nTidy it.\n",
    );
    write(
        &d,
        ".modules/notes/agents/sorter.md",
        "---\ndescription: Sorts\n---\nSort things.\n",
    );
    write(&d, ".modules/broken/manifest.yaml", "name: [oops\n");
    write(&d, ".modules/sneaky/manifest.yaml", "name: sneaky\n");
    write(&d, ".modules/sneaky/hooks/run.sh", "#!/bin/sh\necho hi\n");
    let s = Server::start(&d).await;

    let (_, list) = s.get("/api/modules").await;
    let notes = module(&list, "notes");
    assert_eq!(notes["status"], "pending_approval", "{notes}");
    assert_eq!(notes["approval"], "new");
    assert_eq!(notes["requests"]["skills"], json!(["tidy"]));
    assert_eq!(notes["requests"]["agents"], json!(["sorter"]));
    assert_eq!(notes["provides"], json!(["Tidy"]));
    assert_eq!(notes["trust_level"], "vault");
    let broken = module(&list, "broken");
    assert_eq!(broken["status"], "invalid");
    assert!(
        broken["error"].as_str().unwrap().contains("does not parse"),
        "{broken}"
    );
    let sneaky = module(&list, "sneaky");
    assert!(
        sneaky["error"].as_str().unwrap().contains("hooks: run.sh"),
        "{sneaky}"
    );
    let (status, body) = s.send("POST", "/api/modules/sneaky/approve", None).await;
    assert_eq!(status, 400, "{body}");

    // An approval is bound to the tree the approver saw.
    let (status, _) = s
        .send(
            "POST",
            "/api/modules/notes/approve",
            Some(json!({"hash": "0123456789ab"})),
        )
        .await;
    assert_eq!(status, 409);
    let (status, _) = s
        .send(
            "POST",
            "/api/modules/notes/approve",
            Some(json!({"trust_level": "full"})),
        )
        .await;
    assert_eq!(status, 400, "never above the level asked for");
    let hash = notes["current_hash"].as_str().unwrap();
    let (status, body) = s
        .send(
            "POST",
            "/api/modules/notes/approve",
            Some(json!({"hash": hash})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["approved"], true);
    assert_eq!(body["module"]["status"], "loaded");
    let (status, body) = s.send("POST", "/api/modules/notes/approve", None).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["detail"], "Module 'notes' not pending approval");

    // One byte in a file that is not the manifest.
    write(
        &d,
        ".modules/notes/agents/sorter.md",
        "---\ndescription: Sorts\n---\nSort things!\n",
    );
    let (_, list) = s.get("/api/modules").await;
    let notes = module(&list, "notes");
    assert_eq!(notes["status"], "pending_approval", "{notes}");
    assert_eq!(notes["changes"]["modified"], json!(["agents/sorter.md"]));
    // A new file is a change too.
    write(&d, ".modules/notes/skills/extra.txt", "x");
    let (_, list) = s.get("/api/modules").await;
    assert_eq!(
        module(&list, "notes")["changes"]["added"],
        json!(["skills/extra.txt"])
    );
    let (status, _) = s.send("POST", "/api/modules/notes/approve", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        module(&s.get("/api/modules").await.1, "notes")["status"],
        "loaded"
    );
    assert_eq!(
        s.send("POST", "/api/modules/ghost/approve", None).await.0,
        404
    );
}

#[tokio::test]
async fn module_prompts_and_stats() {
    let d = Dirs::new();
    let s = Server::start(&d).await;
    let (status, p) = s.get("/api/modules/chat/prompt").await;
    assert_eq!(status, 200);
    assert_eq!(p["path"], "Chat/CLAUDE.md");
    assert_eq!(p["exists"], false);
    assert_eq!(p["content"], Value::Null);
    assert!(p["defaultPrompt"].as_str().unwrap().starts_with("# Chat"));
    let (status, r) = s
        .send(
            "PUT",
            "/api/modules/Chat/prompt",
            Some(json!({"content": "Be brief."})),
        )
        .await;
    assert_eq!(
        (status, r),
        (200, json!({"success": true, "path": "Chat/CLAUDE.md"}))
    );
    assert_eq!(
        std::fs::read_to_string(d.vault.join("Chat/CLAUDE.md")).unwrap(),
        "Be brief."
    );
    let (_, p) = s.get("/api/modules/chat/prompt").await;
    assert_eq!(
        (p["exists"].clone(), p["content"].clone()),
        (json!(true), json!("Be brief."))
    );
    let (_, st) = s.get("/api/modules/chat/stats").await;
    assert_eq!(st["hasPrompt"], true, "{st}");
    assert!(st["fileCount"].as_u64().unwrap() >= 1);
    let (status, r) = s
        .send(
            "PUT",
            "/api/modules/chat/prompt",
            Some(json!({"reset": true})),
        )
        .await;
    assert_eq!((status, r), (200, json!({"success": true, "reset": true})));
    assert!(!d.vault.join("Chat/CLAUDE.md").exists());
    let (status, r) = s
        .send("PUT", "/api/modules/chat/prompt", Some(json!({})))
        .await;
    assert_eq!(
        (status, r["detail"].clone()),
        (400, json!("content or reset required"))
    );
    assert_eq!(s.get("/api/modules/rockets/prompt").await.0, 404);
    assert_eq!(s.get("/api/modules/rockets/stats").await.0, 404);
}

/// Polls `path` until it answers 200 with a body `check` accepts, for at most 2 s; the
/// body it accepted.
async fn within_2s(s: &Server, path: &str, check: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let (status, body) = s.get(path).await;
        if status == 200 && check(&body) {
            return body;
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "not reflected within 2 s: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn names(results: &Value) -> Vec<String> {
    results["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn brain_search_follows_the_files_and_ranks_names_first() {
    let d = Dirs::new();
    write(
        &d,
        "Brain/entities/people/ada.md",
        "---\npara_id: person-ada\nname: Ada Lovelace\ntags: [math]\n---\nWrote about the Analytical Engine.\n",
    );
    write(
        &d,
        "Brain/entities/birds.md",
        "# Birds\nThe falcon is fast; so is the swift.\n",
    );
    write(
        &d,
        "Brain/entities/falcon.md",
        "---\nname: Falcon\n---\nA project.\n",
    );
    let s = Server::start(&d).await;

    let r = within_2s(&s, "/api/brain/search?q=falcon", |b| b["count"] == 2).await;
    assert_eq!(
        names(&r),
        vec!["Falcon", "Birds"],
        "a name match ranks above a body match"
    );
    assert_eq!(r["query"], "falcon");
    assert!(
        r["results"][1]["snippet"]
            .as_str()
            .unwrap()
            .contains("falcon"),
        "{r}"
    );
    let (_, r) = s.get("/api/brain/search?q=analyt").await;
    assert_eq!(
        r["results"][0]["para_id"], "person-ada",
        "prefix search: {r}"
    );
    assert_eq!(r["results"][0]["tags"], json!(["math"]));
    // Query syntax is never passed through.
    let (status, r) = s.get("/api/brain/search?q=%22%20OR%20*%20NEAR(").await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["results"], json!([]), "{r}");
    let (status, r) = s.get("/api/brain/search").await;
    assert_eq!(status, 422, "{r}");

    // Create, change and delete on disk: each shows within 2 s.
    write(
        &d,
        "Brain/entities/places/kyoto.md",
        "---\nname: Kyoto\n---\nTemples.\n",
    );
    within_2s(&s, "/api/brain/search?q=kyoto", |b| names(b) == ["Kyoto"]).await;
    write(
        &d,
        "Brain/entities/places/kyoto.md",
        "---\nname: Kyoto City\n---\nGardens.\n",
    );
    within_2s(&s, "/api/brain/search?q=gardens", |b| {
        names(b) == ["Kyoto City"]
    })
    .await;
    let (_, r) = s.get("/api/brain/search?q=temples").await;
    assert_eq!(r["count"], 0, "the old text is gone: {r}");
    std::fs::remove_file(d.vault.join("Brain/entities/places/kyoto.md")).unwrap();
    within_2s(&s, "/api/brain/search?q=kyoto", |b| b["count"] == 0).await;

    // Lookups: by id (ids may contain '/'), by name (case-insensitive).
    let (status, e) = s.get("/api/brain/entities/person-ada").await;
    assert_eq!(status, 200);
    assert_eq!(e["name"], "Ada Lovelace");
    assert_eq!(e["path"], "Brain/entities/people/ada.md");
    assert!(e["content"].as_str().unwrap().starts_with("Wrote about"));
    let (status, e) = s.get("/api/brain/entities/birds").await;
    assert_eq!((status, e["name"].clone()), (200, json!("Birds")));
    // Frontmatter keys named like the served ones give way (each key once, the
    // server's value); the others are kept, first.
    write(
        &d,
        "Brain/entities/owl.md",
        "---\nname: Owl\nmood: calm\ncontent: mine\npath: elsewhere\n---\nHoots.\n",
    );
    within_2s(&s, "/api/brain/resolve/owl", |b| b.get("name").is_some()).await;
    let raw = s
        .client
        .get(s.url("/api/brain/resolve/owl"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for key in ["\"content\":", "\"path\":", "\"name\":"] {
        assert_eq!(raw.matches(key).count(), 1, "{key} once: {raw}");
    }
    assert!(raw.starts_with("{\"mood\":\"calm\""), "{raw}");
    let e: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(e["content"].as_str().map(str::trim), Some("Hoots."), "{e}");
    assert_eq!(e["path"], "Brain/entities/owl.md", "{e}");
    std::fs::remove_file(d.vault.join("Brain/entities/owl.md")).unwrap();
    write(&d, "Brain/entities/deep/nested.md", "plain");
    let e = within_2s(&s, "/api/brain/resolve/NESTED", |b| b.get("name").is_some()).await;
    assert_eq!(e["para_id"], "deep/nested");
    let (status, e) = s.get("/api/brain/entities/deep/nested").await;
    assert_eq!((status, e["name"].clone()), (200, json!("nested")));
    let (status, e) = s.get("/api/brain/entities/nope").await;
    assert_eq!(
        (status, e),
        (404, json!({"error": "Entity not found", "para_id": "nope"}))
    );
    let (status, e) = s.get("/api/brain/resolve/ada%20lovelace").await;
    assert_eq!((status, e["para_id"].clone()), (200, json!("person-ada")));
    let (status, e) = s.get("/api/brain/resolve/Nobody").await;
    assert_eq!(
        (status, e),
        (404, json!({"error": "Entity not found", "name": "Nobody"}))
    );
    let (status, r) = s.send("POST", "/api/brain/reload", None).await;
    assert_eq!(
        (status, r),
        (200, json!({"status": "reloaded", "count": 4}))
    );

    // A symlink never brings files from outside the vault into the index.
    let outside = d.tmp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(
        outside.join("secret.md"),
        "---\nname: Secretive Plan\n---\nhidden\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(&outside, d.vault.join("Brain/entities/elsewhere")).unwrap();
    std::os::unix::fs::symlink(
        outside.join("secret.md"),
        d.vault.join("Brain/entities/linked.md"),
    )
    .unwrap();
    let (status, r) = s.send("POST", "/api/brain/reload", None).await;
    assert_eq!((status, r["count"].clone()), (200, json!(4)));
    let (_, r) = s.get("/api/brain/search?q=secretive").await;
    assert_eq!(r["count"], 0, "{r}");
}

#[tokio::test]
async fn twenty_daily_entries_in_one_minute_make_twenty_files_with_brain_links() {
    let d = Dirs::new();
    write(
        &d,
        "Brain/entities/ada.md",
        "---\npara_id: person-ada\nname: Ada Lovelace\n---\n",
    );
    let s = Server::start(&d).await;
    let posts = (0..20).map(|i| {
        s.send(
            "POST",
            "/api/daily/entries",
            Some(json!({"content": format!("Entry {i}: lunch with Ada Lovelace."), "metadata": {"mood": "good"}})),
        )
    });
    let results = futures_util::future::join_all(posts).await;
    let mut ids = Vec::new();
    for (status, body) in &results {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(
            body["brain_suggestions"][0]["para_id"], "person-ada",
            "{body}"
        );
        assert_eq!(body["brain_suggestions"][0]["matched_term"], "Ada Lovelace");
        assert!(std::path::Path::new(body["path"].as_str().unwrap()).is_file());
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20, "every entry has its own id: {ids:?}");
    let files = std::fs::read_dir(d.vault.join("Daily/entries"))
        .unwrap()
        .count();
    assert_eq!(files, 20, "no entry overwrote another");

    let (status, page) = s.get("/api/daily/entries?limit=100").await;
    assert_eq!(status, 200);
    assert_eq!(page["count"], 20);
    assert_eq!(page["offset"], 0);
    assert_eq!(page["entries"][0]["brain_links"], json!(["person-ada"]));
    let (_, page2) = s.get("/api/daily/entries?limit=5&offset=18").await;
    assert_eq!(page2["count"], 2);
    let id = page["entries"][3]["id"].as_str().unwrap();
    let (status, e) = s.get(&format!("/api/daily/entries/{id}")).await;
    assert_eq!(status, 200, "{e}");
    assert!(e["content"]
        .as_str()
        .unwrap()
        .ends_with("lunch with Ada Lovelace."));
    assert_eq!(e["metadata"], json!({"mood": "good"}));
    assert_eq!(e["brain_links"], json!(["person-ada"]));
    let (status, e) = s.get("/api/daily/entries/2000-01-01-00-00").await;
    assert_eq!(
        (status, e),
        (
            404,
            json!({"error": "Entry not found", "id": "2000-01-01-00-00"})
        )
    );
    assert_eq!(s.get("/api/daily/entries?limit=0").await.0, 422);
    let (status, _) = s
        .send(
            "POST",
            "/api/daily/entries",
            Some(json!({"content": "   "})),
        )
        .await;
    assert_eq!(status, 400);
}
