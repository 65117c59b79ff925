//! Fault injection through the real server and the real CLI: the model API answering
//! 429 / 500 / `overloaded_error`, the CLI killed mid-reply, printing garbage, or hanging
//! silent, and the server itself killed with SIGKILL mid-turn. Each fault ends the turn
//! with one clean `error` (or is survived), within a bound, leaves no process behind and
//! no turn stuck, and the next turn works.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::fake_anthropic::{FakeAnthropic, FakeTurn};
use crate::support::{
    chat_server, cli_children, cli_shim, exited, last_user_text, read_rest, read_until, types,
    wait_until, Dirs, Server, CLI_SLOTS,
};

fn of_type<'a>(ev: &'a [Value], t: &str) -> Vec<&'a Value> {
    ev.iter().filter(|e| e["type"] == t).collect()
}

fn session_of(ev: &[Value]) -> String {
    ev.last().unwrap()["sessionId"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Gone from the process table: exited and reaped by the server.
fn reaped(pid: u32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

async fn no_stream_left(s: &Server) -> bool {
    for _ in 0..100 {
        let (_, v) = s.get("/api/chat/active-streams").await;
        if v["streams"].as_array().is_some_and(|a| a.is_empty()) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn rate_limits_server_errors_and_overload_end_cleanly_and_the_session_goes_on() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    let d = Dirs::new();
    let s = chat_server(&d, &fake, &[]).await;
    fake.script(vec![FakeTurn::text("Ready.")]);
    let id = session_of(&s.chat(json!({"message": "hello"})).await);
    for (status, kind) in [
        (429, "rate_limit_error"),
        (500, "api_error"),
        (529, "overloaded_error"),
    ] {
        // Every try fails (the CLI retries once here: CLAUDE_CODE_MAX_RETRIES=1).
        fake.script(vec![FakeTurn::error(status, kind, "try later"); 2]);
        let started = Instant::now();
        let ev = s.chat(json!({"message": "go on", "sessionId": id})).await;
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{status}: took {:?}",
            started.elapsed()
        );
        let retries = of_type(&ev, "retrying");
        assert!(!retries.is_empty(), "{status}: {ev:#?}");
        assert_eq!(retries[0]["errorStatus"], status, "{ev:#?}");
        assert_eq!(
            of_type(&ev, "error").len(),
            1,
            "{status}: one error: {ev:#?}"
        );
        assert_eq!(ev.last().unwrap()["type"], "error", "{status}: {ev:#?}");
        assert!(
            of_type(&ev, "text").is_empty(),
            "{status}: error sent as text: {ev:#?}"
        );
        assert!(no_stream_left(&s).await, "{status}: a turn stayed active");
        // A fault that clears within the retries is only a `retrying` event.
        fake.script(vec![
            FakeTurn::error(status, kind, "try later"),
            FakeTurn::text("Recovered."),
        ]);
        let ev = s
            .chat(json!({"message": "and now?", "sessionId": id}))
            .await;
        assert_eq!(ev.last().unwrap()["type"], "done", "{status}: {ev:#?}");
        assert_eq!(ev.last().unwrap()["response"], "Recovered.");
        assert_eq!(of_type(&ev, "retrying").len(), 1, "{ev:#?}");
    }
    // Still one warm CLI for the session, none stuck beside it.
    assert_eq!(cli_children(s.pid()).len(), 1);
}

#[tokio::test]
async fn a_cli_killed_mid_reply_ends_the_turn_with_an_error_and_is_reaped() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    let d = Dirs::new();
    let s = chat_server(&d, &fake, &[]).await;
    fake.script(vec![
        FakeTurn::text("Noted: the key is under the mat."),
        FakeTurn::text("one two three four five six seven eight")
            .slow(8, Duration::from_millis(500)),
        FakeTurn::text("Under the mat."),
    ]);
    let id = session_of(
        &s.chat(json!({"message": "The key is under the mat."}))
            .await,
    );
    let mut r = s
        .open_chat(json!({"message": "Count slowly.", "sessionId": id}))
        .await;
    let mut seen = String::new();
    read_until(&mut r, &mut seen, "text").await;
    let kids = cli_children(s.pid());
    assert_eq!(kids.len(), 1, "{kids:?}");
    parachute_core::util::sys::send_signal(kids[0], parachute_core::util::sys::Signal::Kill);
    let ended = tokio::time::timeout(Duration::from_secs(15), read_rest(&mut r, &mut seen)).await;
    let ev = ended.expect("the turn ended within 15 s of the crash");
    assert_eq!(ev.last().unwrap()["type"], "error", "{ev:#?}");
    assert_eq!(of_type(&ev, "error").len(), 1, "{ev:#?}");
    assert!(
        wait_until(Duration::from_secs(5), || reaped(kids[0])).await,
        "the dead CLI was reaped"
    );
    assert!(no_stream_left(&s).await);
    // The next turn resumes the session with a new CLI.
    let ev = s
        .chat(json!({"message": "Where is the key?", "sessionId": id}))
        .await;
    assert_eq!(ev.last().unwrap()["response"], "Under the mat.", "{ev:#?}");
}

#[tokio::test]
async fn garbage_lines_from_the_cli_are_skipped_and_the_turn_completes() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    let d = Dirs::new();
    // Before every line the real CLI prints: a line that is not JSON, one that is JSON
    // of no known kind, and one that is cut short.
    let cli = cli_shim(
        &d,
        r#""$REAL" "$@" | while IFS= read -r line; do
  printf '%s\n' 'garbage \001 not json' '{"type":"no_such_kind","x":[1,2]}' '{"type":"assistant","mess' "$line"
done"#,
    );
    let s = chat_server(&d, &fake, &[("CLAUDE_CLI_PATH", &cli)]).await;
    fake.script(vec![
        FakeTurn::text("Clean answer."),
        FakeTurn::text("Second answer."),
    ]);
    let ev = s.chat(json!({"message": "hello"})).await;
    assert_eq!(ev.last().unwrap()["type"], "done", "{ev:#?}");
    assert_eq!(ev.last().unwrap()["response"], "Clean answer.");
    assert!(of_type(&ev, "error").is_empty(), "{ev:#?}");
    let ev = s
        .chat(json!({"message": "again", "sessionId": session_of(&ev)}))
        .await;
    assert_eq!(ev.last().unwrap()["response"], "Second answer.", "{ev:#?}");
}

#[tokio::test]
async fn a_cli_that_hangs_silent_ends_the_turn_at_the_bound_and_is_stopped() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    let d = Dirs::new();
    // Prints nothing and never answers; it reads its input, so it ends with the server.
    let cli = cli_shim(&d, "exec cat > /dev/null");
    let s = chat_server(
        &d,
        &fake,
        &[("CLAUDE_CLI_PATH", &cli), ("MODEL_TIMEOUT_SECS", "3")],
    )
    .await;
    let started = Instant::now();
    let ev = tokio::time::timeout(Duration::from_secs(60), s.chat(json!({"message": "hello"})))
        .await
        .expect("the turn ended within 60 s");
    let took = started.elapsed();
    assert_eq!(ev.last().unwrap()["type"], "error", "{ev:#?}");
    assert_eq!(of_type(&ev, "error").len(), 1, "{ev:#?}");
    assert!(of_type(&ev, "text").is_empty(), "{ev:#?}");
    eprintln!("a silent CLI ended its turn after {took:?}");
    let stopped = wait_until(Duration::from_secs(10), || cli_children(s.pid()).is_empty()).await;
    assert!(
        stopped,
        "the hung CLI was stopped and reaped: {:?}",
        cli_children(s.pid())
    );
    assert!(no_stream_left(&s).await);
    assert!(fake.turn_requests().is_empty(), "nothing reached the model");
}

#[tokio::test]
async fn a_server_killed_mid_turn_restarts_with_its_store_intact_and_the_session_resumes() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    let d = Dirs::new();
    let mut s = chat_server(&d, &fake, &[]).await;
    fake.script(vec![
        FakeTurn::text("Noted: the code is 4711."),
        FakeTurn::text("a b c d e f g h i j").slow(10, Duration::from_millis(500)),
        FakeTurn::text("It is 4711."),
    ]);
    let id = session_of(&s.chat(json!({"message": "The code is 4711."})).await);
    let mut r = s
        .open_chat(json!({"message": "Recite slowly.", "sessionId": id}))
        .await;
    let mut seen = String::new();
    read_until(&mut r, &mut seen, "text").await;
    let cli = cli_children(s.pid());
    s.kill9();
    drop(r);
    // The orphaned CLI sees its stdin close and exits.
    let gone = wait_until(Duration::from_secs(20), || {
        cli.iter().all(|p| reaped(*p) || exited(*p))
    })
    .await;
    assert!(gone, "the CLI outlived its killed server: {cli:?}");

    // The store passes SQLite's integrity check before the restart touches it.
    let db = d.db_path();
    let check: String = {
        use sqlx::ConnectOptions;
        let mut c = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&db)
            .connect()
            .await
            .unwrap();
        sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&mut c)
            .await
            .unwrap()
    };
    assert_eq!(check, "ok");

    let s = chat_server(&d, &fake, &[]).await;
    let (st, v) = s.get(&format!("/api/chat/{id}")).await;
    assert_eq!(st, 200, "{v}");
    let ev = s
        .chat(json!({"message": "What is the code?", "sessionId": id}))
        .await;
    assert_eq!(ev.last().unwrap()["type"], "done", "{ev:#?}");
    assert_eq!(ev.last().unwrap()["response"], "It is 4711.");
    let history = last_user_text(fake.turn_requests().last().unwrap());
    assert!(
        history.contains("The code is 4711."),
        "the session resumed with its history: {history}"
    );
    assert!(types(&ev).contains(&"session".to_string()));
}

/// A small tmpfs mounted in a mount namespace of its own, held open by a child process
/// (`unshare … exec cat`). Nothing is mounted in the host's namespace, so however the
/// test ends, even SIGKILLed, no mount is left behind: the namespace and its tmpfs go
/// once the holder (whose stdin is this process's pipe) and the processes started in it
/// have exited.
struct PrivateTmpfs {
    holder: std::process::Child,
}

impl PrivateTmpfs {
    /// Mounts a tmpfs of `size` (e.g. `16m`) on `at`, an existing folder (needs root).
    fn mount(at: &Path, size: &str) -> PrivateTmpfs {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        let mut holder = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(r#"mount -t tmpfs -o size="$1" tmpfs "$2" && echo mounted && exec cat"#)
            .args(["sh", size])
            .arg(at)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run unshare (util-linux)");
        let mut line = String::new();
        let out = holder.stdout.take().unwrap();
        let _ = std::io::BufReader::new(out).read_line(&mut line);
        let t = PrivateTmpfs { holder };
        assert_eq!(
            line.trim(),
            "mounted",
            "mounting a tmpfs in a mount namespace failed (this test needs root)"
        );
        t
    }

    /// The command prefix that starts a program inside the namespace.
    fn run_via(&self) -> Vec<String> {
        ["nsenter", "-t", &self.holder.id().to_string(), "-m", "--"]
            .map(String::from)
            .to_vec()
    }

    /// `p`, a path as the namespace sees it, as this process reaches it.
    fn outside(&self, p: &Path) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.holder.id()))
            .join(p.strip_prefix("/").expect("an absolute path"))
    }
}

impl Drop for PrivateTmpfs {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// Writes zeros into `file` until the disk refuses.
fn fill(file: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(file).unwrap();
    let block = vec![0u8; 64 * 1024];
    while f.write_all(&block).and_then(|_| f.flush()).is_ok() {}
    let _ = f.sync_all();
}

#[tokio::test]
async fn a_full_disk_gives_a_clear_error_loses_nothing_and_writes_resume_once_space_returns() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    let mut d = Dirs::new();
    // The vault, and the store inside it, on a 16 MiB tmpfs in a mount namespace of
    // its own, where the server runs (needs root, like the network-namespace tests).
    let mnt = d.tmp.path().join("small");
    std::fs::create_dir_all(&mnt).unwrap();
    let tmpfs = PrivateTmpfs::mount(&mnt, "16m");
    d.run_via = tmpfs.run_via();
    d.vault = mnt.join("vault");
    // The vault as this test reaches it (the server sees `d.vault`).
    let vault = tmpfs.outside(&d.vault);
    std::fs::create_dir_all(vault.join("Notes")).unwrap();
    let s = chat_server(&d, &fake, &[]).await;
    fake.script(vec![FakeTurn::text("Stored.")]);
    let id = session_of(&s.chat(json!({"message": "Remember the blue door."})).await);
    let (st, _) = s
        .send(
            "PUT",
            "/api/write",
            Some(json!({"path": "Notes/kept.md", "content": "kept"})),
        )
        .await;
    assert_eq!(st, 200);

    let filler = tmpfs.outside(&mnt.join("filler"));
    fill(&filler);
    // Every kind of write is refused with the same clear answer.
    let big = "x".repeat(200_000);
    for (method, path, body) in [
        (
            "PUT",
            "/api/write".to_string(),
            json!({"path": "Notes/new.md", "content": big}),
        ),
        (
            "PATCH",
            format!("/api/chat/{id}/config"),
            json!({"configOverrides": {"big": big}}),
        ),
        (
            "POST",
            "/api/workspaces".to_string(),
            json!({"name": "Full"}),
        ),
        (
            "POST",
            "/api/skills".to_string(),
            json!({"name": "full-disk", "content": big}),
        ),
        (
            "POST",
            "/api/mcps".to_string(),
            json!({"name": "full", "config": {"command": "node"}}),
        ),
    ] {
        let (st, v) = s.send(method, &path, Some(body)).await;
        assert_eq!(st, 507, "{method} {path}: {v}");
        assert!(
            v["detail"].as_str().unwrap().contains("The disk is full"),
            "{v}"
        );
    }
    // A turn in that state ends with an error event, not a hang.
    let ev = tokio::time::timeout(
        Duration::from_secs(60),
        s.chat(json!({"message": "Still there?", "sessionId": id})),
    )
    .await
    .expect("the turn ended");
    // The CLI's transcript lives outside the vault, so the turn may complete; the
    // conversation then holds it even though the session's row could not be updated
    // (its count catches up with the next turn, checked below). Else it ended with one
    // error.
    let last = ev.last().unwrap();
    if last["type"] == "done" {
        let (_, v) = s.get(&format!("/api/chat/{id}")).await;
        let said: Vec<&str> = v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["content"].as_str())
            .collect();
        assert!(said.contains(&"Still there?"), "{v}");
    } else {
        assert_eq!(last["type"], "error", "{ev:#?}");
        assert_eq!(of_type(&ev, "error").len(), 1, "{ev:#?}");
    }
    // A new chat: its row may still fit in the store's free pages; if it does not, the
    // one error says the disk is full, in plain words (unscripted: the model may not
    // be asked at all).
    let ev = tokio::time::timeout(
        Duration::from_secs(60),
        s.chat(json!({"message": "A new chat on a full disk"})),
    )
    .await
    .expect("the turn ended");
    let errors = of_type(&ev, "error");
    if let Some(e) = errors.first() {
        assert_eq!(errors.len(), 1, "{ev:#?}");
        assert!(
            e["error"].as_str().unwrap().starts_with("The disk is full"),
            "{ev:#?}"
        );
    } else {
        assert_eq!(ev.last().unwrap()["type"], "done", "{ev:#?}");
    }

    // Nothing lost or half-written.
    let (st, v) = s.get("/api/read?path=Notes/kept.md").await;
    assert_eq!((st, v["content"].as_str()), (200, Some("kept")), "{v}");
    assert!(!vault.join("Notes/new.md").exists(), "no partial file");
    let leftovers: Vec<_> = std::fs::read_dir(vault.join("Notes"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    let (st, v) = s.get(&format!("/api/chat/{id}")).await;
    assert_eq!(st, 200, "{v}");
    // SQLite resolves the symlinks of a path, so it cannot open the store through
    // `/proc/<pid>/root`: check a byte copy of it, taken while the server is idle.
    let copy = d.tmp.path().join("store-copy");
    std::fs::create_dir_all(&copy).unwrap();
    for suffix in ["", "-wal"] {
        let from = tmpfs.outside(&PathBuf::from(format!("{}{suffix}", d.db_path().display())));
        if from.exists() {
            std::fs::copy(&from, copy.join(format!("sessions.db{suffix}"))).unwrap();
        }
    }
    let check: String = {
        use sqlx::ConnectOptions;
        let mut c = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(copy.join("sessions.db"))
            .connect()
            .await
            .unwrap();
        sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&mut c)
            .await
            .unwrap()
    };
    assert_eq!(check, "ok");

    // Space returns: the same writes succeed, and so does a turn.
    std::fs::remove_file(&filler).unwrap();
    let (st, v) = s
        .send(
            "PUT",
            "/api/write",
            Some(json!({"path": "Notes/new.md", "content": "now"})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = s
        .send(
            "PATCH",
            &format!("/api/chat/{id}/config"),
            Some(json!({"configOverrides": {"n": 1}})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    fake.script(vec![FakeTurn::text("Back.")]);
    let ev = s
        .chat(json!({"message": "And now?", "sessionId": id}))
        .await;
    assert_eq!(ev.last().unwrap()["response"], "Back.", "{ev:#?}");
    let (_, v) = s.get(&format!("/api/chat/{id}")).await;
    assert_eq!(
        v["messageCount"],
        ev.last().unwrap()["messageCount"],
        "the row caught up: {v}"
    );
}
