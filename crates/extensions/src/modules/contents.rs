//! What a module's tree holds that reaches an agent or runs: read from its folders, so
//! an approval shows the truth whatever the manifest says.
//!
//! | folder / file | what |
//! |---|---|
//! | `skills/NAME.md`, `skills/NAME/` | skills, in the format of the vault's `.skills/` |
//! | `agents/NAME.{md,yaml,yml,json}` | sub-agents, as in `.parachute/agents/` |
//! | `mcp.json` | MCP servers (`{"mcpServers": {…}}` or the servers at the top level) |
//! | `hooks/NAME` | hook executables (`NAME.yaml` beside one is its settings) |
//! | `scheduled/NAME.md` | scheduled agents |

use std::path::Path;

use serde_json::{Map, Value};
use sha2::Digest;

use super::manifest::Requests;

/// Reads what `dir` contains. Errors name the file that could not be read.
pub fn scan(dir: &Path) -> Result<Requests, String> {
    let mut found = Requests {
        skills: names(&dir.join("skills"), |n, is_dir| {
            if is_dir {
                Some(n.to_string())
            } else {
                n.strip_suffix(".md").map(str::to_string)
            }
        })?,
        // The sub-agent reader's own test (an extension in any case), so nothing it
        // would load is left out of the approval.
        agents: names(&dir.join("agents"), |n, is_dir| {
            let path = Path::new(n);
            let ext = path.extension()?.to_str()?.to_ascii_lowercase();
            (!is_dir && matches!(ext.as_str(), "md" | "yaml" | "yml" | "json"))
                .then(|| path.file_stem()?.to_str().map(str::to_string))
                .flatten()
        })?,
        hooks: names(&dir.join("hooks"), |n, is_dir| {
            (!is_dir && !n.ends_with(".yaml") && !n.ends_with(".yml")).then(|| n.to_string())
        })?,
        scheduled_agents: names(&dir.join("scheduled"), |n, is_dir| {
            (!is_dir)
                .then(|| n.strip_suffix(".md"))
                .flatten()
                .map(str::to_string)
        })?,
        mcp_servers: mcp_servers(dir)?.keys().cloned().collect(),
    };
    for list in [
        &mut found.skills,
        &mut found.agents,
        &mut found.hooks,
        &mut found.scheduled_agents,
        &mut found.mcp_servers,
    ] {
        list.sort();
    }
    Ok(found)
}

/// The servers of a module's `mcp.json` (none when it has no such file).
pub fn mcp_servers(dir: &Path) -> Result<Map<String, Value>, String> {
    let text = match std::fs::read_to_string(dir.join("mcp.json")) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Map::new()),
        Err(_) => return Err("mcp.json is not readable UTF-8 text".into()),
    };
    parse_mcp(&text)
}

/// The servers of an enabled module's `mcp.json`, read once and checked against the
/// digest it was approved with (a file changed since is refused).
pub fn verified_mcp_servers(m: &super::EnabledModule) -> Result<Map<String, Value>, String> {
    let Some(expected) = m.digest.files.get("mcp.json") else {
        return Ok(Map::new());
    };
    let bytes = std::fs::read(m.dir.join("mcp.json")).map_err(|e| e.to_string())?;
    if &hex::encode(sha2::Sha256::digest(&bytes)) != expected {
        return Err("mcp.json changed since the module was checked".into());
    }
    parse_mcp(&String::from_utf8(bytes).map_err(|_| "mcp.json is not UTF-8".to_string())?)
}

/// Whether the files of an enabled module under the folder `folder` are exactly those it
/// was approved with, byte for byte (a folder it never had counts as unchanged when
/// still absent). Read before its skills or agents reach a session.
pub fn unchanged_under(m: &super::EnabledModule, folder: &str) -> bool {
    let prefix = format!("{folder}/");
    let approved: std::collections::BTreeMap<&str, &str> = m
        .digest
        .files
        .iter()
        .filter(|(rel, _)| rel.starts_with(&prefix))
        .map(|(rel, d)| (rel.as_str(), d.as_str()))
        .collect();
    let dir = m.dir.join(folder);
    let now = match super::tree::list_files(&dir) {
        Ok(files) => files,
        Err(_) if !dir.exists() => return approved.is_empty(),
        Err(_) => return false,
    };
    now.len() == approved.len()
        && now.iter().all(|(rel, path)| {
            approved
                .get(format!("{prefix}{rel}").as_str())
                .is_some_and(|want| {
                    std::fs::read(path)
                        .is_ok_and(|b| hex::encode(sha2::Sha256::digest(&b)) == *want)
                })
        })
}

fn parse_mcp(text: &str) -> Result<Map<String, Value>, String> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| format!("mcp.json is not valid JSON (line {})", e.line()))?;
    let Value::Object(mut top) = value else {
        return Err("mcp.json must be a JSON object".into());
    };
    let servers = match top.remove("mcpServers") {
        Some(Value::Object(s)) => s,
        Some(_) => return Err("mcp.json: mcpServers must be an object".into()),
        None => top,
    };
    Ok(servers)
}

fn names(dir: &Path, pick: impl Fn(&str, bool) -> Option<String>) -> Result<Vec<String>, String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(_) => {
            return Err(format!(
                "{} is not a readable folder",
                dir.file_name().and_then(|n| n.to_str()).unwrap_or("?")
            ))
        }
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        out.extend(pick(&name, is_dir));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_kind() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        for f in [
            "skills/one.md",
            "skills/two/SKILL.md",
            "skills/notes.txt",
            "agents/helper.md",
            "agents/shouty.MD",
            "agents/readme.txt",
            "hooks/notify.sh",
            "hooks/notify.yaml",
            "scheduled/digest.md",
        ] {
            std::fs::create_dir_all(p.join(f).parent().unwrap()).unwrap();
            std::fs::write(p.join(f), "x").unwrap();
        }
        std::fs::write(
            p.join("mcp.json"),
            r#"{"mcpServers":{"search":{"command":"x"}}}"#,
        )
        .unwrap();
        let r = scan(p).unwrap();
        assert_eq!(r.skills, vec!["one", "two"]);
        assert_eq!(r.agents, vec!["helper", "shouty"]);
        assert_eq!(r.hooks, vec!["notify.sh"]);
        assert_eq!(r.scheduled_agents, vec!["digest"]);
        assert_eq!(r.mcp_servers, vec!["search"]);
        std::fs::write(p.join("mcp.json"), "[1]").unwrap();
        assert!(scan(p).unwrap_err().contains("object"));
    }
}
