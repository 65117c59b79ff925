//! What the desktop app lends the server it runs: its login item ("Start at login").
//! Absent when the server runs as the `parachute server` daemon.

use std::sync::{Arc, OnceLock};

/// The desktop app's controls the server's API exposes.
pub trait DesktopControl: Send + Sync {
    /// Whether the app starts at login.
    fn login_item(&self) -> Result<bool, String>;
    /// Turns starting at login on or off.
    fn set_login_item(&self, on: bool) -> Result<(), String>;
}

/// The slot the desktop app fills once, before the server listens.
#[derive(Clone, Default)]
pub struct Desktop(Arc<OnceLock<Arc<dyn DesktopControl>>>);

impl Desktop {
    /// Installs the app's controls (once; later calls are ignored).
    pub fn install(&self, control: Arc<dyn DesktopControl>) {
        let _ = self.0.set(control);
    }

    /// The app's controls, when the server runs inside the desktop app.
    pub fn get(&self) -> Option<&Arc<dyn DesktopControl>> {
        self.0.get()
    }
}
