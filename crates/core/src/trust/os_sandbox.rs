//! The OS sandbox of the `vault` level: the settings that make the CLI run every Bash
//! command under bubblewrap with the vault as the only writable place (minus the
//! protected list) and the owner's private folders unreadable, the deny rules that back
//! the file tools' hook, and [`confine_command`], the same recipe for any program
//! (module hooks run under it).

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::vault::{NameMatch, VaultGate, PROTECTED_NAMES};

/// The programs the CLI's OS sandbox needs on Linux.
const NEEDED: &[&str] = &["bwrap", "socat"];

/// Which of the sandbox's programs are not on `PATH` (empty when all are there). The
/// CLI would refuse to start without them (`failIfUnavailable`); saying so first gives
/// the owner a clear error naming the package to install.
pub fn missing_programs() -> Vec<&'static str> {
    if !cfg!(target_os = "linux") {
        return Vec::new();
    }
    NEEDED
        .iter()
        .copied()
        .filter(|p| find_on_path(p).is_none())
        .collect()
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// The error a `vault` turn ends with when the sandbox cannot run here.
pub fn missing_message(missing: &[&str]) -> String {
    let packages: Vec<&str> = missing
        .iter()
        .map(|p| if *p == "bwrap" { "bubblewrap" } else { p })
        .collect();
    format!(
        "Trust level 'vault' runs commands in the OS sandbox, which needs {} (missing: {}). \
         Install it (e.g. `apt install {}`); the turn was not run unconfined.",
        packages.join(" and "),
        missing.join(", "),
        packages.join(" ")
    )
}

/// Checks that bubblewrap can build a sandbox on this machine (`parachute doctor`).
pub fn probe() -> Result<(), String> {
    let missing = missing_programs();
    if !missing.is_empty() {
        return Err(missing_message(&missing));
    }
    if !cfg!(target_os = "linux") {
        return Ok(());
    }
    let out = std::process::Command::new("bwrap")
        .args([
            "--ro-bind",
            "/",
            "/",
            "--dev",
            "/dev",
            "--unshare-net",
            "true",
        ])
        .output()
        .map_err(|e| format!("cannot run bwrap: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "bwrap cannot create a sandbox here: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The places a confined session must not read or change, besides the vault's own
/// protected list.
#[derive(Debug, Clone)]
pub struct PrivatePlaces {
    /// The owner's home folder (`$HOME`), if known.
    pub home: Option<PathBuf>,
    /// `PARACHUTE_HOME`: secrets file, logs, runtime files.
    pub parachute_home: PathBuf,
    /// The CLI's config dir (transcripts, credentials cache).
    pub claude_config_dir: PathBuf,
}

fn canonical(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
}

/// The protected paths of the vault as concrete paths: the protected names at its top
/// (whether they exist or not), every protected entry found below (a few levels deep),
/// and the database with its companions.
pub fn protected_paths(gate: &VaultGate) -> Vec<PathBuf> {
    let root = canonical(gate.root());
    let mut out: Vec<PathBuf> = PROTECTED_NAMES
        .iter()
        .map(|p| match p.name {
            NameMatch::Exact(n) | NameMatch::Prefix(n) => root.join(n),
        })
        .collect();
    collect_protected(&root, 4, &mut out);
    out.sort();
    out.dedup();
    out
}

fn collect_protected(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let path = e.path();
        if crate::vault::protected_name_in(Path::new(&name)).is_some() {
            out.push(path);
        } else if depth > 0 && e.file_type().is_ok_and(|t| t.is_dir()) {
            collect_protected(&path, depth - 1, out);
        }
    }
}

/// The database file and its SQLite companions.
fn database_paths(db: &Path) -> Vec<PathBuf> {
    let db = canonical(db.parent().unwrap_or(db)).join(db.file_name().unwrap_or_default());
    ["", "-wal", "-shm", "-journal"]
        .iter()
        .map(|s| {
            let mut name = db.file_name().unwrap_or_default().to_os_string();
            name.push(s);
            db.with_file_name(name)
        })
        .collect()
}

/// The `--settings` document for a CLI at `vault`: Bash runs in the OS sandbox (no way
/// out, the start fails if the sandbox cannot run), writable only inside the vault
/// minus the protected list; the owner's private folders unreadable; deny rules for the
/// file tools over the same places (the PreToolUse hook judges every other path).
pub fn cli_settings(gate: &VaultGate, database: &Path, private: &PrivatePlaces) -> Value {
    let vault = canonical(gate.root());
    let mut deny_read: Vec<PathBuf> = vec![
        canonical(&private.parachute_home),
        canonical(&private.claude_config_dir),
        vault.join(".parachute"),
    ];
    deny_read.extend(database_paths(database));
    // Regions other people's files live in — the owner's home and the shared temporary
    // folder — are unreadable; a vault inside one is read back in below (and the hook
    // keeps the file tools out of the rest).
    let regions: Vec<PathBuf> = private
        .home
        .as_deref()
        .map(canonical)
        .into_iter()
        .chain([canonical(&std::env::temp_dir())])
        .filter(|r| r != Path::new("/") && *r != vault)
        .collect();
    deny_read.extend(regions.iter().cloned());
    let mut deny_write = protected_paths(gate);
    deny_write.extend(database_paths(database));
    let holds_vault = |r: &PathBuf| vault.starts_with(r);
    let vault_in_region = regions.iter().any(holds_vault);
    let str_list =
        |v: &[PathBuf]| -> Vec<String> { v.iter().map(|p| p.display().to_string()).collect() };
    // File-tool deny rules: `//` starts an absolute path.
    let mut rules = Vec::new();
    for p in &deny_read {
        if regions.contains(p) && holds_vault(p) {
            continue;
        }
        rules.push(format!("Read(/{}/**)", p.display()));
        rules.push(format!("Read(/{})", p.display()));
    }
    for p in &deny_write {
        rules.push(format!("Edit(/{}/**)", p.display()));
        rules.push(format!("Edit(/{})", p.display()));
    }
    let mut filesystem = json!({
        "denyRead": str_list(&deny_read),
        "denyWrite": str_list(&deny_write),
    });
    if vault_in_region {
        filesystem["allowRead"] = json!([vault.display().to_string()]);
    }
    json!({
        "sandbox": {
            "enabled": true,
            "failIfUnavailable": true,
            "autoAllowBashIfSandboxed": true,
            "allowUnsandboxedCommands": false,
            "filesystem": filesystem,
        },
        "permissions": {"deny": rules},
    })
}

/// `program` confined the way a `vault` session's commands are: the whole system
/// read-only, the vault writable except its protected paths, the owner's home and
/// Parachute's private folders hidden, a private `/tmp`, no network. Module hooks run
/// under it.
pub fn confine_command(
    program: &Path,
    gate: &VaultGate,
    database: &Path,
    private: &PrivatePlaces,
) -> std::process::Command {
    let vault = canonical(gate.root());
    let mut cmd = std::process::Command::new("bwrap");
    // Its own PID namespace: when bwrap dies (a hook's timeout), every process inside
    // goes with it, even one that left the process group.
    cmd.args([
        "--die-with-parent",
        "--unshare-net",
        "--unshare-pid",
        "--new-session",
    ]);
    cmd.args([
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--tmpfs",
        "/tmp",
    ]);
    let mut hidden = vec![
        canonical(&private.parachute_home),
        canonical(&private.claude_config_dir),
    ];
    hidden.extend(private.home.as_deref().map(canonical));
    for h in hidden.iter().filter(|h| h.is_dir() && *h != Path::new("/")) {
        cmd.arg("--tmpfs").arg(h);
    }
    cmd.arg("--bind").arg(&vault).arg(&vault);
    for p in protected_paths(gate)
        .into_iter()
        .chain(database_paths(database))
        .filter(|p| p.exists())
    {
        cmd.arg("--ro-bind").arg(&p).arg(&p);
    }
    let dot = vault.join(".parachute");
    if dot.is_dir() {
        cmd.arg("--tmpfs").arg(&dot);
    }
    cmd.arg("--chdir").arg(&vault).arg("--").arg(program);
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_keep_bash_in_the_sandbox_and_name_the_private_places() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().canonicalize().unwrap();
        let vault = base.join("home/Parachute");
        std::fs::create_dir_all(vault.join("notes/.claude")).unwrap();
        let gate = VaultGate::with_default_database(&vault);
        let private = PrivatePlaces {
            home: Some(base.join("home")),
            parachute_home: base.join("home/.parachute"),
            claude_config_dir: base.join("home/.parachute/claude"),
        };
        let s = cli_settings(&gate, &vault.join("Chat/sessions.db"), &private);
        let sb = &s["sandbox"];
        assert_eq!(sb["enabled"], true);
        assert_eq!(sb["failIfUnavailable"], true);
        assert_eq!(sb["allowUnsandboxedCommands"], false);
        let list = |k: &str| -> Vec<String> {
            sb["filesystem"][k]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        let v = vault.display().to_string();
        assert!(list("denyWrite").contains(&format!("{v}/.parachute")));
        assert!(list("denyWrite").contains(&format!("{v}/notes/.claude")));
        assert!(list("denyWrite").contains(&format!("{v}/Chat/sessions.db-wal")));
        assert!(list("denyRead").contains(&base.join("home").display().to_string()));
        // The vault lies in the home folder: read back in, and no file-tool rule hides it.
        assert_eq!(list("allowRead"), std::slice::from_ref(&v));
        let rules = s["permissions"]["deny"].to_string();
        assert!(!rules.contains(&format!("Read(/{}/**)", base.join("home").display())));
        assert!(rules.contains(&format!("Edit(/{v}/.parachute/**)")));
    }

    #[test]
    fn confine_command_keeps_a_program_inside_the_vault() {
        // bubblewrap is a test dependency (scripts/install-test-deps.sh installs it).
        probe().expect("bubblewrap works here");
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().canonicalize().unwrap();
        let vault = base.join("vault");
        std::fs::create_dir_all(vault.join(".parachute/hooks")).unwrap();
        std::fs::create_dir_all(base.join("outside")).unwrap();
        std::fs::create_dir_all(base.join("home")).unwrap();
        std::fs::write(base.join("home/canary"), "secret-canary").unwrap();
        std::fs::write(vault.join(".parachute/config.yaml"), "port: 1\n").unwrap();
        let gate = VaultGate::with_default_database(&vault);
        let private = PrivatePlaces {
            home: Some(base.join("home")),
            parachute_home: base.join("phome"),
            claude_config_dir: base.join("phome/claude"),
        };
        let script = format!(
            "echo in > inside.txt; echo out > {b}/outside/f 2>/dev/null; \
             echo h > .parachute/hooks/x 2>/dev/null; cat {b}/home/canary 2>/dev/null; \
             cat .parachute/config.yaml 2>/dev/null; true",
            b = base.display()
        );
        let out = confine_command(
            Path::new("sh"),
            &gate,
            &vault.join("Chat/sessions.db"),
            &private,
        )
        .args(["-c", &script])
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            std::fs::read_to_string(vault.join("inside.txt")).unwrap(),
            "in\n"
        );
        assert!(!base.join("outside/f").exists(), "wrote outside the vault");
        assert!(
            !vault.join(".parachute/hooks/x").exists(),
            "wrote a protected path"
        );
        assert!(!stdout.contains("secret-canary"), "read the home folder");
        assert!(!stdout.contains("port: 1"), "read .parachute");
    }
}
