//! Skills, sub-agents and MCP servers reach the real CLI: the fake model's request log
//! shows the skill and the sub-agent, and the model (scripted) calls a tool of a stdio
//! MCP server from `.mcp.json`. Skill uploads refuse unsafe archives and write nothing.

use std::io::Write;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::fake_anthropic::{FakeAnthropic, FakeTurn};
use crate::support::{chat_server, wait_until, zip_of, Dirs, Server, CLI_SLOTS};

/// Rewrites every uncompressed-size field of a stored archive to `size` (a lie).
fn declare_size(mut zip: Vec<u8>, size: u32) -> Vec<u8> {
    let mut i = 0;
    while i + 30 <= zip.len() {
        match &zip[i..i + 4] {
            [0x50, 0x4b, 0x03, 0x04] => zip[i + 22..i + 26].copy_from_slice(&size.to_le_bytes()),
            [0x50, 0x4b, 0x01, 0x02] => zip[i + 24..i + 28].copy_from_slice(&size.to_le_bytes()),
            _ => {}
        }
        i += 1;
    }
    zip
}

async fn upload(s: &Server, name: &str, bytes: Vec<u8>) -> (u16, Value) {
    let part = reqwest::multipart::Part::bytes(bytes).file_name(name.to_string());
    let form = reqwest::multipart::Form::new().part("file", part);
    let r = s
        .client
        .post(s.url("/api/skills/upload"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn files_under(p: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn skill_uploads_refuse_unsafe_archives_and_write_nothing() {
    let d = Dirs::new();
    let s = Server::start(&d).await;
    let before = files_under(&d.vault);

    let symlink = {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        w.start_file("SKILL.md", zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(b"x").unwrap();
        w.add_symlink(
            "escape",
            "/etc/passwd",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        w.finish().unwrap().into_inner()
    };
    let many: Vec<(String, Vec<u8>)> = (0..10_000)
        .map(|i| (format!("f{i}.txt"), b"x".to_vec()))
        .collect();
    let many_refs: Vec<(&str, &[u8])> = many
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    let cases = [
        (
            "slip.zip",
            zip_of(&[("SKILL.md", b"x"), ("../x", b"evil")]),
            "leaves the folder",
        ),
        (
            "abs.zip",
            zip_of(&[("SKILL.md", b"x"), ("/etc/x", b"evil")]),
            "absolute",
        ),
        ("link.zip", symlink, "symlink"),
        ("many.zip", zip_of(&many_refs), "entries"),
        (
            "huge.zip",
            declare_size(zip_of(&[("SKILL.md", b"x")]), 1 << 30),
            "MB",
        ),
        ("empty.zip", zip_of(&[("readme.txt", b"x")]), "SKILL.md"),
        ("notes.txt", b"plain".to_vec(), ".skill or .zip"),
    ];
    for (name, bytes, why) in cases {
        let (status, body) = upload(&s, name, bytes).await;
        assert_eq!(status, 400, "{name}: {body}");
        assert!(
            body["detail"].as_str().unwrap().contains(why),
            "{name}: {body}"
        );
    }
    assert_eq!(
        files_under(&d.vault),
        before,
        "a refused upload writes nothing"
    );
    assert!(!d.tmp.path().join("x").exists() && !d.vault.join("../x").exists());

    // A good one lands, once.
    let good = zip_of(&[
        (
            "tidy/SKILL.md",
            b"---\nname: tidy\ndescription: Tidy a note\n---\nTidy it.",
        ),
        ("tidy/ref.md", b"r"),
    ]);
    let (status, body) = upload(&s, "tidy.skill", good.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["skill"]["name"], "tidy");
    assert_eq!(body["skill"]["directory"], "tidy");
    assert_eq!(upload(&s, "tidy.skill", good).await.0, 409);
    let (_, list) = s.get("/api/skills").await;
    assert_eq!(list["skills"][0]["description"], "Tidy a note");
    let (status, body) = s
        .send(
            "POST",
            "/api/skills",
            Some(json!({"name": "../evil", "content": "x"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = s.send("DELETE", "/api/skills/tidy", None).await;
    assert_eq!(status, 200);
    assert!(!d.vault.join(".skills/tidy").exists());
}

#[tokio::test]
async fn a_skill_and_a_sub_agent_reach_the_model_through_the_real_cli() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    let d = Dirs::new();
    let agents = d.vault.join(".parachute/agents");
    std::fs::create_dir_all(&agents).unwrap();
    std::fs::write(
        agents.join("reviewer.md"),
        "---\ndescription: Reviews notes for clarity-7731\n---\nYou review notes.\n",
    )
    .unwrap();
    let s = chat_server(&d, &fake, &[]).await;
    let (status, body) = s
        .send(
            "POST",
            "/api/skills",
            Some(json!({"name": "tidy-notes", "description": "Tidies a note, skill-5521", "content": "Sort the lines."})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let events = s
        .chat(json!({"message": "hello", "sessionId": "new"}))
        .await;
    assert!(events.iter().any(|e| e["type"] == "done"), "{events:?}");
    let req = fake.turn_requests()[0]["body"].to_string();
    assert!(
        req.contains("tidy-notes") && req.contains("skill-5521"),
        "the skill is not offered to the model"
    );
    assert!(
        req.contains("reviewer") && req.contains("clarity-7731"),
        "the sub-agent is not offered to the model"
    );
    // Generated under the server home, never in the vault.
    assert!(d.home.join("runtime/skills").is_dir());
    assert!(!d.vault.join(".parachute/runtime").exists());
}

#[tokio::test]
async fn a_stdio_mcp_server_from_mcp_json_is_tested_and_its_tool_called_by_the_model() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    let d = Dirs::new();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/support/mcp_echo.js");
    let log = d.tmp.path().join("mcp-echo.log");
    let s = chat_server(&d, &fake, &[("MCP_ECHO_LOG_PATH", log.to_str().unwrap())]).await;

    // Added through the API, with its log path from the server's environment.
    let (status, body) = s
        .send(
            "POST",
            "/api/mcps",
            Some(json!({"name": "echo", "config": {"command": "node", "args": [script.to_str().unwrap()],
                "env": {"MCP_ECHO_LOG": "${MCP_ECHO_LOG_PATH}"}}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, list) = s.get("/api/mcps").await;
    assert_eq!(list["servers"][0]["name"], "echo", "{list}");
    assert_eq!(list["servers"][0]["displayType"], "stdio");
    assert_eq!(
        list["servers"][0]["env"]["MCP_ECHO_LOG"],
        "${MCP_ECHO_LOG_PATH}"
    );
    assert_eq!(
        list["servers"][0]["approved"], true,
        "added from this machine: approved"
    );
    // A server written into the file by hand waits for an approval.
    let mut file: Value =
        serde_json::from_str(&std::fs::read_to_string(d.vault.join(".mcp.json")).unwrap()).unwrap();
    file["hand"] = json!({"command": "true"});
    std::fs::write(d.vault.join(".mcp.json"), file.to_string()).unwrap();
    let (_, hand) = s.get("/api/mcps/hand").await;
    assert_eq!(hand["approved"], false, "{hand}");
    let (status, hand) = s.send("POST", "/api/mcps/hand/approve", None).await;
    assert_eq!(
        (status, hand["server"]["approved"].clone()),
        (200, json!(true)),
        "{hand}"
    );
    assert_eq!(s.send("DELETE", "/api/mcps/hand", None).await.0, 200);
    let (status, bad) = s
        .send(
            "POST",
            "/api/mcps",
            Some(json!({"name": "bad", "config": {"url": "ftp://x"}})),
        )
        .await;
    assert_eq!(status, 400, "{bad}");

    // The test really starts it and lists its tools.
    let (status, t) = s.send("POST", "/api/mcps/echo/test", None).await;
    assert_eq!(status, 200);
    assert_eq!(t["status"], "ok", "{t}");
    assert_eq!(t["tools"][0]["name"], "shout", "{t}");
    let (_, t) = s.get("/api/mcps/echo/tools").await;
    assert_eq!(t["tools"][0]["description"], "Repeats the text in capitals");

    // The model calls its tool through the real CLI.
    fake.script(vec![
        FakeTurn::tool("mcp__echo__shout", json!({"text": "hello there"})),
        FakeTurn::text("It shouted back."),
    ]);
    let events = s
        .chat(json!({"message": "shout hello", "sessionId": "new"}))
        .await;
    assert!(events.iter().any(|e| e["type"] == "done"), "{events:?}");
    let results = crate::support::tool_results(&fake);
    assert!(
        results.contains("ECHO: HELLO THERE"),
        "tool results: {results}"
    );
    let called = wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("call hello there")
    })
    .await;
    assert!(called);

    let (status, r) = s.send("DELETE", "/api/mcps/echo", None).await;
    assert_eq!(
        (status, r),
        (200, json!({"success": true, "removed": "echo"}))
    );
    assert_eq!(s.send("DELETE", "/api/mcps/echo", None).await.0, 404);
}
