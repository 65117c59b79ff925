//! Chat turns through the real Claude CLI against the fake model API.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::fake_anthropic::{FakeAnthropic, FakeTurn, DEFAULT_REPLY};
use crate::support::{
    chat_env, chat_server, chat_server_without_credential, cli_children, last_user_text, parse_sse,
    read_rest, read_until, seed_sessions, types, wait_until, Dirs, Opts, Server, CLI_SLOTS,
};

#[tokio::test]
async fn new_chat_streams_the_contract_events_and_persists_the_session() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    let d = Dirs::new();
    let s = chat_server(&d, &fake, &[]).await;
    let ev = s
        .chat(json!({"message": "Hello! First message of a new session.", "sessionId": "new"}))
        .await;
    let t = types(&ev);
    assert!(t.len() >= 8, "{t:?}\n{ev:#?}");
    assert_eq!(
        t[..6],
        [
            "session",
            "prompt_metadata",
            "user_message",
            "session",
            "init",
            "model"
        ],
        "{ev:#?}"
    );
    assert_eq!(t.last().unwrap(), "done", "{ev:#?}");
    assert!(t[6..t.len() - 1].iter().all(|x| x == "text"), "{t:?}");

    assert_eq!(ev[0]["sessionId"], Value::Null);
    assert_eq!(
        ev[0]["resumeInfo"],
        json!({"method": "new", "is_new_session": true, "previous_message_count": 0, "sdk_session_available": true})
    );
    let id = ev[3]["sessionId"]
        .as_str()
        .expect("second session event carries the id")
        .to_string();
    assert_eq!(
        ev[2],
        json!({"type": "user_message", "content": "Hello! First message of a new session."})
    );
    assert!(
        ev[4]["tools"]
            .as_array()
            .is_some_and(|t| t.iter().any(|x| x == "Write")),
        "{}",
        ev[4]
    );
    let texts: Vec<&Value> = ev.iter().filter(|e| e["type"] == "text").collect();
    assert_eq!(texts.last().unwrap()["content"], DEFAULT_REPLY);
    let done = ev.last().unwrap();
    for k in [
        "response",
        "sessionId",
        "workingDirectory",
        "messageCount",
        "model",
        "durationMs",
        "spawned",
        "toolCalls",
        "permissionDenials",
        "sessionResume",
    ] {
        assert!(done.get(k).is_some(), "done lacks {k}: {done}");
    }
    assert_eq!(done["response"], DEFAULT_REPLY);
    assert_eq!(done["sessionId"], id.as_str());
    assert_eq!(done["messageCount"], 2);
    let model = done["model"].as_str().unwrap().to_string();

    // The session is stored with its title, count and model (the original never stored the model).
    let (st, row) = s.get(&format!("/api/chat/{id}")).await;
    assert_eq!(st, 200);
    assert_eq!(row["title"], "Hello! First message of a new session.");
    assert_eq!(row["messageCount"], 2);
    assert_eq!(row["model"], model.as_str());
    let msgs = row["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 2, "{row:#}");
    assert_eq!(
        (msgs[0]["role"].as_str(), msgs[0]["content"].as_str()),
        (Some("user"), Some("Hello! First message of a new session."))
    );
    assert_eq!(
        (msgs[1]["role"].as_str(), msgs[1]["content"].as_str()),
        (Some("assistant"), Some(DEFAULT_REPLY))
    );
    assert!(msgs[0]["timestamp"].is_string());
    let (st, tr) = s.get(&format!("/api/chat/{id}/transcript")).await;
    assert_eq!(st, 200);
    let keys: Vec<&String> = tr.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "sessionId",
            "events",
            "model",
            "cwd",
            "eventCount",
            "totalEventCount",
            "segments",
            "segmentCount",
            "loadedSegmentIndex"
        ]
    );
    assert_eq!(tr["segmentCount"], 1);
    assert_eq!(tr["loadedSegmentIndex"], 0);
    assert_eq!(
        tr["segments"][0]["preview"],
        "Hello! First message of a new session."
    );
    assert!(tr["eventCount"].as_u64().unwrap() >= 2);
    assert_eq!(
        s.get("/api/chat/nope/transcript").await,
        (404, json!({"detail": "Transcript not found"}))
    );
    // The credential reached the model API only as a header, and only through the CLI.
    let reqs = fake.turn_requests();
    assert_eq!(reqs.len(), 1);
    assert!(reqs[0]["headers"]["x-api-key"]
        .as_str()
        .unwrap()
        .starts_with("<masked"));
    assert!(last_user_text(&reqs[0]).contains("Hello! First message of a new session."));
}

#[tokio::test]
async fn second_turn_is_warm_and_a_restart_resumes_the_transcript() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    fake.script(vec![
        FakeTurn::text("Noted: the number is 42."),
        FakeTurn::text("You gave me 42."),
        FakeTurn::text("Still 42."),
    ]);
    let d = Dirs::new();
    let mut s = chat_server(&d, &fake, &[]).await;
    let ev = s.chat(json!({"message": "Remember the number 42."})).await;
    let id = ev.last().unwrap()["sessionId"]
        .as_str()
        .unwrap()
        .to_string();
    let ev2 = s
        .chat(json!({"message": "Which number did I give you?", "sessionId": id}))
        .await;
    assert_eq!(
        types(&ev2)[..3],
        ["session", "prompt_metadata", "user_message"]
    );
    assert_eq!(ev2[0]["sessionId"], id.as_str());
    assert_eq!(ev2[0]["resumeInfo"]["method"], "sdk_resume");
    let done = ev2.last().unwrap();
    assert_eq!(done["type"], "done", "{ev2:#?}");
    assert_eq!(done["response"], "You gave me 42.");
    assert_eq!(done["messageCount"], 4);
    let reqs = fake.turn_requests();
    let second = last_user_text(reqs.last().unwrap());
    assert!(
        second.contains("Remember the number 42.") && second.contains("Noted: the number is 42."),
        "history sent: {second}"
    );
    let (_, h) = s.get("/api/health?detailed=true").await;
    assert_eq!(
        h["chat"]["spawned"], 1,
        "the second turn used the warm process: {h}"
    );

    // After a restart there is no warm process: the CLI resumes from its transcript.
    s.stop().await;
    let s = chat_server(&d, &fake, &[]).await;
    let ev3 = s
        .chat(json!({"message": "And now?", "sessionId": id}))
        .await;
    assert_eq!(ev3.last().unwrap()["response"], "Still 42.", "{ev3:#?}");
    let third = last_user_text(fake.turn_requests().last().unwrap());
    assert!(
        third.contains("Remember the number 42.") && third.contains("You gave me 42."),
        "{third}"
    );
    let (_, h) = s.get("/api/health?detailed=true").await;
    assert_eq!(h["chat"]["spawned"], 1);
    let (_, row) = s.get(&format!("/api/chat/{id}")).await;
    assert_eq!(row["messageCount"], 6);

    // Usage recorded equals what the fake reported: 120 in / 12 out per turn.
    let (st, u) = s.get(&format!("/api/usage/sessions/{id}")).await;
    assert_eq!(st, 200, "{u}");
    assert_eq!(u["total"]["inputTokens"], 360, "{u}");
    assert_eq!(u["total"]["outputTokens"], 36, "{u}");
    assert_eq!(u["byModel"].as_array().unwrap().len(), 1);
    let (_, all) = s.get("/api/usage/sessions").await;
    assert_eq!(all["sessions"][0]["sessionId"], id.as_str());
    // Each turn is charged for itself, not the running total of its process.
    let mut conn = sqlx::ConnectOptions::connect(
        &sqlx::sqlite::SqliteConnectOptions::new().filename(d.db_path()),
    )
    .await
    .unwrap();
    let costs: Vec<(f64,)> =
        sqlx::query_as("SELECT cost_usd FROM usage WHERE session_id = ? ORDER BY id")
            .bind(&id)
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(costs.len(), 3);
    assert!(costs[0].0 > 0.0, "{costs:?}");
    assert!(
        (costs[1].0 - costs[0].0).abs() < costs[0].0 * 0.5,
        "per-turn cost, not cumulative: {costs:?}"
    );
}

#[tokio::test]
async fn account_quota_comes_from_the_provider_with_the_oauth_token() {
    let fake = FakeAnthropic::start().await;
    let d = Dirs::new();
    let s = chat_server(&d, &fake, &[]).await;
    let (st, v) = s.get("/api/usage").await;
    assert_eq!(st, 200);
    assert!(v["error"].as_str().unwrap().contains("OAuth token"), "{v}");
    assert_eq!(v["five_hour"], Value::Null);
    drop(s);
    let mut env = chat_env(&fake);
    env.push((
        "CLAUDE_CODE_OAUTH_TOKEN".into(),
        "sk-ant-oat01-quota-test".into(),
    ));
    let s = Server::start_with(
        &d,
        Opts {
            env,
            ..Default::default()
        },
    )
    .await;
    let (st, v) = s.get("/api/usage").await;
    assert_eq!(st, 200);
    assert_eq!(v["error"], Value::Null, "{v}");
    assert_eq!(
        v["five_hour"],
        json!({"utilization": 12.5, "resets_at": "2026-11-25T20:00:00Z"})
    );
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "five_hour",
            "seven_day",
            "seven_day_sonnet",
            "seven_day_opus",
            "extra_usage",
            "subscription_type",
            "rate_limit_tier",
            "error"
        ]
    );
    let req = fake
        .requests()
        .into_iter()
        .find(|r| r["path"] == "/api/oauth/usage")
        .unwrap();
    assert!(req["headers"]["authorization"]
        .as_str()
        .unwrap()
        .starts_with("<masked"));
    assert!(!s.log_text().contains("sk-ant-oat01-quota-test"));
}

#[tokio::test]
async fn a_write_tool_call_creates_the_file_and_streams_tool_events() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    let d = Dirs::new();
    let target = d
        .vault
        .canonicalize()
        .unwrap()
        .join("Notes")
        .join("hello.md");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    fake.script(vec![
        FakeTurn::tool("Write", json!({"file_path": target.display().to_string(), "content": "hello from the fake model\n"})),
        FakeTurn::text("Done: wrote hello.md."),
    ]);
    let s = chat_server(&d, &fake, &[]).await;
    let ev = s
        .chat(json!({"message": "Please write Notes/hello.md"}))
        .await;
    let t = types(&ev);
    assert!(
        t.contains(&"tool_use".to_string()) && t.contains(&"tool_result".to_string()),
        "{ev:#?}"
    );
    let tu = ev.iter().find(|e| e["type"] == "tool_use").unwrap();
    assert_eq!(tu["tool"]["name"], "Write");
    let tr = ev.iter().find(|e| e["type"] == "tool_result").unwrap();
    assert_eq!(tr["toolUseId"], tu["tool"]["id"]);
    assert_eq!(tr["isError"], false, "{tr}");
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "hello from the fake model\n"
    );
    let done = ev.last().unwrap();
    assert_eq!(done["response"], "Done: wrote hello.md.");
    assert_eq!(done["toolCalls"][0]["name"], "Write");
}

#[tokio::test]
async fn refusals_are_error_events() {
    let fake = FakeAnthropic::start().await;
    let d = Dirs::new();
    let ids = seed_sessions(&d, 1, |_, _| {}).await;
    // No credential at all: the error says how to set one.
    let s = chat_server_without_credential(&d, &fake, &[]).await;
    let ev = s.chat(json!({"message": "hi"})).await;
    let err = ev.last().unwrap();
    assert_eq!(err["type"], "error", "{ev:#?}");
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains("parachute setup-token"),
        "{err}"
    );

    let ev = s.chat(json!({"message": ""})).await;
    assert_eq!(
        ev,
        vec![json!({"type": "error", "error": "message is required"})]
    );
    let ev = s.chat(json!({"message": "x".repeat(102_401)})).await;
    assert_eq!(
        ev,
        vec![
            json!({"type": "error", "error": "Message too long: 102401 chars (the limit is 102400 characters, max_message_length)"})
        ]
    );
    let ev = s
        .chat(json!({"message": "hi", "sessionId": "00000000-0000-0000-0000-000000000000"}))
        .await;
    assert_eq!(types(&ev), ["error"], "no ghost session");
    assert!(ev[0]["error"]
        .as_str()
        .unwrap()
        .contains("Session not found"));
    assert_eq!(
        s.get("/api/chat").await.1["sessions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        s.send("DELETE", &format!("/api/chat/{}", ids[0]), None)
            .await
            .0,
        200
    );
    let ev = s.chat(json!({"message": "hi", "sessionId": ids[0]})).await;
    assert!(
        ev[0]["error"].as_str().unwrap().contains("deleted"),
        "{ev:?}"
    );
    assert_eq!(
        s.get(&format!("/api/chat/{}", ids[0])).await.0,
        404,
        "deleted sessions stay deleted"
    );
    let ev = s.chat(json!({"message": "hi", "trustLevel": "root"})).await;
    assert_eq!(ev.last().unwrap()["type"], "error");

    let r = s.open_chat(json!({"text": "no message"})).await;
    assert_eq!(r.status(), 422);
    let r = s.open_chat(json!({"message": 42})).await;
    assert_eq!(r.status(), 422);
}

#[tokio::test]
async fn a_disconnected_client_reattaches_and_replays_every_event_once() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    fake.script(vec![FakeTurn::text(
        "one two three four five six seven eight nine ten",
    )
    .slow(10, Duration::from_millis(150))]);
    let d = Dirs::new();
    let s = chat_server(&d, &fake, &[]).await;
    let mut r = s.open_chat(json!({"message": "count slowly"})).await;
    // Read until the first text event, then drop the connection.
    let mut seen = String::new();
    read_until(&mut r, &mut seen, "text").await;
    drop(r);
    let first = parse_sse(&seen);
    let id = first
        .iter()
        .find(|(_, e)| e["type"] == "session" && e["sessionId"].is_string())
        .unwrap()
        .1["sessionId"]
        .as_str()
        .unwrap()
        .to_string();
    let last_seen = first.last().unwrap().0.unwrap();
    assert_eq!(
        s.get(&format!("/api/chat/{id}/stream-status")).await.1["active"],
        true
    );
    let (_, active) = s.get("/api/chat/active-streams").await;
    assert_eq!(active["streams"][0]["session_id"], id.as_str());

    let r = s
        .client
        .get(s.url(&format!("/api/chat/{id}/stream")))
        .header("Last-Event-ID", last_seen.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rest = parse_sse(&r.text().await.unwrap());
    let ids: Vec<u64> = first
        .iter()
        .chain(rest.iter())
        .map(|(i, _)| i.unwrap())
        .collect();
    let expected: Vec<u64> = (1..=ids.len() as u64).collect();
    assert_eq!(ids, expected, "every event exactly once, in order");
    let all: Vec<Value> = first.into_iter().chain(rest).map(|(_, e)| e).collect();
    assert_eq!(all.last().unwrap()["type"], "done");
    assert_eq!(
        all.last().unwrap()["response"],
        "one two three four five six seven eight nine ten"
    );
    assert_eq!(
        s.get(&format!("/api/chat/{id}/stream-status")).await.1["active"],
        false
    );
}

#[tokio::test]
async fn abort_interrupts_the_turn_and_ends_with_done() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    fake.script(vec![
        FakeTurn::text(&"word ".repeat(40)).slow(40, Duration::from_millis(200))
    ]);
    let d = Dirs::new();
    let s = chat_server(&d, &fake, &[]).await;
    let mut r = s
        .open_chat(json!({"message": "talk for a long time"}))
        .await;
    let mut seen = String::new();
    read_until(&mut r, &mut seen, "text").await;
    let id = parse_sse(&seen)
        .iter()
        .find(|(_, e)| e["type"] == "session" && e["sessionId"].is_string())
        .unwrap()
        .1["sessionId"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, v) = s.send("POST", &format!("/api/chat/{id}/abort"), None).await;
    assert_eq!(
        (st, v),
        (
            200,
            json!({"success": true, "message": "Stream abort signal sent", "sessionId": id})
        )
    );
    while let Some(chunk) = r.chunk().await.unwrap() {
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let ev: Vec<Value> = parse_sse(&seen).into_iter().map(|(_, e)| e).collect();
    let done = ev.last().unwrap();
    assert_eq!(done["type"], "done", "{ev:#?}");
    let partial = done["response"].as_str().unwrap();
    assert!(
        partial.starts_with("word") && partial.len() < "word ".repeat(40).len(),
        "partial: {partial:?}"
    );
    let (st, _) = s.send("POST", &format!("/api/chat/{id}/abort"), None).await;
    assert_eq!(st, 404, "nothing runs any more");
    // The session is still usable.
    let ev = s
        .chat(json!({"message": "are you there?", "sessionId": id}))
        .await;
    assert_eq!(ev.last().unwrap()["type"], "done", "{ev:#?}");
}

#[tokio::test]
async fn ask_user_question_reaches_the_client_and_the_answer_reaches_the_model() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    let questions = json!([{"question": "Which colour do you like?", "header": "Colour", "multiSelect": false,
        "options": [{"label": "Red", "description": "warm"}, {"label": "Blue", "description": "cool"}]}]);
    fake.script(vec![
        FakeTurn::tool("AskUserQuestion", json!({"questions": questions})),
        FakeTurn::text("Blue it is."),
    ]);
    let d = Dirs::new();
    let s = chat_server(&d, &fake, &[]).await;
    let mut r = s.open_chat(json!({"message": "ask me something"})).await;
    let mut seen = String::new();
    let q = read_until(&mut r, &mut seen, "user_question").await;
    let sid = q["sessionId"].as_str().unwrap().to_string();
    let rid = q["requestId"].as_str().unwrap().to_string();
    assert!(rid.starts_with(&format!("{sid}-q-")), "{q}");
    assert_eq!(q["questions"], questions);
    let (st, _) = s
        .send(
            "POST",
            &format!("/api/chat/{sid}/answer"),
            Some(json!({"request_id": "nope", "answers": {}})),
        )
        .await;
    assert_eq!(st, 404, "a wrong request id is refused");
    let (st, v) = s
        .send(
            "POST",
            &format!("/api/chat/{sid}/answer"),
            Some(json!({"answers": {}})),
        )
        .await;
    assert_eq!((st, v), (400, json!({"detail": "request_id is required"})));
    let (st, v) = s
        .send(
            "POST",
            &format!("/api/chat/{sid}/answer"),
            Some(json!({"request_id": rid, "answers": {"Which colour do you like?": "Blue"}})),
        )
        .await;
    assert_eq!(
        (st, v),
        (
            200,
            json!({"success": true, "message": "Answers submitted", "session_id": sid, "request_id": rid})
        )
    );
    let ev = read_rest(&mut r, &mut seen).await;
    assert_eq!(ev.last().unwrap()["response"], "Blue it is.", "{ev:#?}");
    let last = last_user_text(fake.turn_requests().last().unwrap());
    assert!(
        last.contains("Blue"),
        "the answer reached the model: {last}"
    );
}

#[tokio::test]
async fn permission_prompts_are_answered_by_the_owner() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    let d = Dirs::new();
    let vault = d.vault.canonicalize().unwrap();
    let denied = vault.join("denied.md");
    let allowed = vault.join("allowed.md");
    fake.script(vec![
        FakeTurn::tool(
            "Write",
            json!({"file_path": denied.display().to_string(), "content": "no\n"}),
        ),
        FakeTurn::text("Could not write."),
        FakeTurn::tool(
            "Write",
            json!({"file_path": allowed.display().to_string(), "content": "yes\n"}),
        ),
        FakeTurn::text("Wrote it."),
    ]);
    // A session whose owner turned trust mode off: every guarded tool call is asked.
    let ids = seed_sessions(&d, 1, |_, s| {
        s.metadata = Some(json!({"permissions": {"trustMode": false}}).to_string())
    })
    .await;
    let id = ids[0].clone();
    let s = chat_server(&d, &fake, &[]).await;

    let mut r = s
        .open_chat(json!({"message": "write denied.md", "sessionId": id}))
        .await;
    let mut seen = String::new();
    let p = read_until(&mut r, &mut seen, "permission_request").await;
    assert_eq!(p["toolName"], "Write");
    assert_eq!(p["permissionType"], "write");
    assert_eq!(p["filePath"], denied.display().to_string());
    let pid = p["id"].as_str().unwrap().to_string();
    let (_, pending) = s.get(&format!("/api/chat/{id}/permissions")).await;
    assert_eq!(pending["pending"][0]["id"], pid.as_str());
    let (st, v) = s
        .send(
            "POST",
            &format!("/api/chat/{id}/permissions/grant"),
            Some(json!({"requestId": "wrong"})),
        )
        .await;
    assert_eq!(
        (st, v),
        (
            404,
            json!({"detail": "Permission request not found or already resolved"})
        )
    );
    let (st, v) = s
        .send(
            "POST",
            &format!("/api/chat/{id}/permissions/deny"),
            Some(json!({"requestId": pid})),
        )
        .await;
    assert_eq!(
        (st, v),
        (
            200,
            json!({"success": true, "sessionId": id, "requestId": pid})
        )
    );
    let ev = read_rest(&mut r, &mut seen).await;
    assert_eq!(ev.last().unwrap()["type"], "done", "{ev:#?}");
    assert!(!denied.exists(), "a denied write must not happen");
    let tr = ev
        .iter()
        .find(|e| e["type"] == "tool_result")
        .expect("tool_result event");
    assert_eq!(tr["isError"], true);
    let seen_by_model = last_user_text(fake.turn_requests().last().unwrap());
    assert!(
        seen_by_model.contains("The owner denied this tool call."),
        "{seen_by_model}"
    );
    assert_eq!(
        s.get(&format!("/api/chat/{id}/permissions")).await.1["pending"],
        json!([]),
        "nothing leaks"
    );

    let mut r = s
        .open_chat(json!({"message": "write allowed.md", "sessionId": id}))
        .await;
    let mut seen = String::new();
    let p = read_until(&mut r, &mut seen, "permission_request").await;
    let pid = p["id"].as_str().unwrap().to_string();
    let (st, v) = s
        .send(
            "POST",
            &format!("/api/chat/{id}/permissions/grant"),
            Some(json!({"requestId": pid, "pattern": "allowed.md"})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["pattern"], "allowed.md");
    let ev = read_rest(&mut r, &mut seen).await;
    assert_eq!(ev.last().unwrap()["response"], "Wrote it.", "{ev:#?}");
    assert_eq!(std::fs::read_to_string(&allowed).unwrap(), "yes\n");
}

#[tokio::test]
async fn a_killed_cli_is_replaced_and_the_session_resumes() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    fake.script(vec![
        FakeTurn::text("Noted: blue."),
        FakeTurn::text("It was blue."),
    ]);
    let d = Dirs::new();
    let s = chat_server(&d, &fake, &[]).await;
    let ev = s.chat(json!({"message": "My colour is blue."})).await;
    let id = ev.last().unwrap()["sessionId"]
        .as_str()
        .unwrap()
        .to_string();
    let kids = cli_children(s.pid());
    assert_eq!(kids.len(), 1, "one warm CLI: {kids:?}");
    parachute_core::util::sys::send_signal(kids[0], parachute_core::util::sys::Signal::Kill);
    // Dead (a zombie until the server reaps it) before the next turn.
    let dead = || {
        std::fs::read_to_string(format!("/proc/{}/stat", kids[0]))
            .map(|st| st.contains(") Z"))
            .unwrap_or(true)
    };
    assert!(
        wait_until(Duration::from_secs(5), dead).await,
        "the killed CLI is dead"
    );
    // No pause: right after the SIGKILL the server may not have noticed the exit yet
    // and reuse the dead process; the turn then retries with a fresh one.
    let ev = s
        .chat(json!({"message": "What was my colour?", "sessionId": id}))
        .await;
    assert_eq!(ev.last().unwrap()["response"], "It was blue.", "{ev:#?}");
    let history = last_user_text(fake.turn_requests().last().unwrap());
    assert!(
        history.contains("My colour is blue.") && history.contains("Noted: blue."),
        "{history}"
    );
    let (_, h) = s.get("/api/health?detailed=true").await;
    assert_eq!(h["chat"]["spawned"], 2, "{h}");
}

#[tokio::test]
async fn the_warm_pool_is_bounded_and_idle_processes_are_evicted() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    let d = Dirs::new();
    let mut env = chat_env(&fake);
    env.push(("WARM_POOL_SIZE".into(), "1".into()));
    env.push(("WARM_IDLE_SECS".into(), "3".into()));
    let mut s = Server::start_with(
        &d,
        Opts {
            env,
            ..Default::default()
        },
    )
    .await;
    let a = s
        .chat(json!({"message": "first session"}))
        .await
        .last()
        .unwrap()["sessionId"]
        .as_str()
        .unwrap()
        .to_string();
    let b = s.chat(json!({"message": "second session"})).await;
    assert_eq!(b.last().unwrap()["type"], "done");
    let (_, h) = s.get("/api/health?detailed=true").await;
    assert_eq!(
        (h["chat"]["spawned"].as_u64(), h["chat"]["warm"].as_u64()),
        (Some(2), Some(1)),
        "{h}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while cli_children(s.pid()).len() > 1 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        cli_children(s.pid()).len(),
        1,
        "the evicted process is gone"
    );
    // Session A's process was evicted: its next turn spawns (and resumes).
    let ev = s
        .chat(json!({"message": "back to the first", "sessionId": a}))
        .await;
    assert_eq!(ev.last().unwrap()["type"], "done", "{ev:#?}");
    assert_eq!(
        s.get("/api/health?detailed=true").await.1["chat"]["spawned"],
        3
    );
    // Idle processes go after WARM_IDLE_SECS.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while s.get("/api/health?detailed=true").await.1["chat"]["warm"] != 0
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        s.get("/api/health?detailed=true").await.1["chat"]["warm"],
        0
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !cli_children(s.pid()).is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(cli_children(s.pid()).is_empty());
    // Shutdown leaves no CLI behind.
    let _ = s.chat(json!({"message": "one more", "sessionId": a})).await;
    let kids = cli_children(s.pid());
    assert_eq!(kids.len(), 1);
    s.stop().await;
    let gone = || {
        !std::path::Path::new(&format!("/proc/{}", kids[0])).exists()
            || std::fs::read_to_string(format!("/proc/{}/stat", kids[0]))
                .unwrap_or_default()
                .contains(") Z")
    };
    assert!(
        wait_until(Duration::from_secs(5), gone).await,
        "CLI killed on shutdown"
    );
}

fn request_text(req: &Value) -> String {
    req["body"].to_string()
}

#[tokio::test]
async fn context_initial_context_and_attachments_reach_the_model() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    let d = Dirs::new();
    std::fs::create_dir_all(d.vault.join("Projects")).unwrap();
    std::fs::write(
        d.vault.join("Projects/CLAUDE.md"),
        "Project rule: always say banana.",
    )
    .unwrap();
    std::fs::create_dir_all(d.vault.join("Notes")).unwrap();
    std::fs::write(d.vault.join("Notes/a.md"), "Note A says the sky is green.").unwrap();
    let s = chat_server(&d, &fake, &[]).await;
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD.encode("col1,col2\n1,2\n");
    let ev = s
        .chat(json!({"message": "What do my notes say?", "contexts": ["Projects", "Notes/a.md"],
            "initialContext": "I am planning a trip.", "priorConversation": "User: earlier chat about apples",
            "attachments": [{"id": "a1", "fileName": "data.csv", "filePath": "", "mimeType": "text/csv", "sizeBytes": 14,
                "type": "file", "base64Data": data}]}))
        .await;
    assert_eq!(ev.last().unwrap()["type"], "done", "{ev:#?}");
    let meta = ev.iter().find(|e| e["type"] == "prompt_metadata").unwrap();
    assert_eq!(
        meta["contextFiles"],
        json!(["Projects/CLAUDE.md", "Notes/a.md"])
    );
    assert!(meta["contextTokens"].as_u64().unwrap() > 0);
    assert_eq!(
        ev.iter().find(|e| e["type"] == "user_message").unwrap()["content"],
        "What do my notes say?"
    );
    let body = request_text(&fake.turn_requests()[0]);
    for needle in [
        "Project rule: always say banana.",
        "Note A says the sky is green.",
        "## Project Knowledge",
        "<prior_conversation>",
        "earlier chat about apples",
        "## Context\\n\\nI am planning a trip.",
        "## Request\\n\\nWhat do my notes say?",
        "## Attachments",
        "data.csv",
    ] {
        assert!(
            body.contains(needle),
            "{needle} missing from the model request"
        );
    }
    let day = std::fs::read_dir(d.vault.join("Chat/assets"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let saved = std::fs::read_dir(&day)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(saved
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .ends_with("_data.csv"));
    assert_eq!(std::fs::read_to_string(saved).unwrap(), "col1,col2\n1,2\n");
}

#[tokio::test]
async fn agent_files_and_bad_context_paths() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    let d = Dirs::new();
    std::fs::create_dir_all(d.vault.join("agents")).unwrap();
    std::fs::write(
        d.vault.join("agents/poet.md"),
        "---\nname: Poet\ndescription: rhymes\n---\nYou are a poet who answers in rhyme.\n",
    )
    .unwrap();
    let s = chat_server(&d, &fake, &[]).await;
    let ev = s
        .chat(json!({"message": "Say hi", "agentPath": "agents/poet.md"}))
        .await;
    assert_eq!(ev.last().unwrap()["type"], "done", "{ev:#?}");
    let meta = ev.iter().find(|e| e["type"] == "prompt_metadata").unwrap();
    assert_eq!(
        (meta["promptSource"].as_str(), meta["agentName"].as_str()),
        (Some("agent"), Some("Poet"))
    );
    assert_eq!(meta["promptSourcePath"], "agents/poet.md");
    assert!(request_text(&fake.turn_requests()[0]).contains("You are a poet who answers in rhyme."));

    let before = fake.turn_requests().len();
    for bad in [
        json!({"message": "x", "agentPath": "../../etc/passwd"}),
        json!({"message": "x", "agentPath": "/etc/passwd"}),
        json!({"message": "x", "contexts": ["../outside"]}),
        json!({"message": "x", "workingDirectory": "../../etc"}),
        json!({"message": "x", "workingDirectory": ".parachute"}),
    ] {
        let ev = s.chat(bad.clone()).await;
        assert_eq!(ev.last().unwrap()["type"], "error", "{bad}: {ev:#?}");
    }
    assert_eq!(
        fake.turn_requests().len(),
        before,
        "nothing reached the model"
    );
    let r = s.open_chat(json!({"message": "x", "attachments": [{"fileName": "virus.exe", "base64Data": "AAAA"}]})).await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("virus.exe"));
}

#[tokio::test]
async fn a_failing_model_api_gives_an_error_event_and_the_session_stays_usable() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    fake.script(vec![
        FakeTurn::text("First answer."),
        FakeTurn::error(500, "api_error", "boom"),
        FakeTurn::error(500, "api_error", "boom"),
        FakeTurn::error(500, "api_error", "boom"),
        FakeTurn::text("Back again."),
    ]);
    let d = Dirs::new();
    let s = chat_server(&d, &fake, &[]).await;
    let ev = s.chat(json!({"message": "hello"})).await;
    let id = ev.last().unwrap()["sessionId"]
        .as_str()
        .unwrap()
        .to_string();
    let ev = s
        .chat(json!({"message": "this one fails", "sessionId": id}))
        .await;
    let last = ev.last().unwrap();
    assert_eq!(last["type"], "error", "{ev:#?}");
    assert_eq!(last["sessionId"], id.as_str());
    // The CLI may retry the failing request; later turns reach the good reply.
    let mut ok = false;
    for _ in 0..4 {
        let ev = s
            .chat(json!({"message": "and now?", "sessionId": id}))
            .await;
        if ev.last().unwrap()["type"] == "done" {
            assert_eq!(ev.last().unwrap()["response"], "Back again.");
            ok = true;
            break;
        }
    }
    assert!(ok, "the session stayed usable");
}

#[tokio::test]
async fn sixteen_concurrent_chats_all_complete_with_all_events() {
    // This test alone starts 16 CLIs: hold both slots so no other CLI test overlaps.
    let _slots = CLI_SLOTS.acquire_many(2).await.unwrap();
    let fake = FakeAnthropic::start().await;
    let d = Dirs::new();
    // A cap of 8 CLI processes: the other 8 chats wait their turn (`queued`).
    let mut env = chat_env(&fake);
    env.push(("MAX_CLI_PROCESSES".into(), "8".into()));
    let s = Server::start_with(
        &d,
        Opts {
            env,
            ..Default::default()
        },
    )
    .await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let client = s.client.clone();
        let url = s.url("/api/chat");
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .json(&json!({"message": format!("parallel chat {i}")}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let ev: Vec<Value> = parse_sse(&r.text().await.unwrap())
                .into_iter()
                .map(|(_, e)| e)
                .collect();
            (i, ev)
        }));
    }
    let mut ids = std::collections::HashSet::new();
    let mut queued = 0;
    for t in tasks {
        let (i, ev) = t.await.unwrap();
        let mut t = types(&ev);
        // A waiting turn says so right after its session is known, before `init`.
        if t.get(4).map(String::as_str) == Some("queued") {
            queued += 1;
            t.remove(4);
        }
        assert!(!t.iter().any(|k| k == "queued"), "chat {i}: {t:?}");
        assert_eq!(
            t[..6],
            [
                "session",
                "prompt_metadata",
                "user_message",
                "session",
                "init",
                "model"
            ],
            "chat {i}: {ev:#?}"
        );
        let done = ev.last().unwrap();
        assert_eq!(done["type"], "done", "chat {i}: {ev:#?}");
        assert_eq!(done["response"], DEFAULT_REPLY);
        assert_eq!(ev[2]["content"], format!("parallel chat {i}"));
        ids.insert(done["sessionId"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 16, "16 distinct sessions");
    assert!(queued >= 1, "16 chats over a cap of 8: some waited");
    let (_, h) = s.get("/api/health?detailed=true").await;
    assert!(h["chat"]["processes"].as_u64().unwrap() <= 8, "{h}");
    assert!(h["chat"]["spawned"].as_u64().unwrap() >= 16, "{h}");
    let (_, list) = s.get("/api/chat?limit=100").await;
    assert_eq!(list["sessions"].as_array().unwrap().len(), 16);
}

#[tokio::test]
async fn a_stored_session_without_a_transcript_starts_fresh_with_its_history() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    let d = Dirs::new();
    let ids = seed_sessions(&d, 1, |_, s| s.source = "claude".into()).await;
    let id = ids[0].clone();
    let imported = d.vault.join("Chat/sessions/imported");
    std::fs::create_dir_all(&imported).unwrap();
    std::fs::write(imported.join(format!("claude-{id}.md")), "### Human | 2026-01-01\nMy dog is called Rex.\n\n### Assistant | 2026-01-01\nRex is a fine name.\n").unwrap();
    let s = chat_server(&d, &fake, &[]).await;
    let ev = s
        .chat(json!({"message": "What is my dog called?", "sessionId": id}))
        .await;
    assert_eq!(ev[0]["sessionId"], id.as_str());
    assert_eq!(ev[0]["resumeInfo"]["method"], "new");
    assert_eq!(ev[0]["resumeInfo"]["sdk_session_available"], false);
    let done = ev.last().unwrap();
    assert_eq!(done["type"], "done", "{ev:#?}");
    assert_eq!(done["sessionId"], id.as_str());
    assert_eq!(done["messageCount"], 4, "the stored count goes on");
    let body = request_text(&fake.turn_requests()[0]);
    assert!(
        body.contains("My dog is called Rex.") && body.contains("<prior_conversation>"),
        "history seeded"
    );
    // From now on the CLI has a transcript: the next turn resumes it.
    let ev = s.chat(json!({"message": "Thanks", "sessionId": id})).await;
    assert_eq!(ev[0]["resumeInfo"]["method"], "sdk_resume");
}

#[tokio::test]
async fn two_turns_on_one_session_run_one_after_the_other() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    fake.script(vec![
        FakeTurn::text("first"),
        FakeTurn::text("second reply, slowly").slow(5, Duration::from_millis(100)),
        FakeTurn::text("third"),
    ]);
    let d = Dirs::new();
    let s = chat_server(&d, &fake, &[]).await;
    let id = s.chat(json!({"message": "start"})).await.last().unwrap()["sessionId"]
        .as_str()
        .unwrap()
        .to_string();
    let (c1, c2) = (s.client.clone(), s.client.clone());
    let (u1, u2) = (s.url("/api/chat"), s.url("/api/chat"));
    let (id1, id2) = (id.clone(), id.clone());
    let a = tokio::spawn(async move {
        c1.post(u1)
            .json(&json!({"message": "A", "sessionId": id1}))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let b = tokio::spawn(async move {
        c2.post(u2)
            .json(&json!({"message": "B", "sessionId": id2}))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    let done = |t: &str| parse_sse(t).pop().unwrap().1;
    let mut counts = [
        done(&a)["messageCount"].as_i64().unwrap(),
        done(&b)["messageCount"].as_i64().unwrap(),
    ];
    counts.sort();
    assert_eq!(counts, [4, 6], "serialized, each counted: {a}\n{b}");
    let reqs = fake.turn_requests();
    let last = last_user_text(reqs.last().unwrap());
    assert!(
        last.contains("second reply, slowly"),
        "B saw A's complete exchange: {last}"
    );
    let (_, row) = s.get(&format!("/api/chat/{id}")).await;
    assert_eq!(row["messageCount"], 6);

    // Deleting the session ends its warm CLI.
    assert_eq!(
        s.send("DELETE", &format!("/api/chat/{id}"), None).await.0,
        200
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(8);
    while !cli_children(s.pid()).is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        cli_children(s.pid()).is_empty(),
        "the deleted session's CLI is gone"
    );
}

#[tokio::test]
async fn an_unanswered_permission_prompt_is_denied_after_the_timeout() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    let d = Dirs::new();
    let target = d.vault.canonicalize().unwrap().join("never.md");
    fake.script(vec![
        FakeTurn::tool(
            "Write",
            json!({"file_path": target.display().to_string(), "content": "x"}),
        ),
        FakeTurn::text("Gave up."),
    ]);
    let ids = seed_sessions(&d, 1, |_, s| {
        s.metadata = Some(json!({"permissions": {"trustMode": false}}).to_string())
    })
    .await;
    let mut env = chat_env(&fake);
    env.push(("PERMISSION_TIMEOUT_SECS".into(), "1".into()));
    let s = Server::start_with(
        &d,
        Opts {
            env,
            ..Default::default()
        },
    )
    .await;
    let ev = s
        .chat(json!({"message": "write it", "sessionId": ids[0]}))
        .await;
    let t = types(&ev);
    assert!(t.contains(&"permission_request".to_string()), "{t:?}");
    assert_eq!(t.last().unwrap(), "done", "{ev:#?}");
    assert!(!target.exists());
    assert!(last_user_text(fake.turn_requests().last().unwrap())
        .contains("No answer from the owner in time"));
    assert_eq!(
        s.get(&format!("/api/chat/{}/permissions", ids[0])).await.1["pending"],
        json!([])
    );
}

#[tokio::test]
async fn malformed_attachments_are_refused_or_reported() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    let d = Dirs::new();
    let s = chat_server(&d, &fake, &[]).await;
    let r = s
        .open_chat(json!({"message": "x", "attachments": "not a list"}))
        .await;
    assert_eq!(r.status(), 422);
    let ev = s
        .chat(json!({"message": "see attached", "attachments": [{"fileName": "../../evil.txt", "mimeType": "text/plain", "base64Data": "%%% not base64"}]}))
        .await;
    assert_eq!(ev.last().unwrap()["type"], "done", "{ev:#?}");
    let body = request_text(&fake.turn_requests()[0]);
    assert!(
        body.contains("[Failed to attach: evil.txt]"),
        "reported, and the name lost its path"
    );
    assert!(!d.tmp.path().join("evil.txt").exists());
}

#[tokio::test]
async fn idle_streams_get_heartbeat_comments() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    fake.script(vec![
        FakeTurn::text("slow and steady").slow(3, Duration::from_millis(1300))
    ]);
    let d = Dirs::new();
    let mut env = chat_env(&fake);
    env.push(("SSE_HEARTBEAT_SECS".into(), "1".into()));
    let s = Server::start_with(
        &d,
        Opts {
            env,
            ..Default::default()
        },
    )
    .await;
    let text = s
        .open_chat(json!({"message": "hi"}))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("\n: heartbeat\n\n") || text.starts_with(": heartbeat"),
        "{text}"
    );
    let ev: Vec<Value> = parse_sse(&text).into_iter().map(|(_, e)| e).collect();
    assert_eq!(
        ev.last().unwrap()["response"],
        "slow and steady",
        "heartbeats do not disturb the events"
    );
}

#[tokio::test]
async fn a_changed_prompt_respawns_the_warm_cli_and_large_context_fits() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    let d = Dirs::new();
    std::fs::create_dir_all(d.vault.join("Big")).unwrap();
    // Larger than one argv argument may be (128 KiB): it must not travel on the command line.
    let big = format!(
        "Marker-start. {} Marker-end.",
        "lorem ipsum ".repeat(12_000)
    );
    std::fs::write(d.vault.join("Big/AGENTS.md"), &big).unwrap();
    let s = chat_server(&d, &fake, &[]).await;
    let id = s.chat(json!({"message": "first"})).await.last().unwrap()["sessionId"]
        .as_str()
        .unwrap()
        .to_string();
    let ev = s
        .chat(json!({"message": "now with context", "sessionId": id, "contexts": ["Big"]}))
        .await;
    assert_eq!(ev.last().unwrap()["type"], "done", "{ev:#?}");
    let (_, h) = s.get("/api/health?detailed=true").await;
    assert_eq!(
        h["chat"]["spawned"], 2,
        "a new prompt needs a new process: {h}"
    );
    let body = fake.turn_requests().last().unwrap()["body"].to_string();
    assert!(body.contains("Marker-start."), "context reached the model");
    assert!(body.contains("\"first\""), "history reached the model");
    let ps = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok());
    assert!(
        ps.into_iter()
            .all(|c| !String::from_utf8_lossy(&c).contains("Marker-start")),
        "prompt text not in any argv"
    );
}

/// The turn interface as bots and the scheduler use it: in-process, typed events.
#[tokio::test]
async fn turns_started_in_process_apply_the_core_rules_and_yield_typed_events() {
    use parachute_core::chat::ChatRequest;
    use parachute_core::chat::TurnEvent;
    let d = Dirs::new();
    let settings = parachute_core::Settings::for_paths(d.vault.clone(), d.home.clone()).unwrap();
    let state = parachute_core::AppState::open(settings).await.unwrap();
    let req = ChatRequest {
        message: "look at this".into(),
        attachments: Some(vec![json!({"fileName": "setup.exe", "base64Data": "AA=="})]),
        ..Default::default()
    };
    let turn = state.chat.start(req).await;
    let events = turn.events_after(0).await;
    assert_eq!(events.len(), 1, "{events:?}");
    match events[0].1.as_ref() {
        TurnEvent::Error { error, .. } => {
            assert!(
                error.contains("File type not allowed: setup.exe"),
                "{error}"
            )
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(!d.vault.join("Chat/assets").exists(), "nothing was saved");
    state.store.close().await;
}

/// A CLI that exits before it starts gets one more try within the same turn.
#[tokio::test]
async fn a_cli_that_dies_before_starting_is_retried_once() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    let d = Dirs::new();
    // The first start of this "claude" exits at once; later ones are the real CLI.
    let marker = d.tmp.path().join("first-start-done");
    let m = marker.display();
    let cli = crate::support::cli_shim(
        &d,
        &format!("if [ ! -e '{m}' ]; then touch '{m}'; exit 1; fi\nexec \"$REAL\" \"$@\""),
    );
    let s = chat_server(&d, &fake, &[("CLAUDE_CLI_PATH", &cli)]).await;
    let ev = s.chat(json!({"message": "hello"})).await;
    assert_eq!(ev.last().unwrap()["type"], "done", "{ev:#?}");
    assert_eq!(ev.last().unwrap()["response"], DEFAULT_REPLY);
    assert!(marker.exists(), "the first start did fail");
    let (_, h) = s.get("/api/health?detailed=true").await;
    assert_eq!(h["chat"]["spawned"], 2, "{h}");
    // Exactly one init reached the client.
    assert_eq!(types(&ev).iter().filter(|t| *t == "init").count(), 1);
}
