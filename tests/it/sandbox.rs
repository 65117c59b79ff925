//! Trust level `sandboxed` through a real Docker engine and the real CLI in the image
//! built offline by `parachute sandbox build`: the fake model scripts escape attempts,
//! and the disk, a host listener, the tool results and `docker inspect` judge them.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::fake_anthropic::{FakeAnthropic, FakeTurn};
use crate::support::{chat_server, tool_results, wait_until, Dirs, CLI_SLOTS};

/// The credential the server holds (from `chat_env`); it must never be inside.
const KEY: &str = "sk-ant-test-key-0123456789";

/// Builds the image once per test run (through the real command) if it is missing.
async fn ensure_image(d: &Dirs) {
    static BUILT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    BUILT
        .get_or_init(|| async {
            let out = d.cmd().args(["sandbox", "status"]).output().unwrap();
            let said = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(
                said.contains("docker: answers"),
                "these tests need a Docker engine (.ci/run starts dockerd): {said}"
            );
            if !said.contains("(present)") {
                let out = d.cmd().args(["sandbox", "build"]).output().unwrap();
                assert!(
                    out.status.success(),
                    "sandbox build failed: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        })
        .await;
}

fn docker(args: &[&str]) -> String {
    let out = std::process::Command::new("docker")
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The containers of a session (running or not).
fn containers_of(session: &str) -> Vec<String> {
    docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=parachute.session={session}"),
    ])
    .lines()
    .map(str::to_string)
    .collect()
}

fn bash(cmd: &str) -> (String, Value) {
    (
        "Bash".into(),
        json!({"command": cmd, "description": "test"}),
    )
}

fn turn_of(tools: Vec<(String, Value)>) -> FakeTurn {
    FakeTurn {
        tool_uses: tools,
        ..FakeTurn::tool("Read", json!({}))
    }
}

#[tokio::test]
async fn at_sandboxed_there_is_no_network_no_credential_and_the_vault_is_read_only() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let d = Dirs::new();
    ensure_image(&d).await;
    let fake = FakeAnthropic::start().await;
    std::fs::create_dir_all(d.vault.join("notes")).unwrap();
    std::fs::write(d.vault.join("notes/readable.md"), "READABLE-NOTE").unwrap();
    // A listener on the host: nothing from the container may reach it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let connect = format!(
        "python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 3); print('CONNECTED')\""
    );
    // The host's own places, named by their host paths: an outside folder, the owner's
    // home with a canary, the secrets file, the vault's protected files; plus a symlink
    // in the vault pointing out.
    let base = d.tmp.path().canonicalize().unwrap();
    let outside = base.join("outside");
    let home = base.join("user-home");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("canary.txt"), "HOME-CANARY-5d1c").unwrap();
    std::fs::write(
        d.home.join("secrets.json"),
        r#"{"telegram_bot_token":"SECRET-CANARY-77ab"}"#,
    )
    .unwrap();
    std::os::unix::fs::symlink(&outside, d.vault.join("out-dir")).unwrap();
    let (o, h, ph) = (
        outside.display().to_string(),
        home.display().to_string(),
        d.home.display().to_string(),
    );
    let host_attempts = vec![
        ("Write".to_string(), json!({"file_path": format!("{o}/abs.txt"), "content": "escaped"})),
        ("Write".to_string(), json!({"file_path": "/vault/../outside/dotdot.txt", "content": "escaped"})),
        ("Write".to_string(), json!({"file_path": "/vault/out-dir/via-link.txt", "content": "escaped"})),
        ("Write".to_string(), json!({"file_path": "/vault/.parachute/config.yaml", "content": "escaped"})),
        bash(&format!("echo escaped > {o}/bash.txt; cd {o} && echo escaped > cd.txt")),
        bash(&format!("python3 -c \"open('{o}/py.txt','w').write('escaped')\"")),
        (
            "Bash".to_string(),
            json!({"command": format!("echo escaped > {o}/unsandboxed.txt"), "dangerouslyDisableSandbox": true}),
        ),
        bash("mkdir -p /vault/.parachute/hooks; echo escaped > /vault/.parachute/hooks/x; echo escaped > /vault/.mcp.json"),
        bash(&format!("cat {h}/canary.txt {ph}/secrets.json; echo cat-done")),
        ("Read".to_string(), json!({"file_path": format!("{h}/canary.txt")})),
    ];
    // The relay answers only model calls: anything else is refused.
    let other_api = "python3 -c \"import socket; s=socket.create_connection(('127.0.0.1', 8377), 3); s.sendall(b'GET /v1/models HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'); print(s.recv(400))\"";
    fake.script(vec![
        turn_of(vec![
            (
                "Write".into(),
                json!({"file_path": "/vault/notes/new.md", "content": "escaped\n"}),
            ),
            bash("echo escaped > /vault/escape.txt"),
            bash("env"),
            bash("grep -rs sk-ant-test /home /run /tmp /vault /etc /usr/local 2>/dev/null; echo grep-done"),
            bash(&connect),
            bash(other_api),
            bash("echo TMP-SCRATCH-OK > /tmp/scratch.txt && cat /tmp/scratch.txt"),
            ("Read".into(), json!({"file_path": "/vault/notes/readable.md"})),
        ]),
        turn_of(host_attempts),
        FakeTurn::text("Done."),
        FakeTurn::text("Still here."),
    ]);
    let s = chat_server(&d, &fake, &[]).await;
    let ev = s
        .chat(json!({"message": "try to get out", "trustLevel": "sandboxed"}))
        .await;
    assert_eq!(ev.last().unwrap()["type"], "done", "{ev:#?}");
    let id = ev.last().unwrap()["sessionId"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(ev
        .iter()
        .filter(|e| e["type"] == "session")
        .all(|e| e["trustLevel"] == "sandboxed"));

    // The vault is untouched, and nothing outside it was written.
    assert!(!d.vault.join("escape.txt").exists());
    assert!(!d.vault.join("notes/new.md").exists());
    assert!(!d.vault.join(".mcp.json").exists());
    assert!(!d.vault.join(".parachute/hooks/x").exists());
    let config =
        std::fs::read_to_string(d.vault.join(".parachute/config.yaml")).unwrap_or_default();
    assert!(
        !config.contains("escaped"),
        ".parachute/config.yaml was written"
    );
    let escaped: Vec<_> = std::fs::read_dir(&outside)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(escaped.is_empty(), "written outside the vault: {escaped:?}");
    // Nothing reached the host listener.
    assert!(listener.accept().is_err(), "the container reached the host");
    let seen = tool_results(&fake);
    assert!(
        !seen.contains("CONNECTED"),
        "a connection left the container"
    );
    // The credential is nowhere inside; the CLI had a placeholder and the relay sent the key.
    assert!(!seen.contains(KEY), "the credential was visible inside");
    assert!(
        seen.contains("placeholder-the-relay-adds-the-real-one"),
        "env ran: {seen}"
    );
    assert!(seen.contains("grep-done") && seen.contains("cat-done"));
    assert!(
        !seen.contains("HOME-CANARY-5d1c"),
        "the home folder was read"
    );
    assert!(
        !seen.contains("SECRET-CANARY-77ab"),
        "the secrets file was read"
    );
    assert!(
        seen.contains("403 Forbidden") && seen.contains("forwards only model requests"),
        "{seen}"
    );
    for r in fake.turn_requests() {
        assert!(r["headers"]["x-api-key"]
            .as_str()
            .unwrap()
            .starts_with("<masked"));
    }
    // Positive controls: a vault Read works, and a /tmp write is visible to the model.
    assert!(seen.contains("READABLE-NOTE"), "{seen}");
    assert!(seen.contains("TMP-SCRATCH-OK"), "{seen}");

    // The warm container: no network, read-only root, non-root, the limits.
    let ids = containers_of(&id);
    assert_eq!(ids.len(), 1, "one warm container: {ids:?}");
    let inspect: Value = serde_json::from_str(&docker(&["inspect", &ids[0]])).unwrap();
    let c = &inspect[0];
    assert_eq!(c["HostConfig"]["NetworkMode"], "none");
    assert_eq!(c["HostConfig"]["ReadonlyRootfs"], true);
    assert_eq!(c["HostConfig"]["Memory"], 512 << 20);
    assert_eq!(c["HostConfig"]["NanoCpus"], 1_000_000_000i64);
    assert_eq!(c["HostConfig"]["PidsLimit"], 256);
    let user = c["Config"]["User"].as_str().unwrap();
    assert!(
        !user.is_empty() && !user.starts_with("0:") && user != "root",
        "{user}"
    );
    let env = c["Config"]["Env"].to_string();
    assert!(
        !env.contains(KEY),
        "the credential is in the container's environment"
    );
    // A second turn runs in the same warm container, with the first turn's history.
    let ev = s
        .chat(json!({"message": "and now?", "sessionId": id}))
        .await;
    assert_eq!(ev.last().unwrap()["response"], "Still here.", "{ev:#?}");
    assert_eq!(containers_of(&id), ids, "the warm container was reused");
    let last = fake.turn_requests().last().unwrap()["body"]["messages"].to_string();
    assert!(last.contains("try to get out"), "history kept: {last}");
    drop(s);
    let gone = wait_until(Duration::from_secs(20), || containers_of(&id).is_empty()).await;
    assert!(gone, "the container outlived the server");
}

#[tokio::test]
async fn a_sandboxed_session_resumes_in_a_new_container_and_a_slow_turn_is_stopped() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let d = Dirs::new();
    ensure_image(&d).await;
    let fake = FakeAnthropic::start().await;
    fake.script(vec![
        turn_of(vec![bash(
            "echo w > /vault/Out/w.txt; echo x > /vault/x.txt; \
             cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null",
        )]),
        FakeTurn::text("Noted: blue."),
        FakeTurn::text("It was blue."),
        FakeTurn::text("one two three four").slow(4, Duration::from_secs(40)),
    ]);
    // No warm containers: the second turn starts a fresh one, which must resume.
    let s = chat_server(&d, &fake, &[("WARM_POOL_SIZE", "0")]).await;
    // A workspace whose floor is `sandboxed`, with its own limits and one writable folder.
    std::fs::create_dir_all(d.vault.join("Out")).unwrap();
    // The container runs as an unprivileged user: the folder's own permissions decide,
    // as they would for the owner's folders.
    std::fs::set_permissions(
        d.vault.join("Out"),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let (st, ws) = s
        .send(
            "POST",
            "/api/workspaces",
            Some(json!({"name": "Boxed", "default_trust_level": "sandboxed",
                "sandbox": {"memory": "256m", "cpu": "0.5", "timeout": 12, "writable": ["Out"]}})),
        )
        .await;
    assert_eq!(st, 201, "{ws}");
    let (st, bad) = s
        .send(
            "POST",
            "/api/workspaces",
            Some(json!({"name": "Bad", "sandbox": {"writable": [".parachute"]}})),
        )
        .await;
    assert_eq!(st, 400, "a protected folder cannot be made writable: {bad}");
    let ev = s
        .chat(json!({"message": "My colour is blue.", "workspaceId": "boxed"}))
        .await;
    assert_eq!(ev.last().unwrap()["type"], "done", "{ev:#?}");
    assert_eq!(
        ev[0]["trustLevel"], "sandboxed",
        "the workspace floor applies"
    );
    let id = ev.last().unwrap()["sessionId"]
        .as_str()
        .unwrap()
        .to_string();
    // Its writable folder took the write; the rest of the vault did not; its memory cap held.
    assert_eq!(
        std::fs::read_to_string(d.vault.join("Out/w.txt")).unwrap_or_default(),
        "w\n",
        "{}",
        tool_results(&fake)
    );
    assert!(!d.vault.join("x.txt").exists());
    assert!(
        tool_results(&fake).contains(&(256u64 << 20).to_string()),
        "{}",
        tool_results(&fake)
    );
    let ev = s
        .chat(json!({"message": "What was my colour?", "sessionId": id}))
        .await;
    assert_eq!(ev.last().unwrap()["type"], "done", "{ev:#?}");
    let second = fake.turn_requests()[2]["body"]["messages"].to_string();
    assert!(
        second.contains("My colour is blue."),
        "history not resumed: {second}"
    );
    assert!(second.contains("Noted: blue."), "{second}");

    // Over the wall-clock limit: an error, and no container left behind.
    let ev = s
        .chat(json!({"message": "slow one", "sessionId": id}))
        .await;
    let last = ev.last().unwrap();
    assert_eq!(last["type"], "error", "{ev:#?}");
    assert!(
        last["error"].as_str().unwrap().contains("12 s limit"),
        "{last}"
    );
    let gone = wait_until(Duration::from_secs(20), || containers_of(&id).is_empty()).await;
    assert!(gone, "a container outlived its timed-out turn");
}

#[tokio::test]
async fn without_docker_a_sandboxed_turn_fails_clearly_and_never_runs_weaker() {
    let d = Dirs::new();
    let fake = FakeAnthropic::start().await;
    let missing = d.tmp.path().join("no-docker.sock");
    let host = format!("unix://{}", missing.display());
    let s = chat_server(&d, &fake, &[("DOCKER_HOST", &host)]).await;
    let ev = s
        .chat(json!({"message": "hi", "trustLevel": "sandboxed"}))
        .await;
    let last = ev.last().unwrap();
    assert_eq!(last["type"], "error", "{ev:#?}");
    assert!(
        last["error"]
            .as_str()
            .unwrap()
            .contains("Docker is not available"),
        "{last}"
    );
    assert!(
        fake.turn_requests().is_empty(),
        "the turn ran without its container"
    );
    let (_, health) = s.get("/api/health?detailed=true").await;
    assert_eq!(health["docker"]["available"], false);
    let (st, v) = s.get("/api/sandbox/status").await;
    assert_eq!((st, v["available"].clone()), (200, json!(false)));
    let (st, v) = s.send("POST", "/api/sandbox/build", None).await;
    assert_eq!((st, v), (400, json!({"detail": "Docker not available"})));
}
