//! The streamable HTTP transport, mounted at `/mcp` by the API behind its auth layer
//! (which checks keys and grant tokens, and leaves a grant in the request for the
//! tools). Stateless, answering plain JSON: every request stands alone.

use std::sync::Arc;

use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};

use crate::{Vault, VaultTools};

/// The `/mcp` service over `vault`.
pub fn service(vault: Arc<Vault>) -> StreamableHttpService<VaultTools, NeverSessionManager> {
    let config = StreamableHttpServerConfig::default()
        // The API's auth layer decides who may call (the Host check of a LAN address
        // included); rmcp's loopback-only Host list would refuse every remote key holder.
        .disable_allowed_hosts()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None);
    StreamableHttpService::new(
        move || Ok(VaultTools::new(vault.clone())),
        Arc::new(NeverSessionManager::default()),
        config,
    )
}
