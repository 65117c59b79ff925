//! `manifest.yaml`: what a module is, what it provides, and what it asks for.
//!
//! ```yaml
//! name: brain                 # required; equals the folder name
//! version: 0.1.0
//! description: Search over the vault's entities
//! trust_level: vault          # the level its hooks, scheduled agents and MCP servers run at
//! provides: [BrainInterface]
//! requires: []
//! requests:                   # everything in the tree that reaches an agent or runs
//!   skills: [summarize]       #   skills/summarize.md or skills/summarize/
//!   agents: [researcher]      #   agents/researcher.md (sub-agents)
//!   mcp_servers: [search]     #   keys of mcp.json
//!   hooks: [notify.sh]        #   hooks/notify.sh
//!   scheduled_agents: [digest] # scheduled/digest.md
//! ```
//!
//! A manifest that does not parse, names another module, or fails to request something
//! the tree contains makes the module invalid, with the reason; never fatal.

use std::path::Path;

use parachute_core::trust::TrustLevel;
use serde::{Deserialize, Serialize};

/// Most bytes a manifest may have.
const MAX_MANIFEST_BYTES: u64 = 64 * 1024;

/// A parsed, checked manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The module's name (its folder's name).
    pub name: String,
    /// Its version, as written.
    pub version: Option<String>,
    /// What it is for.
    pub description: Option<String>,
    /// The level it asks to run at.
    pub trust_level: TrustLevel,
    /// Interfaces it provides (informational).
    pub provides: Vec<String>,
    /// Modules it needs (informational).
    pub requires: Vec<String>,
    /// What it asks for.
    pub requests: Requests,
}

/// What a module hands to agents or runs: declared in the manifest and found in its tree.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Requests {
    /// Skills (`skills/`).
    pub skills: Vec<String>,
    /// Sub-agents (`agents/`).
    pub agents: Vec<String>,
    /// MCP servers (`mcp.json`).
    pub mcp_servers: Vec<String>,
    /// Hook executables (`hooks/`).
    pub hooks: Vec<String>,
    /// Scheduled agents (`scheduled/`).
    pub scheduled_agents: Vec<String>,
}

impl Requests {
    fn sort(&mut self) {
        for list in [
            &mut self.skills,
            &mut self.agents,
            &mut self.mcp_servers,
            &mut self.hooks,
            &mut self.scheduled_agents,
        ] {
            list.sort();
            list.dedup();
        }
    }

    /// `kind/name` of everything found but not declared.
    fn undeclared(&self, found: &Requests) -> Vec<String> {
        let pairs = [
            ("skills", &self.skills, &found.skills),
            ("agents", &self.agents, &found.agents),
            ("mcp_servers", &self.mcp_servers, &found.mcp_servers),
            ("hooks", &self.hooks, &found.hooks),
            (
                "scheduled_agents",
                &self.scheduled_agents,
                &found.scheduled_agents,
            ),
        ];
        pairs
            .into_iter()
            .flat_map(|(kind, declared, found)| {
                found
                    .iter()
                    .filter(|n| !declared.contains(n))
                    .map(move |n| format!("{kind}: {n}"))
            })
            .collect()
    }
}

#[derive(Deserialize)]
struct Raw {
    name: String,
    #[serde(default)]
    version: Option<serde_json::Value>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    trust_level: Option<String>,
    #[serde(default)]
    provides: Vec<String>,
    #[serde(default)]
    requires: Vec<String>,
    #[serde(default)]
    requests: Requests,
}

/// Whether `name` may name a module: `[a-z0-9][a-z0-9_-]*`, at most 64 characters.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Parses manifest text for the module in folder `dir_name`.
pub fn parse(text: &str, dir_name: &str) -> Result<Manifest, String> {
    let raw: Raw = serde_saphyr::from_str(text).map_err(|e| {
        // The first line of the parser's message says what and where, without quoting.
        let msg = e.to_string();
        format!(
            "manifest.yaml does not parse: {}",
            msg.lines().next().unwrap_or("invalid YAML")
        )
    })?;
    if raw.name != dir_name {
        return Err(format!(
            "manifest.yaml names '{}' but the folder is '{dir_name}'",
            raw.name.chars().take(64).collect::<String>()
        ));
    }
    let trust_level = match raw.trust_level.as_deref() {
        None => TrustLevel::Vault,
        Some(t) => t.parse::<TrustLevel>().map_err(|_| {
            "manifest.yaml: trust_level must be full, vault or sandboxed".to_string()
        })?,
    };
    let version = raw.version.map(|v| match v {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    });
    let mut requests = raw.requests;
    requests.sort();
    Ok(Manifest {
        name: raw.name,
        version,
        description: raw.description,
        trust_level,
        provides: raw.provides,
        requires: raw.requires,
        requests,
    })
}

/// Reads and checks the manifest of the module at `dir` against what its tree holds.
pub fn load(dir: &Path, dir_name: &str, found: &Requests) -> Result<Manifest, String> {
    let path = dir.join("manifest.yaml");
    let meta =
        std::fs::symlink_metadata(&path).map_err(|_| "manifest.yaml is missing".to_string())?;
    if !meta.is_file() {
        return Err("manifest.yaml is not a regular file".into());
    }
    if meta.len() > MAX_MANIFEST_BYTES {
        return Err(format!(
            "manifest.yaml is larger than {} KB",
            MAX_MANIFEST_BYTES / 1024
        ));
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|_| "manifest.yaml is not readable UTF-8 text".to_string())?;
    let manifest = parse(&text, dir_name)?;
    let undeclared = manifest.requests.undeclared(found);
    if !undeclared.is_empty() {
        return Err(format!(
            "manifest.yaml does not request what the module contains ({})",
            undeclared.join(", ")
        ));
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_manifest() {
        let m = parse(
            "name: brain\nversion: 0.1.0\ntrust_level: sandboxed\nprovides: [BrainInterface]\nrequests:\n  skills: [b, a]\n",
            "brain",
        )
        .unwrap();
        assert_eq!(m.version.as_deref(), Some("0.1.0"));
        assert_eq!(m.trust_level, TrustLevel::Sandboxed);
        assert_eq!(m.requests.skills, vec!["a", "b"]);
        // A numeric version is kept as written.
        assert_eq!(
            parse("name: x\nversion: 2\n", "x")
                .unwrap()
                .version
                .as_deref(),
            Some("2")
        );
    }

    #[test]
    fn refuses_bad_manifests_with_a_reason() {
        assert!(parse("name: other\n", "brain")
            .unwrap_err()
            .contains("folder is 'brain'"));
        assert!(parse("version: 1\n", "brain")
            .unwrap_err()
            .contains("does not parse"));
        assert!(parse("name: brain\ntrust_level: root\n", "brain")
            .unwrap_err()
            .contains("trust_level"));
        assert!(parse("name: brain\nrequests: {rockets: [a]}\n", "brain").is_err());
        assert!(parse(": : :\n", "brain").is_err());
    }

    #[test]
    fn undeclared_contents_are_named() {
        let m = parse("name: m\nrequests: {hooks: [a.sh]}\n", "m").unwrap();
        let found = Requests {
            hooks: vec!["a.sh".into(), "b.sh".into()],
            skills: vec!["s".into()],
            ..Requests::default()
        };
        assert_eq!(
            m.requests.undeclared(&found),
            vec!["skills: s", "hooks: b.sh"]
        );
    }

    #[test]
    fn names() {
        assert!(valid_name("brain"));
        assert!(valid_name("my-mod_2"));
        assert!(!valid_name("Brain"));
        assert!(!valid_name(".hidden"));
        assert!(!valid_name("-x"));
        assert!(!valid_name(""));
    }
}

/// Manifest text, generated from the keys a manifest has and the YAML that trips
/// parsers: parsed or refused with a reason, never a panic.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn any_manifest_text_is_parsed_or_refused_with_a_reason(
            lines in prop::collection::vec(
                prop_oneof![
                    prop::sample::select(vec![
                        "name: brain", "name: Bad Name!", "version: 1.0.0", "description: x",
                        "trust_level: vault", "trust_level: root", "mcp:", "  command: x",
                        "skills: [a, b]", "hooks:", "  - event: Stop", "routes: {}", "- just a list",
                        "&a [*a, *a]", "!!binary aGk=", "name: [unclosed", "\t", "---",
                    ])
                    .prop_map(str::to_string),
                    "[a-z_]{1,8}: [a-z0-9 ]{0,10}",
                ],
                0..10,
            ),
            dir in "[a-z0-9_-]{1,10}",
        ) {
            let text = lines.join("\n");
            match parse(&text, &dir) {
                Ok(m) => prop_assert!(valid_name(&m.name), "{:?}", m.name),
                Err(why) => prop_assert!(!why.is_empty()),
            }
        }
    }
}
