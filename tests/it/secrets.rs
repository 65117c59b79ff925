//! The secrets service with its file backend: `setup-token`, the legacy `.token`
//! migration, and no secret in logs or responses.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use parachute_core::config::secrets::{Location, SecretName, SecretStore};

use serde_json::json;

use crate::support::fake_anthropic::FakeAnthropic;
use crate::support::{chat_server_without_credential, types, Dirs, Server, CLI_SLOTS};

const TOKEN: &str = "sk-ant-oat01-TESTTOKENabcdefghijklmnopqrstuvwxyz0123456789";

#[tokio::test]
async fn setup_token_stores_in_a_private_file_and_never_echoes_it() {
    let d = Dirs::new();
    let mut child = d
        .cmd()
        .arg("setup-token")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{TOKEN}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("secrets file"), "{said}");
    assert!(!said.contains(TOKEN));

    let file = d.home.join("secrets.json");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(std::fs::read_to_string(&file).unwrap().contains(TOKEN));

    let status = d.cmd().arg("status").output().unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("token:  set: OAuth token (secrets file, sent as CLAUDE_CODE_OAUTH_TOKEN)"),
        "{text}"
    );
    assert!(!text.contains(TOKEN));

    // The running server never reveals it either.
    let mut s = Server::start(&d).await;
    for p in [
        "/api/health?detailed=true",
        "/api/auth/settings",
        "/api/auth/keys",
        "/api/openapi.json",
        "/api/chat",
    ] {
        let body = s
            .client
            .get(s.url(p))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!body.contains(TOKEN), "{p} leaked the token");
    }
    s.stop().await;
    assert!(!s.log_text().contains(TOKEN));
    let config =
        std::fs::read_to_string(d.vault.join(".parachute/config.yaml")).unwrap_or_default();
    assert!(!config.contains(TOKEN));
}

/// Runs `parachute setup-token [args]` with `value` on standard input.
fn setup_token(d: &Dirs, value: &str, args: &[&str]) -> (bool, String) {
    let mut child = d
        .cmd()
        .arg("setup-token")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{value}\n").as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !said.contains(value) || value.len() < 12,
        "echoed the value: {said}"
    );
    (out.status.success(), said)
}

const API_KEY: &str = "sk-ant-api03-TESTKEYabcdefghijklmnopqrstuvwxyz0123456789";

#[tokio::test]
async fn an_api_key_is_stored_as_one_and_reaches_the_model_as_an_api_key() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let d = Dirs::new();
    let file = d.home.join("secrets.json");
    let (ok, said) = setup_token(&d, TOKEN, &[]);
    assert!(ok && said.contains("OAuth token"), "{said}");
    // An API key is recognised, stored under its own name, and replaces the OAuth token.
    let (ok, said) = setup_token(&d, API_KEY, &[]);
    assert!(ok, "{said}");
    assert!(
        said.contains("Claude API key stored") && said.contains("ANTHROPIC_API_KEY"),
        "{said}"
    );
    assert!(
        said.contains("The stored OAuth token was removed"),
        "{said}"
    );
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(stored["anthropic_api_key"], API_KEY);
    assert!(stored.get("claude_code_oauth_token").is_none(), "{stored}");

    // Something that looks like neither kind never replaces it without --force.
    let before = std::fs::read_to_string(&file).unwrap();
    let (ok, said) = setup_token(&d, "not-a-claude-token-at-all", &[]);
    assert!(
        !ok && said.contains("--force") && said.contains("nothing was changed"),
        "{said}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);

    let status = d.cmd().arg("status").output().unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("token:  set: API key (secrets file, sent as ANTHROPIC_API_KEY)"),
        "{text}"
    );

    // The turn hands it to the CLI as an API key: the model API sees `x-api-key`, no Bearer.
    let fake = FakeAnthropic::start().await;
    let s = chat_server_without_credential(&d, &fake, &[]).await;
    let (_, health) = s.get("/api/health?detailed=true").await;
    assert_eq!(
        health["claudeCredential"],
        json!({"configured": true, "kind": "api_key", "source": "secrets file"})
    );
    let ev = s
        .chat(json!({"message": "hello", "sessionId": "new"}))
        .await;
    assert_eq!(types(&ev).last().unwrap(), "done", "{ev:#?}");
    let reqs = fake.turn_requests();
    assert!(reqs[0]["headers"]["x-api-key"]
        .as_str()
        .unwrap()
        .starts_with("<masked"));
    assert!(
        reqs[0]["headers"].get("authorization").is_none(),
        "{}",
        reqs[0]["headers"]
    );

    // --force stores an unrecognised value (as an OAuth token) and says so.
    let (ok, said) = setup_token(&d, "not-a-claude-token-at-all", &["--force"]);
    assert!(ok && said.contains("looks like neither"), "{said}");
}

#[tokio::test]
async fn empty_token_is_refused() {
    let d = Dirs::new();
    let mut child = d
        .cmd()
        .arg("setup-token")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no token"));
    assert!(!d.home.join("secrets.json").exists());
}

#[tokio::test]
async fn python_era_token_file_is_migrated_and_removed() {
    let d = Dirs::new();
    let legacy = d.vault.join(".parachute/.token");
    std::fs::create_dir_all(legacy.parent().unwrap()).unwrap();
    std::fs::write(&legacy, format!("{TOKEN}\n")).unwrap();
    let mut s = Server::start(&d).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while legacy.exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!legacy.exists(), "legacy .token removed");
    let store = SecretStore::file_only(d.home.join("secrets.json"));
    let (got, at) = store
        .get(SecretName::ClaudeOauthToken)
        .await
        .unwrap()
        .expect("migrated");
    assert_eq!((got.expose(), at), (TOKEN, Location::File));
    s.stop().await;
    assert!(!s.log_text().contains(TOKEN), "token in the log");
}

#[tokio::test]
async fn file_backend_round_trip() {
    let d = Dirs::new();
    let store = SecretStore::file_only(d.home.join("secrets.json"));
    assert!(store
        .get(SecretName::TelegramBotToken)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store
            .set(SecretName::TelegramBotToken, "123:abc")
            .await
            .unwrap(),
        Location::File
    );
    let (v, _) = store
        .get(SecretName::TelegramBotToken)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v.expose(), "123:abc");
    assert_eq!(format!("{v:?}"), "Secret(***)");
    assert!(store
        .set(SecretName::TelegramBotToken, "has space")
        .await
        .is_err());
    store.delete(SecretName::TelegramBotToken).await.unwrap();
    assert!(store
        .get(SecretName::TelegramBotToken)
        .await
        .unwrap()
        .is_none());
    // A corrupt file is an error with the path, not a panic.
    std::fs::write(d.home.join("secrets.json"), "{not json").unwrap();
    let fresh = SecretStore::file_only(d.home.join("secrets.json"));
    let err = fresh
        .get(SecretName::DiscordBotToken)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("secrets.json"), "{err}");
}
