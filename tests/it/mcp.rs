//! Parachute's own MCP server: the rmcp client over stdio (`parachute mcp`), the real
//! CLI over HTTP (each session gets the server `parachute` with a grant for its level),
//! and `/mcp` behind the API's auth for a real remote host in a network namespace.

use rmcp::model::CallToolRequestParams;
use rmcp::transport::TokioChildProcess;
use rmcp::ServiceExt;
use serde_json::{json, Value};

use crate::support::fake_anthropic::{FakeAnthropic, FakeTurn};
use crate::support::{chat_server, seed_sessions, Dirs, NetNs, Opts, Server, CLI_SLOTS};

fn journal_page(d: &Dirs) {
    let dir = d.vault.join("Daily/journals");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("2026-11-30.md"),
        "# para:daily:a1 08:10\nPlanted tulips by the fence.\n\n# para:daily:a2 19:45\nRead about soil.\n",
    )
    .unwrap();
}

/// What a tool answered: its JSON and whether it was an error.
fn outcome(result: &impl serde::Serialize) -> (Value, bool) {
    let v = serde_json::to_value(result).unwrap();
    let text = v["content"][0]["text"].as_str().unwrap_or("null");
    (
        serde_json::from_str(text).unwrap_or(Value::Null),
        v["isError"] == true,
    )
}

async fn tool_names(client: &rmcp::service::RunningService<rmcp::RoleClient, ()>) -> Vec<String> {
    client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect()
}

fn args(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

#[tokio::test]
async fn stdio_serves_the_vault_tools_to_an_mcp_client() {
    let d = Dirs::new();
    journal_page(&d);
    let ids = seed_sessions(&d, 2, |i, s| {
        s.title = Some(["Garden plans", "Taxes"][i].into());
    })
    .await;
    std::fs::write(d.vault.join("notes.md"), "# Notes\nBuy compost.\n").unwrap();

    let mut cmd = tokio::process::Command::from(d.cmd());
    cmd.arg("mcp").stderr(std::process::Stdio::null());
    let client = ().serve(TokioChildProcess::new(cmd).unwrap()).await.unwrap();
    assert_eq!(
        client
            .peer_info()
            .unwrap()
            .server_info
            .as_ref()
            .unwrap()
            .name,
        "parachute"
    );
    let names = tool_names(&client).await;
    // write_output belongs to scheduled runs only.
    assert!(!names.iter().any(|n| n == "write_output"), "{names:?}");
    for t in [
        "read_journal",
        "read_recent_journals",
        "search_sessions",
        "list_recent_sessions",
        "get_session",
        "search_by_tag",
        "list_tags",
        "add_session_tag",
        "remove_session_tag",
        "search_journals",
        "list_recent_journals",
        "get_journal",
        "add_journal_entry",
        "search_brain",
        "read_note",
    ] {
        assert!(names.iter().any(|n| n == t), "{t} missing from {names:?}");
    }
    let call = |name: &'static str, a: Value| {
        let client = &client;
        async move {
            outcome(
                &client
                    .call_tool(CallToolRequestParams::new(name).with_arguments(args(a)))
                    .await
                    .unwrap(),
            )
        }
    };

    // Sessions and tags, in the database the server uses.
    let (v, err) = call(
        "add_session_tag",
        json!({"session_id": ids[0], "tag": "home"}),
    )
    .await;
    assert!(!err, "{v}");
    let (v, _) = call("search_by_tag", json!({"tag": "home"})).await;
    assert_eq!(v[0]["title"], "Garden plans");
    let (v, _) = call("search_sessions", json!({"query": "tax"})).await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["id"], ids[1].as_str());
    let (v, _) = call("list_tags", json!({})).await;
    assert_eq!(v, json!([{"tag": "home", "count": 1}]));
    let (v, _) = call("get_session", json!({"session_id": ids[0]})).await;
    assert_eq!(v["tags"], json!(["home"]));
    let (v, err) = call("get_session", json!({"session_id": "nope"})).await;
    assert!(err);
    assert_eq!(v["error"], "Session not found: nope");

    // Journals: the day page, search, and a new entry that lands as a Daily entry.
    let (v, _) = call("get_journal", json!({"date": "2026-11-30"})).await;
    assert_eq!(v["entry_count"], 2);
    assert_eq!(v["entries"][0]["content"], "Planted tulips by the fence.");
    let (v, _) = call("search_journals", json!({"query": "TULIPS"})).await;
    assert_eq!(v[0]["date"], "2026-11-30");
    assert_eq!(v[0]["entry_header"], "a1 08:10");
    let (v, err) = call("add_journal_entry", json!({"content": "Ordered bulbs."})).await;
    assert!(!err, "{v}");
    let path = d.vault.join(v["path"].as_str().unwrap());
    assert!(std::fs::read_to_string(path)
        .unwrap()
        .contains("Ordered bulbs."));
    let (v, _) = call("list_recent_journals", json!({})).await;
    assert_eq!(v.as_array().unwrap().len(), 2, "{v}");

    // Notes go through the vault gate.
    let (v, err) = call("read_note", json!({"path": "notes.md"})).await;
    assert!(!err);
    assert!(v["content"].as_str().unwrap().contains("compost"));
    for bad in ["../outside.md", ".parachute/server.yaml", "/etc/passwd"] {
        let (v, err) = call("read_note", json!({"path": bad})).await;
        assert!(err, "{bad}: {v}");
    }
    // Bad arguments are an error, not a crash.
    let bad = client
        .call_tool(
            CallToolRequestParams::new("get_journal").with_arguments(args(json!({"date": 5}))),
        )
        .await;
    assert!(bad.is_err() || outcome(&bad.unwrap()).1);
    client.cancel().await.unwrap();

    // At `vault`, the database tools are not offered, nor callable.
    let mut cmd = tokio::process::Command::from(d.cmd());
    cmd.args(["mcp", "--trust", "vault"])
        .stderr(std::process::Stdio::null());
    let client = ().serve(TokioChildProcess::new(cmd).unwrap()).await.unwrap();
    let names = tool_names(&client).await;
    assert!(names.contains(&"get_journal".to_string()));
    assert!(
        !names
            .iter()
            .any(|n| parachute_mcp::access::SESSION_TOOLS.contains(&n.as_str())),
        "{names:?}"
    );
    assert!(client
        .call_tool(CallToolRequestParams::new("list_tags"))
        .await
        .is_err());
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn every_session_gets_the_parachute_server_within_its_level() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    let d = Dirs::new();
    journal_page(&d);
    let s = chat_server(&d, &fake, &[]).await;

    // At full: every tool, and a call reaches the journal through HTTP.
    fake.script(vec![
        FakeTurn::tool(
            "mcp__parachute__add_session_tag",
            json!({"session_id": "none", "tag": "x"}),
        ),
        FakeTurn::tool("mcp__parachute__get_journal", json!({"date": "2026-11-30"})),
        FakeTurn::text("You planted tulips."),
    ]);
    let events = s
        .chat(json!({"message": "what did I do yesterday?", "sessionId": "new"}))
        .await;
    assert!(events.iter().any(|e| e["type"] == "done"), "{events:?}");
    assert!(
        !events.iter().any(|e| e["type"] == "permission_request"),
        "our own tools never prompt: {events:?}"
    );
    let results = crate::support::tool_results(&fake);
    assert!(
        results.contains("Planted tulips"),
        "tool results: {results}"
    );
    // The database tools answer at full.
    assert!(results.contains("Session not found: none"), "{results}");

    // At vault: the journal yes, other sessions no.
    let before = crate::support::tool_results(&fake);
    fake.script(vec![
        FakeTurn::tool("mcp__parachute__list_tags", json!({})),
        FakeTurn::tool("mcp__parachute__search_journals", json!({"query": "soil"})),
        FakeTurn::text("Found it."),
    ]);
    let events = s
        .chat(json!({"message": "soil?", "sessionId": "new", "trustLevel": "vault"}))
        .await;
    assert!(events.iter().any(|e| e["type"] == "done"), "{events:?}");
    let all = crate::support::tool_results(&fake);
    let vault_turn = all.strip_prefix(before.as_str()).unwrap_or(&all);
    assert!(vault_turn.contains("Read about soil"), "{vault_turn}");
    assert!(
        vault_turn.contains("No such tool available: mcp__parachute__list_tags"),
        "{vault_turn}"
    );
}

#[tokio::test]
async fn the_http_endpoint_needs_a_key_from_another_host() {
    let d = Dirs::new();
    journal_page(&d);
    let s = Server::start_with(
        &d,
        Opts {
            host: Some("0.0.0.0".into()),
            ..Default::default()
        },
    )
    .await;
    let ns = NetNs::create();
    let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    let accept = ("Accept", "application/json, text/event-stream");

    let (st, _) = ns.curl("POST", s.port, "/mcp", &[accept], Some(list));
    assert_eq!(st, 401);
    // A made-up grant is no key either.
    let (st, _) = ns.curl(
        "POST",
        s.port,
        "/mcp",
        &[accept, ("Authorization", "Bearer pmcp.ZnVsbAp4.00")],
        Some(list),
    );
    assert_eq!(st, 401);

    let (st, v) = s
        .send("POST", "/api/auth/keys", Some(json!({"label": "laptop"})))
        .await;
    assert_eq!(st, 200, "{v}");
    let key = v["key"].as_str().unwrap().to_string();
    let (st, body) = ns.curl(
        "POST",
        s.port,
        "/mcp",
        &[accept, ("X-API-Key", &key)],
        Some(r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_journal","arguments":{"date":"2026-11-30"}}}"#),
    );
    assert_eq!(st, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let text = v["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("Planted tulips"), "{text}");
}
