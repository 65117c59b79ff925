//! The credential in a real OS keychain: the Secret Service of a `gnome-keyring-daemon`
//! on a D-Bus session bus of the test's own, set through the API the UI uses, found
//! again after a restart, and in no file; without a bus, the 0600 file, reported as such.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::support::{wait_until, Dirs, Opts, Server};

const TOKEN: &str = "sk-ant-api03-keychain-test-0123456789abcdef";

/// A session bus and an unlocked gnome-keyring (secrets component) on it, both stopped
/// by pid when dropped.
struct Keyring {
    bus: String,
    bus_pid: u32,
    daemon: Child,
}

impl Drop for Keyring {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        let _ = Command::new("kill").arg(self.bus_pid.to_string()).status();
    }
}

impl Keyring {
    async fn start(dir: &Path) -> Keyring {
        let run = dir.join("run");
        std::fs::create_dir_all(&run).unwrap();
        let out = Command::new("dbus-daemon")
            .args(["--session", "--fork", "--print-address=1", "--print-pid=1"])
            .output()
            .expect("dbus-daemon (Debian's dbus)");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let mut lines = text.lines();
        let bus = lines.next().unwrap_or_default().trim().to_string();
        let bus_pid: u32 = lines.next().and_then(|p| p.trim().parse().ok()).unwrap();
        let mut daemon = Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env("DBUS_SESSION_BUS_ADDRESS", &bus)
            .env("HOME", dir)
            .env("XDG_RUNTIME_DIR", &run)
            .env("XDG_DATA_HOME", dir.join("data"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("gnome-keyring-daemon (Debian's gnome-keyring)");
        // The login keyring's password, on standard input, creates and unlocks it.
        let mut stdin = daemon.stdin.take().unwrap();
        stdin.write_all(b"parachute-test").unwrap();
        drop(stdin);
        let k = Keyring {
            bus,
            bus_pid,
            daemon,
        };
        // Ready once the Secret Service name is owned on the bus.
        let ready = wait_until(Duration::from_secs(15), || {
            Command::new("dbus-send")
                .args([
                    "--session",
                    "--print-reply",
                    "--dest=org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.NameHasOwner",
                    "string:org.freedesktop.secrets",
                ])
                .env("DBUS_SESSION_BUS_ADDRESS", &k.bus)
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("boolean true"))
        })
        .await;
        assert!(ready, "the Secret Service did not come up");
        k
    }
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p)
                .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
            {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

/// Sets the credential through the API the UI uses.
async fn set_credential(s: &Server, body: serde_json::Value) -> (u16, serde_json::Value) {
    s.send("PUT", "/api/settings/claude-credential", Some(body))
        .await
}

fn keychain_env(k: &Keyring) -> Opts {
    Opts {
        env: vec![
            ("PARACHUTE_KEYRING".into(), "on".into()),
            ("DBUS_SESSION_BUS_ADDRESS".into(), k.bus.clone()),
        ],
        ..Default::default()
    }
}

#[tokio::test]
async fn the_credential_lives_in_the_os_keychain_survives_a_restart_and_is_in_no_file() {
    let d = Dirs::new();
    let k = Keyring::start(&d.tmp.path().join("keyring")).await;
    let mut s = Server::start_with(&d, keychain_env(&k)).await;
    let (st, v) = set_credential(&s, json!({"token": TOKEN})).await;
    assert_eq!(
        (st, v),
        (
            200,
            json!({"set": true, "kind": "api_key", "location": "OS keychain"})
        )
    );
    s.stop().await;
    let s = Server::start_with(&d, keychain_env(&k)).await;
    let (_, h) = s.get("/api/health?detailed=true").await;
    assert_eq!(
        h["claudeCredential"],
        json!({"configured": true, "kind": "api_key", "source": "OS keychain"})
    );
    let (_, v) = s.get("/api/settings").await;
    assert_eq!(v["claude_credential"]["location"], "OS keychain");
    // Not in any file of the server's: home (logs, secrets file, settings) and vault.
    assert_eq!(files_containing(&d.home, TOKEN), Vec::<String>::new());
    assert_eq!(files_containing(&d.vault, TOKEN), Vec::<String>::new());
    assert!(!v.to_string().contains(TOKEN) && !h.to_string().contains(TOKEN));
}

#[tokio::test]
async fn without_a_keychain_the_credential_goes_to_the_private_file_and_says_so() {
    let d = Dirs::new();
    let s = Server::start_with(
        &d,
        Opts {
            env: vec![
                ("PARACHUTE_KEYRING".into(), "on".into()),
                (
                    "DBUS_SESSION_BUS_ADDRESS".into(),
                    format!("unix:path={}/no-bus", d.tmp.path().display()),
                ),
            ],
            ..Default::default()
        },
    )
    .await;
    let (st, v) = set_credential(&s, json!({"token": TOKEN})).await;
    assert_eq!(
        (st, v),
        (
            200,
            json!({"set": true, "kind": "api_key", "location": "secrets file"})
        )
    );
    // A malformed body (a misspelt field, a wrong type) is refused without repeating it.
    for bad in [
        json!({"tokn": TOKEN}),
        json!({"token": TOKEN, "force": "yes"}),
    ] {
        let (st, v) = set_credential(&s, bad).await;
        assert_eq!(st, 422, "{v}");
        assert!(!v.to_string().contains(TOKEN), "the token came back: {v}");
    }
    let file = d.home.join("secrets.json");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let (_, h) = s.get("/api/health?detailed=true").await;
    assert_eq!(h["claudeCredential"]["source"], "secrets file");
    // The logs name the fallback, never the value.
    assert!(s.log_text().contains("fallback file"), "{}", s.log_text());
    assert!(!s.log_text().contains(TOKEN));
}
