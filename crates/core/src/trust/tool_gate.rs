//! The gate for the paths an agent's tool call names. One function, [`check`], decides
//! for the CLI's permission callback and for the PreToolUse hook alike:
//!
//! - at every level the agent never writes a protected path in the vault (settings,
//!   modules, hooks, the database), however it names it — symlinks, `..` and links
//!   from outside included;
//! - at `vault` it also reads and writes nothing outside the vault, cannot read
//!   `.parachute/` or the database, and cannot ask Bash to leave the OS sandbox.
//!
//! Paths are judged by where they really lead: each is made absolute against the working
//! directory, `..` is folded, and every symlink on the way is followed (a dangling one
//! by its target), so the answer is about the file that would be touched.

use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use super::TrustLevel;
use crate::vault::VaultGate;

/// Whether a tool reads or writes the path it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read, list or search.
    Read,
    /// Create, change or delete.
    Write,
}

/// Tools whose paths this gate judges, for the PreToolUse hook's matcher.
pub const GATED_TOOLS: &str = "Read|Write|Edit|MultiEdit|NotebookEdit|Glob|Grep|LS|Bash";

/// The paths a tool call names, with how it uses them. Tools that name none (or that
/// this gate does not know) give an empty list.
pub fn named_paths(tool: &str, input: &Value) -> Vec<(String, Access)> {
    let s = |k: &str| input.get(k).and_then(Value::as_str).map(str::to_string);
    let mut out = Vec::new();
    match tool {
        "Write" | "Edit" | "MultiEdit" => out.extend(s("file_path").map(|p| (p, Access::Write))),
        "NotebookEdit" => out.extend(s("notebook_path").map(|p| (p, Access::Write))),
        "Read" => out.extend(s("file_path").map(|p| (p, Access::Read))),
        "LS" => out.extend(s("path").map(|p| (p, Access::Read))),
        "Glob" | "Grep" => {
            // No `path` means the working directory, which is checked like any other.
            out.push((s("path").unwrap_or_else(|| ".".into()), Access::Read));
            for key in ["pattern", "glob"] {
                if let Some(p) = s(key).filter(|p| p.starts_with('/') || p.contains("..")) {
                    // A search pattern that climbs or starts at `/` names its literal
                    // prefix (the part before the first wildcard).
                    out.push((literal_prefix(&p), Access::Read));
                }
            }
        }
        _ => {}
    }
    out
}

/// The part of a glob before its first wildcard component.
fn literal_prefix(pattern: &str) -> String {
    let mut out = PathBuf::new();
    for c in Path::new(pattern).components() {
        let text = c.as_os_str().to_string_lossy();
        if text.contains(['*', '?', '[', '{']) {
            break;
        }
        out.push(c.as_os_str());
    }
    if out.as_os_str().is_empty() {
        ".".into()
    } else {
        out.to_string_lossy().into_owned()
    }
}

/// Folds `.` and `..` without touching the disk.
fn fold(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Where an absolute path really leads: every existing component resolved through its
/// symlinks (a dangling symlink through its target), the rest appended.
pub fn real_path(abs: &Path) -> PathBuf {
    real_path_depth(&fold(abs), 0)
}

fn real_path_depth(abs: &Path, depth: usize) -> PathBuf {
    if depth > 40 {
        return abs.to_path_buf();
    }
    let comps: Vec<Component> = abs.components().collect();
    let mut done = PathBuf::new();
    for (i, c) in comps.iter().enumerate() {
        done.push(c.as_os_str());
        let Ok(meta) = done.symlink_metadata() else {
            // Nothing more exists on disk: the rest is appended as named.
            let rest: PathBuf = comps[i + 1..].iter().collect();
            return if rest.as_os_str().is_empty() {
                done
            } else {
                done.join(rest)
            };
        };
        if meta.file_type().is_symlink() {
            let Ok(target) = std::fs::read_link(&done) else {
                return done;
            };
            let base = done.parent().map(Path::to_path_buf).unwrap_or_default();
            let rest: PathBuf = comps[i + 1..].iter().collect();
            let next = fold(&base.join(target)).join(rest);
            return real_path_depth(&fold(&next), depth + 1);
        }
    }
    done
}

/// Decides one tool call for a session at `level` whose working directory is `cwd`:
/// `Err` holds the reason the model is told.
pub fn check(
    gate: &VaultGate,
    level: TrustLevel,
    cwd: &Path,
    tool: &str,
    input: &Value,
) -> Result<(), String> {
    // In a container the container is the boundary, and the paths the agent names are
    // the container's.
    if level == TrustLevel::Sandboxed {
        return Ok(());
    }
    if level >= TrustLevel::Vault
        && tool == "Bash"
        && input.get("dangerouslyDisableSandbox") == Some(&Value::Bool(true))
    {
        return Err(
            "Commands cannot leave the sandbox in this session (trust level 'vault')".into(),
        );
    }
    let root = gate
        .root()
        .canonicalize()
        .unwrap_or_else(|_| gate.root().to_path_buf());
    for (named, access) in named_paths(tool, input) {
        let real = real_path(&cwd.join(&named));
        let inside = real.starts_with(&root);
        if !inside {
            if level >= TrustLevel::Vault {
                return Err(format!(
                    "{named} is outside the vault; this session (trust level 'vault') works only inside it"
                ));
            }
            continue;
        }
        let protected = gate.is_protected(&real);
        let unreadable = level >= TrustLevel::Vault && is_server_private(gate, &root, &real);
        if (access == Access::Write && protected) || unreadable {
            return Err(format!(
                "{named} is protected: Parachute's settings, modules, hooks and database change only \
                 through its own commands (`parachute config set`, `parachute setup-token`) and API"
            ));
        }
    }
    Ok(())
}

/// `.parachute/` and the database: not even readable by a confined agent.
fn is_server_private(gate: &VaultGate, root: &Path, real: &Path) -> bool {
    let in_dot_parachute = real
        .strip_prefix(root)
        .ok()
        .and_then(|rel| rel.components().next())
        .is_some_and(|c| c.as_os_str().eq_ignore_ascii_case(".parachute"));
    in_dot_parachute || gate.is_database(real)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use TrustLevel::*;

    struct Fixture {
        _tmp: tempfile::TempDir,
        base: PathBuf,
        gate: VaultGate,
    }

    fn fixture() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().canonicalize().unwrap();
        let vault = base.join("vault");
        for d in [
            "vault/notes",
            "vault/.parachute",
            "outside",
            "vault2",
            "vault/Chat",
        ] {
            std::fs::create_dir_all(base.join(d)).unwrap();
        }
        std::os::unix::fs::symlink(base.join("outside"), vault.join("out-dir")).unwrap();
        std::os::unix::fs::symlink(base.join("outside/f.txt"), vault.join("out-leaf")).unwrap();
        std::os::unix::fs::symlink(vault.join(".parachute"), base.join("outside/into-dot"))
            .unwrap();
        let gate = VaultGate::with_default_database(&vault);
        Fixture {
            _tmp: tmp,
            base,
            gate,
        }
    }

    fn write(path: &str) -> Value {
        json!({"file_path": path, "content": "x"})
    }

    #[test]
    fn at_vault_every_route_out_is_refused_and_inside_is_allowed() {
        let f = fixture();
        let vault = f.base.join("vault");
        let b = f.base.display();
        let refused = [
            format!("{b}/outside/f.txt"),
            "../outside/f.txt".to_string(),
            "out-dir/f.txt".to_string(),
            "out-leaf".to_string(),
            format!("{b}/vault2/f.txt"),
            format!("{b}/vault/../vault2/f.txt"),
            ".parachute/config.yaml".to_string(),
            ".parachute/hooks/x".to_string(),
            ".mcp.json".to_string(),
            ".modules/m/module.yaml".to_string(),
            "Chat/sessions.db-wal".to_string(),
        ];
        for p in &refused {
            assert!(
                check(&f.gate, Vault, &vault, "Write", &write(p)).is_err(),
                "{p} allowed"
            );
        }
        for p in ["notes/a.md", "new-folder/b.md", &format!("{b}/vault/c.md")] {
            assert_eq!(
                check(&f.gate, Vault, &vault, "Write", &write(p)),
                Ok(()),
                "{p}"
            );
        }
        // Reads: outside, .parachute and the database refused; other dot-names readable.
        for (tool, input) in [
            ("Read", json!({"file_path": format!("{b}/outside/f.txt")})),
            ("Read", json!({"file_path": ".parachute/server.yaml"})),
            ("Read", json!({"file_path": "Chat/sessions.db"})),
            ("Grep", json!({"pattern": "x", "path": "/etc"})),
            ("Glob", json!({"pattern": "/root/**/*.md"})),
            ("Glob", json!({"pattern": "../outside/*"})),
            ("LS", json!({"path": "out-dir"})),
        ] {
            assert!(
                check(&f.gate, Vault, &vault, tool, &input).is_err(),
                "{tool} {input}"
            );
        }
        for (tool, input) in [
            ("Read", json!({"file_path": "notes/a.md"})),
            ("Read", json!({"file_path": ".claude/settings.json"})),
            ("Grep", json!({"pattern": "x"})),
            ("Glob", json!({"pattern": "**/*.md"})),
        ] {
            assert_eq!(
                check(&f.gate, Vault, &vault, tool, &input),
                Ok(()),
                "{tool} {input}"
            );
        }
        let escape = json!({"command": "echo hi", "dangerouslyDisableSandbox": true});
        assert!(check(&f.gate, Vault, &vault, "Bash", &escape).is_err());
        assert_eq!(
            check(&f.gate, Vault, &vault, "Bash", &json!({"command": "ls"})),
            Ok(())
        );
    }

    #[test]
    fn at_full_outside_is_allowed_but_the_protected_list_holds_by_any_route() {
        let f = fixture();
        let vault = f.base.join("vault");
        let b = f.base.display();
        assert_eq!(
            check(
                &f.gate,
                Full,
                &vault,
                "Write",
                &write(&format!("{b}/outside/f.txt"))
            ),
            Ok(())
        );
        for p in [
            ".parachute/config.yaml".to_string(),
            format!("{b}/outside/../vault/.parachute/x"),
            format!("{b}/outside/into-dot/config.yaml"),
            "NOTES/../.Parachute/server.yaml".to_string(),
        ] {
            assert!(
                check(&f.gate, Full, &vault, "Write", &write(&p)).is_err(),
                "{p}"
            );
        }
        assert_eq!(
            check(
                &f.gate,
                Full,
                &vault,
                "Read",
                &json!({"file_path": ".parachute/config.yaml"})
            ),
            Ok(())
        );
    }

    #[test]
    fn a_dangling_symlink_is_judged_by_its_target() {
        let f = fixture();
        let vault = f.base.join("vault");
        std::os::unix::fs::symlink(f.base.join("outside/new.txt"), vault.join("dangling")).unwrap();
        assert!(check(&f.gate, Vault, &vault, "Write", &write("dangling")).is_err());
        assert_eq!(
            real_path(&vault.join("dangling")),
            f.base.join("outside/new.txt")
        );
    }
}
