//! The desktop app for real: the built `parachute-app` under Xvfb, with its own D-Bus
//! session bus and an XEmbed tray host (`trayer`), on a temporary home, vault and port.
//! Needs Debian's `xvfb`, `dbus`, `trayer`, `x11-utils` and `imagemagick`
//! (`scripts/install-test-deps.sh` installs them). Screenshots go to
//! `target/app-screenshots/`.

#![cfg(target_os = "linux")]
// A failed unwrap is how a test reports; long scenario tests read top to bottom.
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use parachute_core::util::probe::get_loopback;

/// One desktop session: Xvfb, a session bus and a tray host; stopped (by pid) on drop.
struct Desktop {
    display: String,
    bus: String,
    children: Vec<Child>,
    bus_pid: Option<u32>,
}

impl Drop for Desktop {
    fn drop(&mut self) {
        for c in self.children.iter_mut().rev() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(pid) = self.bus_pid {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    cond()
}

impl Desktop {
    fn start() -> Desktop {
        // A display number of our own: tests run in parallel in one process, so each
        // takes the next number after our pid's, skipping any in use.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = (0..400)
            .map(|_| {
                let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                50 + (std::process::id() as usize * 7 + k) % 400
            })
            .find(|n| {
                !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                    && !Path::new(&format!("/tmp/.X{n}-lock")).exists()
            })
            .expect("a free X display number");
        let display = format!(":{n}");
        let xvfb = Command::new("Xvfb")
            .args([&display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb (Debian's xvfb)");
        assert!(
            wait_for(Duration::from_secs(10), || Path::new(&format!(
                "/tmp/.X11-unix/X{n}"
            ))
            .exists()),
            "Xvfb did not start"
        );
        // The socket appears before the server accepts clients: wait until one is served.
        assert!(
            wait_for(Duration::from_secs(10), || Command::new("xwininfo")
                .args(["-root", "-display", &display])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())),
            "Xvfb does not answer"
        );
        let out = Command::new("dbus-daemon")
            .args(["--session", "--fork", "--print-address=1", "--print-pid=1"])
            .output()
            .expect("dbus-daemon (Debian's dbus)");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let mut lines = text.lines();
        let bus = lines.next().unwrap_or_default().trim().to_string();
        let bus_pid = lines.next().and_then(|p| p.trim().parse().ok());
        assert!(bus.starts_with("unix:"), "no session bus: {text}");
        let mut d = Desktop {
            display,
            bus,
            children: vec![xvfb],
            bus_pid,
        };
        let tray = Command::new("trayer")
            .args([
                "--edge",
                "top",
                "--align",
                "right",
                "--widthtype",
                "request",
            ])
            .args([
                "--height",
                "32",
                "--SetDockType",
                "true",
                "--transparent",
                "false",
            ])
            .env("DISPLAY", &d.display)
            .env("DBUS_SESSION_BUS_ADDRESS", &d.bus)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("trayer (Debian's trayer)");
        d.children.push(tray);
        assert!(
            wait_for(Duration::from_secs(10), || tray_window(&d).is_some()),
            "trayer did not show up"
        );
        d
    }

    /// `xwininfo -root -tree` on this display.
    fn tree(&self) -> String {
        let out = Command::new("xwininfo")
            .args(["-root", "-tree", "-display", &self.display])
            .output()
            .expect("xwininfo (Debian's x11-utils)");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    fn screenshot(&self, name: &str) -> PathBuf {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/app-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        let ok = Command::new("import")
            .args(["-display", &self.display, "-window", "root"])
            .arg(&path)
            .status()
            .expect("import (Debian's imagemagick)");
        assert!(ok.success(), "screenshot failed");
        path
    }
}

/// trayer's panel window, as its line in the window tree, if it is mapped.
fn tray_window(d: &Desktop) -> Option<String> {
    d.tree()
        .lines()
        .find(|l| l.contains("(\"panel\" \"trayer\")"))
        .map(str::to_string)
}

/// Whether the tray host holds an icon of the app: a window of class `tray-icon …`
/// nested inside trayer's panel.
fn tray_has_icon(d: &Desktop) -> bool {
    let tree = d.tree();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut lines = tree
        .lines()
        .skip_while(|l| !l.contains("(\"panel\" \"trayer\")"));
    let Some(panel) = lines.next() else {
        return false;
    };
    let depth = indent(panel);
    lines
        .take_while(|l| l.trim().is_empty() || indent(l) > depth)
        .any(|l| l.contains("\"tray-icon tray app"))
}

/// The resident memory of a process group (the app and its WebKit processes), in MB.
fn group_rss_mb(pgid: u32) -> f64 {
    let mut kb = 0u64;
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // Fields after the command name (which may hold spaces) in parentheses.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let pgrp: Option<u32> = rest.split_whitespace().nth(2).and_then(|p| p.parse().ok());
        if pgrp != Some(pgid) {
            continue;
        }
        let status = std::fs::read_to_string(e.path().join("status")).unwrap_or_default();
        kb += status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0);
    }
    kb as f64 / 1024.0
}

/// The id of the app's top-level window named `Parachute`, if it exists.
fn app_window(d: &Desktop) -> Option<String> {
    d.tree()
        .lines()
        .find(|l| l.contains("\"Parachute\": (\"parachute-app\""))
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
}

/// Whether X window `id` is mapped and viewable.
fn viewable(d: &Desktop, id: &str) -> bool {
    Command::new("xwininfo")
        .args(["-id", id, "-display", &d.display])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("Map State: IsViewable"))
}

/// Asks window `id` to close as a window manager's close button does: the ICCCM
/// `WM_DELETE_WINDOW` client message (Debian's python3-xlib).
fn close_window(d: &Desktop, id: &str) {
    let script = format!(
        "from Xlib import display, X\n\
         from Xlib.protocol import event\n\
         d = display.Display('{}')\n\
         w = d.create_resource_object('window', {id})\n\
         p = d.intern_atom('WM_PROTOCOLS'); x = d.intern_atom('WM_DELETE_WINDOW')\n\
         w.send_event(event.ClientMessage(window=w, client_type=p, data=(32, [x, X.CurrentTime, 0, 0, 0])))\n\
         d.flush()\n",
        d.display
    );
    let st = Command::new("/usr/bin/python3")
        .args(["-c", &script])
        .status()
        .expect("python3 with Xlib (Debian's python3-xlib)");
    assert!(st.success(), "could not send WM_DELETE_WINDOW");
}

/// A home, vault and port for one app.
struct Home {
    dir: tempfile::TempDir,
    port: u16,
}

impl Home {
    fn new() -> Home {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("vault")).unwrap();
        Home {
            dir,
            port: free_port(),
        }
    }
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    fn app(&self, d: &Desktop, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_parachute-app"));
        c.args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.path(".config"))
            .env("XDG_DATA_HOME", self.path(".local/share"))
            .env("XDG_RUNTIME_DIR", self.dir.path())
            .env("PARACHUTE_HOME", self.path("home"))
            .env("PARACHUTE_KEYRING", "off")
            .env("VAULT_PATH", self.path("vault"))
            .env("PORT", self.port.to_string())
            .env("HOST", "127.0.0.1")
            .env("DISPLAY", &d.display)
            .env("DBUS_SESSION_BUS_ADDRESS", &d.bus)
            .env("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(self.path("app.stderr")).unwrap(),
            ))
            .process_group(0);
        c
    }
    fn autostart_entry(&self) -> Option<PathBuf> {
        std::fs::read_dir(self.path(".config/autostart"))
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "desktop"))
    }
    fn log(&self) -> String {
        let mut out = std::fs::read_to_string(self.path("app.stderr")).unwrap_or_default();
        if let Ok(dir) = std::fs::read_dir(self.path("home/logs")) {
            for f in dir.flatten() {
                out.push_str(&std::fs::read_to_string(f.path()).unwrap_or_default());
            }
        }
        out
    }
}

async fn healthy(port: u16) -> bool {
    matches!(get_loopback(port, "/api/health", Duration::from_secs(2)).await, Ok(r) if r.status == 200)
}

async fn wait_healthy(port: u16, within: Duration) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if healthy(port).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

fn wait_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// `PRAGMA integrity_check` of the vault's store.
async fn store_ok(vault: &Path) -> String {
    use sqlx::Connection;
    let db = vault.join("Chat/sessions.db");
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let (check,): (String,) = sqlx::query_as("PRAGMA integrity_check")
        .fetch_one(&mut c)
        .await
        .unwrap();
    check
}

/// Runs a menu item in the running app (a second launch forwards it and exits).
fn menu(home: &Home, d: &Desktop, id: &str) {
    let out = home
        .app(d, &["--menu", id])
        .stderr(Stdio::piped())
        .output()
        .expect("a second launch");
    assert!(
        out.status.success(),
        "the second launch failed: {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn the_app_serves_shows_its_tray_and_window_toggles_login_and_quits_cleanly() {
    let d = Desktop::start();
    let home = Home::new();
    let started = Instant::now();
    let mut app = home.app(&d, &[]).spawn().expect("the app");
    assert!(
        wait_healthy(home.port, Duration::from_secs(60)).await,
        "the embedded server never answered: {}",
        home.log()
    );
    let to_healthy = started.elapsed();
    assert!(
        wait_for(Duration::from_secs(30), || tray_has_icon(&d)),
        "no tray icon in the tray host: {}",
        d.tree()
    );
    let to_tray = started.elapsed();
    eprintln!(
        "FIGURE app start to healthy server {} ms, to tray icon {} ms",
        to_healthy.as_millis(),
        to_tray.as_millis()
    );
    // The window shows the UI: wait for it, then look at it.
    assert!(
        wait_for(Duration::from_secs(30), || d
            .tree()
            .contains("\"Parachute\"")),
        "no window: {}",
        d.tree()
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let shot = d.screenshot("app-first-run");
    let out = Command::new("convert")
        .arg(&shot)
        .args(["-format", "%[fx:standard_deviation]", "info:"])
        .output()
        .unwrap();
    let spread: f64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0.0);
    assert!(spread > 0.05, "the screen looks empty (deviation {spread})");
    eprintln!(
        "FIGURE app RSS with the window open (app + WebKit processes): {:.1} MB",
        group_rss_mb(app.id())
    );
    // Closing the window keeps the app (and its server) in the tray; Open brings it back.
    let window = app_window(&d).expect("the app's window");
    assert!(viewable(&d, &window));
    close_window(&d, &window);
    assert!(
        wait_for(Duration::from_secs(10), || !viewable(&d, &window)),
        "the window did not close"
    );
    assert!(
        app.try_wait().unwrap().is_none(),
        "the app exited with its window"
    );
    assert!(
        healthy(home.port).await,
        "the server stopped with the window"
    );
    assert!(tray_has_icon(&d));
    menu(&home, &d, "open");
    assert!(
        wait_for(Duration::from_secs(10), || viewable(&d, &window)),
        "Open did not show the window again"
    );
    // One process serves: the app itself.
    assert!(
        home.log().contains("running inside the app"),
        "{}",
        home.log()
    );

    // Start at login, through the menu's own path: the entry comes and goes.
    menu(&home, &d, "start-at-login");
    assert!(
        wait_for(Duration::from_secs(10), || home.autostart_entry().is_some()),
        "no autostart entry: {}",
        home.log()
    );
    let entry = std::fs::read_to_string(home.autostart_entry().unwrap()).unwrap();
    assert!(entry.contains("--hidden"), "{entry}");
    menu(&home, &d, "start-at-login");
    assert!(
        wait_for(Duration::from_secs(10), || home.autostart_entry().is_none()),
        "the autostart entry stayed"
    );

    // The same login item from the UI's Settings, through the API.
    let put = |on: bool| {
        Command::new("curl")
            .args([
                "-s",
                "-X",
                "PUT",
                "-H",
                "Content-Type: application/json",
                "-d",
            ])
            .arg(format!("{{\"enabled\":{on}}}"))
            .arg(format!(
                "http://127.0.0.1:{}/api/desktop/login-item",
                home.port
            ))
            .output()
            .unwrap()
    };
    let out = put(true);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\"enabled\":true"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(home.autostart_entry().is_some());
    put(false);
    assert!(home.autostart_entry().is_none());

    // Quit through the menu: the server stops, the store is intact, the app exits.
    menu(&home, &d, "quit");
    let st = wait_exit(&mut app, Duration::from_secs(30)).expect("the app did not quit");
    assert!(st.success(), "{st}: {}", home.log());
    assert!(!healthy(home.port).await, "the server still answers");
    assert_eq!(store_ok(&home.path("vault")).await, "ok");
    assert!(
        home.log().contains("embedded server stopped"),
        "{}",
        home.log()
    );
}

#[tokio::test]
async fn sigterm_stops_the_app_and_its_server_cleanly() {
    let d = Desktop::start();
    let home = Home::new();
    let mut app = home.app(&d, &["--hidden"]).spawn().expect("the app");
    assert!(
        wait_healthy(home.port, Duration::from_secs(60)).await,
        "{}",
        home.log()
    );
    // Hidden: the tray only, no window.
    assert!(wait_for(Duration::from_secs(30), || tray_has_icon(&d)));
    assert!(!d.tree().contains("\"Parachute\""), "a window opened");
    tokio::time::sleep(Duration::from_secs(2)).await;
    eprintln!(
        "FIGURE app RSS in the tray without a window: {:.1} MB",
        group_rss_mb(app.id())
    );
    let _ = Command::new("kill")
        .args(["-TERM", &app.id().to_string()])
        .status();
    let st = wait_exit(&mut app, Duration::from_secs(30)).expect("SIGTERM did not stop the app");
    assert!(st.success(), "{st}: {}", home.log());
    assert!(!healthy(home.port).await);
    assert_eq!(store_ok(&home.path("vault")).await, "ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_server_on_the_port_is_attached_to_not_doubled() {
    let d = Desktop::start();
    let home = Home::new();
    // The daemon's code path, in this test's process: another process than the app.
    let settings =
        parachute_core::config::Settings::for_paths(home.path("vault"), home.path("daemon-home"))
            .unwrap();
    let mut settings = settings;
    settings.port = home.port;
    settings.host = "127.0.0.1".into();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    std::fs::create_dir_all(home.path("daemon-home")).unwrap();
    let daemon = tokio::spawn(parachute_api::server::serve_until(settings, async {
        let _ = rx.await;
    }));
    if !wait_healthy(home.port, Duration::from_secs(30)).await {
        panic!("the daemon did not start: {:?}", daemon.await);
    }
    let mut app = home.app(&d, &["--hidden"]).spawn().expect("the app");
    assert!(
        wait_for(Duration::from_secs(30), || home
            .log()
            .contains("using the Parachute already running")),
        "{}",
        home.log()
    );
    // Quitting the app leaves the daemon running.
    menu(&home, &d, "quit");
    let st = wait_exit(&mut app, Duration::from_secs(30)).expect("the app did not quit");
    assert!(st.success());
    assert!(
        healthy(home.port).await,
        "the daemon was stopped by the app"
    );
    let _ = stop.send(());
    daemon.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_window_is_let_in_with_its_own_key_when_every_request_needs_one() {
    let d = Desktop::start();
    let home = Home::new();
    // One device key exists, so even this machine needs a key (with none, it may come
    // in to create the first).
    std::fs::create_dir_all(home.path("vault/.parachute")).unwrap();
    std::fs::write(
        home.path("vault/.parachute/server.yaml"),
        "security:\n  require_auth: always\n  api_keys:\n  - id: k_phone\n    label: phone\n    \
         key_hash: sha256:0000000000000000000000000000000000000000000000000000000000000000\n    \
         created_at: 2026-12-01T00:00:00.000000\n",
    )
    .unwrap();
    let mut app = home
        .app(&d, &[])
        .env("LOG_LEVEL", "info,parachute_api=debug")
        .spawn()
        .expect("the app");
    assert!(
        wait_healthy(home.port, Duration::from_secs(60)).await,
        "{}",
        home.log()
    );
    // The window's first navigation carries no header and gets the key prompt; the
    // prompt's script finds the window's key and loads the page with it.
    assert!(
        wait_for(Duration::from_secs(30), || home
            .log()
            .contains("key_id=k_desktop_window path=/ui/setup")),
        "the window never used its key: {}",
        home.log()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    d.screenshot("app-always-mode");
    // Other callers still need a key.
    let r = get_loopback(home.port, "/api/chat", Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(r.status, 401);
    menu(&home, &d, "quit");
    let st = wait_exit(&mut app, Duration::from_secs(30)).expect("the app did not quit");
    assert!(st.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_port_held_by_another_program_is_reported_not_fought_over() {
    let d = Desktop::start();
    let home = Home::new();
    // Something that is not Parachute answers on the port.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", home.port))
        .await
        .unwrap();
    let other = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok((mut s, _)) = listener.accept().await {
            let _ = s
                .write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
                )
                .await;
        }
    });
    let mut app = home.app(&d, &[]).spawn().expect("the app");
    assert!(
        wait_for(Duration::from_secs(30), || home
            .log()
            .contains("is used by another program")),
        "{}",
        home.log()
    );
    // The app stays up to say so (tray and window), and quits cleanly.
    assert!(wait_for(Duration::from_secs(30), || tray_has_icon(&d)));
    // The window says why (its screenshot shows the message).
    assert!(
        wait_for(Duration::from_secs(30), || app_window(&d).is_some()),
        "no window: {}",
        home.log()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    d.screenshot("app-port-taken");
    assert!(app.try_wait().unwrap().is_none());
    menu(&home, &d, "quit");
    let st = wait_exit(&mut app, Duration::from_secs(30)).expect("the app did not quit");
    assert!(st.success());
    other.abort();
}
