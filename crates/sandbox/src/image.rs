//! The sandbox image, built offline: a minimal Debian root filesystem assembled by
//! `mmdebstrap` from the machine's configured Debian mirror (bash, coreutils, python3,
//! socat — a real shell, so escape tests are not vacuous), the host's own native
//! `claude` binary, and the entry program; then `docker import`ed. Nothing is pulled
//! from a registry. Users with a registry can build `docker/Dockerfile.sandbox` instead.

use std::io::Read;
use std::path::{Path, PathBuf};

use bollard::query_parameters::CreateImageOptionsBuilder;
use bollard::Docker;
use futures_util::StreamExt;
use tokio::io::AsyncBufReadExt;

use crate::SandboxError;

/// Debian packages in the image besides the minimal base.
pub const PACKAGES: &[&str] = &["bash", "coreutils", "python3-minimal", "socat"];

/// The entry program: forwards the container's loopback model port to the relay socket
/// mounted from the host, then runs the CLI with the arguments it was given.
pub const ENTRY: &str = include_str!("../../../docker/parachute-entry");

/// The Debian suite of this machine (from `/etc/os-release`), for a base that matches
/// the mirror it is configured with.
pub fn host_suite() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("VERSION_CODENAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "bookworm".into())
}

/// The native `claude` binary behind `cli` (a name on `PATH` or a path), refusing a
/// script launcher: the image has no Node.js.
pub fn native_claude(cli: &Path) -> Result<PathBuf, SandboxError> {
    let found = if cli.components().count() > 1 {
        cli.to_path_buf()
    } else {
        std::env::var_os("PATH")
            .and_then(|p| {
                std::env::split_paths(&p)
                    .map(|d| d.join(cli))
                    .find(|p| p.is_file())
            })
            .ok_or_else(|| SandboxError::Build(format!("`{}` is not on PATH", cli.display())))?
    };
    let real = found
        .canonicalize()
        .map_err(|e| SandboxError::Build(format!("{}: {e}", found.display())))?;
    let mut magic = [0u8; 4];
    std::fs::File::open(&real)
        .and_then(|mut f| f.read_exact(&mut magic))
        .map_err(|e| SandboxError::Build(format!("{}: {e}", real.display())))?;
    if magic != *b"\x7fELF" {
        return Err(SandboxError::Build(format!(
            "{} is not a native executable; the sandbox image needs the native Claude Code build",
            real.display()
        )));
    }
    Ok(real)
}

/// A path as one shell word (the hooks run through a shell).
fn sh_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

/// Builds `image` offline and reports each step through `progress`.
pub async fn build_offline(
    docker: &Docker,
    image: &str,
    claude: &Path,
    progress: &mut (dyn FnMut(String) + Send),
) -> Result<(), SandboxError> {
    if !crate::engine::available(docker).await {
        return Err(SandboxError::Unavailable("no Docker engine answers".into()));
    }
    let claude = native_claude(claude)?;
    let work = std::env::temp_dir().join(format!("parachute-sandbox-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&work).map_err(|e| SandboxError::Build(e.to_string()))?;
    let result = assemble_and_import(docker, image, &claude, &work, progress).await;
    let _ = std::fs::remove_dir_all(&work);
    result
}

async fn assemble_and_import(
    docker: &Docker,
    image: &str,
    claude: &Path,
    work: &Path,
    progress: &mut (dyn FnMut(String) + Send),
) -> Result<(), SandboxError> {
    let entry = work.join("parachute-entry");
    std::fs::write(&entry, ENTRY).map_err(|e| SandboxError::Build(e.to_string()))?;
    let tar = work.join("rootfs.tar");
    let suite = host_suite();
    progress(format!(
        "assembling a Debian {suite} root filesystem with {} from this machine's mirror",
        PACKAGES.join(", ")
    ));
    let hooks = [
        format!("cp {} \"$1/usr/local/bin/claude\"", sh_quote(claude)),
        format!(
            "cp {} \"$1/usr/local/bin/parachute-entry\"",
            sh_quote(&entry)
        ),
        "chmod 0755 \"$1/usr/local/bin/claude\" \"$1/usr/local/bin/parachute-entry\"".into(),
        "mkdir -p \"$1/vault\" \"$1/run/parachute\" \"$1/home/agent\"".into(),
    ];
    let mut cmd = tokio::process::Command::new("mmdebstrap");
    cmd.args(["--variant=minbase", "--mode=auto"])
        .arg(format!("--include={}", PACKAGES.join(",")))
        .args([
            "--dpkgopt=path-exclude=/usr/share/man/*",
            "--dpkgopt=path-exclude=/usr/share/doc/*",
            "--dpkgopt=path-exclude=/usr/share/locale/*",
        ]);
    for h in &hooks {
        cmd.arg(format!("--customize-hook={h}"));
    }
    cmd.arg(&suite)
        .arg(&tar)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| {
        SandboxError::Build(format!(
            "cannot run mmdebstrap ({e}); install it (`apt install mmdebstrap`)"
        ))
    })?;
    let mut tail = Vec::new();
    if let Some(stderr) = child.stderr.take() {
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            progress(l.clone());
            tail.push(l);
            if tail.len() > 5 {
                tail.remove(0);
            }
        }
    }
    let status = child
        .wait()
        .await
        .map_err(|e| SandboxError::Build(e.to_string()))?;
    if !status.success() {
        return Err(SandboxError::Build(format!(
            "mmdebstrap failed: {}",
            tail.join(" / ")
        )));
    }
    progress(format!("importing the root filesystem as {image}"));
    let (repo, tag) = image.rsplit_once(':').unwrap_or((image, "latest"));
    let opts = CreateImageOptionsBuilder::default()
        .from_src("-")
        .repo(repo)
        .tag(tag)
        .message("parachute sandbox, built offline")
        .build();
    let opts = bollard::query_parameters::CreateImageOptions {
        changes: vec![
            "ENTRYPOINT [\"/usr/local/bin/parachute-entry\"]".into(),
            "WORKDIR /vault".into(),
            "USER 1000:1000".into(),
            "ENV PATH=/usr/local/bin:/usr/bin:/bin".into(),
        ],
        ..opts
    };
    let file = tokio::fs::File::open(&tar)
        .await
        .map_err(|e| SandboxError::Build(e.to_string()))?;
    let body = bollard::body_try_stream(tokio_util::io::ReaderStream::new(file));
    let mut stream = docker.create_image(Some(opts), Some(body), None);
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(s) = info.status {
                    progress(s);
                }
            }
            Err(e) => return Err(SandboxError::Build(format!("docker import: {e}"))),
        }
    }
    docker
        .inspect_image(image)
        .await
        .map_err(|e| SandboxError::Build(format!("the image is not there after import: {e}")))?;
    progress(format!("built {image}"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entry_forwards_to_the_relay_and_runs_the_cli() {
        assert!(ENTRY.contains("UNIX-CONNECT:/run/parachute/model.sock"));
        assert!(ENTRY.contains("exec /usr/local/bin/claude \"$@\""));
        assert!(!host_suite().is_empty());
    }

    #[test]
    fn paths_are_quoted_for_the_shell() {
        assert_eq!(sh_quote(Path::new("/a b/it's")), r"'/a b/it'\''s'");
    }

    #[test]
    fn a_script_launcher_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("claude");
        std::fs::write(&script, "#!/usr/bin/env node\n").unwrap();
        assert!(matches!(
            native_claude(&script),
            Err(SandboxError::Build(_))
        ));
    }
}
