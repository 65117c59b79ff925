//! `parachute mcp`: the vault's MCP server over stdio. Standard output carries the
//! protocol, so nothing else is printed there.

use std::process::ExitCode;

use parachute_core::app::AppState;
use parachute_core::config::{Overrides, Settings};
use parachute_core::trust::TrustLevel;

pub async fn run(ov: &Overrides, trust: &str) -> anyhow::Result<ExitCode> {
    let level: TrustLevel = trust.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let settings = Settings::load(ov)?;
    let state = AppState::open(settings).await?;
    let ext = parachute_extensions::Extensions::new(&state);
    let result =
        parachute_mcp::stdio::serve(parachute_mcp::Vault::new(state.clone(), ext, level)).await;
    state.store.close().await;
    result?;
    Ok(ExitCode::SUCCESS)
}
