//! Each session's skills, sub-agents and MCP servers ([`VaultExtras`], the core's
//! [`ExtrasSource`]): the vault's `.skills/`, `.parachute/agents/` and `.mcp.json`, and
//! those of the enabled modules, filtered by the workspace's capabilities and the trust
//! level:
//!
//! | level | skills | sub-agents | MCP servers |
//! |---|---|---|---|
//! | `full` | all | all | all valid ones |
//! | `vault` | all | all | those not marked `trust_level: full`; a module's only if it was approved at `full` |
//! | `sandboxed` | none (the plugin folder is on the host) | all | none (the container reaches only the model relay) |
//!
//! The vault's own entries win over a module's of the same name. Files are generated
//! under `$PARACHUTE_HOME/runtime/`, never in the vault.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use parachute_core::auth::McpGrants;
use parachute_core::chat::extras::{ExtrasQuery, ExtrasSource, SessionExtras, OWN_MCP_SERVER};
use parachute_core::config::Paths;
use parachute_core::trust::TrustLevel;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::mcp::config as mcp_config;
use crate::modules::contents;
use crate::{agents, skills, Extensions};

/// Where sessions reach Parachute's own MCP server.
#[derive(Clone)]
pub struct OwnMcp {
    /// The server's `/mcp` URL on this machine.
    pub url: String,
    /// Mints each session's grant token.
    pub grants: Arc<McpGrants>,
}

/// The extras of one vault's sessions.
pub struct VaultExtras {
    ext: Arc<Extensions>,
    paths: Paths,
    own_mcp: Option<OwnMcp>,
}

impl VaultExtras {
    /// Extras from the vault at `paths` and the modules of `ext`; sessions at `full` and
    /// `vault` also get Parachute's own MCP server when `own_mcp` says where it is.
    pub fn new(ext: Arc<Extensions>, paths: Paths, own_mcp: Option<OwnMcp>) -> Arc<VaultExtras> {
        Arc::new(VaultExtras {
            ext,
            paths,
            own_mcp,
        })
    }

    fn runtime(&self, kind: &str, session: &str) -> PathBuf {
        // Session ids are UUIDs; anything else is reduced to a safe file name.
        let safe: String = session
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(80)
            .collect();
        self.paths.runtime_dir().join(kind).join(safe)
    }

    /// The extras for `q` (blocking file work).
    pub fn compute(&self, q: &ExtrasQuery) -> SessionExtras {
        let modules = self.ext.modules.enabled();
        let caps = &q.capabilities;
        let mut digest = Sha256::new();
        let mut out = SessionExtras::default();

        // Skills: the vault's, then each enabled module's.
        if q.level != TrustLevel::Sandboxed {
            let mut list = skills::list(&self.paths.skills_dir());
            for m in &modules {
                if contents::unchanged_under(m, "skills") {
                    list.extend(skills::list(&m.dir.join("skills")));
                } else {
                    tracing::warn!(module = %m.name, "the module's skills changed since its approval; not offered");
                }
            }
            list.retain(|s| {
                caps.skills.allows(&s.name) || caps.skills.allows(&skills::kebab(&s.name))
            });
            if !list.is_empty() {
                let dir = self.runtime("skills", &q.session_id);
                match skills::plugin::generate(&dir, &list) {
                    Ok(()) => {
                        digest.update(skills::plugin::sources_digest(&list));
                        out.plugin_dirs.push(dir);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "the skills plugin could not be generated")
                    }
                }
            }
        }

        // Sub-agents: the vault's, then each enabled module's (the first of a name wins).
        let mut agents = Map::new();
        let module_agents = modules
            .iter()
            .filter(|m| {
                let same = contents::unchanged_under(m, "agents");
                if !same {
                    tracing::warn!(module = %m.name, "the module's agents changed since its approval; not offered");
                }
                same
            })
            .flat_map(|m| agents::list(&m.dir.join("agents")));
        for a in agents::list(&self.paths.agents_dir())
            .into_iter()
            .chain(module_agents)
        {
            if caps.agents.allows(&a.name) && !agents.contains_key(&a.name) {
                agents.insert(a.name, a.definition);
            }
        }
        digest.update(Value::Object(agents.clone()).to_string());
        out.agents = agents;

        // MCP servers.
        if q.level != TrustLevel::Sandboxed {
            let servers = self.mcp_servers(q, &modules);
            if !servers.is_empty() {
                let file = self.runtime("mcp", &q.session_id).with_extension("json");
                let doc = serde_json::json!({"mcpServers": servers});
                let text = doc.to_string();
                let written = file
                    .parent()
                    .map_or(Ok(()), std::fs::create_dir_all)
                    .and_then(|()| {
                        parachute_core::util::fs::write_atomic(&file, text.as_bytes(), Some(0o600))
                    });
                match written {
                    Ok(()) => {
                        digest.update(text.as_bytes());
                        out.mcp_servers = servers.keys().cloned().collect();
                        out.mcp_config = Some(file);
                    }
                    Err(e) => tracing::warn!(error = %e, "the MCP config could not be written"),
                }
            }
        }
        out.digest = hex::encode(digest.finalize());
        out
    }

    /// The valid MCP servers for a session at `level`, variables substituted.
    fn mcp_servers(
        &self,
        q: &ExtrasQuery,
        modules: &[crate::modules::EnabledModule],
    ) -> Map<String, Value> {
        let (level, caps) = (q.level, &q.capabilities);
        let lookup = mcp_config::env_lookup;
        let mut out = Map::new();
        // Parachute's own, first (a server of the same name elsewhere does not replace
        // it), with a grant naming this session and its level.
        if let Some(own) = &self.own_mcp {
            if caps.mcps.allows(OWN_MCP_SERVER) {
                let token = own.grants.mint(&q.session_id, level);
                out.insert(
                    OWN_MCP_SERVER.into(),
                    serde_json::json!({"type": "http", "url": own.url,
                        "headers": {"Authorization": format!("Bearer {token}")}}),
                );
            }
        }
        // Only servers the owner approved as they are now (a .mcp.json that arrived any
        // other way runs nothing).
        let approvals =
            crate::mcp::approvals::McpApprovals::new(self.paths.mcp_approvals_file()).read();
        let vault = match mcp_config::read(&self.paths.mcp_json()) {
            Ok((s, _)) => s
                .into_iter()
                .filter(|(n, c)| approvals.get(n) == Some(&crate::mcp::approvals::config_digest(c)))
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "vault MCP servers skipped");
                Map::new()
            }
        };
        for (name, config) in vault.into_iter().chain(module_mcp_servers(modules)) {
            if out.contains_key(&name) || !caps.mcps.allows(&name) {
                continue;
            }
            if !mcp_config::validate(&name, &config).is_empty() {
                tracing::debug!(server = %name, "invalid MCP server skipped");
                continue;
            }
            let only_full = config.get("trust_level").and_then(Value::as_str) == Some("full");
            if only_full && level != TrustLevel::Full {
                continue;
            }
            match mcp_config::resolve(&config, &lookup) {
                Ok(c) => {
                    out.insert(name, c);
                }
                Err(e) => tracing::warn!(server = %name, error = %e, "MCP server skipped"),
            }
        }
        out
    }
}

/// The MCP servers enabled modules offer. A module's servers run as host processes of
/// the CLI, outside any confinement: only a module approved at `full` may offer them,
/// and only as approved (the bytes of its mcp.json are checked against the approved
/// digest).
fn module_mcp_servers(modules: &[crate::modules::EnabledModule]) -> Vec<(String, Value)> {
    modules
        .iter()
        .filter(|m| m.trust_level == TrustLevel::Full)
        .flat_map(|m| contents::verified_mcp_servers(m).unwrap_or_default())
        .collect()
}

impl ExtrasSource for VaultExtras {
    fn extras(
        &self,
        query: ExtrasQuery,
    ) -> Pin<Box<dyn std::future::Future<Output = SessionExtras> + Send + '_>> {
        Box::pin(async move {
            let me = Arc::new(VaultExtras {
                ext: self.ext.clone(),
                paths: self.paths.clone(),
                own_mcp: self.own_mcp.clone(),
            });
            tokio::task::spawn_blocking(move || me.compute(&query))
                .await
                .unwrap_or_default()
        })
    }

    fn forget(&self, session_id: &str) {
        let _ = std::fs::remove_dir_all(self.runtime("skills", session_id));
        let _ = std::fs::remove_file(self.runtime("mcp", session_id).with_extension("json"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::Modules;

    fn module(root: &std::path::Path, name: &str, server: &str) {
        let dir = root.join(name);
        std::fs::create_dir_all(dir.join("agents")).unwrap();
        std::fs::write(
            dir.join("manifest.yaml"),
            format!("name: {name}\ntrust_level: full\nrequests: {{mcp_servers: [{server}], agents: [helper]}}\n"),
        )
        .unwrap();
        std::fs::write(
            dir.join("mcp.json"),
            format!(r#"{{"mcpServers": {{"{server}": {{"command": "true"}}}}}}"#),
        )
        .unwrap();
        std::fs::write(
            dir.join("agents/helper.md"),
            "---\ndescription: helps\n---\nHelp.\n",
        )
        .unwrap();
    }

    #[test]
    fn module_servers_are_offered_only_at_full_and_only_as_approved() {
        let d = tempfile::tempdir().unwrap();
        let m = Modules::new(d.path().join("modules"), d.path().join("hashes.json"));
        module(m.dir(), "trusted", "deep");
        module(m.dir(), "plain", "shallow");
        m.approve("trusted", Some(TrustLevel::Full), None).unwrap();
        m.approve("plain", Some(TrustLevel::Vault), None).unwrap();
        let enabled = m.enabled();
        assert_eq!(enabled.len(), 2);
        let names: Vec<String> = module_mcp_servers(&enabled)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, vec!["deep"]);
        for e in &enabled {
            assert!(contents::unchanged_under(e, "agents"));
        }

        // Files changed after the module was found enabled are not offered.
        std::fs::write(
            m.dir().join("trusted/mcp.json"),
            r#"{"mcpServers": {"deep": {"command": "sh"}}}"#,
        )
        .unwrap();
        assert!(module_mcp_servers(&enabled).is_empty());
        std::fs::write(m.dir().join("plain/agents/extra.md"), "Sneaky.\n").unwrap();
        let plain = enabled.iter().find(|e| e.name == "plain").unwrap();
        assert!(!contents::unchanged_under(plain, "agents"));
        // A folder the module never had counts as unchanged while absent.
        assert!(contents::unchanged_under(plain, "skills"));
    }
}
