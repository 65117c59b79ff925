//! When the model API fails or goes quiet, through the real CLI: the CLI's retries show
//! as `retrying` events, the failure arrives once as `error` naming what to check, and
//! a model that stops answering ends the turn at `model_timeout_secs`.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::fake_anthropic::{FakeAnthropic, FakeTurn};
use crate::support::{chat_server, cli_children, exited, types, wait_until, Dirs, CLI_SLOTS};

fn of_type<'a>(ev: &'a [Value], t: &str) -> Vec<&'a Value> {
    ev.iter().filter(|e| e["type"] == t).collect()
}

#[tokio::test]
async fn a_refused_credential_shows_the_retries_and_fails_once_saying_what_to_check() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    fake.script(vec![
        FakeTurn::error(401, "authentication_error", "invalid x-api-key"),
        FakeTurn::error(401, "authentication_error", "invalid x-api-key"),
        FakeTurn::error(401, "authentication_error", "invalid x-api-key"),
    ]);
    let d = Dirs::new();
    let s = chat_server(&d, &fake, &[]).await;
    let ev = s.chat(json!({"message": "hello"})).await;
    let retries = of_type(&ev, "retrying");
    assert!(!retries.is_empty(), "{ev:#?}");
    assert_eq!(retries[0]["attempt"], 1);
    assert_eq!(retries[0]["errorStatus"], 401);
    assert!(retries[0]["retryDelayMs"].as_u64().is_some(), "{ev:#?}");
    assert!(
        retries[0]["message"]
            .as_str()
            .unwrap()
            .contains("answered 401"),
        "{ev:#?}"
    );
    // The failure comes once, as the last event, with what to check — never as text.
    let errors = of_type(&ev, "error");
    assert_eq!(errors.len(), 1, "{ev:#?}");
    assert_eq!(ev.last().unwrap()["type"], "error");
    let msg = errors[0]["error"].as_str().unwrap();
    assert!(msg.contains("parachute setup-token"), "{msg}");
    assert!(
        of_type(&ev, "text").is_empty(),
        "error text sent as text: {ev:#?}"
    );
}

#[tokio::test]
async fn an_unreachable_model_api_fails_naming_the_network_and_the_url() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    // A loopback port nobody listens on: every connection is refused.
    let closed = format!("http://127.0.0.1:{}", crate::support::free_port());
    let d = Dirs::new();
    let s = chat_server(&d, &fake, &[("ANTHROPIC_BASE_URL", &closed)]).await;
    let ev = s.chat(json!({"message": "hello"})).await;
    let errors = of_type(&ev, "error");
    assert_eq!(errors.len(), 1, "{ev:#?}");
    let msg = errors[0]["error"].as_str().unwrap();
    assert!(
        msg.contains("Check the network") && msg.contains(&closed),
        "{msg}"
    );
    assert!(of_type(&ev, "text").is_empty(), "{ev:#?}");
}

#[tokio::test]
async fn a_model_that_stops_answering_ends_the_turn_at_model_timeout_secs() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    // The reply starts, then stalls for a minute between its pieces.
    fake.script(vec![
        FakeTurn::text("one two three four").slow(4, Duration::from_secs(60))
    ]);
    let d = Dirs::new();
    let s = chat_server(&d, &fake, &[("MODEL_TIMEOUT_SECS", "3")]).await;
    let ev = s.chat(json!({"message": "hello"})).await;
    let last = ev.last().unwrap();
    assert_eq!(last["type"], "error", "{ev:#?}");
    let msg = last["error"].as_str().unwrap();
    assert!(
        msg.contains("within 3 s") && msg.contains("model_timeout_secs"),
        "{msg}"
    );
    assert!(msg.contains(&fake.url), "{msg}");
    // The stalled CLI was stopped: no process is left running or kept warm.
    let gone = wait_until(Duration::from_secs(10), || {
        cli_children(s.pid()).into_iter().all(exited)
    })
    .await;
    assert!(gone, "the CLI outlived its timed-out turn");
    // A normal turn afterwards works, and its final text is not repeated empty.
    let ev = s.chat(json!({"message": "again"})).await;
    assert_eq!(ev.last().unwrap()["type"], "done", "{ev:#?}");
    assert!(
        of_type(&ev, "text").iter().all(|t| t["delta"] != ""),
        "a text event with an empty delta: {ev:#?}"
    );
    assert!(types(&ev).contains(&"text".to_string()));
}
