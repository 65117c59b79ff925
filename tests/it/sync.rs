//! `/api/sync/*` as the app's sync service uses it, and its confinement.

use base64::Engine;
use serde_json::json;
use sha2::Digest;

use crate::support::{Dirs, Server};

#[tokio::test]
async fn manifest_changes_push_pull_delete() {
    let d = Dirs::new();
    let daily = d.vault.join("Daily/journals");
    std::fs::create_dir_all(&daily).unwrap();
    std::fs::write(daily.join("2026-11-24.md"), "monday").unwrap();
    std::fs::write(daily.join("2026-11-25.md"), "tuesday").unwrap();
    std::fs::write(daily.join("photo.png"), [0u8, 1, 2, 0, 255]).unwrap();
    std::fs::write(d.vault.join("Daily/.hidden.md"), "x").unwrap();
    let s = Server::start(&d).await;

    let (st, m) = s.get("/api/sync/manifest?root=Daily").await;
    assert_eq!(st, 200, "{m}");
    let keys: Vec<&String> = m.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["root", "files", "generated_at"]);
    let files = m["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "md files only, dotfiles skipped: {m}");
    assert_eq!(files[0]["path"], "journals/2026-11-24.md");
    assert_eq!(
        files[0]["hash"],
        hex::encode(sha2::Sha256::digest(b"monday"))
    );
    assert_eq!(files[0]["size"], 6);
    assert!(files[0]["modified"].is_f64());
    let (_, m) = s.get("/api/sync/manifest?root=Daily&date=2026-11-25").await;
    assert_eq!(m["files"].as_array().unwrap().len(), 1);
    let (_, m) = s
        .get("/api/sync/manifest?root=Daily&pattern=*&include_binary=true")
        .await;
    assert_eq!(m["files"].as_array().unwrap().len(), 3);
    let (_, m) = s.get("/api/sync/manifest?root=Daily&pattern=*").await;
    assert_eq!(
        m["files"].as_array().unwrap().len(),
        2,
        "binary skipped unless asked"
    );

    let (st, c) = s.get("/api/sync/changes?root=Daily&since=0").await;
    assert_eq!(st, 200);
    assert_eq!(c["files"].as_array().unwrap().len(), 2);
    let later = c["generated_at"].as_f64().unwrap() + 1.0;
    let (_, c) = s
        .get(&format!("/api/sync/changes?root=Daily&since={later}"))
        .await;
    assert_eq!(c["files"], json!([]));
    assert_eq!(
        s.get("/api/sync/changes?root=Daily").await.0,
        422,
        "since is required"
    );

    let png = base64::engine::general_purpose::STANDARD.encode([9u8, 0, 9]);
    let (st, p) = s
        .send(
            "POST",
            "/api/sync/push",
            Some(json!({"root": "Daily", "files": [
            {"path": "journals/2026-11-26.md", "content": "wednesday", "is_binary": false},
            {"path": "img/a.png", "content": png, "is_binary": true},
            {"path": "../../outside.md", "content": "x"},
            {"path": "bad.bin", "content": "%%%", "is_binary": true}]})),
        )
        .await;
    assert_eq!(st, 200, "{p}");
    assert_eq!(p["pushed"], 2);
    assert_eq!(p["errors"].as_array().unwrap().len(), 2, "{p}");
    assert_eq!(
        std::fs::read_to_string(daily.join("2026-11-26.md")).unwrap(),
        "wednesday"
    );
    assert_eq!(
        std::fs::read(d.vault.join("Daily/img/a.png")).unwrap(),
        vec![9u8, 0, 9]
    );
    assert!(!d.tmp.path().join("outside.md").exists());

    let (_, pulled) = s
        .send("POST", "/api/sync/pull", Some(json!({"root": "Daily", "paths": ["journals/2026-11-24.md", "img/a.png", "nope.md", "../x"]})))
        .await;
    assert_eq!(pulled["files"][0]["content"], "monday");
    assert_eq!(pulled["files"][0]["is_binary"], false);
    assert_eq!(pulled["files"][1]["is_binary"], true);
    assert_eq!(pulled["files"][1]["content"], png);
    assert_eq!(pulled["errors"].as_array().unwrap().len(), 2);

    let (st, del) = s
        .send(
            "DELETE",
            "/api/sync/files?root=Daily&paths=journals/2026-11-24.md&paths=gone.md&paths=../../x",
            None,
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(del["deleted"], 2, "a missing file counts as deleted: {del}");
    assert_eq!(del["errors"].as_array().unwrap().len(), 1);
    assert!(!daily.join("2026-11-24.md").exists());

    for root in ["../", ".parachute", "/etc"] {
        let (st, _) = s.get(&format!("/api/sync/manifest?root={root}")).await;
        assert_eq!(st, 403, "{root}");
    }
    assert_eq!(s.get("/api/sync/manifest?root=Nope").await.0, 404);
    let long = "*".repeat(300);
    assert_eq!(
        s.get(&format!("/api/sync/manifest?root=Daily&pattern={long}"))
            .await
            .0,
        400
    );
    let (_, p) = s.send("POST", "/api/sync/push", Some(json!({"root": ".parachute", "files": [{"path": "server.yaml", "content": "pwned"}]}))).await;
    assert_eq!(p["pushed"], 0);
}
