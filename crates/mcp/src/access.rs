//! Which tools a caller at each trust level is offered: the MCP server never reaches
//! further than the session calling it could by itself.

use parachute_core::trust::TrustLevel;

/// Tools over the session database (titles, tags, transcripts of every session).
pub const SESSION_TOOLS: &[&str] = &[
    "search_sessions",
    "list_recent_sessions",
    "get_session",
    "search_by_tag",
    "list_tags",
    "add_session_tag",
    "remove_session_tag",
];

/// Whether a caller at `level` may list and call `tool`.
pub fn offered(level: TrustLevel, tool: &str) -> bool {
    match level {
        TrustLevel::Full => true,
        // A vault session cannot read the database; the vault's content it can.
        TrustLevel::Vault => !SESSION_TOOLS.contains(&tool),
        // Its container reaches only the model relay.
        TrustLevel::Sandboxed => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_level_sees_what_it_could_reach() {
        assert!(offered(TrustLevel::Full, "get_session"));
        assert!(!offered(TrustLevel::Vault, "get_session"));
        assert!(offered(TrustLevel::Vault, "get_journal"));
        assert!(offered(TrustLevel::Vault, "read_note"));
        assert!(!offered(TrustLevel::Sandboxed, "read_note"));
    }
}
