//! Trust levels through the real CLI and its OS sandbox (bubblewrap): a fake model
//! scripted to attempt escapes at `vault`, judged by the file system afterwards and by
//! what the tools sent back to the model. Positive controls keep "deny everything" from
//! passing.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::support::fake_anthropic::{FakeAnthropic, FakeTurn};
use crate::support::{chat_env, chat_server, tool_results, Dirs, Opts, Server, CLI_SLOTS};

const HOME_CANARY: &str = "HOME-CANARY-7f3a";
/// A file in the shared temporary folder, outside the vault.
const TMP_CANARY: &str = "TMP-CANARY-3e9d";
const SECRET_CANARY: &str = "SECRET-CANARY-91be";

/// The places the escape attempts aim at, around a vault at `{base}/vault`.
struct Scene {
    base: PathBuf,
    vault: PathBuf,
    outside: PathBuf,
    user_home: PathBuf,
}

fn scene(d: &Dirs, home_holds_vault: bool) -> Scene {
    let base = d.tmp.path().canonicalize().unwrap();
    let vault = base.join("vault");
    let outside = base.join("outside");
    // The owner's home: beside the vault, or (like ~/Parachute) around it.
    let user_home = if home_holds_vault {
        base.clone()
    } else {
        base.join("user-home")
    };
    for dir in [
        &outside,
        &user_home,
        &base.join("vault2"),
        &vault.join("notes"),
    ] {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(user_home.join("canary.txt"), HOME_CANARY).unwrap();
    std::fs::write(base.join("tmp-canary.txt"), TMP_CANARY).unwrap();
    std::fs::write(
        d.home.join("secrets.json"),
        json!({"telegram_bot_token": SECRET_CANARY}).to_string(),
    )
    .unwrap();
    std::os::unix::fs::symlink(&outside, vault.join("out-dir")).unwrap();
    std::os::unix::fs::symlink(outside.join("via-leaf.txt"), vault.join("out-leaf")).unwrap();
    Scene {
        base,
        vault,
        outside,
        user_home,
    }
}

fn write(path: impl AsRef<Path>) -> (String, Value) {
    (
        "Write".into(),
        json!({"file_path": path.as_ref().display().to_string(), "content": "escaped\n"}),
    )
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
async fn at_vault_no_tool_reaches_outside_the_vault_or_its_protected_paths() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    let d = Dirs::new();
    let sc = scene(&d, false);
    let (o, v) = (sc.outside.display().to_string(), &sc.vault);
    let home = sc.user_home.display().to_string();
    let phome = d.home.display().to_string();
    std::fs::create_dir_all(v.join(".parachute")).unwrap();
    std::fs::write(v.join(".parachute/config.yaml"), "# owner's settings\n").unwrap();
    std::fs::write(v.join("notes/readable.md"), "READABLE-NOTE").unwrap();
    fake.script(vec![
        turn_of(vec![
            // The file tools: absolute, `..`, symlinked folder and leaf, sibling prefix.
            write(sc.outside.join("abs.txt")),
            write("../outside/dotdot.txt"),
            write("out-dir/via-dir.txt"),
            write("out-leaf"),
            write(sc.base.join("vault2/sibling.txt")),
            // The protected list, through Write.
            write(".parachute/config.yaml"),
            write(".parachute/server.yaml"),
            write(".parachute/hooks/x"),
            write(".modules/m/module.yaml"),
            write(".mcp.json"),
            // Positive control.
            write("notes/ok.md"),
        ]),
        turn_of(vec![
            bash(&format!("echo escaped > {o}/bash-redirect.txt")),
            bash(&format!("cd {o} && echo escaped > bash-cd.txt")),
            bash(&format!(
                "python3 -c \"open('{o}/bash-python.txt','w').write('escaped')\""
            )),
            (
                "Bash".into(),
                json!({"command": format!("echo escaped > {o}/bash-unsandboxed.txt"),
                    "dangerouslyDisableSandbox": true}),
            ),
            bash("mkdir -p .parachute/hooks && echo escaped > .parachute/hooks/bash-hook"),
            bash("echo escaped > .mcp.json"),
            bash("echo escaped >> .parachute/config.yaml"),
            // Positive control.
            bash("echo bash-ok > bash-ok.txt"),
        ]),
        turn_of(vec![
            (
                "Read".into(),
                json!({"file_path": format!("{home}/canary.txt")}),
            ),
            (
                "Grep".into(),
                json!({"pattern": "CANARY", "path": home, "output_mode": "content"}),
            ),
            ("Glob".into(), json!({"pattern": format!("{home}/*")})),
            bash(&format!("cat {home}/canary.txt")),
            bash(&format!("cat {}/tmp-canary.txt", sc.base.display())),
            (
                "Read".into(),
                json!({"file_path": format!("{phome}/secrets.json")}),
            ),
            bash(&format!("cat {phome}/secrets.json")),
            (
                "Read".into(),
                json!({"file_path": ".parachute/config.yaml"}),
            ),
            bash("cat .parachute/config.yaml"),
            // Positive control: reading inside the vault works.
            ("Read".into(), json!({"file_path": "notes/readable.md"})),
        ]),
        FakeTurn::text("Done trying."),
    ]);
    let s = chat_server(&d, &fake, &[("HOME", sc.user_home.to_str().unwrap())]).await;
    let ev = s
        .chat(json!({"message": "try to escape", "trustLevel": "vault"}))
        .await;
    assert_eq!(ev.last().unwrap()["type"], "done", "{ev:#?}");
    // The session events carry the effective level.
    let sessions: Vec<&Value> = ev.iter().filter(|e| e["type"] == "session").collect();
    assert!(
        sessions.iter().all(|e| e["trustLevel"] == "vault"),
        "{sessions:#?}"
    );

    // Nothing outside the vault was written.
    let escaped: Vec<_> = std::fs::read_dir(&sc.outside)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(escaped.is_empty(), "written outside the vault: {escaped:?}");
    assert!(!sc.base.join("vault2/sibling.txt").exists());
    // The protected paths are untouched.
    assert_eq!(
        std::fs::read_to_string(v.join(".parachute/config.yaml")).unwrap(),
        "# owner's settings\n"
    );
    for p in [
        ".parachute/server.yaml",
        ".parachute/hooks/x",
        ".parachute/hooks/bash-hook",
        ".modules/m/module.yaml",
        ".mcp.json",
    ] {
        let content = std::fs::read_to_string(v.join(p)).unwrap_or_default();
        assert!(!content.contains("escaped"), "{p} was written");
    }
    // The positive controls: writes inside the vault work, by Write and by Bash.
    assert_eq!(
        std::fs::read_to_string(v.join("notes/ok.md")).unwrap(),
        "escaped\n"
    );
    assert_eq!(
        std::fs::read_to_string(v.join("bash-ok.txt")).unwrap(),
        "bash-ok\n"
    );

    // No tool brought the canaries back to the model; the inside read did.
    let seen = tool_results(&fake);
    assert!(!seen.contains(HOME_CANARY), "the home folder was read");
    assert!(
        !seen.contains(TMP_CANARY),
        "the shared temporary folder was read"
    );
    assert!(!seen.contains(SECRET_CANARY), "the secrets file was read");
    assert!(!seen.contains("# owner's settings"), ".parachute was read");
    assert!(
        seen.contains("READABLE-NOTE"),
        "the inside Read returned nothing: {seen}"
    );
}

#[tokio::test]
async fn at_vault_a_home_around_the_vault_stays_unreadable() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    let d = Dirs::new();
    let sc = scene(&d, true);
    let home = sc.user_home.display().to_string();
    std::fs::write(sc.vault.join("notes/inside.md"), "INSIDE-NOTE").unwrap();
    fake.script(vec![
        turn_of(vec![
            (
                "Read".into(),
                json!({"file_path": format!("{home}/canary.txt")}),
            ),
            bash(&format!("cat {home}/canary.txt")),
            bash("cat notes/inside.md"),
            ("Read".into(), json!({"file_path": "notes/inside.md"})),
        ]),
        FakeTurn::text("Done."),
    ]);
    let s = chat_server(&d, &fake, &[("HOME", sc.user_home.to_str().unwrap())]).await;
    let ev = s
        .chat(json!({"message": "look around", "trustLevel": "vault"}))
        .await;
    assert_eq!(ev.last().unwrap()["type"], "done", "{ev:#?}");
    let seen = tool_results(&fake);
    assert!(!seen.contains(HOME_CANARY), "the home folder was read");
    assert!(
        seen.contains("INSIDE-NOTE"),
        "the vault inside the home was not readable"
    );
}

#[tokio::test]
async fn a_request_cannot_lower_a_sessions_level() {
    let fake = FakeAnthropic::start().await;
    let d = Dirs::new();
    let s = chat_server(&d, &fake, &[]).await;
    let ids = crate::support::seed_sessions(&d, 1, |_, n| {
        n.trust_level = Some("vault".into());
    })
    .await;
    let ev = s
        .chat(json!({"message": "hi", "sessionId": ids[0], "trustLevel": "full"}))
        .await;
    let last = ev.last().unwrap();
    assert_eq!(last["type"], "error", "{ev:#?}");
    assert!(
        last["error"]
            .as_str()
            .unwrap()
            .contains("can only restrict it, not lower it to 'full'"),
        "{last}"
    );
    assert!(fake.turn_requests().is_empty(), "nothing reached the model");
}

#[tokio::test]
async fn without_bubblewrap_a_vault_turn_fails_naming_what_to_install() {
    let fake = FakeAnthropic::start().await;
    let d = Dirs::new();
    // A PATH with the Claude CLI and nothing else: no bwrap, no socat.
    let bin = d.tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let claude = which("claude");
    std::os::unix::fs::symlink(&claude, bin.join("claude")).unwrap();
    let mut env = chat_env(&fake);
    env.push(("PATH".into(), bin.display().to_string()));
    let s = Server::start_with(
        &d,
        Opts {
            env,
            ..Default::default()
        },
    )
    .await;
    let ev = s
        .chat(json!({"message": "hi", "trustLevel": "vault"}))
        .await;
    let last = ev.last().unwrap();
    assert_eq!(last["type"], "error", "{ev:#?}");
    let msg = last["error"].as_str().unwrap();
    assert!(msg.contains("bubblewrap") && msg.contains("socat"), "{msg}");
    assert!(fake.turn_requests().is_empty(), "the turn ran unconfined");
}

fn which(program: &str) -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{program} not on PATH"))
}
