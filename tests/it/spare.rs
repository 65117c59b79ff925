//! CLIs started ahead, through the real CLI against the fake model: spare processes for
//! new chats (`spare_cli_processes`) and recent sessions resumed at start-up
//! (`prewarm_recent`).

use std::time::Duration;

use parachute_core::util::sys;
use serde_json::{json, Value};

use crate::support::fake_anthropic::{FakeAnthropic, FakeTurn};
use crate::support::{
    chat_server, chat_server_without_credential, cli_children, cli_shim, exited, types, wait_until,
    Dirs, Server, CLI_SLOTS,
};

/// The server's spare CLIs: its children started with `--session-id` for a session the
/// API does not know.
async fn spares(s: &Server) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for pid in cli_children(s.pid()) {
        if exited(pid) {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let id = String::from_utf8_lossy(&cmdline)
            .split('\0')
            .find_map(|a| a.strip_prefix("--session-id=").map(str::to_string));
        if let Some(id) = id {
            if s.get(&format!("/api/chat/{id}")).await.0 == 404 {
                out.push((pid, id));
            }
        }
    }
    out
}

async fn chat_health(s: &Server) -> Value {
    s.get("/api/health?detailed=true").await.1["chat"].clone()
}

/// Waits for exactly one ready spare other than `not`, and returns it.
async fn ready_spare(s: &Server, not: Option<&str>) -> (u32, String) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let h = chat_health(s).await;
        let found = spares(s).await;
        if h["spares"] == 1 && found.len() == 1 && Some(found[0].1.as_str()) != not {
            return found[0].clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no spare became ready: {h}\n{}",
            s.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Everything the model was sent in the last agent-loop request.
fn last_history(fake: &FakeAnthropic) -> String {
    fake.turn_requests()
        .last()
        .map(|r| r["body"]["messages"].to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_new_chat_adopts_the_spare_and_its_session_resumes() {
    let _slots = CLI_SLOTS.acquire_many(2).await.unwrap();
    let fake = FakeAnthropic::start().await;
    fake.script(vec![
        FakeTurn::text("Noted: the number is 42."),
        FakeTurn::text("You gave me 42."),
        FakeTurn::text("Still 42."),
    ]);
    let d = Dirs::new();
    std::fs::write(d.vault.join("CLAUDE.md"), "House rule: answer in haiku.\n").unwrap();
    let mut s = chat_server(&d, &fake, &[("SPARE_CLI_PROCESSES", "1")]).await;
    let (pid, spare_id) = ready_spare(&s, None).await;

    // Its warm-up (the CLI assembling its prompt and tools ahead) called no API.
    assert_eq!(
        fake.requests(),
        Vec::<Value>::new(),
        "the ready spare called the API"
    );
    // Until adopted, a spare is no session: no row, no transcript.
    let (_, list) = s.get("/api/chat").await;
    assert_eq!(list["sessions"], json!([]), "{list}");
    let transcripts = walkdir(&d.home.join("claude").join("projects"));
    assert!(
        !transcripts.iter().any(|p| p.contains(&spare_id)),
        "{transcripts:?}"
    );

    let ev = s.chat(json!({"message": "Remember the number 42."})).await;
    let done = ev.last().unwrap();
    assert_eq!(done["type"], "done", "{ev:#?}");
    assert_eq!(
        done["sessionId"],
        spare_id.as_str(),
        "the chat took the spare's id"
    );
    assert_eq!(done["response"], "Noted: the number is 42.");
    let system = fake.turn_requests().last().unwrap()["body"]["system"].to_string();
    assert!(
        system.contains("House rule: answer in haiku."),
        "the spare got the vault's instructions: {system}"
    );
    assert_eq!(ev[0]["type"], "session");
    assert_eq!(ev[0]["resumeInfo"]["method"], "new");
    assert!(types(&ev).contains(&"init".to_string()), "{:?}", types(&ev));
    let h = chat_health(&s).await;
    assert_eq!(h["spawned"], 0, "no CLI started on the chat's path: {h}");
    assert_eq!(h["spareAdopted"], 1, "{h}");
    assert!(!exited(pid), "the spare's process serves the session");
    let (st, row) = s.get(&format!("/api/chat/{spare_id}")).await;
    assert_eq!(st, 200, "{row}");
    assert_eq!(row["messageCount"], 2);

    // Its second turn is warm on the same process and carries the history.
    let ev2 = s
        .chat(json!({"message": "Which number did I give you?", "sessionId": spare_id}))
        .await;
    assert_eq!(
        ev2.last().unwrap()["response"],
        "You gave me 42.",
        "{ev2:#?}"
    );
    assert_eq!(ev2[0]["resumeInfo"]["method"], "sdk_resume");
    let history = last_history(&fake);
    assert!(
        history.contains("Remember the number 42.") && history.contains("Noted: the number is 42."),
        "{history}"
    );
    assert_eq!(chat_health(&s).await["spawned"], 0);

    // The spare taken is replaced in the background, under a new id.
    let (_, next_id) = ready_spare(&s, Some(&spare_id)).await;
    assert_ne!(next_id, spare_id);

    // After a restart the session resumes from the CLI's transcript.
    s.stop().await;
    let s = chat_server(&d, &fake, &[]).await;
    let ev3 = s
        .chat(json!({"message": "And now?", "sessionId": spare_id}))
        .await;
    assert_eq!(ev3.last().unwrap()["response"], "Still 42.", "{ev3:#?}");
    let history = last_history(&fake);
    assert!(
        history.contains("Remember the number 42.") && history.contains("You gave me 42."),
        "{history}"
    );
    let (_, row) = s.get(&format!("/api/chat/{spare_id}")).await;
    assert_eq!(row["messageCount"], 6);
}

#[tokio::test]
async fn a_chat_with_its_own_prompt_leaves_the_spare_alone() {
    let _slots = CLI_SLOTS.acquire_many(2).await.unwrap();
    let fake = FakeAnthropic::start().await;
    let d = Dirs::new();
    let s = chat_server(&d, &fake, &[("SPARE_CLI_PROCESSES", "1")]).await;
    let (pid, spare_id) = ready_spare(&s, None).await;

    let ev = s
        .chat(json!({"message": "hi", "systemPrompt": "Answer like a pirate."}))
        .await;
    let done = ev.last().unwrap();
    assert_eq!(done["type"], "done", "{ev:#?}");
    assert_ne!(done["sessionId"], spare_id.as_str());
    let system = fake.turn_requests().last().unwrap()["body"]["system"].to_string();
    assert!(system.contains("Answer like a pirate."), "{system}");
    let h = chat_health(&s).await;
    assert_eq!(h["spawned"], 1, "{h}");
    assert_eq!(h["spareAdopted"], 0, "{h}");
    assert_eq!(
        spares(&s).await,
        vec![(pid, spare_id.clone())],
        "the spare is still there"
    );

    // The vault's instructions change: the spare (started without them) is not used,
    // the chat starts a CLI that has them, and the spare is stopped.
    std::fs::write(d.vault.join("CLAUDE.md"), "House rule: be cheerful.\n").unwrap();
    let ev = s.chat(json!({"message": "hello"})).await;
    let done = ev.last().unwrap();
    assert_eq!(done["type"], "done", "{ev:#?}");
    let system = fake.turn_requests().last().unwrap()["body"]["system"].to_string();
    assert!(system.contains("House rule: be cheerful."), "{system}");
    let h = chat_health(&s).await;
    assert_eq!(h["spawned"], 2, "{h}");
    assert_eq!(h["spareAdopted"], 0, "{h}");
    assert!(
        wait_until(Duration::from_secs(10), || exited(pid)).await,
        "the out-of-date spare was stopped"
    );
}

#[tokio::test]
async fn a_new_chat_at_vault_adopts_a_vault_spare() {
    let _slots = CLI_SLOTS.acquire_many(2).await.unwrap();
    let fake = FakeAnthropic::start().await;
    let d = Dirs::new();
    let s = chat_server(
        &d,
        &fake,
        &[
            ("SPARE_CLI_PROCESSES", "0"),
            ("SPARE_VAULT_CLI_PROCESSES", "1"),
        ],
    )
    .await;
    let (pid, spare_id) = ready_spare(&s, None).await;
    let cmdline = String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap())
        .replace('\0', " ");
    assert!(
        cmdline.contains("--settings="),
        "the spare runs in the OS sandbox of `vault`: {cmdline}"
    );

    // A chat at `full` does not take it.
    let ev = s.chat(json!({"message": "hi"})).await;
    assert_ne!(
        ev.last().unwrap()["sessionId"],
        spare_id.as_str(),
        "{ev:#?}"
    );
    // One at `vault` does.
    let ev = s
        .chat(json!({"message": "hi", "trustLevel": "vault"}))
        .await;
    let done = ev.last().unwrap();
    assert_eq!(done["type"], "done", "{ev:#?}");
    assert_eq!(done["sessionId"], spare_id.as_str());
    assert_eq!(ev[0]["trustLevel"], "vault", "{:#?}", ev[0]);
    let h = chat_health(&s).await;
    assert_eq!(h["spawned"], 1, "only the `full` chat started a CLI: {h}");
    assert_eq!(h["spareAdopted"], 1, "{h}");
}

#[tokio::test]
async fn a_spare_gives_its_place_to_a_turn_at_the_process_cap() {
    let _slots = CLI_SLOTS.acquire_many(2).await.unwrap();
    let fake = FakeAnthropic::start().await;
    let d = Dirs::new();
    let s = chat_server(
        &d,
        &fake,
        &[
            ("SPARE_CLI_PROCESSES", "1"),
            ("MAX_CLI_PROCESSES", "1"),
            ("WARM_POOL_SIZE", "0"),
        ],
    )
    .await;
    let body = json!({"message": "hi", "systemPrompt": "Be brief."});
    let not_queued = |ev: &[Value]| {
        assert_eq!(ev.last().unwrap()["type"], "done", "{ev:#?}");
        assert!(
            !types(ev).contains(&"queued".to_string()),
            "the turn did not wait: {:?}",
            types(ev)
        );
    };
    // Right after start-up the spare is still starting: the turn takes its place.
    not_queued(&s.chat(body.clone()).await);
    // Once it is ready, too: it is stopped for the turn.
    let (pid, _) = ready_spare(&s, None).await;
    not_queued(&s.chat(body).await);
    assert!(
        wait_until(Duration::from_secs(10), || exited(pid)).await,
        "the spare was stopped for the turn"
    );
    let h = chat_health(&s).await;
    assert!(
        h["processes"].as_u64().unwrap() <= 1,
        "never beyond the cap: {h}"
    );
    assert_eq!(h["spawned"], 2, "{h}");
    assert_eq!(h["spareAdopted"], 0, "{h}");
}

#[tokio::test]
async fn a_spare_is_replaced_when_killed_and_when_the_credential_changes() {
    let _slots = CLI_SLOTS.acquire_many(2).await.unwrap();
    let fake = FakeAnthropic::start().await;
    let d = Dirs::new();
    // The credential is stored through the API, not given in the environment.
    let s = chat_server_without_credential(&d, &fake, &[("SPARE_CLI_PROCESSES", "1")]).await;
    let first_key = format!("sk-ant-api03-{}", "a".repeat(30));
    let (st, body) = s
        .send(
            "PUT",
            "/api/settings/claude-credential",
            Some(json!({"token": first_key})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let (pid1, id1) = ready_spare(&s, None).await;

    // Killed: another takes its place.
    sys::send_signal(pid1, sys::Signal::Kill);
    let (pid2, id2) = ready_spare(&s, Some(&id1)).await;
    assert_ne!(pid2, pid1);

    // A new credential: the spare started with the old one is stopped and replaced.
    let second_key = format!("sk-ant-api03-{}", "b".repeat(41));
    let (st, _) = s
        .send(
            "PUT",
            "/api/settings/claude-credential",
            Some(json!({"token": second_key})),
        )
        .await;
    assert_eq!(st, 200);
    let (_, id3) = ready_spare(&s, Some(&id2)).await;
    assert!(
        wait_until(Duration::from_secs(10), || exited(pid2)).await,
        "the out-of-date spare was stopped"
    );
    let ev = s.chat(json!({"message": "hi"})).await;
    let done = ev.last().unwrap();
    assert_eq!(done["type"], "done", "{ev:#?}");
    assert_eq!(done["sessionId"], id3.as_str());
    let headers = fake.turn_requests().last().unwrap()["headers"].clone();
    assert_eq!(
        headers["x-api-key"],
        format!("<masked {} chars>", second_key.len()),
        "the chat used the new credential: {headers}"
    );
    let h = chat_health(&s).await;
    assert_eq!(h["spawned"], 0, "{h}");
    assert!(h["spareSpawned"].as_u64().unwrap() >= 3, "{h}");
}

#[tokio::test]
async fn recent_sessions_are_resumed_at_start_up() {
    let _slots = CLI_SLOTS.acquire_many(2).await.unwrap();
    let fake = FakeAnthropic::start().await;
    fake.script(vec![
        FakeTurn::text("Noted: the colour is teal."),
        FakeTurn::text("Teal."),
    ]);
    let d = Dirs::new();
    let mut s = chat_server(&d, &fake, &[]).await;
    let ev = s
        .chat(json!({"message": "Remember the colour teal."}))
        .await;
    std::fs::write(
        d.vault.join("CLAUDE.md"),
        "House rule: colours in French.\n",
    )
    .unwrap();
    let id = ev.last().unwrap()["sessionId"]
        .as_str()
        .unwrap()
        .to_string();
    s.stop().await;

    let s = chat_server(&d, &fake, &[("PREWARM_RECENT", "3")]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let h = chat_health(&s).await;
        if h["prewarmed"] == 1 && h["warm"] == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the session's CLI was not resumed ahead: {h}\n{}",
            s.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ev = s
        .chat(json!({"message": "Which colour?", "sessionId": id}))
        .await;
    assert_eq!(ev.last().unwrap()["response"], "Teal.", "{ev:#?}");
    let history = last_history(&fake);
    assert!(
        history.contains("House rule: colours in French."),
        "a resumed CLI's first message carries the vault's instructions: {history}"
    );
    assert!(
        history.contains("Remember the colour teal.")
            && history.contains("Noted: the colour is teal."),
        "{history}"
    );
    let h = chat_health(&s).await;
    assert_eq!(h["spawned"], 0, "the turn found its CLI warm: {h}");
}

/// Every file path under `dir`.
fn walkdir(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walkdir(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}

#[tokio::test]
async fn a_spare_whose_warm_up_goes_unanswered_is_used_merely_initialized() {
    let _slots = CLI_SLOTS.acquire_many(2).await.unwrap();
    let fake = FakeAnthropic::start().await;
    fake.script(vec![FakeTurn::text("Fine without it.")]);
    let d = Dirs::new();
    // A CLI that never sees the warm-up request (as if it hung on a slow MCP server);
    // what the server wrote to it is kept in `stdin.log`.
    let log = d.tmp.path().join("stdin.log");
    let shim = cli_shim(
        &d,
        &format!(
            r#"tee -a '{}' | grep --line-buffered -v '"get_context_usage"' | "$REAL" "$@""#,
            log.display()
        ),
    );
    let s = chat_server(
        &d,
        &fake,
        &[("SPARE_CLI_PROCESSES", "1"), ("CLAUDE_CLI_PATH", &shim)],
    )
    .await;
    let (_, spare_id) = ready_spare(&s, None).await;
    let ev = s.chat(json!({"message": "Hello?"})).await;
    let done = ev.last().unwrap();
    assert_eq!(done["type"], "done", "{ev:#?}");
    assert_eq!(
        done["sessionId"],
        spare_id.as_str(),
        "the spare was adopted"
    );
    assert_eq!(done["response"], "Fine without it.");
    // The server did ask for the warm-up (the local summary, no API call), after
    // `initialize` and before the chat's message.
    let sent = std::fs::read_to_string(&log).unwrap();
    let at = |needle: &str| {
        sent.find(needle)
            .unwrap_or_else(|| panic!("{needle} in {sent}"))
    };
    let warm = at(r#""subtype":"get_context_usage""#);
    assert!(sent[warm..].contains(r#""detail":"summary""#), "{sent}");
    assert!(at(r#""subtype":"initialize""#) < warm, "{sent}");
    assert!(warm < at(r#""type":"user""#), "{sent}");
}
