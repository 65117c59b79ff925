//! Bots through the real Telegram Bot API emulator (`telegram-test-api` behind the
//! test proxy), the real server, the real CLI and the fake model API. Levels are set
//! to `full` explicitly in `bots.yaml` (the trust tests cover the default levels).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::fake_anthropic::{FakeAnthropic, FakeTurn, DEFAULT_REPLY};
use crate::support::telegram::{mention_at, Telegram, BOT_USERNAME, TOKEN};
use crate::support::{chat_server, Dirs, Server, CLI_SLOTS};

const OWNER: i64 = 1001;

fn write_bots_yaml(d: &Dirs, tg: &Telegram, extra: &str) {
    let dot = d.vault.join(".parachute");
    std::fs::create_dir_all(&dot).unwrap();
    std::fs::write(
        dot.join("bots.yaml"),
        format!(
            "telegram:\n  enabled: true\n  api_url: {}\n  allowed_users: [{OWNER}]\n  dm_trust_level: full\n  group_trust_level: full\n{extra}",
            tg.url
        ),
    )
    .unwrap();
}

async fn bot_server(d: &Dirs, fake: &FakeAnthropic, tg: &Telegram, extra: &str) -> Server {
    write_bots_yaml(d, tg, extra);
    let s = chat_server(d, fake, &[("TELEGRAM_BOT_TOKEN", TOKEN)]).await;
    let up = crate::support::wait_until(Duration::from_secs(20), || {
        std::fs::read_to_string(&s.log)
            .unwrap_or_default()
            .contains("telegram connector polling")
    })
    .await;
    assert!(up, "connector did not start: {}", s.log_text());
    s
}

async fn sessions(s: &Server) -> Vec<Value> {
    let (st, v) = s.get("/api/chat?limit=100").await;
    assert_eq!(st, 200);
    v["sessions"].as_array().cloned().unwrap_or_default()
}

async fn linked_session(s: &Server, chat: i64) -> Value {
    sessions(s)
        .await
        .into_iter()
        .find(|x| x["linkedBotChatId"].as_str() == Some(chat.to_string().as_str()))
        .unwrap_or(Value::Null)
}

async fn activate(s: &Server, chat: i64) {
    let sess = linked_session(s, chat).await;
    let id = sess["id"].as_str().expect("a linked session").to_string();
    let (st, v) = s
        .send(
            "POST",
            &format!("/api/chat/{id}/activate"),
            Some(json!({"trustLevel": "full"})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
}

fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

#[tokio::test]
async fn an_allowlisted_chat_is_nudged_twice_then_activated_and_answered() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    let tg = Telegram::start().await;
    let d = Dirs::new();
    let s = bot_server(&d, &fake, &tg, "").await;

    for _ in 0..3 {
        tg.send(OWNER, OWNER, "Owner", "hello there", Value::Null)
            .await;
    }
    let t = tg.wait_texts(OWNER, 2, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t2 = tg.bot_texts(OWNER).await;
    assert_eq!(t, t2, "a third message gets no nudge");
    assert_eq!(t.len(), 2, "{t:?}");
    assert!(t[0].starts_with("Session created!"), "{t:?}");
    assert!(t[1].starts_with("Still being configured"), "{t:?}");
    assert!(
        fake.turn_requests().is_empty(),
        "the agent was not reached before activation"
    );
    let sess = linked_session(&s, OWNER).await;
    assert_eq!(sess["source"], "telegram");
    assert_eq!(sess["metadata"]["pending_initialization"], true);
    assert_eq!(sess["linkedBotChatType"], "dm");

    activate(&s, OWNER).await;
    let t = tg.wait_texts(OWNER, 3, Duration::from_secs(10)).await;
    assert_eq!(t[2], "Session activated! You can start chatting now.");

    tg.send(OWNER, OWNER, "Owner", "What is new?", Value::Null)
        .await;
    let t = tg.wait_texts(OWNER, 4, Duration::from_secs(60)).await;
    assert_eq!(t.get(3).map(String::as_str), Some(DEFAULT_REPLY), "{t:?}");
    // The ack reaction was put on the message, then removed.
    // Removed after the reply (just after it: wait a moment for it).
    crate::support::wait_until(Duration::from_secs(5), || {
        tg.calls("setMessageReaction")
            .iter()
            .any(|c| c.body["reaction"].as_array().is_some_and(|r| r.is_empty()))
    })
    .await;
    let reactions = tg.calls("setMessageReaction");
    assert!(
        reactions
            .iter()
            .any(|c| c.body["reaction"][0]["emoji"] == "👀"),
        "{reactions:?}"
    );
    assert!(reactions
        .iter()
        .any(|c| c.body["reaction"].as_array().is_some_and(|r| r.is_empty())));
    let (_, status) = s.get("/api/bots/status").await;
    assert_eq!(
        status["connectors"]["telegram"]["running"], true,
        "{status}"
    );
    assert_eq!(status["connectors"]["telegram"]["has_token"], true);
    let (_, health) = s.get("/api/health?detailed=true").await;
    assert_eq!(health["bots"]["telegram"]["running"], true);
}

#[tokio::test]
async fn an_unknown_user_makes_one_pairing_request_and_is_let_in_once_approved() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    let tg = Telegram::start().await;
    let d = Dirs::new();
    let s = bot_server(&d, &fake, &tg, "").await;
    let (stranger, other) = (2002i64, 3003i64);

    for i in 0..8 {
        tg.send(
            stranger,
            stranger,
            "Stranger",
            &format!("let me in {i}"),
            Value::Null,
        )
        .await;
    }
    tg.wait_texts(stranger, 1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let t = tg.bot_texts(stranger).await;
    assert_eq!(
        t,
        vec!["Hi! I need approval before we can chat. Your request has been sent to the owner."]
    );
    assert!(
        fake.turn_requests().is_empty(),
        "a stranger never reaches the agent"
    );
    let (_, list) = s.get("/api/bots/pairing").await;
    let reqs = list["requests"].as_array().unwrap().clone();
    assert_eq!(reqs.len(), 1, "{list}");
    assert_eq!(reqs[0]["platformUserId"], stranger.to_string());
    let id = reqs[0]["id"].as_str().unwrap().to_string();
    let pending = linked_session(&s, stranger).await;
    assert_eq!(pending["metadata"]["pending_approval"], true, "{pending}");
    assert_eq!(pending["metadata"]["pairing_request_id"], id);
    assert_eq!(pending["metadata"]["first_message"], "let me in 0");
    assert_eq!(pending["metadata"]["linked_bot"]["platform"], "telegram");

    let (st, v) = s
        .send(
            "POST",
            &format!("/api/bots/pairing/{id}/approve"),
            Some(json!({"trust_level": "full"})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["request"]["status"], "approved");
    assert_eq!(v["request"]["approvedTrustLevel"], "full");
    let (st, _) = s
        .send("POST", &format!("/api/bots/pairing/{id}/deny"), None)
        .await;
    assert_eq!(st, 409, "a decided request cannot be decided again");
    let t = tg.wait_texts(stranger, 2, Duration::from_secs(10)).await;
    assert_eq!(
        t[1],
        "You've been approved! Send me a message to start chatting."
    );
    let (_, cfg) = s.get("/api/bots/config").await;
    assert!(
        cfg["telegram"]["allowed_users"]
            .as_array()
            .unwrap()
            .contains(&json!(stranger)),
        "{cfg}"
    );
    assert!(cfg["telegram"].get("bot_token").is_none());

    tg.send(
        stranger,
        stranger,
        "Stranger",
        "Thanks! Hello?",
        Value::Null,
    )
    .await;
    let t = tg.wait_texts(stranger, 3, Duration::from_secs(60)).await;
    assert_eq!(t.get(2).map(String::as_str), Some(DEFAULT_REPLY), "{t:?}");

    // Another stranger is denied: their pending session is archived.
    tg.send(other, other, "Other", "hi", Value::Null).await;
    tg.wait_texts(other, 1, Duration::from_secs(10)).await;
    let (_, list) = s.get("/api/bots/pairing").await;
    let id2 = list["requests"][0]["id"].as_str().unwrap().to_string();
    let (st, v) = s
        .send("POST", &format!("/api/bots/pairing/{id2}/deny"), None)
        .await;
    assert_eq!(st, 200, "{v}");
    assert!(
        linked_session(&s, other).await.is_null(),
        "the denied chat's session is archived"
    );
    let (st, _) = s.send("POST", "/api/bots/pairing/nope/approve", None).await;
    assert_eq!(st, 404);
}

#[tokio::test]
async fn groups_answer_only_mention_entities_with_marked_group_context() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    let tg = Telegram::start().await;
    let d = Dirs::new();
    let s = bot_server(&d, &fake, &tg, "  group_mention_mode: mention_only\n").await;
    let group = -5005i64;

    tg.send(
        group,
        OWNER,
        "Owner",
        "The plan is Tuesday at noon",
        Value::Null,
    )
    .await;
    let ask = format!("@{BOT_USERNAME} when is the plan?");
    tg.send(group, OWNER, "Owner", &ask, mention_at(0)).await;
    tg.wait_texts(group, 1, Duration::from_secs(10)).await;
    activate(&s, group).await;
    tg.wait_texts(group, 2, Duration::from_secs(10)).await;
    // The bot's name in plain text, without a mention entity, is ignored.
    tg.send(
        group,
        OWNER,
        "Owner",
        &format!("{BOT_USERNAME} are you there?"),
        Value::Null,
    )
    .await;
    tg.send(group, OWNER, "Owner", &ask, mention_at(0)).await;
    let t = tg.wait_texts(group, 3, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(tg.bot_texts(group).await.len(), 3, "{t:?}");
    assert_eq!(t[2], DEFAULT_REPLY);
    let reqs = fake.turn_requests();
    assert_eq!(reqs.len(), 1, "one turn for one mention");
    let body = reqs[0]["body"]["messages"].to_string();
    assert!(body.contains("<group_context>"), "{body}");
    assert!(body.contains("The plan is Tuesday at noon"), "{body}");
    assert!(body.contains("when is the plan?"), "{body}");
    assert!(
        body.contains("</group_context>\\n\\nwhen is the plan?"),
        "the request, mention stripped, follows the context: {body}"
    );
    assert_eq!(
        linked_session(&s, group).await["linkedBotChatType"],
        "group"
    );
}

#[tokio::test]
async fn commands_journal_new_and_a_long_reply_split_with_fences_intact() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    let tg = Telegram::start().await;
    let d = Dirs::new();
    let s = bot_server(&d, &fake, &tg, "").await;

    tg.send(
        OWNER,
        OWNER,
        "Owner",
        "/journal Walked the dog & fixed the bike",
        Value::Null,
    )
    .await;
    tg.send(OWNER, OWNER, "Owner", "/j second thought", Value::Null)
        .await;
    let t = tg.wait_texts(OWNER, 2, Duration::from_secs(10)).await;
    assert!(
        t[0].starts_with("Journal entry saved: Daily/entries/"),
        "{t:?}"
    );
    let rel = t[0].trim_start_matches("Journal entry saved: ").to_string();
    let text = std::fs::read_to_string(d.vault.join(&rel)).unwrap();
    assert!(
        text.contains("source: telegram")
            && text.trim_end().ends_with("Walked the dog & fixed the bike"),
        "{text}"
    );
    let entries = std::fs::read_dir(d.vault.join("Daily/entries"))
        .unwrap()
        .count();
    assert_eq!(entries, 2, "two entries, none overwritten");
    // The bot's entries are the Daily module's entries: one journal, one format.
    let (status, page) = s.get("/api/daily/entries").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["count"], 2, "{page}");
    assert_eq!(page["entries"][0]["snippet"], "second thought", "{page}");
    let id = page["entries"][1]["id"].as_str().unwrap().to_string();
    let (_, entry) = s.get(&format!("/api/daily/entries/{id}")).await;
    assert_eq!(entry["metadata"]["source"], "telegram", "{entry}");

    tg.send(OWNER, OWNER, "Owner", "hello", Value::Null).await;
    tg.wait_texts(OWNER, 3, Duration::from_secs(10)).await;
    activate(&s, OWNER).await;
    tg.wait_texts(OWNER, 4, Duration::from_secs(10)).await;
    let code: Vec<String> = (0..400)
        .map(|i| format!("let value_{i} = compute({i}); // step {i}"))
        .collect();
    let long = format!(
        "Here is the program:\n\n```rust\n{}\n```\n\nThat is all.",
        code.join("\n")
    );
    fake.script(vec![FakeTurn::text(&long)]);
    tg.send(OWNER, OWNER, "Owner", "write a long program", Value::Null)
        .await;
    // Wait for the whole reply: its last part ends with the closing line.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let t = loop {
        let t = tg.bot_texts(OWNER).await;
        if t.last().is_some_and(|m| m.ends_with("That is all."))
            || std::time::Instant::now() > deadline
        {
            break t;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let parts = &t[4..];
    assert!(parts.len() >= 2, "{parts:?}");
    for p in parts {
        // Telegram counts the text without its HTML tags.
        let visible = strip_tags(p);
        assert!(
            visible.chars().count() <= 4096,
            "{}",
            visible.chars().count()
        );
        assert_eq!(
            p.matches("<pre").count(),
            p.matches("</pre>").count(),
            "{p}"
        );
        assert_eq!(
            p.matches("<code").count(),
            p.matches("</code>").count(),
            "{p}"
        );
    }
    let joined = parts.join("\n");
    for i in [0, 199, 399] {
        assert!(
            joined.contains(&format!("let value_{i} = compute({i});")),
            "line {i} kept"
        );
    }

    tg.send(OWNER, OWNER, "Owner", "/new", Value::Null).await;
    let n = t.len() + 1;
    let t = tg.wait_texts(OWNER, n, Duration::from_secs(10)).await;
    assert_eq!(
        t.last().unwrap(),
        "Starting fresh! Previous conversation archived."
    );
    assert!(
        linked_session(&s, OWNER).await.is_null(),
        "the linked session was archived"
    );
}

#[tokio::test]
async fn order_within_a_chat_429s_and_an_emulator_restart() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    fake.echo(true);
    let mut tg = Telegram::start().await;
    let d = Dirs::new();
    let s = bot_server(&d, &fake, &tg, "").await;
    tg.send(OWNER, OWNER, "Owner", "hello", Value::Null).await;
    tg.wait_texts(OWNER, 1, Duration::from_secs(10)).await;
    activate(&s, OWNER).await;
    tg.wait_texts(OWNER, 2, Duration::from_secs(10)).await;

    // Messages of one chat are answered in the order they came.
    let n = 50;
    let started = Instant::now();
    for i in 0..n {
        tg.send(OWNER, OWNER, "Owner", &format!("m{i}"), Value::Null)
            .await;
    }
    let t = tg.wait_texts(OWNER, 2 + n, Duration::from_secs(180)).await;
    let answers: Vec<&String> = t[2..].iter().collect();
    let want: Vec<String> = (0..n).map(|i| format!("echo: m{i}")).collect();
    assert_eq!(answers, want.iter().collect::<Vec<_>>(), "{t:?}");
    eprintln!(
        "{n} messages in one chat answered in {:?}",
        started.elapsed()
    );

    // A 429 with retry_after is waited out, then the reply goes through.
    tg.fail_next("sendMessage", 1, 1);
    tg.send(OWNER, OWNER, "Owner", "after a 429", Value::Null)
        .await;
    let t = tg.wait_texts(OWNER, 3 + n, Duration::from_secs(60)).await;
    assert_eq!(t.last().unwrap(), "echo: after a 429");
    let sends = tg.calls("sendMessage");
    let i = sends
        .iter()
        .position(|c| c.status == 429)
        .expect("the 429 was served");
    let retry = &sends[i + 1];
    assert!(
        retry.at.duration_since(sends[i].at) >= Duration::from_millis(950),
        "retry_after honoured"
    );

    // The emulator goes away and comes back: the connector recovers on its own.
    let polls = |s: &Server| {
        std::fs::read_to_string(&s.log)
            .unwrap_or_default()
            .matches("telegram connector polling")
            .count()
    };
    let before = polls(&s);
    tg.restart_emulator(Duration::from_secs(2)).await;
    let recovered =
        crate::support::wait_until(Duration::from_secs(30), || polls(&s) > before).await;
    assert!(recovered, "{}", s.log_text());
    // The session survives; the restarted emulator starts its history empty.
    tg.send(OWNER, OWNER, "Owner", "still there?", Value::Null)
        .await;
    let t = tg.wait_texts(OWNER, 1, Duration::from_secs(60)).await;
    assert_eq!(
        t.last().map(String::as_str),
        Some("echo: still there?"),
        "{t:?}"
    );
    let (_, status) = s.get("/api/bots/status").await;
    assert!(
        status["connectors"]["telegram"]["restarts"]
            .as_u64()
            .unwrap_or(0)
            >= 1,
        "{status}"
    );
    assert!(
        !status.to_string().contains(TOKEN),
        "the token never appears in the status"
    );
    assert!(
        !s.log_text().contains(TOKEN),
        "the token never appears in the log"
    );
}

/// A real OGG/Opus voice file: espeak-ng speaks, ffmpeg encodes.
fn voice_ogg(dir: &std::path::Path) -> Vec<u8> {
    let wav = dir.join("said.wav");
    let ogg = dir.join("said.ogg");
    let st = std::process::Command::new("espeak-ng")
        .args(["-w"])
        .arg(&wav)
        .arg("What is on my calendar today?")
        .status()
        .expect("espeak-ng (scripts/install-test-deps.sh installs it)");
    assert!(st.success());
    let st = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-y", "-i"])
        .arg(&wav)
        .args(["-c:a", "libopus", "-b:a", "24k"])
        .arg(&ogg)
        .status()
        .expect("ffmpeg");
    assert!(st.success());
    std::fs::read(&ogg).unwrap()
}

#[tokio::test]
async fn a_voice_message_is_converted_transcribed_and_answered() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    fake.echo(true);
    let tg = Telegram::start().await;
    let d = Dirs::new();
    let ogg = voice_ogg(d.tmp.path());
    assert_eq!(&ogg[..4], b"OggS");
    tg.add_file("voice-1", ogg.clone());
    tg.add_file("voice-2", ogg);
    tg.set_transcript("What is on my calendar today?");

    // Without a transcription service, a clear reply.
    let s = bot_server(&d, &fake, &tg, "").await;
    tg.send(OWNER, OWNER, "Owner", "hello", Value::Null).await;
    tg.wait_texts(OWNER, 1, Duration::from_secs(10)).await;
    activate(&s, OWNER).await;
    tg.wait_texts(OWNER, 2, Duration::from_secs(10)).await;
    tg.send_voice(OWNER, OWNER, "Owner", "voice-1").await;
    let t = tg.wait_texts(OWNER, 3, Duration::from_secs(20)).await;
    assert!(
        t[2].starts_with("Voice messages need a transcription service"),
        "{t:?}"
    );

    // With one: ffmpeg converts the OGG to WAV, the service transcribes, the agent answers.
    let (st, v) = s
        .send(
            "PUT",
            "/api/bots/config",
            Some(json!({"telegram": {"transcription_url": tg.url}})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let back = crate::support::wait_until(Duration::from_secs(20), || {
        std::fs::read_to_string(&s.log)
            .unwrap_or_default()
            .matches("telegram connector polling")
            .count()
            >= 2
    })
    .await;
    assert!(back, "the connector restarted with the new config");
    tg.send_voice(OWNER, OWNER, "Owner", "voice-2").await;
    let t = tg.wait_texts(OWNER, 4, Duration::from_secs(60)).await;
    assert_eq!(
        t.get(3).map(String::as_str),
        Some("echo: What is on my calendar today?"),
        "{t:?}"
    );
    let uploads = tg.uploads();
    assert_eq!(uploads.len(), 1);
    let body = &uploads[0];
    let riff = body
        .windows(4)
        .position(|w| w == b"RIFF")
        .expect("a WAV file was uploaded");
    assert_eq!(&body[riff + 8..riff + 12], b"WAVE");
    assert!(
        String::from_utf8_lossy(body).contains("whisper-1"),
        "the model is sent"
    );
}

#[tokio::test]
async fn discord_through_a_fake_gateway_and_rest_api() {
    use crate::support::discord::{Discord, BOT_ID, TOKEN as DISCORD_TOKEN};
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    let dc = Discord::start().await;
    let d = Dirs::new();
    let dot = d.vault.join(".parachute");
    std::fs::create_dir_all(&dot).unwrap();
    std::fs::write(
        dot.join("bots.yaml"),
        format!(
            "discord:\n  enabled: true\n  api_url: {}\n  allowed_users: [\"501\"]\n  dm_trust_level: full\n  group_trust_level: full\n",
            dc.url
        ),
    )
    .unwrap();
    let s = chat_server(&d, &fake, &[("DISCORD_BOT_TOKEN", DISCORD_TOKEN)]).await;
    let up = crate::support::wait_until(Duration::from_secs(30), || dc.connected()).await;
    assert!(
        up,
        "the connector did not reach the fake gateway: {}",
        s.log_text()
    );
    let registered = crate::support::wait_until(Duration::from_secs(10), || {
        !dc.calls("PUT", "/applications/200/commands").is_empty()
    })
    .await;
    assert!(registered);
    let names: Vec<String> = dc.calls("PUT", "/applications/200/commands")[0]
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["chat", "new", "journal"]);

    // A DM: nudge, activation, answer (a reply, with ack reaction and typing).
    let (dm, owner) = (300u64, 501u64);
    dc.user_message(dm, None, owner, "owner", "hello", false);
    let t = dc.wait_texts(dm, 1, Duration::from_secs(10)).await;
    assert!(t[0].starts_with("Session created!"), "{t:?}");
    activate(&s, dm as i64).await;
    dc.wait_texts(dm, 2, Duration::from_secs(10)).await;
    let asked = dc.user_message(dm, None, owner, "owner", "What is new?", false);
    let t = dc.wait_texts(dm, 3, Duration::from_secs(60)).await;
    assert_eq!(t.get(2).map(String::as_str), Some(DEFAULT_REPLY), "{t:?}");
    let replies = dc.calls("POST", &format!("/channels/{dm}/messages"));
    let last = replies.last().unwrap();
    assert_eq!(
        last.body["message_reference"]["message_id"],
        asked.to_string(),
        "sent as a reply"
    );
    let reaction = format!("/channels/{dm}/messages/{asked}/reactions/");
    assert_eq!(dc.calls("PUT", &reaction).len(), 1, "ack reaction added");
    let removed = crate::support::wait_until(Duration::from_secs(5), || {
        dc.calls("DELETE", &reaction).len() == 1
    })
    .await;
    assert!(removed, "and removed");
    assert!(!dc
        .calls("POST", &format!("/channels/{dm}/typing"))
        .is_empty());

    // A guild channel: no mention → ignored; a mention → answered with the history.
    let (chan, guild) = (310u64, 400u64);
    dc.user_message(
        chan,
        Some(guild),
        owner,
        "owner",
        "The plan is Tuesday at noon",
        false,
    );
    dc.user_message(
        chan,
        Some(guild),
        owner,
        "owner",
        &format!("<@{BOT_ID}> when is the plan?"),
        true,
    );
    dc.wait_texts(chan, 1, Duration::from_secs(10)).await;
    activate(&s, chan as i64).await;
    dc.wait_texts(chan, 2, Duration::from_secs(10)).await;
    dc.user_message(
        chan,
        Some(guild),
        owner,
        "owner",
        "parabot are you there?",
        false,
    );
    fake.script(vec![FakeTurn::text(&"word ".repeat(900))]);
    let before = fake.turn_requests().len();
    dc.user_message(
        chan,
        Some(guild),
        owner,
        "owner",
        &format!("<@{BOT_ID}> when is the plan?"),
        true,
    );
    let t = dc.wait_texts(chan, 5, Duration::from_secs(60)).await;
    assert!(
        t.len() >= 5,
        "a 4500-character reply in several messages: {t:?}"
    );
    assert!(t[2..].iter().all(|m| m.chars().count() <= 2000));
    let reqs = fake.turn_requests();
    assert_eq!(
        reqs.len(),
        before + 1,
        "one turn: the unmentioned message was ignored"
    );
    let body = reqs.last().unwrap()["body"]["messages"].to_string();
    assert!(
        body.contains("<group_context>") && body.contains("The plan is Tuesday at noon"),
        "{body}"
    );
    assert!(
        body.contains("</group_context>\\n\\nwhen is the plan?"),
        "{body}"
    );

    // A stranger: one pairing request, never the agent.
    let n = fake.turn_requests().len();
    dc.user_message(320, None, 777, "stranger", "hi", false);
    dc.user_message(320, None, 777, "stranger", "hello?", false);
    let t = dc.wait_texts(320, 1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(dc.bot_texts(320), t);
    assert_eq!(
        t,
        ["Hi! I need approval before we can chat. Your request has been sent to the owner."]
    );
    let (_, list) = s.get("/api/bots/pairing").await;
    assert_eq!(list["requests"][0]["platform"], "discord");
    assert_eq!(fake.turn_requests().len(), n);

    // Slash commands: /journal saves an entry, /chat answers, /new archives.
    dc.slash(
        dm,
        owner,
        "owner",
        "journal",
        Some(("entry", "Shipped the Discord bot")),
    );
    let t = dc.wait_texts(dm, 4, Duration::from_secs(20)).await;
    assert!(
        t.len() >= 4,
        "no answer to /journal: {t:?}\n{:?}\n{}",
        dc.calls("POST", "")
            .iter()
            .map(|c| c.path.clone())
            .collect::<Vec<_>>(),
        s.log_text()
    );
    assert!(
        t[3].starts_with("Journal entry saved: Daily/entries/"),
        "{t:?}"
    );
    let rel = t[3].trim_start_matches("Journal entry saved: ").to_string();
    assert!(std::fs::read_to_string(d.vault.join(rel))
        .unwrap()
        .contains("Shipped the Discord bot"));
    assert!(
        !dc.calls("POST", "/callback").is_empty(),
        "the command was acknowledged"
    );
    dc.slash(dm, owner, "owner", "chat", Some(("message", "and now?")));
    let t = dc.wait_texts(dm, 5, Duration::from_secs(60)).await;
    assert_eq!(t[4], DEFAULT_REPLY);
    dc.slash(dm, owner, "owner", "new", None);
    let t = dc.wait_texts(dm, 6, Duration::from_secs(20)).await;
    assert_eq!(t[5], "Starting fresh! Previous conversation archived.");
    let (_, status) = s.get("/api/bots/status").await;
    assert_eq!(status["connectors"]["discord"]["running"], true, "{status}");
    let (_, test) = s.send("POST", "/api/bots/discord/test", None).await;
    assert_eq!(test["bot_id"], BOT_ID.to_string(), "{test}");
    assert!(!s.log_text().contains(DISCORD_TOKEN));
}
