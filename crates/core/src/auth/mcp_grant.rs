//! Grants for Parachute's own MCP server at `/mcp`: each chat session's CLI is handed a
//! bearer token naming its session and trust level, so the server answers it with that
//! session's confinement (and no API key ever reaches an agent). Tokens are HMACs
//! under a secret made at start: they hold for the server's life, are the same
//! for the same session and level (the warm-process fingerprint stays stable), and need
//! no table.

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::trust::TrustLevel;

/// Every grant token starts with this.
const PREFIX: &str = "pmcp.";

/// Who an MCP call comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpGrant {
    /// The session whose agent calls.
    pub session_id: String,
    /// The level its turn runs at.
    pub level: TrustLevel,
}

/// Makes and checks grant tokens.
pub struct McpGrants {
    secret: [u8; 32],
}

impl Default for McpGrants {
    fn default() -> Self {
        McpGrants {
            secret: rand::random(),
        }
    }
}

impl std::fmt::Debug for McpGrants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("McpGrants")
    }
}

impl McpGrants {
    /// HMAC-SHA256 of `claim` under the secret.
    fn mac(&self, claim: &str) -> String {
        let (mut inner_key, mut outer_key) = ([0x36u8; 64], [0x5cu8; 64]);
        for (i, b) in self.secret.iter().enumerate() {
            inner_key[i] ^= b;
            outer_key[i] ^= b;
        }
        let inner = Sha256::new()
            .chain_update(inner_key)
            .chain_update(claim.as_bytes())
            .finalize();
        hex::encode(
            Sha256::new()
                .chain_update(outer_key)
                .chain_update(inner)
                .finalize(),
        )
    }

    /// The token for `session_id` at `level`.
    pub fn mint(&self, session_id: &str, level: TrustLevel) -> String {
        let claim = format!("{}\n{session_id}", level.as_str());
        format!(
            "{PREFIX}{}.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&claim),
            self.mac(&claim)
        )
    }

    /// The grant a token carries, if it is one of ours.
    pub fn verify(&self, token: &str) -> Option<McpGrant> {
        let (claim_b64, mac) = token.strip_prefix(PREFIX)?.split_once('.')?;
        let claim = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claim_b64)
            .ok()?;
        let claim = String::from_utf8(claim).ok()?;
        let want = self.mac(&claim);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            want.as_bytes(),
            mac.as_bytes(),
        )) {
            return None;
        }
        let (level, session_id) = claim.split_once('\n')?;
        Some(McpGrant {
            session_id: session_id.to_string(),
            level: level.parse().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_session_and_level_and_cannot_be_forged() {
        let g = McpGrants::default();
        let t = g.mint("abc-123", TrustLevel::Vault);
        assert_eq!(t, g.mint("abc-123", TrustLevel::Vault));
        assert_eq!(
            g.verify(&t),
            Some(McpGrant {
                session_id: "abc-123".into(),
                level: TrustLevel::Vault
            })
        );
        // Another server's token, a changed level, garbage: nothing.
        assert_eq!(McpGrants::default().verify(&t), None);
        let (head, mac) = t.rsplit_once('.').unwrap();
        let forged_claim = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("full\nabc-123");
        assert_eq!(g.verify(&format!("pmcp.{forged_claim}.{mac}")), None);
        assert_eq!(g.verify(&format!("{head}.00")), None);
        for bad in ["", "pmcp.", "pmcp..", "pmcp.%%%.x", "Bearer x"] {
            assert_eq!(g.verify(bad), None);
        }
    }
}
