//! The stdio transport: `parachute mcp` serves one client on its standard input and
//! output until the client closes them.

use std::sync::Arc;

use rmcp::ServiceExt;

use crate::{Vault, VaultTools};

/// Why the stdio server stopped with an error.
#[derive(Debug, thiserror::Error)]
#[error("the MCP server stopped: {0}")]
pub struct StdioError(String);

/// Serves `vault` over stdin/stdout until the client goes away.
pub async fn serve(vault: Arc<Vault>) -> Result<(), StdioError> {
    let running = VaultTools::new(vault)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| StdioError(e.to_string()))?;
    running
        .waiting()
        .await
        .map_err(|e| StdioError(e.to_string()))?;
    Ok(())
}
