//! `POST /api/import`: Claude.ai and ChatGPT exports become sessions whose history seeds
//! their first real turn; bad entries are reported, re-imports skipped.

use serde_json::json;

use crate::support::fake_anthropic::FakeAnthropic;
use crate::support::{chat_server, export_zip, upload_export, Dirs, Server, CLI_SLOTS};

fn export() -> serde_json::Value {
    json!([
        {"uuid": "5f1c2a3b-0000-4000-8000-000000000001", "name": "Trip planning", "created_at": "2026-03-01T10:00:00.000000Z",
         "chat_messages": [
            {"sender": "human", "text": "I want to visit Lisbon.", "created_at": "2026-03-01T10:00:00Z"},
            {"sender": "assistant", "text": "Lisbon is lovely in spring.", "created_at": "2026-03-01T10:00:05Z"}]},
        {"id": "chatgpt-conv-42", "title": "", "create_time": 1767225600.0,
         "mapping": {
            "a": {"message": {"author": {"role": "system"}, "content": {"parts": ["sys"]}, "create_time": 1767225600.0}},
            "b": {"message": {"author": {"role": "user"}, "content": {"parts": ["My cat is named Miso."]}, "create_time": 1767225601.0}},
            "c": {"message": {"author": {"role": "assistant"}, "content": {"parts": ["Miso is a great name."]}, "create_time": 1767225602.0}}}},
        {"something": "else"},
        42
    ])
}

#[tokio::test]
async fn exports_become_sessions_and_seed_their_first_turn() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    let d = Dirs::new();
    let s = chat_server(&d, &fake, &[]).await;
    let (st, r) = s
        .send("POST", "/api/import", Some(json!({"data": export()})))
        .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["total_conversations"], 4);
    assert_eq!(r["imported_count"], 2);
    assert_eq!(r["skipped_count"], 0);
    let errs = r["errors"].as_array().unwrap();
    assert_eq!(
        errs.iter()
            .map(|e| e["index"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [2, 3],
        "{r}"
    );
    let ids: Vec<String> = r["session_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids[0], "5f1c2a3b-0000-4000-8000-000000000001");

    let (_, again) = s
        .send("POST", "/api/import", Some(json!({"data": export()})))
        .await;
    assert_eq!(
        (
            again["imported_count"].as_u64(),
            again["skipped_count"].as_u64()
        ),
        (Some(0), Some(2)),
        "no duplicates"
    );

    let (_, list) = s.get("/api/chat?archived=true").await;
    assert_eq!(
        list["sessions"].as_array().unwrap().len(),
        2,
        "imported as archived"
    );
    let (_, claude) = s.get(&format!("/api/chat/{}", ids[0])).await;
    assert_eq!(
        (claude["source"].as_str(), claude["title"].as_str()),
        (Some("claude"), Some("Trip planning"))
    );
    assert_eq!(claude["messageCount"], 2);
    let (_, gpt) = s.get(&format!("/api/chat/{}", ids[1])).await;
    assert_eq!(
        (gpt["source"].as_str(), gpt["title"].as_str()),
        (Some("chatgpt"), Some("My cat is named Miso."))
    );
    assert!(d
        .vault
        .join(format!("Chat/sessions/imported/chatgpt-{}.md", ids[1]))
        .is_file());

    // The first turn on the imported chat runs a real CLI session under that id,
    // seeded with the imported history.
    let ev = s
        .chat(json!({"message": "What is my cat called?", "sessionId": ids[1]}))
        .await;
    assert_eq!(ev.last().unwrap()["type"], "done", "{ev:#?}");
    assert_eq!(ev.last().unwrap()["sessionId"], ids[1].as_str());
    let body = fake.turn_requests()[0]["body"].to_string();
    assert!(body.contains("My cat is named Miso.") && body.contains("Miso is a great name."));
    assert!(
        !body.contains("sys\""),
        "system messages of the export are not history"
    );

    let (st, _) = s
        .send("POST", "/api/import", Some(json!({"archived": true})))
        .await;
    assert_eq!(st, 422, "data is required");
}

fn many(n: usize) -> serde_json::Value {
    let mut v: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            json!({"uuid": format!("00000000-0000-4000-8000-{:012}", i), "name": format!("Conversation {i}"),
                "chat_messages": [{"sender": "human", "text": format!("question {i}")}, {"sender": "assistant", "text": "answer"}]})
        })
        .collect();
    let at = 7.min(v.len());
    v.insert(at, json!({"broken": true}));
    serde_json::Value::from(v)
}

#[tokio::test]
async fn uploaded_exports_zip_or_json_are_read_entry_by_entry() {
    let d = Dirs::new();
    let s = Server::start(&d).await;
    let text = many(300).to_string();
    let (st, r) = upload_export(&s, export_zip(&text), "claude-export.zip").await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(
        (
            r["total_conversations"].as_u64(),
            r["imported_count"].as_u64()
        ),
        (Some(301), Some(300)),
        "{r}"
    );
    assert_eq!(r["errors"][0]["index"], 7);
    let (_, list) = s.get("/api/chat?limit=1000").await;
    assert_eq!(
        list["sessions"].as_array().unwrap().len(),
        300,
        "archived=false honoured"
    );
    let (_, again) = upload_export(&s, text.clone().into_bytes(), "conversations.json").await;
    assert_eq!(
        (
            again["imported_count"].as_u64(),
            again["skipped_count"].as_u64()
        ),
        (Some(0), Some(300))
    );

    // A truncated export imports what precedes the break and says where it broke.
    let d2 = Dirs::new();
    let s2 = Server::start(&d2).await;
    let cut = &text[..text.find("Conversation 20\"").unwrap()];
    let (st, r) = upload_export(&s2, cut.as_bytes().to_vec(), "conversations.json").await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["imported_count"], 20, "{r}");
    assert!(
        r["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["error"].as_str().unwrap().contains("invalid export JSON")),
        "{r}"
    );
    let (st, _) = upload_export(&s2, vec![1, 2, 3, 4], "junk.bin").await;
    assert_eq!(st, 400);
    let (st, _) = upload_export(&s2, export_zip("[]")[..10].to_vec(), "broken.zip").await;
    assert_eq!(st, 400);

    // An export stored in the vault; paths outside are refused.
    std::fs::create_dir_all(d2.vault.join("Imports")).unwrap();
    std::fs::write(d2.vault.join("Imports/c.json"), many(3).to_string()).unwrap();
    let (st, r) = s2
        .send("POST", "/api/import/path?path=Imports/c.json", None)
        .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["total_conversations"], 4);
    assert_eq!(
        s2.send("POST", "/api/import/path?path=../../etc/passwd", None)
            .await
            .0,
        403
    );
    assert_eq!(
        s2.send("POST", "/api/import/path?path=Imports/none.json", None)
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn sync_recovers_sessions_from_cli_transcripts_after_losing_the_store() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    let d = Dirs::new();
    let mut s = chat_server(&d, &fake, &[]).await;
    let ev = s
        .chat(json!({"message": "Please remember this session."}))
        .await;
    let id = ev.last().unwrap()["sessionId"]
        .as_str()
        .unwrap()
        .to_string();
    s.stop().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", d.db_path().display()));
    }
    let s = chat_server(&d, &fake, &[]).await;
    assert_eq!(
        s.get(&format!("/api/chat/{id}")).await.0,
        404,
        "the store was lost"
    );
    let (st, r) = s.send("POST", "/api/import/sync", None).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(
        (r["discovered"].as_u64(), r["synced"].as_u64()),
        (Some(1), Some(1)),
        "{r}"
    );
    let (_, row) = s.get(&format!("/api/chat/{id}")).await;
    assert_eq!(row["title"], "Please remember this session.");
    assert_eq!(row["messageCount"], 2);
    let (_, again) = s.send("POST", "/api/import/sync?force=true", None).await;
    assert_eq!(
        (again["synced"].as_u64(), again["updated"].as_u64()),
        (Some(0), Some(1))
    );
    // And the recovered session resumes.
    let ev = s
        .chat(json!({"message": "still there?", "sessionId": id}))
        .await;
    assert_eq!(ev[0]["resumeInfo"]["method"], "sdk_resume");
    assert_eq!(ev.last().unwrap()["type"], "done");
}

#[tokio::test]
async fn import_contexts_lists_native_context_files() {
    let d = Dirs::new();
    let dir = d.vault.join("Chat/contexts");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("me.md"), "---\ndescription: About me\n---\n# Me\n\n## Facts\n- likes tea\n- lives in Lisbon\n\n## Current Focus\n- a trip\n\n## History\n- 2025: moved\n").unwrap();
    std::fs::write(dir.join("notes.md"), "plain notes").unwrap();
    let s = Server::start(&d).await;
    let (st, v) = s.get("/api/import/contexts").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (
            v["total_facts"].as_u64(),
            v["total_history_entries"].as_u64()
        ),
        (Some(2), Some(1))
    );
    let me = &v["files"][0];
    assert_eq!(me["path"], "Chat/contexts/me.md");
    assert_eq!(
        (
            me["description"].as_str(),
            me["focus_count"].as_u64(),
            me["is_native_format"].as_bool()
        ),
        (Some("About me"), Some(1), Some(true))
    );
    assert_eq!(v["files"][1]["is_native_format"], false);
}
