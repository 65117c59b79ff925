//! Parachute's desktop app: a tray icon with a menu and a window on the web UI, with the
//! server running inside the app's process (the same library and code path as the
//! `parachute server` daemon), or attached to the daemon when one already runs.
//!
//! - `embedded`: start, attach or explain why not; stop gracefully;
//! - `menu`: the tray menu's ids and the one `handle_menu` that acts on them;
//! - `status`: the tray's running / attention / error state from the server's health;
//! - here: the Tauri wiring (plugins, tray, window, single instance, quit).
//!
//! `parachute-app --menu ID` runs a menu item in the running app (e.g. `--menu quit`);
//! `--hidden` starts in the tray without opening the window (used at login).

#![warn(missing_docs)]

pub mod embedded;
pub mod menu;
pub mod status;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tauri::image::Image;
use tauri::menu::{CheckMenuItem, Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager, RunEvent, WebviewUrl, WebviewWindowBuilder, WindowEvent, Wry};
use tauri_plugin_autostart::{MacosLauncher, ManagerExt};

use parachute_core::config::{Overrides, Settings};
use parachute_core::desktop::DesktopControl;

use embedded::Server;
use menu::{handle_menu, Desktop, MenuId, Outcome, Places};
use status::Status;

/// The tray icon's id.
const TRAY: &str = "parachute";
/// The window's label.
const WINDOW: &str = "main";

/// What the app keeps while it runs.
struct Core {
    /// The server, taken by Quit.
    server: tokio::sync::Mutex<Option<Server>>,
    /// The port the window and the status poll use, once known.
    port: Mutex<Option<u16>>,
    /// Why there is no server, once known.
    unavailable: Mutex<Option<String>>,
    /// The embedded server's key for the window (never written anywhere).
    window_key: Mutex<Option<String>>,
    places: Places,
    /// No credential yet: the window opens on the first-run page.
    first_run: AtomicBool,
    quitting: AtomicBool,
    status_item: MenuItem<Wry>,
    autostart_item: CheckMenuItem<Wry>,
}

/// Runs the app until Quit (or SIGTERM).
pub fn run() {
    let (settings, load_error) = match Settings::load(&Overrides::default()) {
        Ok(s) => (Some(s), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let _log = settings.as_ref().map(|s| {
        let dir = s.paths.logs_dir();
        let _ = std::fs::create_dir_all(&dir);
        parachute_core::logging::init(&s.log_level, Some(dir.as_path()))
    });
    let hidden = std::env::args().any(|a| a == "--hidden");
    let app = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, argv, _cwd| {
            // A second launch: run its `--menu` item here, or show the window.
            on_second_launch(app, &argv);
        }))
        .plugin(tauri_plugin_autostart::init(
            MacosLauncher::LaunchAgent,
            Some(vec!["--hidden"]),
        ))
        .plugin(tauri_plugin_shell::init())
        .setup(move |app| {
            // A tray app: no Dock icon on macOS.
            #[cfg(target_os = "macos")]
            app.set_activation_policy(tauri::ActivationPolicy::Accessory);
            let places = match &settings {
                Some(s) => Places {
                    vault: s.paths.vault.clone(),
                    logs: s.paths.logs_dir(),
                },
                None => Places {
                    vault: parachute_core::config::resolve_home(),
                    logs: parachute_core::config::resolve_home().join("logs"),
                },
            };
            let handle = app.handle().clone();
            let core = build_tray(&handle, places)?;
            app.manage(Arc::new(core));
            start_server(
                handle.clone(),
                settings.clone(),
                load_error.clone(),
                !hidden,
            );
            watch_signals(handle);
            Ok(())
        })
        .build(tauri::generate_context!());
    let app = match app {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: Parachute could not start its window system: {e}");
            std::process::exit(1);
        }
    };
    app.run(|_app, event| {
        // Closing the window keeps the app in the tray; only Quit (an explicit exit
        // code) ends it.
        if let RunEvent::ExitRequested { api, code, .. } = event {
            if code.is_none() {
                api.prevent_exit();
            }
        }
    });
}

/// The app's state; `None` only in the moment before `setup` has built it (a second
/// launch or a signal arriving that early finds nothing to act on yet).
fn core(app: &AppHandle) -> Option<Arc<Core>> {
    app.try_state::<Arc<Core>>().map(|c| c.inner().clone())
}

/// The tray icon and its menu.
fn build_tray(app: &AppHandle, places: Places) -> tauri::Result<Core> {
    let autostart_on = app.autolaunch().is_enabled().unwrap_or(false);
    let item = |id: MenuId, text: &str, enabled: bool| {
        MenuItem::with_id(app, id.as_str(), text, enabled, None::<&str>)
    };
    let open = item(MenuId::Open, "Open Parachute", true)?;
    let status_item = item(MenuId::Status, "Starting…", false)?;
    let bots = item(MenuId::Bots, "Start bots (not in this version)", false)?;
    let vault = item(MenuId::OpenVault, "Open vault folder", true)?;
    let logs = item(MenuId::OpenLogs, "Open logs", true)?;
    let autostart_item = CheckMenuItem::with_id(
        app,
        MenuId::StartAtLogin.as_str(),
        "Start at login",
        true,
        autostart_on,
        None::<&str>,
    )?;
    let quit = item(MenuId::Quit, "Quit Parachute", true)?;
    let menu = Menu::with_items(
        app,
        &[
            &open,
            &status_item,
            &PredefinedMenuItem::separator(app)?,
            &bots,
            &vault,
            &logs,
            &autostart_item,
            &PredefinedMenuItem::separator(app)?,
            &quit,
        ],
    )?;
    TrayIconBuilder::with_id(TRAY)
        .icon(Image::from_bytes(Status::Running.icon())?)
        .tooltip("Parachute")
        .menu(&menu)
        .on_menu_event(|app, event| {
            if let Some(id) = MenuId::parse(event.id().as_ref()) {
                on_menu(app, id);
            }
        })
        .build(app)?;
    Ok(Core {
        server: tokio::sync::Mutex::new(None),
        port: Mutex::new(None),
        unavailable: Mutex::new(None),
        window_key: Mutex::new(None),
        places,
        first_run: AtomicBool::new(false),
        quitting: AtomicBool::new(false),
        status_item,
        autostart_item,
    })
}

/// Runs a menu item and reflects what it did in the menu.
fn on_menu(app: &AppHandle, id: MenuId) {
    let Some(c) = core(app) else { return };
    let outcome = handle_menu(id, &TauriDesktop(app), &c.places);
    tracing::info!(item = id.as_str(), outcome = ?outcome, "tray menu");
    match outcome {
        Outcome::Checked(on) => {
            let _ = c.autostart_item.set_checked(on);
        }
        Outcome::Failed(why) => {
            let _ = c.status_item.set_text(why);
            // The checkbox toggles itself on click: put it back to the truth.
            if id == MenuId::StartAtLogin {
                let on = app.autolaunch().is_enabled().unwrap_or(false);
                let _ = c.autostart_item.set_checked(on);
            }
        }
        Outcome::Done | Outcome::Nothing => {}
    }
}

fn on_second_launch(app: &AppHandle, argv: &[String]) {
    let item = argv
        .iter()
        .position(|a| a == "--menu")
        .and_then(|i| argv.get(i + 1))
        .and_then(|id| MenuId::parse(id));
    // The second launch waits for this callback's D-Bus reply and fails without it: act
    // just after returning, so that `quit` cannot end this process before the reply leaves.
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let a = app.clone();
        let _ = app.run_on_main_thread(move || match item {
            Some(id) => on_menu(&a, id),
            None => open_window(&a),
        });
    });
}

/// The menu's actions, done with Tauri.
struct TauriDesktop<'a>(&'a AppHandle);

impl Desktop for TauriDesktop<'_> {
    fn open_window(&self) {
        open_window(self.0);
    }
    fn open_folder(&self, path: &Path) -> Result<(), String> {
        use tauri_plugin_shell::ShellExt;
        #[allow(deprecated)] // `open` moves to the opener plugin; the shell's still works.
        self.0
            .shell()
            .open(path.display().to_string(), None)
            .map_err(|e| e.to_string())
    }
    fn autostart(&self) -> Result<bool, String> {
        LoginItem(self.0.clone()).login_item()
    }
    fn set_autostart(&self, on: bool) -> Result<(), String> {
        LoginItem(self.0.clone()).set_login_item(on)
    }
    fn quit(&self) {
        quit(self.0);
    }
}

/// The login item, for the menu and for the server's API (the UI's Settings); both keep
/// the menu's checkbox in step.
struct LoginItem(AppHandle);

impl DesktopControl for LoginItem {
    fn login_item(&self) -> Result<bool, String> {
        self.0.autolaunch().is_enabled().map_err(|e| e.to_string())
    }
    fn set_login_item(&self, on: bool) -> Result<(), String> {
        let a = self.0.autolaunch();
        if on { a.enable() } else { a.disable() }.map_err(|e| e.to_string())?;
        if let Some(c) = core(&self.0) {
            let _ = c.autostart_item.set_checked(on);
        }
        Ok(())
    }
}

/// Shows the window on the UI (or on why there is no server), creating it if needed.
fn open_window(app: &AppHandle) {
    if let Some(w) = app.get_webview_window(WINDOW) {
        let _ = w.show();
        let _ = w.unminimize();
        let _ = w.set_focus();
        return;
    }
    let Some(c) = core(app) else { return };
    let port = *c.port.lock().unwrap_or_else(|e| e.into_inner());
    let url = match port {
        Some(p) if c.first_run.swap(false, Ordering::SeqCst) => {
            format!("http://127.0.0.1:{p}/ui/setup")
        }
        Some(p) => format!("http://127.0.0.1:{p}/ui/"),
        None => message_page(
            &c.unavailable
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
                .unwrap_or_else(|| "Parachute is starting…".into()),
        ),
    };
    let Ok(url) = url.parse() else { return };
    let mut builder = WebviewWindowBuilder::new(app, WINDOW, WebviewUrl::External(url));
    // The window's own key, put where the UI's script looks for it, on the server's
    // origin only: the window is let in in every auth mode, other local pages are not.
    if let (Some(p), Some(key)) = (
        port,
        c.window_key
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone(),
    ) {
        let key = serde_json::to_string(&key).unwrap_or_default();
        builder = builder.initialization_script(format!(
            "if (location.origin === 'http://127.0.0.1:{p}') {{ \
               try {{ sessionStorage.setItem('parachute.apiKey', {key}); }} catch (e) {{}} }}"
        ));
    }
    let built = builder
        .title("Parachute")
        .inner_size(1100.0, 760.0)
        .min_inner_size(380.0, 480.0)
        .build();
    match built {
        Ok(w) => {
            let hide = w.clone();
            w.on_window_event(move |e| {
                if let WindowEvent::CloseRequested { api, .. } = e {
                    // The app stays in the tray.
                    api.prevent_close();
                    let _ = hide.hide();
                }
            });
        }
        Err(e) => tracing::warn!(error = %e, "could not open the window"),
    }
}

/// A page (a `data:` URL) saying why there is no server.
fn message_page(why: &str) -> String {
    let escaped: String = why
        .chars()
        .map(|c| match c {
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '&' => "&amp;".to_string(),
            c => c.to_string(),
        })
        .collect();
    let html = format!(
        "<!doctype html><meta charset=utf-8><title>Parachute</title>\
         <body style=\"font:16px/1.5 system-ui,sans-serif;padding:2rem;max-width:40rem\">\
         <h1 style=\"font-size:1.4rem\">Parachute is not running</h1><p>{escaped}</p>"
    );
    let encoded = percent_encoding::utf8_percent_encode(&html, percent_encoding::NON_ALPHANUMERIC);
    format!("data:text/html;charset=utf-8,{encoded}")
}

/// Starts (or attaches to) the server in the background, then opens the window and
/// keeps the tray's status current.
fn start_server(
    app: AppHandle,
    settings: Option<Settings>,
    load_error: Option<String>,
    show_window: bool,
) {
    tauri::async_runtime::spawn(async move {
        let server = match settings {
            Some(s) => embedded::start(s, Arc::new(LoginItem(app.clone()))).await,
            None => Server::Unavailable {
                reason: format!(
                    "The settings cannot be read: {}",
                    load_error.unwrap_or_default()
                ),
            },
        };
        tracing::info!(server = %server.describe(), "desktop app");
        let Some(c) = core(&app) else {
            return server.stop().await;
        };
        *c.port.lock().unwrap_or_else(|e| e.into_inner()) = server.port();
        *c.window_key.lock().unwrap_or_else(|e| e.into_inner()) = server.window_key();
        if let Server::Unavailable { reason } = &server {
            *c.unavailable.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason.clone());
            show_status(&app, &Status::Error(reason.clone()));
        }
        let port = server.port();
        *c.server.lock().await = Some(server);
        if let Some(p) = port {
            c.first_run
                .store(status::needs_setup(p).await, Ordering::SeqCst);
        }
        if show_window {
            let a = app.clone();
            let _ = app.run_on_main_thread(move || open_window(&a));
        }
        if let Some(port) = port {
            let mut last = None;
            loop {
                if c.quitting.load(Ordering::SeqCst) {
                    break;
                }
                let now = status::poll(port).await;
                if last.as_ref() != Some(&now) {
                    show_status(&app, &now);
                    last = Some(now);
                }
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    });
}

/// Puts a status in the tray: its icon, tooltip and the menu's status line.
fn show_status(app: &AppHandle, s: &Status) {
    let Some(c) = core(app) else { return };
    let _ = c.status_item.set_text(s.line());
    if let Some(tray) = app.tray_by_id(TRAY) {
        if let Ok(icon) = Image::from_bytes(s.icon()) {
            let _ = tray.set_icon(Some(icon));
        }
        let _ = tray.set_tooltip(Some(format!("Parachute: {}", s.line())));
    }
}

/// SIGTERM or Ctrl-C end the app as Quit does.
fn watch_signals(app: AppHandle) {
    tauri::async_runtime::spawn(async move {
        parachute_api::server::shutdown_signal().await;
        quit(&app);
    });
}

/// Stops the server gracefully (turns ended, store closed), then exits. Once.
fn quit(app: &AppHandle) {
    let Some(c) = core(app) else {
        // Nothing started yet: nothing to stop.
        app.exit(0);
        return;
    };
    if c.quitting.swap(true, Ordering::SeqCst) {
        return;
    }
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        tracing::info!("quitting: stopping the server");
        let server = c.server.lock().await.take();
        if let Some(s) = server {
            s.stop().await;
        }
        app.exit(0);
    });
}
