//! The secrets service with its file backend: `setup-token`, the legacy `.token`
//! migration, and no secret in logs or responses.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use parachute_core::config::secrets::{Location, SecretName, SecretStore};

use crate::support::{Dirs, Server};

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
    assert!(text.contains("token:  set (secrets file)"), "{text}");
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
