//! `parachute update`: rebuild and reinstall `parachute` from its source checkout with
//! `cargo install --path … --locked`, then restart the background daemon if one runs so
//! it serves the new build. `--pull` first fast-forwards the checkout with git. Running
//! it twice in a row leaves the same binary and a running daemon.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use parachute_core::config::{Overrides, Settings};

/// Where and how to update from.
pub struct UpdateOptions {
    /// The checkout to build; default: the one this binary was built from.
    pub from: Option<PathBuf>,
    /// `git pull --ff-only` in the checkout first.
    pub pull: bool,
}

/// The checkout this binary was built from (its workspace root).
fn built_from() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `--root` for `cargo install` that puts the new binary where this one is: the
/// parent of its `bin/` folder. A binary elsewhere (a `target/` build) installs to
/// cargo's default root.
fn install_root(exe: &Path) -> Option<PathBuf> {
    let dir = exe.parent()?;
    (dir.file_name()? == "bin" && !exe.components().any(|c| c.as_os_str() == "target"))
        .then(|| dir.parent().map(Path::to_path_buf))
        .flatten()
}

pub async fn run(ov: &Overrides, opts: UpdateOptions) -> anyhow::Result<ExitCode> {
    let checkout = opts.from.unwrap_or_else(built_from);
    if !checkout.join("Cargo.toml").is_file() {
        anyhow::bail!(
            "{} is not a Parachute checkout (no Cargo.toml); pass --from PATH",
            checkout.display()
        );
    }
    if opts.pull {
        println!("Pulling {}", checkout.display());
        let st = std::process::Command::new("git")
            .args(["-C"])
            .arg(&checkout)
            .args(["pull", "--ff-only"])
            .status()?;
        anyhow::ensure!(
            st.success(),
            "git pull --ff-only failed in {}",
            checkout.display()
        );
    }
    // The cargo that built us when run under cargo, else the one on PATH.
    let cargo = std::env::var_os("PARACHUTE_CARGO")
        .or_else(|| std::env::var_os("CARGO"))
        .unwrap_or_else(|| "cargo".into());
    let mut cmd = std::process::Command::new(&cargo);
    cmd.args(["install", "--locked", "--path"]).arg(&checkout);
    let exe = std::env::current_exe()?;
    let root = install_root(&exe);
    if let Some(r) = &root {
        cmd.arg("--root").arg(r);
    }
    println!(
        "Building and installing from {} (a release build takes several minutes)",
        checkout.display()
    );
    let st = cmd.status().map_err(|e| {
        anyhow::anyhow!(
            "cannot run `{}`: {e}; install Rust from rustup.rs",
            Path::new(&cargo).display()
        )
    })?;
    anyhow::ensure!(
        st.success(),
        "cargo install failed; the installed parachute is unchanged"
    );
    let installed = root
        .map(|r| r.join("bin/parachute"))
        .unwrap_or_else(default_install_bin);
    println!("Installed {}", installed.display());

    let settings = Settings::load(ov)?;
    if super::daemon::running_server(&settings).is_none() {
        println!("No server is running; start it with `parachute server start`");
        return Ok(ExitCode::SUCCESS);
    }
    // Restart through the new binary, so the daemon (and its unit) point at it.
    println!("Restarting the server on the new build");
    let mut restart = std::process::Command::new(&installed);
    if let Some(v) = &ov.vault {
        restart.arg("--vault").arg(v);
    }
    let st = restart.args(["server", "restart"]).status()?;
    Ok(if st.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `$CARGO_INSTALL_ROOT/bin`, else `$CARGO_HOME/bin`, else `~/.cargo/bin`.
fn default_install_bin() -> PathBuf {
    let root = std::env::var_os("CARGO_INSTALL_ROOT")
        .or_else(|| std::env::var_os("CARGO_HOME"))
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default()
                .join(".cargo")
        });
    root.join("bin/parachute")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_next_to_an_installed_binary_but_not_into_target() {
        assert_eq!(
            install_root(Path::new("/home/a/.cargo/bin/parachute")),
            Some(PathBuf::from("/home/a/.cargo"))
        );
        assert_eq!(
            install_root(Path::new("/usr/local/bin/parachute")),
            Some(PathBuf::from("/usr/local"))
        );
        assert_eq!(
            install_root(Path::new("/src/p/target/release/parachute")),
            None
        );
        assert!(built_from().join("Cargo.toml").is_file());
    }
}
