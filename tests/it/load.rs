//! Load through the real server: 64 chats streaming at once, then 64 follow-ups, on a
//! stand-in CLI (`support/stand_in_cli.py`, stream-json without a model, so 64 can run
//! on a small machine; `BENCH_CHAT_ONLY=concurrent cargo bench --bench chat` does the
//! same with the real CLI and measures memory),
//! with API traffic on the side. Every stream arrives whole: ids 1, 2, 3… with none
//! lost or repeated, the deltas add up to the answer, and each chat gets its own.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::support::{parse_sse, Dirs, Opts, Server, CLI_SLOTS};

const CHATS: usize = 64;

/// Sends one message and checks its stream; returns the session id.
async fn one_turn(s: &Server, i: usize, session: Option<&str>, turn: usize) -> String {
    let mut body = json!({"message": format!("chat {i}")});
    if let Some(id) = session {
        body["sessionId"] = json!(id);
    }
    let r = s.open_chat(body).await;
    assert_eq!(r.status(), 200);
    let events = parse_sse(&r.text().await.unwrap());
    let ids: Vec<u64> = events
        .iter()
        .map(|(id, _)| id.expect("every event has an id"))
        .collect();
    let expected: Vec<u64> = (1..=ids.len() as u64).collect();
    assert_eq!(
        ids, expected,
        "chat {i}: ids in order, none lost or repeated"
    );
    let ev: Vec<&Value> = events.iter().map(|(_, e)| e).collect();
    let last = ev.last().unwrap();
    assert_eq!(last["type"], "done", "chat {i}: {ev:#?}");
    let answer = format!("Answer {turn} to [chat {i}] from the stand-in.");
    assert_eq!(last["response"], answer.as_str(), "chat {i}");
    let deltas: String = ev
        .iter()
        .filter(|e| e["type"] == "text")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(deltas, answer, "chat {i}: the deltas add up to the answer");
    last["sessionId"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn sixty_four_chats_at_once_stream_whole_beside_api_traffic() {
    // CPU-heavy: keep the other CLI tests off while it runs.
    let _slots = CLI_SLOTS.acquire_many(2).await.unwrap();
    let d = Dirs::new();
    let cli = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/it/support/stand_in_cli.py"
    );
    let env = [
        ("CLAUDE_CLI_PATH", cli),
        ("ANTHROPIC_API_KEY", "sk-ant-test-key-0123456789"),
        ("MAX_CLI_PROCESSES", "64"),
        ("WARM_POOL_SIZE", "64"),
    ];
    let s = Arc::new(
        Server::start_with(
            &d,
            Opts {
                env: env
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ..Default::default()
            },
        )
        .await,
    );
    // API traffic beside the chats, until they are done.
    let done = Arc::new(AtomicBool::new(false));
    let (side_ok, side_bad) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let side = {
        let (s, done, ok, bad) = (s.clone(), done.clone(), side_ok.clone(), side_bad.clone());
        tokio::spawn(async move {
            let paths = [
                "/api/chat?limit=20",
                "/api/health?detailed=true",
                "/api/chat/active-streams",
                "/api/chat/stats",
            ];
            let mut n = 0;
            while !done.load(Ordering::Relaxed) {
                let (st, _) = s.get(paths[n % paths.len()]).await;
                let counter = if st == 200 { &ok } else { &bad };
                counter.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
        })
    };
    let mut ids = Vec::new();
    for turn in 1..=2 {
        let tasks: Vec<_> = (0..CHATS)
            .map(|i| {
                let s = s.clone();
                let session = ids.get(i).cloned();
                tokio::spawn(async move { one_turn(&s, i, session.as_deref(), turn).await })
            })
            .collect();
        let mut got = Vec::new();
        for t in tasks {
            got.push(t.await.expect("a chat task panicked"));
        }
        if turn == 1 {
            ids = got;
        } else {
            assert_eq!(got, ids, "follow-ups stay in their sessions");
        }
    }
    done.store(true, Ordering::Relaxed);
    side.await.unwrap();
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        CHATS,
        "one session per chat"
    );
    assert_eq!(side_bad.load(Ordering::Relaxed), 0, "side requests failed");
    assert!(side_ok.load(Ordering::Relaxed) > 0);
    let (_, h) = s.get("/api/health?detailed=true").await;
    assert_eq!(
        h["chat"]["spawned"], CHATS,
        "the follow-ups reused the warm processes: {h}"
    );
    let (_, list) = s.get("/api/chat?limit=100").await;
    assert_eq!(list["sessions"].as_array().unwrap().len(), CHATS);
}
