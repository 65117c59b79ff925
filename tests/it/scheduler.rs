//! Scheduled agents through the real server, the real CLI and the fake model API: a
//! run on time with its ledger row and output; no overlap; three failures pause; a
//! missed occurrence after a restart follows `missed`; `kill -9` during a run leaves it
//! recorded as interrupted and the policy decides what comes next.

use std::time::Duration;

use chrono::{DateTime, Days, Timelike, Utc};
use serde_json::{json, Value};

use crate::support::fake_anthropic::{FakeAnthropic, FakeTurn};
use crate::support::{chat_server, tool_results, Dirs, Server, CLI_SLOTS};

/// A whole second at least `secs` from now.
fn soon(secs: i64) -> DateTime<Utc> {
    let t = Utc::now() + chrono::Duration::seconds(secs);
    t.with_nanosecond(0).unwrap()
}

/// A cron expression (with seconds) for the instant `t`, in UTC.
fn cron_at(t: DateTime<Utc>) -> String {
    format!("{} {} {} * * *", t.second(), t.minute(), t.hour())
}

fn agent(d: &Dirs, name: &str, front: &str, body: &str) {
    let dir = d.vault.join("Daily/.agents");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(format!("{name}.md")),
        format!("---\n{front}\n---\n{body}\n"),
    )
    .unwrap();
}

/// Reads the definitions again (times are chosen once the server is up, so a slow start
/// never makes them pass unseen).
async fn reload(s: &Server) {
    let (status, v) = s.send("POST", "/api/scheduler/reload", None).await;
    assert_eq!(status, 200, "{v}");
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

async fn runs(s: &Server, agent: &str) -> Vec<Value> {
    let (_, v) = s.get(&format!("/api/scheduler/runs?agent={agent}")).await;
    v["runs"].as_array().cloned().unwrap_or_default()
}

/// Waits (up to `within`) for the agent's newest run to have `outcome`; returns it.
async fn wait_for_run(s: &Server, agent: &str, outcome: &str, within: Duration) -> Value {
    let deadline = std::time::Instant::now() + within;
    loop {
        let all = runs(s, agent).await;
        if let Some(r) = all.first().filter(|r| r["outcome"] == outcome) {
            return r.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {outcome} run of {agent}: {all:?}\n{}",
            s.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_scheduled_agent_runs_on_time_reads_the_journal_and_writes_its_output() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    let d = Dirs::new();
    let today = Utc::now().date_naive();
    let yesterday = today.checked_sub_days(Days::new(1)).unwrap().to_string();
    let journals = d.vault.join("Daily/journals");
    std::fs::create_dir_all(&journals).unwrap();
    std::fs::write(
        journals.join(format!("{yesterday}.md")),
        "# para:daily:x 09:00\nFinished the garden fence.\n",
    )
    .unwrap();
    fake.script(vec![
        FakeTurn::tool("mcp__parachute__read_journal", json!({"date": yesterday})),
        FakeTurn::tool(
            "mcp__parachute__write_output",
            json!({"content": "Fence done; garden next."}),
        ),
        FakeTurn::text("Saved your digest."),
    ]);
    let s = chat_server(&d, &fake, &[]).await;
    let at = soon(4);
    agent(
        &d,
        "digest",
        &format!(
            "displayName: Digest\nschedule: \"{}\"\ntimezone: UTC",
            cron_at(at)
        ),
        "Write a short digest of my day.",
    );
    reload(&s).await;

    let (status, v) = s.get("/api/scheduler").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["running"], true);
    assert_eq!(v["jobs"][0]["id"], "daily_digest", "{v}");
    assert_eq!(
        v["jobs"][0]["next_run"]
            .as_str()
            .map(|t| t.replace("+00:00", "Z")),
        Some(stamp(at)),
        "{v}"
    );
    assert_eq!(v["agents"]["digest"]["display_name"], "Digest");

    let run = wait_for_run(&s, "digest", "completed", Duration::from_secs(60)).await;
    assert_eq!(run["trigger"], "schedule");
    assert_eq!(run["scheduled_for"], stamp(at));
    let started = DateTime::parse_from_rfc3339(run["started_at"].as_str().unwrap()).unwrap();
    let drift = started.with_timezone(&Utc) - at;
    assert!(
        drift >= chrono::Duration::zero() && drift < chrono::Duration::seconds(15),
        "started {started} for {at}"
    );
    assert!(run["finished_at"].is_string());
    assert!(run["error"].is_null(), "{run}");
    // The output is for the occurrence's day.
    let output = format!("Daily/digest/{}.md", at.date_naive());
    assert_eq!(run["output_path"], output.as_str());
    let text = std::fs::read_to_string(d.vault.join(&output)).unwrap();
    assert!(
        text.contains("agent: digest") && text.contains("Fence done; garden next."),
        "{text}"
    );
    // The agent read the journal through the MCP server.
    assert!(tool_results(&fake).contains("Finished the garden fence."));
    // Its own session, filed as the scheduler's.
    let sid = run["session_id"].as_str().unwrap();
    let (status, session) = s.get(&format!("/api/chat/{sid}")).await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["source"], "scheduler", "{session}");

    // The command line shows the agent and its run.
    let out = d
        .cmd()
        .args(["agents", "runs", "--agent", "digest"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("completed"), "{text}");
    let out = d.cmd().args(["agents", "list"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("digest"));
}

#[tokio::test]
async fn a_run_never_overlaps_itself_and_three_failures_pause_the_agent() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    let d = Dirs::new();
    agent(&d, "slow", "tools: []", "Take your time.");
    let s = chat_server(&d, &fake, &[]).await;

    fake.script(vec![
        FakeTurn::text("working on it, slowly").slow(20, Duration::from_millis(150))
    ]);
    let first = {
        let client = s.client.clone();
        let url = format!(
            "http://127.0.0.1:{}/api/scheduler/agents/slow/trigger",
            s.port
        );
        tokio::spawn(async move { client.post(url).send().await.unwrap().status().as_u16() })
    };
    wait_for_run(&s, "slow", "running", Duration::from_secs(20)).await;
    let (status, v) = s
        .send("POST", "/api/scheduler/agents/slow/trigger", None)
        .await;
    assert_eq!(status, 409, "{v}");
    assert_eq!(first.await.unwrap(), 200);
    let done = runs(&s, "slow").await;
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(done[0]["outcome"], "completed_no_output");

    // The model fails every time: three failed runs in a row pause it.
    fake.script(vec![FakeTurn::error(500, "api_error", "boom"); 20]);
    for _ in 0..3 {
        let (status, v) = s
            .send("POST", "/api/scheduler/agents/slow/trigger", None)
            .await;
        assert_eq!(status, 500, "{v}");
    }
    let (_, v) = s.get("/api/modules/daily/agents/slow").await;
    assert_eq!(v["agent"]["paused"], true, "{v}");
    assert!(v["agent"]["pause_reason"]
        .as_str()
        .unwrap()
        .contains("3 runs in a row failed"));
    let all = runs(&s, "slow").await;
    assert!(all[..3]
        .iter()
        .all(|r| r["outcome"] == "error" && r["error"].is_string()));
    let (_, v) = s.get("/api/modules/daily/agents/status").await;
    assert_eq!(v["agents"]["slow"]["paused"], true);
    let (status, v) = s
        .send("POST", "/api/scheduler/agents/slow/resume", None)
        .await;
    assert_eq!((status, v["was_paused"].clone()), (200, json!(true)));
    let (_, v) = s.get("/api/modules/daily/agents/slow").await;
    assert_eq!(v["agent"]["paused"], false);

    // Unknown and malformed names are a 404, never a path.
    for name in ["nope", "..%2F..%2Fetc", "a%20b"] {
        let (status, _) = s
            .send(
                "POST",
                &format!("/api/scheduler/agents/{name}/trigger"),
                None,
            )
            .await;
        assert_eq!(status, 404, "{name}");
    }
}

#[tokio::test]
async fn missed_runs_after_a_restart_or_a_crash_follow_their_policy() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    let d = Dirs::new();
    let mut s = chat_server(&d, &fake, &[]).await;
    let at = soon(6);
    let when = format!("schedule: \"{}\"\ntimezone: UTC\ntools: []", cron_at(at));
    agent(
        &d,
        "catchup",
        &format!("{when}\nmissed: run_once"),
        "Catch up.",
    );
    agent(&d, "skipper", &format!("{when}\nmissed: skip"), "Skip it.");
    reload(&s).await;
    let (_, v) = s.get("/api/scheduler").await;
    assert_eq!(v["jobs"].as_array().unwrap().len(), 2, "{v}");
    s.stop().await;
    assert!(
        Utc::now() < at,
        "the server took too long to start and stop"
    );
    while Utc::now() <= at + chrono::Duration::seconds(1) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    fake.script(vec![FakeTurn::text("Caught up.")]);
    let mut s = chat_server(&d, &fake, &[]).await;
    let caught = wait_for_run(
        &s,
        "catchup",
        "completed_no_output",
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(caught["trigger"], "missed");
    assert_eq!(caught["scheduled_for"], stamp(at));
    let skipped = wait_for_run(&s, "skipper", "skipped", Duration::from_secs(10)).await;
    assert_eq!(skipped["trigger"], "missed");
    assert_eq!(skipped["scheduled_for"], stamp(at));
    assert!(skipped["error"].as_str().unwrap().contains("missed: skip"));
    s.stop().await;

    // kill -9 in the middle of a scheduled run.
    fake.script(vec![
        FakeTurn::text("a very long answer").slow(200, Duration::from_millis(100))
    ]);
    let mut s = chat_server(&d, &fake, &[]).await;
    let at = soon(4);
    agent(
        &d,
        "longrun",
        &format!(
            "schedule: \"{}\"\ntimezone: UTC\ntools: []\nmissed: run_once",
            cron_at(at)
        ),
        "Work long.",
    );
    reload(&s).await;
    let running = wait_for_run(&s, "longrun", "running", Duration::from_secs(30)).await;
    assert_eq!(running["trigger"], "schedule");
    s.kill9();

    fake.script(vec![FakeTurn::text("Done this time.")]);
    let s = chat_server(&d, &fake, &[]).await;
    let again = wait_for_run(
        &s,
        "longrun",
        "completed_no_output",
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(
        again["trigger"],
        "missed",
        "{:?}",
        runs(&s, "longrun").await
    );
    assert_eq!(again["scheduled_for"], stamp(at));
    let all = runs(&s, "longrun").await;
    let cut = all.iter().find(|r| r["id"] == running["id"]).unwrap();
    assert_eq!(cut["outcome"], "interrupted", "{all:?}");
    assert!(cut["finished_at"].is_string());
    // The cut-off run and its one rerun: the occurrence ran once more, not again.
    assert_eq!(all.len(), 2, "{all:?}");
}
