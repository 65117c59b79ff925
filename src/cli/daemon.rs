//! `parachute server start|stop|restart|status`: the background daemon. On macOS a
//! launchd user agent (`launchd.rs`); where a systemd user instance runs, a user unit
//! `parachute.service`; otherwise a detached process
//! tracked by `$PARACHUTE_HOME/parachute.pid`. Either way the daemon logs to rotating
//! files under `$PARACHUTE_HOME/logs/`.

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use super::DaemonAction;
use parachute_api::server::RuntimeInfo;
use parachute_core::config::{Overrides, Settings};

const UNIT: &str = "parachute.service";

/// Runs a daemon action; `None` (bare `parachute server`) starts it and says so.
pub async fn run(ov: &Overrides, action: Option<DaemonAction>) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(ov)?;
    let vault_existed = settings.paths.vault.exists();
    if action.is_none() {
        println!(
            "Starting the background daemon (`parachute server -f` runs in the foreground instead)."
        );
    }
    let action = action.unwrap_or(DaemonAction::Start);
    if action != DaemonAction::Status {
        settings.paths.ensure_dirs()?;
        if !vault_existed {
            println!("Created the vault {}", settings.paths.vault.display());
        }
    }
    let manager = if cfg!(target_os = "macos") {
        Manager::Launchd
    } else if systemd_user_available() {
        Manager::Systemd
    } else {
        Manager::PidFile
    };
    match action {
        DaemonAction::Start => start(&settings, ov, manager).await,
        DaemonAction::Stop => stop(&settings, manager).await,
        DaemonAction::Restart => {
            stop(&settings, manager).await?;
            start(&settings, ov, manager).await
        }
        DaemonAction::Status => status(&settings, manager).await,
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Manager {
    /// A launchd user agent (macOS).
    #[cfg_attr(not(target_os = "macos"), allow(dead_code))]
    Launchd,
    Systemd,
    PidFile,
}

fn systemd_user_available() -> bool {
    if std::env::var("PARACHUTE_DAEMON")
        .map(|v| v == "pidfile")
        .unwrap_or(false)
    {
        return false;
    }
    Path::new("/run/systemd/system").exists()
        && std::process::Command::new("systemctl")
            .args(["--user", "show-environment"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
}

/// The arguments the daemon runs with: the same vault, port and host as now.
fn daemon_args(settings: &Settings, ov: &Overrides) -> Vec<String> {
    let mut args = vec![
        "--vault".to_string(),
        settings.paths.vault.display().to_string(),
        "server".into(),
        "-f".into(),
        "--log-to-file".into(),
    ];
    if let Some(p) = ov.port {
        args.extend(["--port".into(), p.to_string()]);
    }
    if let Some(h) = &ov.host {
        args.extend(["--host".into(), h.clone()]);
    }
    args
}

/// The running server's runtime file, if its process is alive.
pub fn running_server(settings: &Settings) -> Option<RuntimeInfo> {
    let text = std::fs::read_to_string(settings.paths.runtime_file()).ok()?;
    let info: RuntimeInfo = serde_json::from_str(&text).ok()?;
    pid_alive(info.pid).then_some(info)
}

use parachute_core::util::sys::{pid_alive, send_signal, Signal};

fn is_parachute_process(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains("parachute"))
        .unwrap_or(true)
}

fn read_pid(file: &Path) -> Option<u32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

async fn healthy(port: u16) -> bool {
    matches!(parachute_core::util::probe::get_loopback(port, "/api/health", Duration::from_secs(1)).await, Ok(r) if r.status == 200)
}

async fn start(settings: &Settings, ov: &Overrides, manager: Manager) -> anyhow::Result<ExitCode> {
    if let Some(info) = running_server(settings) {
        println!(
            "parachute is already running (pid {}, port {})",
            info.pid, info.port
        );
        return Ok(ExitCode::SUCCESS);
    }
    let exe = std::env::current_exe()?;
    let args = daemon_args(settings, ov);
    match manager {
        Manager::Launchd => super::launchd::start(&exe, &args, &settings.paths.home)?,
        Manager::Systemd => {
            write_unit(settings, &exe, &args)?;
            systemctl(&["daemon-reload"])?;
            systemctl(&["start", UNIT])?;
        }
        Manager::PidFile => {
            use std::os::unix::process::CommandExt;
            let child = std::process::Command::new(&exe)
                .args(&args)
                .env("PARACHUTE_HOME", &settings.paths.home)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()?;
            parachute_core::util::fs::write_atomic(
                &settings.paths.pid_file(),
                child.id().to_string().as_bytes(),
                Some(0o600),
            )?;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Some(info) = running_server(settings) {
            if healthy(info.port).await {
                println!(
                    "parachute started (pid {}, http://{}:{}, vault {})",
                    info.pid, info.host, info.port, info.vault
                );
                return Ok(ExitCode::SUCCESS);
            }
        }
        if manager == Manager::PidFile {
            if let Some(pid) = read_pid(&settings.paths.pid_file()) {
                if !pid_alive(pid) {
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("error: the server did not become healthy; see `parachute logs --no-follow`");
    Ok(ExitCode::FAILURE)
}

async fn stop(settings: &Settings, manager: Manager) -> anyhow::Result<ExitCode> {
    if manager == Manager::Launchd {
        super::launchd::stop()?;
        println!("parachute stopped");
        return Ok(ExitCode::SUCCESS);
    }
    if manager == Manager::Systemd {
        systemctl(&["stop", UNIT])?;
        println!("parachute stopped");
        return Ok(ExitCode::SUCCESS);
    }
    let pid =
        read_pid(&settings.paths.pid_file()).or_else(|| running_server(settings).map(|i| i.pid));
    let Some(pid) = pid.filter(|p| pid_alive(*p) && is_parachute_process(*p)) else {
        let _ = std::fs::remove_file(settings.paths.pid_file());
        println!("parachute is not running");
        return Ok(ExitCode::SUCCESS);
    };
    send_signal(pid, Signal::Term);
    let deadline = Instant::now() + Duration::from_secs(10);
    while pid_alive(pid) && Instant::now() < deadline {
        reap(pid);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if pid_alive(pid) {
        eprintln!("warning: pid {pid} did not stop within 10 s; killing it");
        send_signal(pid, Signal::Kill);
    }
    let _ = std::fs::remove_file(settings.paths.pid_file());
    println!("parachute stopped (pid {pid})");
    Ok(ExitCode::SUCCESS)
}

/// Collects the exit status if the daemon happens to be our child (restart in one process).
fn reap(pid: u32) {
    parachute_core::util::sys::reap_nohang(pid);
}

async fn status(settings: &Settings, manager: Manager) -> anyhow::Result<ExitCode> {
    match running_server(settings) {
        Some(info) => {
            let h = if healthy(info.port).await {
                "healthy"
            } else {
                "not answering"
            };
            // Who started it: the unit, the pid file's daemon, or someone's `server -f`.
            let how = if manager == Manager::Launchd && super::launchd::active() {
                "the background daemon (launchd agent)"
            } else if manager == Manager::Systemd && unit_active() {
                "the background daemon (systemd user unit)"
            } else if read_pid(&settings.paths.pid_file()) == Some(info.pid) {
                "the background daemon (pid file)"
            } else {
                "a foreground server (`parachute server -f`)"
            };
            println!(
                "running: {how}, pid {}, port {}, {h}; vault {}",
                info.pid, info.port, info.vault
            );
            Ok(ExitCode::SUCCESS)
        }
        None => {
            println!("not running");
            Ok(ExitCode::from(3))
        }
    }
}

fn unit_active() -> bool {
    std::process::Command::new("systemctl")
        .args(["--user", "is-active", "--quiet", UNIT])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn unit_path() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"));
    home.join(".config/systemd/user").join(UNIT)
}

fn write_unit(settings: &Settings, exe: &Path, args: &[String]) -> anyhow::Result<()> {
    let quoted: Vec<String> = args
        .iter()
        .map(|a| format!("\"{}\"", a.replace('"', "\\\"")))
        .collect();
    let unit = format!(
        "[Unit]\nDescription=Parachute server\nAfter=network.target\n\n[Service]\nType=simple\n\
         ExecStart=\"{}\" {}\nEnvironment=\"PARACHUTE_HOME={}\"\nRestart=on-failure\nRestartSec=5\n\n\
         [Install]\nWantedBy=default.target\n",
        exe.display(),
        quoted.join(" "),
        settings.paths.home.display()
    );
    parachute_core::util::fs::write_atomic(&unit_path(), unit.as_bytes(), None)?;
    Ok(())
}

fn systemctl(args: &[&str]) -> anyhow::Result<()> {
    let st = std::process::Command::new("systemctl")
        .arg("--user")
        .args(args)
        .status()?;
    anyhow::ensure!(st.success(), "systemctl --user {} failed", args.join(" "));
    Ok(())
}
