//! Hooks through the real server and CLI: a shell-script hook receives the event JSON
//! after a chat; a hook that hangs is killed at its timeout together with the process it
//! started, without delaying the turn; a failing hook shows in `/api/hooks/errors`; no
//! hook sees the Claude credential in its environment.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::fake_anthropic::{FakeAnthropic, FakeTurn};
use crate::support::{chat_server, wait_until, Dirs, CLI_SLOTS};

fn hook(dir: &std::path::Path, name: &str, script: &str) {
    let p = dir.join(name);
    std::fs::write(&p, script).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Running, and not a zombie.
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

#[tokio::test]
async fn hooks_get_events_time_out_with_their_children_fail_visibly_and_never_see_the_token() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    let d = Dirs::new();
    let hooks = d.vault.join(".parachute/hooks");
    std::fs::create_dir_all(&hooks).unwrap();
    let out = d.tmp.path().join("hook-out");
    std::fs::create_dir_all(&out).unwrap();
    let o = out.display();
    hook(
        &hooks,
        "record.sh",
        &format!(
            "#!/bin/sh\n# parachute-hook: events=session.created,message.received,session.completed,module.loaded,module.unloaded,context.approaching_limit,daily.entry.updated timeout=10\ncat > \"{o}/.$$.json\" && mv \"{o}/.$$.json\" \"{o}/$PARACHUTE_EVENT.json\"\nenv > \"{o}/.$$.env\" && mv \"{o}/.$$.env\" \"{o}/$PARACHUTE_EVENT.env\"\n"
        ),
    );
    hook(
        &hooks,
        "slow.sh",
        &format!("#!/bin/sh\nsleep 301 &\necho $! > \"{o}/slow-child.pid\"\nsleep 302\n"),
    );
    std::fs::write(
        hooks.join("slow.yaml"),
        "events: [message.received]\ntimeout: 20\ndescription: hangs\n",
    )
    .unwrap();
    hook(
        &hooks,
        "fail.sh",
        "#!/bin/sh\n# parachute-hook: events=session.completed\necho broken on purpose >&2\nexit 1\n",
    );
    hook(&hooks, "nosettings.sh", "#!/bin/sh\nexit 0\n");
    let s = chat_server(&d, &fake, &[]).await;

    let (status, list) = s.get("/api/hooks").await;
    assert_eq!(status, 200);
    assert_eq!(list["health"]["hooks_count"], 4, "{list}");
    let by = |n: &str| {
        list["hooks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["name"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(by("record.sh")["runs"], "unconfined");
    assert_eq!(by("slow.sh")["timeout"], 20.0);
    assert_eq!(by("slow.sh")["description"], "hangs");
    assert!(
        by("nosettings.sh")["problem"]
            .as_str()
            .unwrap()
            .contains("no settings"),
        "{list}"
    );

    // The conversation is near the end of its context window after this turn.
    fake.script(vec![FakeTurn {
        input_tokens: 170_000,
        ..FakeTurn::text("That was a lot.")
    }]);
    let events = s
        .chat(json!({"message": "hello hooks", "sessionId": "new"}))
        .await;
    let done = events.iter().find(|e| e["type"] == "done").expect("done");
    // The turn ended while the hanging hook still ran: it was not waited for.
    let child: u32 = {
        let pid_file = out.join("slow-child.pid");
        assert!(wait_until(Duration::from_secs(5), || pid_file.exists()).await);
        std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    assert!(
        running(child),
        "the slow hook's child should still run when the turn is done"
    );

    let completed = out.join("session.completed.json");
    // The hook writes each file beside and renames it, so a file that exists is whole.
    let env_file = out.join("session.completed.env");
    assert!(wait_until(Duration::from_secs(10), || env_file.exists()).await);
    let ev: Value = serde_json::from_str(&std::fs::read_to_string(&completed).unwrap()).unwrap();
    assert_eq!(ev["event"], "session.completed");
    assert_eq!(ev["session_id"], done["sessionId"], "{ev}");
    assert!(ev["timestamp"].as_str().unwrap().starts_with("20"));
    let received: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("message.received.json")).unwrap())
            .unwrap();
    assert_eq!(received["message"], "hello hooks");
    let created: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("session.created.json")).unwrap())
            .unwrap();
    assert_eq!(created["event"], "session.created");
    assert_eq!(created["session_id"], done["sessionId"], "{created}");
    let loaded: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("module.loaded.json")).unwrap())
            .unwrap();
    assert_eq!(loaded["bundled"], true, "{loaded}");
    // Blocking: written before the turn's end.
    let near: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("context.approaching_limit.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(near["session_id"], done["sessionId"], "{near}");
    assert!(near["tokens_used"].as_i64().unwrap() >= 170_000, "{near}");
    assert_eq!(near["context_window"], 200_000);
    let env = std::fs::read_to_string(out.join("session.completed.env")).unwrap();
    assert!(
        !env.contains("sk-ant-test-key") && !env.contains("ANTHROPIC_API_KEY"),
        "{env}"
    );
    assert!(env.contains("PARACHUTE_EVENT=session.completed"), "{env}");

    // Killed at its timeout, with the process it started.
    assert!(
        wait_until(Duration::from_secs(40), || !running(child)).await,
        "the hook's child survived its timeout"
    );
    let errors_ok = |v: &Value| {
        let all = v["errors"].as_array().cloned().unwrap_or_default();
        let failed = all.iter().any(|e| {
            e["hook_name"] == "fail.sh"
                && e["hook"] == "fail.sh"
                && e["error"]
                    .as_str()
                    .unwrap_or("")
                    .contains("status 1: broken on purpose")
                && e["message"] == e["error"]
                && e["event"] == "session.completed"
        });
        let slow = all.iter().any(|e| {
            e["hook"] == "slow.sh" && e["error"].as_str().unwrap_or("").contains("timed out")
        });
        failed && slow
    };
    let mut seen = Value::Null;
    for _ in 0..200 {
        seen = s.get("/api/hooks/errors").await.1;
        if errors_ok(&seen) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(errors_ok(&seen), "{seen}");

    // A journal entry changed elsewhere and synced in.
    for text in ["first", "second"] {
        let body = json!({"root": "Daily", "files": [{"path": "entries/2026-12-01-10-00.md", "content": text}]});
        let (status, v) = s.send("POST", "/api/sync/push", Some(body)).await;
        assert_eq!((status, v["pushed"].clone()), (200, json!(1)), "{v}");
    }
    let updated = out.join("daily.entry.updated.json");
    assert!(wait_until(Duration::from_secs(10), || updated.exists()).await);
    let ev: Value = serde_json::from_str(&std::fs::read_to_string(&updated).unwrap()).unwrap();
    assert_eq!(ev["id"], "2026-12-01-10-00", "{ev}");
    assert_eq!(ev["source"], "sync");

    // A module edited on disk is unloaded the moment the server looks.
    let manifest = d.vault.join(".modules/brain/manifest.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, format!("{text}\n# edited\n")).unwrap();
    let (_, list) = s.get("/api/modules").await;
    assert!(list.to_string().contains("pending_approval"), "{list}");
    let unloaded = out.join("module.unloaded.json");
    assert!(wait_until(Duration::from_secs(10), || unloaded.exists()).await);
    let ev: Value = serde_json::from_str(&std::fs::read_to_string(&unloaded).unwrap()).unwrap();
    assert_eq!(
        (ev["name"].as_str(), ev["reason"].as_str()),
        (Some("brain"), Some("changed")),
        "{ev}"
    );
}
