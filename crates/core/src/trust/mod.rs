//! Trust levels: `full` < `vault` < `sandboxed`, ordered from least to most
//! restricted. The effective level is the most restricted of those that apply; a
//! request can only restrict, never escalate.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How restricted a session is. Ordered from least (`Full`) to most (`Sandboxed`)
/// restricted, so the maximum of several levels is the most restricted; lowercase on the wire.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum TrustLevel {
    /// The CLI with its own permission prompts, answered by the server; the default.
    Full,
    /// Confined to the vault; turns at this level are refused until that confinement exists.
    Vault,
    /// Run in a container; turns at this level are refused until that sandbox exists.
    Sandboxed,
}

impl TrustLevel {
    /// The lowercase name (`full`, `vault` or `sandboxed`), as stored and served.
    pub fn as_str(self) -> &'static str {
        match self {
            TrustLevel::Full => "full",
            TrustLevel::Vault => "vault",
            TrustLevel::Sandboxed => "sandboxed",
        }
    }

    /// The most restricted of the levels given (`full` when none).
    pub fn most_restricted(levels: impl IntoIterator<Item = TrustLevel>) -> TrustLevel {
        levels.into_iter().max().unwrap_or(TrustLevel::Full)
    }
}

/// The text of an unknown level, for the contract's `Invalid trust level` errors.
#[derive(Debug, thiserror::Error)]
#[error("Invalid trust level: {0}. Must be 'full', 'vault', or 'sandboxed'")]
pub struct InvalidTrustLevel(pub String);

impl FromStr for TrustLevel {
    type Err = InvalidTrustLevel;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "full" => Ok(TrustLevel::Full),
            "vault" => Ok(TrustLevel::Vault),
            "sandboxed" => Ok(TrustLevel::Sandboxed),
            _ => Err(InvalidTrustLevel(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_restricted_wins() {
        use TrustLevel::*;
        assert_eq!(
            TrustLevel::most_restricted([Full, Sandboxed, Vault]),
            Sandboxed
        );
        assert_eq!(TrustLevel::most_restricted([Full, Vault]), Vault);
        assert_eq!(TrustLevel::most_restricted([]), Full);
        assert!("bogus".parse::<TrustLevel>().is_err());
        assert_eq!("VAULT".parse::<TrustLevel>().unwrap(), Vault);
    }
}
