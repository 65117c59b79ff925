//! Trust levels: `full` < `vault` < `sandboxed`, ordered from least to most
//! restricted. The effective level is the most restricted of those that apply; a
//! request can only restrict, never escalate.

pub mod os_sandbox;
pub mod tool_gate;

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

impl std::fmt::Display for TrustLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a turn cannot run at the level it asks for.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LevelError {
    /// The request names no known level.
    #[error(transparent)]
    Invalid(#[from] InvalidTrustLevel),
    /// The request asks for less restriction than the session, its workspace or its
    /// user already has.
    #[error("This session runs at trust level '{floor}'; a request can only restrict it, not lower it to '{requested}'")]
    Escalation {
        /// The level the request named.
        requested: TrustLevel,
        /// The most restricted level that already applies.
        floor: TrustLevel,
    },
}

/// The effective level of a turn: the most restricted of the session's stored level,
/// the floors that apply (workspace, bot user) and the request's level. Fail-closed:
/// a stored level that is not a known level counts as `sandboxed` (no stored level is
/// `full`, as sessions were always created); a request may restrict, never lower.
pub fn effective_level(
    stored: Option<&str>,
    floors: &[TrustLevel],
    requested: Option<&str>,
) -> Result<TrustLevel, LevelError> {
    let stored = match stored {
        None => TrustLevel::Full,
        Some(s) => s.parse().unwrap_or(TrustLevel::Sandboxed),
    };
    let floor = TrustLevel::most_restricted(floors.iter().copied().chain([stored]));
    match requested {
        None => Ok(floor),
        Some(r) => {
            let requested: TrustLevel = r.parse()?;
            if requested < floor {
                return Err(LevelError::Escalation { requested, floor });
            }
            Ok(requested)
        }
    }
}

/// Whether this server can run a turn at `level` with the confinement it asks for
/// (`containers`: a container launcher is configured); `Err` says what is missing. A
/// turn is never run with less confinement instead.
pub fn can_confine(level: TrustLevel, containers: bool) -> Result<(), String> {
    match level {
        TrustLevel::Full => Ok(()),
        TrustLevel::Vault => {
            let missing = os_sandbox::missing_programs();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(os_sandbox::missing_message(&missing))
            }
        }
        TrustLevel::Sandboxed if containers => Ok(()),
        TrustLevel::Sandboxed => Err(
            "Trust level 'sandboxed' runs the agent in a Docker container, and this server has \
             no container sandbox; the turn was not run with less confinement"
                .into(),
        ),
    }
}

/// The text of an unknown level, for the contract's `Invalid trust level` errors.
#[derive(Debug, thiserror::Error, PartialEq)]
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

    #[test]
    fn the_effective_level_is_the_most_restricted_and_fails_closed() {
        use TrustLevel::*;
        let esc = |requested, floor| Err(LevelError::Escalation { requested, floor });
        // (stored, floors, requested) → effective
        type Row<'a> = (
            Option<&'a str>,
            &'a [TrustLevel],
            Option<&'a str>,
            Result<TrustLevel, LevelError>,
        );
        let table: &[Row] = &[
            (None, &[], None, Ok(Full)),
            (None, &[], Some("vault"), Ok(Vault)),
            (None, &[], Some("sandboxed"), Ok(Sandboxed)),
            (Some("full"), &[], Some("vault"), Ok(Vault)),
            (Some("vault"), &[], None, Ok(Vault)),
            (Some("vault"), &[], Some("sandboxed"), Ok(Sandboxed)),
            (Some("vault"), &[], Some("full"), esc(Full, Vault)),
            (None, &[Sandboxed], Some("vault"), esc(Vault, Sandboxed)),
            (None, &[Vault], None, Ok(Vault)),
            (Some("full"), &[Full, Vault], None, Ok(Vault)),
            (Some("sandboxed"), &[Vault], None, Ok(Sandboxed)),
            // Unknown or unreadable stored levels fail closed.
            (Some("root"), &[], None, Ok(Sandboxed)),
            (Some(""), &[], None, Ok(Sandboxed)),
            (Some("root"), &[], Some("full"), esc(Full, Sandboxed)),
            // Stored levels are read as leniently as they are written.
            (Some(" Vault "), &[], None, Ok(Vault)),
        ];
        for (stored, floors, requested, want) in table {
            let got = effective_level(*stored, floors, *requested);
            assert_eq!(&got, want, "{stored:?} {floors:?} {requested:?}");
        }
        assert!(matches!(
            effective_level(None, &[], Some("root")),
            Err(LevelError::Invalid(_))
        ));
    }
}
