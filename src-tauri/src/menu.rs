//! The tray menu: every item's id, and the one place that acts on it. The actions go
//! through [`Desktop`], which the app implements with Tauri and the tests with a recorder.

use std::path::{Path, PathBuf};

/// The tray menu's items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MenuId {
    /// Open (or focus) the window on the UI.
    Open,
    /// The status line (not clickable).
    Status,
    /// Start or stop the bots.
    Bots,
    /// Open the vault folder in the file manager.
    OpenVault,
    /// Open the logs folder.
    OpenLogs,
    /// Start Parachute when the user logs in (a checkbox).
    StartAtLogin,
    /// Stop the server gracefully and leave.
    Quit,
}

impl MenuId {
    /// Every item, in menu order.
    pub const ALL: [MenuId; 7] = [
        MenuId::Open,
        MenuId::Status,
        MenuId::Bots,
        MenuId::OpenVault,
        MenuId::OpenLogs,
        MenuId::StartAtLogin,
        MenuId::Quit,
    ];

    /// The id Tauri's menu carries (and `parachute-app --menu ID` takes).
    pub fn as_str(self) -> &'static str {
        match self {
            MenuId::Open => "open",
            MenuId::Status => "status",
            MenuId::Bots => "bots",
            MenuId::OpenVault => "open-vault",
            MenuId::OpenLogs => "open-logs",
            MenuId::StartAtLogin => "start-at-login",
            MenuId::Quit => "quit",
        }
    }

    /// The item for an id, if it is one.
    pub fn parse(id: &str) -> Option<MenuId> {
        MenuId::ALL.into_iter().find(|m| m.as_str() == id)
    }
}

/// What the menu's actions need from the desktop.
pub trait Desktop {
    /// Shows the window (creating it if needed) and brings it to the front.
    fn open_window(&self);
    /// Opens a folder in the system's file manager.
    fn open_folder(&self, path: &Path) -> Result<(), String>;
    /// Whether Parachute starts at login.
    fn autostart(&self) -> Result<bool, String>;
    /// Turns starting at login on or off.
    fn set_autostart(&self, on: bool) -> Result<(), String>;
    /// Stops the server gracefully, then exits.
    fn quit(&self);
}

/// Where the folders the menu opens are.
#[derive(Debug, Clone)]
pub struct Places {
    /// The vault.
    pub vault: PathBuf,
    /// The logs folder.
    pub logs: PathBuf,
}

/// What an item did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done.
    Done,
    /// The checkbox is now in this state.
    Checked(bool),
    /// Nothing to do (the status line).
    Nothing,
    /// It could not be done; the reason, for the status line and the log.
    Failed(String),
}

/// Acts on a menu item.
pub fn handle_menu(id: MenuId, desktop: &impl Desktop, places: &Places) -> Outcome {
    let folder = |p: &Path| {
        if let Err(e) = std::fs::create_dir_all(p) {
            return Outcome::Failed(format!("cannot create {}: {e}", p.display()));
        }
        match desktop.open_folder(p) {
            Ok(()) => Outcome::Done,
            Err(e) => Outcome::Failed(format!("cannot open {}: {e}", p.display())),
        }
    };
    match id {
        MenuId::Open => {
            desktop.open_window();
            Outcome::Done
        }
        MenuId::Status => Outcome::Nothing,
        MenuId::Bots => Outcome::Failed("Telegram and Discord bots are not in this version".into()),
        MenuId::OpenVault => folder(&places.vault),
        MenuId::OpenLogs => folder(&places.logs),
        MenuId::StartAtLogin => {
            let on = match desktop.autostart() {
                Ok(on) => !on,
                Err(e) => return Outcome::Failed(format!("cannot read the login item: {e}")),
            };
            match desktop.set_autostart(on) {
                Ok(()) => Outcome::Checked(on),
                Err(e) => Outcome::Failed(format!("cannot change the login item: {e}")),
            }
        }
        MenuId::Quit => {
            desktop.quit();
            Outcome::Done
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// Records what the menu asked for; its login item is a real file, like Linux's.
    struct Recorder {
        calls: RefCell<Vec<String>>,
        autostart_file: PathBuf,
    }

    impl Desktop for Recorder {
        fn open_window(&self) {
            self.calls.borrow_mut().push("window".into());
        }
        fn open_folder(&self, path: &Path) -> Result<(), String> {
            self.calls
                .borrow_mut()
                .push(format!("folder {}", path.display()));
            Ok(())
        }
        fn autostart(&self) -> Result<bool, String> {
            Ok(self.autostart_file.exists())
        }
        fn set_autostart(&self, on: bool) -> Result<(), String> {
            if on {
                std::fs::write(&self.autostart_file, "[Desktop Entry]\n").map_err(|e| e.to_string())
            } else {
                std::fs::remove_file(&self.autostart_file).map_err(|e| e.to_string())
            }
        }
        fn quit(&self) {
            self.calls.borrow_mut().push("quit".into());
        }
    }

    #[test]
    fn every_item_has_one_id_and_one_action() {
        let dir = std::env::temp_dir().join(format!("parachute-menu-{}", std::process::id()));
        let places = Places {
            vault: dir.join("vault"),
            logs: dir.join("logs"),
        };
        let d = Recorder {
            calls: RefCell::new(Vec::new()),
            autostart_file: dir.join("parachute.desktop"),
        };
        std::fs::create_dir_all(&dir).unwrap();
        for id in MenuId::ALL {
            assert_eq!(MenuId::parse(id.as_str()), Some(id));
        }
        assert_eq!(MenuId::parse("nope"), None);
        assert_eq!(handle_menu(MenuId::Open, &d, &places), Outcome::Done);
        assert_eq!(handle_menu(MenuId::Status, &d, &places), Outcome::Nothing);
        assert!(matches!(
            handle_menu(MenuId::Bots, &d, &places),
            Outcome::Failed(_)
        ));
        // Folders are created if missing, then opened.
        assert_eq!(handle_menu(MenuId::OpenVault, &d, &places), Outcome::Done);
        assert!(places.vault.is_dir());
        assert_eq!(handle_menu(MenuId::OpenLogs, &d, &places), Outcome::Done);
        // The checkbox toggles the login item, both ways.
        assert_eq!(
            handle_menu(MenuId::StartAtLogin, &d, &places),
            Outcome::Checked(true)
        );
        assert!(d.autostart_file.exists());
        assert_eq!(
            handle_menu(MenuId::StartAtLogin, &d, &places),
            Outcome::Checked(false)
        );
        assert!(!d.autostart_file.exists());
        assert_eq!(handle_menu(MenuId::Quit, &d, &places), Outcome::Done);
        assert_eq!(
            *d.calls.borrow(),
            vec![
                "window".to_string(),
                format!("folder {}", places.vault.display()),
                format!("folder {}", places.logs.display()),
                "quit".to_string(),
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
