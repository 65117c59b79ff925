//! The MCP handler: the tool list (filtered by the caller's level) and the calls,
//! each delegated to the module that does the work. Every tool answers one text block
//! holding JSON; a failure is a tool error whose JSON is `{"error": …}`.

use std::sync::Arc;

use parachute_core::auth::McpGrant;
use parachute_core::trust::TrustLevel;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{tool, tool_router, ErrorData, RoleServer, ServerHandler};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{access, daily, journals, notes, sessions, Vault};

/// What a tool gives back: its JSON, or why it could not.
pub(crate) type ToolOutcome = Result<Value, String>;

/// The MCP server over one vault.
#[derive(Clone)]
pub struct VaultTools {
    vault: Arc<Vault>,
    tool_router: ToolRouter<Self>,
}

/// Who calls: the grant an HTTP request carried, else the server's default.
pub(crate) struct Caller {
    pub level: TrustLevel,
    pub session_id: Option<String>,
}

fn caller(vault: &Vault, rc: &RequestContext<RoleServer>) -> Caller {
    let grant = rc
        .extensions
        .get::<http::request::Parts>()
        .and_then(|p| p.extensions.get::<McpGrant>());
    match grant {
        Some(g) => Caller {
            level: g.level,
            session_id: Some(g.session_id.clone()),
        },
        None => Caller {
            level: vault.default_level,
            session_id: None,
        },
    }
}

fn answer(outcome: ToolOutcome) -> Result<CallToolResult, ErrorData> {
    Ok(match outcome {
        Ok(v) => CallToolResult::success(vec![ContentBlock::text(v.to_string())]),
        Err(e) => CallToolResult::error(vec![ContentBlock::text(json!({"error": e}).to_string())]),
    })
}

fn default_10() -> i64 {
    10
}
fn default_14() -> i64 {
    14
}
fn default_20() -> i64 {
    20
}
fn default_true() -> bool {
    true
}

#[derive(Deserialize, JsonSchema)]
pub(crate) struct SearchSessions {
    /// Text the title contains.
    pub query: String,
    /// Most sessions returned (1–100).
    #[serde(default = "default_10")]
    pub limit: i64,
    /// Only sessions carrying every one of these tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Only sessions from this source (`parachute`, `telegram`, `discord`, …).
    pub source: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
pub(crate) struct ListRecentSessions {
    /// Most sessions returned (1–100).
    #[serde(default = "default_20")]
    pub limit: i64,
    /// Archived sessions instead of active ones.
    #[serde(default)]
    pub archived: bool,
    /// Only sessions of this module.
    pub module: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
pub(crate) struct GetSession {
    /// The session id.
    pub session_id: String,
    /// Include its messages (from its transcript).
    #[serde(default = "default_true")]
    pub include_messages: bool,
}

#[derive(Deserialize, JsonSchema)]
pub(crate) struct SearchByTag {
    /// The tag.
    pub tag: String,
    /// Most sessions returned (1–100).
    #[serde(default = "default_20")]
    pub limit: i64,
}

#[derive(Deserialize, JsonSchema)]
pub(crate) struct SessionTag {
    /// The session id.
    pub session_id: String,
    /// The tag (at most 100 characters).
    pub tag: String,
}

#[derive(Deserialize, JsonSchema)]
pub(crate) struct SearchJournals {
    /// Text to find (case-insensitive).
    pub query: String,
    /// Most matches returned (1–100).
    #[serde(default = "default_10")]
    pub limit: i64,
    /// First day searched (`YYYY-MM-DD`).
    pub date_from: Option<String>,
    /// Last day searched (`YYYY-MM-DD`).
    pub date_to: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
pub(crate) struct ListRecentJournals {
    /// Most days returned (1–100).
    #[serde(default = "default_14")]
    pub limit: i64,
}

#[derive(Deserialize, JsonSchema)]
pub(crate) struct GetJournal {
    /// The day (`YYYY-MM-DD`).
    pub date: String,
}

#[derive(Deserialize, JsonSchema)]
pub(crate) struct AddJournalEntry {
    /// The entry's text (Markdown).
    pub content: String,
}

#[derive(Deserialize, JsonSchema)]
pub(crate) struct SearchBrain {
    /// Words to find in the Brain's entities.
    pub query: String,
    /// Most entities returned (1–100).
    #[serde(default = "default_10")]
    pub limit: i64,
}

#[derive(Deserialize, JsonSchema)]
pub(crate) struct DateArg {
    /// The day (`YYYY-MM-DD`).
    pub date: String,
}

fn default_7() -> i64 {
    7
}

#[derive(Deserialize, JsonSchema)]
pub(crate) struct DaysArg {
    /// How many days back from today (1–30).
    #[serde(default = "default_7")]
    pub days: i64,
}

#[derive(Deserialize, JsonSchema)]
pub(crate) struct WriteOutput {
    /// The day the output is for (`YYYY-MM-DD`; default the run's).
    #[serde(default)]
    pub date: String,
    /// The output (Markdown).
    pub content: String,
}

#[derive(Deserialize, JsonSchema)]
pub(crate) struct ReadNote {
    /// The note's path, relative to the vault (`Projects/garden.md`).
    pub path: String,
}

#[tool_router]
impl VaultTools {
    /// Tools over `vault`.
    pub fn new(vault: Arc<Vault>) -> VaultTools {
        VaultTools {
            vault,
            tool_router: Self::tool_router(),
        }
    }

    #[tool(
        description = "Search chat sessions by title, optionally only those with all the given tags or from one source."
    )]
    async fn search_sessions(
        &self,
        Parameters(p): Parameters<SearchSessions>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(sessions::search(&self.vault, p).await)
    }

    #[tool(description = "The most recently used chat sessions.")]
    async fn list_recent_sessions(
        &self,
        Parameters(p): Parameters<ListRecentSessions>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(sessions::recent(&self.vault, p).await)
    }

    #[tool(
        description = "One chat session with its tags and, unless include_messages is false, its messages."
    )]
    async fn get_session(
        &self,
        Parameters(p): Parameters<GetSession>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(sessions::get(&self.vault, p).await)
    }

    #[tool(description = "Chat sessions carrying a tag.")]
    async fn search_by_tag(
        &self,
        Parameters(p): Parameters<SearchByTag>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(sessions::by_tag(&self.vault, p).await)
    }

    #[tool(description = "Every session tag with how many sessions carry it.")]
    async fn list_tags(&self) -> Result<CallToolResult, ErrorData> {
        answer(sessions::tags(&self.vault).await)
    }

    #[tool(description = "Tag a chat session.")]
    async fn add_session_tag(
        &self,
        Parameters(p): Parameters<SessionTag>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(sessions::add_tag(&self.vault, p).await)
    }

    #[tool(description = "Remove a tag from a chat session.")]
    async fn remove_session_tag(
        &self,
        Parameters(p): Parameters<SessionTag>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(sessions::remove_tag(&self.vault, p).await)
    }

    #[tool(
        description = "Search the journal (day pages and Daily entries) for text, newest days first."
    )]
    async fn search_journals(
        &self,
        Parameters(p): Parameters<SearchJournals>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(journals::search(&self.vault, p).await)
    }

    #[tool(description = "The most recent journal days with how many entries each has.")]
    async fn list_recent_journals(
        &self,
        Parameters(p): Parameters<ListRecentJournals>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(journals::recent(&self.vault, p).await)
    }

    #[tool(
        description = "Everything written in the journal on one day: its entries and the whole text."
    )]
    async fn get_journal(
        &self,
        Parameters(p): Parameters<GetJournal>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(journals::get(&self.vault, p).await)
    }

    #[tool(
        description = "Add a new entry to today's journal (Daily). Never changes an existing entry."
    )]
    async fn add_journal_entry(
        &self,
        Parameters(p): Parameters<AddJournalEntry>,
        rc: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let who = caller(&self.vault, &rc);
        answer(journals::add(&self.vault, p, who.session_id).await)
    }

    #[tool(
        description = "Search the Brain: the people, projects and ideas the vault keeps notes on."
    )]
    async fn search_brain(
        &self,
        Parameters(p): Parameters<SearchBrain>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(notes::search_brain(&self.vault, p).await)
    }

    #[tool(description = "The journal of one day: its day page and Daily entries.")]
    async fn read_journal(
        &self,
        Parameters(p): Parameters<DateArg>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(daily::read_journal(&self.vault, p).await)
    }

    #[tool(description = "The chat log of one day (Daily/chat-log), at most 10,000 characters.")]
    async fn read_chat_log(
        &self,
        Parameters(p): Parameters<DateArg>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(daily::read_chat_log(&self.vault, p).await)
    }

    #[tool(
        description = "The journals of the last days (at most 30), each at most 5,000 characters."
    )]
    async fn read_recent_journals(
        &self,
        Parameters(p): Parameters<DaysArg>,
        rc: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let who = caller(&self.vault, &rc);
        answer(daily::read_recent_journals(&self.vault, p, who.session_id.as_deref()).await)
    }

    #[tool(
        description = "The chat logs of the last days (at most 30), each at most 3,000 characters."
    )]
    async fn read_recent_sessions(
        &self,
        Parameters(p): Parameters<DaysArg>,
        rc: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let who = caller(&self.vault, &rc);
        answer(daily::read_recent_sessions(&self.vault, p, who.session_id.as_deref()).await)
    }

    #[tool(
        description = "Save this scheduled run's output (Markdown). Only scheduled agents have it."
    )]
    async fn write_output(
        &self,
        Parameters(p): Parameters<WriteOutput>,
        rc: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let who = caller(&self.vault, &rc);
        answer(daily::write_output(&self.vault, p, who.session_id.as_deref()).await)
    }

    #[tool(description = "Read a note (a text file) in the vault by its vault-relative path.")]
    async fn read_note(
        &self,
        Parameters(p): Parameters<ReadNote>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(notes::read(&self.vault, p).await)
    }
}

impl VaultTools {
    /// Whether the caller is a scheduled run's session (it has `write_output`).
    fn scheduled(&self, who: &Caller) -> bool {
        who.session_id
            .as_deref()
            .is_some_and(|s| self.vault.ext.scheduler.output_target(s).is_some())
    }
}

impl ServerHandler for VaultTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("parachute", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "The owner's Parachute vault: chat sessions and their tags, the journal \
                 (Daily), the Brain and notes.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let who = caller(&self.vault, &context);
        let scheduled = self.scheduled(&who);
        let tools: Vec<Tool> = self
            .tool_router
            .list_all()
            .into_iter()
            .filter(|t| access::offered(who.level, &t.name))
            .filter(|t| scheduled || t.name != "write_output")
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let who = caller(&self.vault, &context);
        let hidden = request.name == "write_output" && !self.scheduled(&who);
        if hidden
            || !access::offered(who.level, &request.name)
            || !self.tool_router.has_route(&request.name)
        {
            return Err(ErrorData::invalid_params(
                format!("no tool '{}' here", request.name),
                None,
            ));
        }
        self.tool_router
            .call(ToolCallContext::new(self, request, context))
            .await
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tool_router.get(name).cloned()
    }
}
