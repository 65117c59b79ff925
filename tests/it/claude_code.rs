//! Claude Code import: a real CLI transcript (made by a first server) is listed, shown
//! and adopted by a second server, where the session resumes through the real CLI.

use serde_json::json;

use crate::support::fake_anthropic::{FakeAnthropic, FakeTurn};
use crate::support::{chat_env, chat_server, Dirs, Opts, Server, CLI_SLOTS};

#[tokio::test]
async fn claude_code_sessions_are_listed_and_adopted_and_resume() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    fake.script(vec![
        FakeTurn::text("Noted: pineapple."),
        FakeTurn::text("The word was pineapple."),
    ]);
    let d1 = Dirs::new();
    let s1 = chat_server(&d1, &fake, &[]).await;
    let ev = s1
        .chat(json!({"message": "Remember the word pineapple."}))
        .await;
    let id = ev.last().unwrap()["sessionId"]
        .as_str()
        .unwrap()
        .to_string();
    drop(s1);

    // A second Parachute whose "Claude Code" is the first one's CLI config dir.
    let d2 = Dirs::new();
    let mut env = chat_env(&fake);
    env.push((
        "CLAUDE_CODE_DIR".into(),
        d1.home.join("claude").display().to_string(),
    ));
    let s2 = Server::start_with(
        &d2,
        Opts {
            env,
            ..Default::default()
        },
    )
    .await;
    let (st, p) = s2.get("/api/claude-code/projects").await;
    assert_eq!(st, 200, "{p}");
    assert_eq!(p["projects"].as_array().unwrap().len(), 1, "{p}");
    let project = p["projects"][0]["path"].as_str().unwrap().to_string();
    assert_eq!(
        project,
        d1.vault.canonicalize().unwrap().display().to_string()
    );
    assert_eq!(p["projects"][0]["sessionCount"], 1);

    let (_, r) = s2.get("/api/claude-code/recent?limit=5").await;
    let info = &r["sessions"][0];
    let keys: Vec<&String> = info.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "sessionId",
            "title",
            "firstMessage",
            "messageCount",
            "model",
            "cwd",
            "projectPath",
            "projectDisplayName",
            "createdAt",
            "lastTimestamp"
        ]
    );
    assert_eq!(info["sessionId"], id.as_str());
    assert_eq!(info["firstMessage"], "Remember the word pineapple.");
    assert_eq!(info["messageCount"], 2);
    let (_, by_project) = s2
        .get(&format!("/api/claude-code/sessions?path={project}"))
        .await;
    assert_eq!(by_project["sessions"].as_array().unwrap().len(), 1);
    let (st, detail) = s2.get(&format!("/api/claude-code/sessions/{id}")).await;
    assert_eq!(st, 200);
    assert_eq!(
        detail["messages"][0],
        json!({"type": "user", "content": "Remember the word pineapple.", "timestamp": detail["messages"][0]["timestamp"]})
    );
    assert_eq!(detail["messages"][1]["content"], "Noted: pineapple.");
    assert_eq!(
        s2.get("/api/claude-code/sessions/00000000-0000-0000-0000-000000000000")
            .await
            .0,
        404
    );
    assert_eq!(s2.get("/api/claude-code/sessions/..").await.0, 404);
    assert_eq!(s2.get("/api/claude-code/recent?limit=0").await.0, 422);

    let (st, a) = s2
        .send("POST", &format!("/api/claude-code/adopt/{id}"), None)
        .await;
    assert_eq!(st, 200, "{a}");
    assert_eq!(
        (
            a["success"].as_bool(),
            a["alreadyAdopted"].as_bool(),
            a["messageCount"].as_i64()
        ),
        (Some(true), Some(false), Some(2))
    );
    assert_eq!(a["parachuteSessionId"], id.as_str());
    let (_, again) = s2
        .send("POST", &format!("/api/claude-code/adopt/{id}"), None)
        .await;
    assert_eq!(again["alreadyAdopted"], true);
    let (_, row) = s2.get(&format!("/api/chat/{id}")).await;
    assert_eq!(row["source"], "claude-code");
    assert_eq!(row["messages"].as_array().unwrap().len(), 2, "{row}");

    let ev = s2
        .chat(json!({"message": "What was the word?", "sessionId": id}))
        .await;
    assert_eq!(ev[0]["resumeInfo"]["method"], "sdk_resume", "{ev:#?}");
    assert_eq!(
        ev.last().unwrap()["response"],
        "The word was pineapple.",
        "{ev:#?}"
    );
    let last = fake.turn_requests().last().unwrap()["body"]["messages"].to_string();
    assert!(
        last.contains("Remember the word pineapple."),
        "the adopted history reached the model"
    );
}
