//! `POST /api/import`: Claude.ai and ChatGPT exports become sessions whose history seeds
//! their first real turn; bad entries are reported, re-imports skipped.

use serde_json::json;

use crate::support::fake_anthropic::FakeAnthropic;
use crate::support::{chat_env, Dirs, Opts, Server, CLI_SLOTS};

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
    let s = Server::start_with(
        &d,
        Opts {
            env: chat_env(&fake),
            ..Default::default()
        },
    )
    .await;
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
