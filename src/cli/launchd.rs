//! macOS: the background daemon as a launchd user agent
//! (`~/Library/LaunchAgents/computer.parachute.server.plist`), started at login and
//! restarted if it fails, as the systemd user unit does on Linux. The property list is
//! written the same way everywhere (and tested here); loading it is macOS's.

// Elsewhere the property list is only written by the tests.
#![cfg_attr(not(target_os = "macos"), allow(dead_code))]

use std::path::{Path, PathBuf};

/// The agent's label.
pub const LABEL: &str = "computer.parachute.server";

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The agent's property list: `exe args…` with `PARACHUTE_HOME`, at load, kept alive
/// unless it exits cleanly (`parachute server stop`).
pub fn plist(exe: &Path, args: &[String], home: &Path) -> String {
    let mut program = format!(
        "    <string>{}</string>\n",
        xml_escape(&exe.display().to_string())
    );
    for a in args {
        program.push_str(&format!("    <string>{}</string>\n", xml_escape(a)));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
         <plist version=\"1.0\">\n<dict>\n\
         \x20 <key>Label</key>\n  <string>{LABEL}</string>\n\
         \x20 <key>ProgramArguments</key>\n  <array>\n{program}  </array>\n\
         \x20 <key>EnvironmentVariables</key>\n  <dict>\n    <key>PARACHUTE_HOME</key>\n    <string>{}</string>\n  </dict>\n\
         \x20 <key>RunAtLoad</key>\n  <true/>\n\
         \x20 <key>KeepAlive</key>\n  <dict>\n    <key>SuccessfulExit</key>\n    <false/>\n  </dict>\n\
         \x20 <key>ProcessType</key>\n  <string>Background</string>\n\
         </dict>\n</plist>\n",
        xml_escape(&home.display().to_string())
    )
}

/// Where the agent's property list goes.
pub fn plist_path() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"));
    home.join("Library/LaunchAgents")
        .join(format!("{LABEL}.plist"))
}

#[cfg(target_os = "macos")]
fn launchctl(args: &[&str]) -> std::io::Result<bool> {
    Ok(std::process::Command::new("launchctl")
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()?
        .success())
}

#[cfg(target_os = "macos")]
fn domain() -> String {
    format!("gui/{}", parachute_core::util::sys::ids().0)
}

/// Writes the agent and starts it (restarting it if launchd already has it).
#[cfg(target_os = "macos")]
pub fn start(exe: &Path, args: &[String], home: &Path) -> anyhow::Result<()> {
    let path = plist_path();
    parachute_core::util::fs::write_atomic(&path, plist(exe, args, home).as_bytes(), None)?;
    let target = format!("{}/{LABEL}", domain());
    if !launchctl(&["bootstrap", &domain(), &path.display().to_string()])? {
        anyhow::ensure!(
            launchctl(&["kickstart", "-k", &target])?,
            "launchctl could not start {target}"
        );
    }
    Ok(())
}

/// Stops the agent (it stays installed and starts again at the next login).
#[cfg(target_os = "macos")]
pub fn stop() -> anyhow::Result<()> {
    let target = format!("{}/{LABEL}", domain());
    launchctl(&["bootout", &target])?;
    Ok(())
}

/// Whether launchd has the agent loaded.
#[cfg(target_os = "macos")]
pub fn active() -> bool {
    launchctl(&["print", &format!("{}/{LABEL}", domain())]).unwrap_or(false)
}

#[cfg(not(target_os = "macos"))]
pub fn start(_exe: &Path, _args: &[String], _home: &Path) -> anyhow::Result<()> {
    anyhow::bail!("launchd agents are macOS's")
}

#[cfg(not(target_os = "macos"))]
pub fn stop() -> anyhow::Result<()> {
    anyhow::bail!("launchd agents are macOS's")
}

#[cfg(not(target_os = "macos"))]
pub fn active() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_runs_the_daemon_with_its_home_and_escapes_what_it_quotes() {
        let p = plist(
            Path::new("/Applications/Parachute & Co/parachute"),
            &[
                "--vault".into(),
                "/Users/me/<Vault>".into(),
                "server".into(),
            ],
            Path::new("/Users/me/.parachute"),
        );
        assert!(p.contains("<string>computer.parachute.server</string>"));
        assert!(p.contains("<string>/Applications/Parachute &amp; Co/parachute</string>"));
        assert!(p.contains("<string>/Users/me/&lt;Vault&gt;</string>"));
        assert!(p.contains("<key>PARACHUTE_HOME</key>\n    <string>/Users/me/.parachute</string>"));
        assert!(p.contains("<key>RunAtLoad</key>\n  <true/>"));
        assert!(plist_path().ends_with("Library/LaunchAgents/computer.parachute.server.plist"));
        // Balanced: every opened element is closed.
        for tag in ["dict", "array", "plist"] {
            assert_eq!(
                p.matches(&format!("<{tag}")).count(),
                p.matches(&format!("</{tag}>")).count(),
                "{tag}"
            );
        }
    }
}
