//! The session tools: search, recent, one session with its messages,
//! and tags. Offered only to callers at `full` (see [`crate::access`]).

use parachute_core::chat::transcript;
use parachute_core::db::{normalize_tag, ListFilter, SessionRow};
use serde_json::{json, Value};

use crate::server::{
    GetSession, ListRecentSessions, SearchByTag, SearchSessions, SessionTag, ToolOutcome,
};
use crate::Vault;

/// Most messages of one session returned (the latest).
const MAX_MESSAGES: usize = 200;

pub(crate) fn clamp(limit: i64) -> i64 {
    limit.clamp(1, 100)
}

fn db_error(e: impl std::fmt::Display) -> String {
    tracing::warn!(error = %e, "MCP session tool: database error");
    "The session database could not be read".to_string()
}

fn row(s: &SessionRow) -> Value {
    json!({"id": s.id, "title": s.title, "source": s.source, "module": s.module,
        "message_count": s.message_count.unwrap_or(0), "created_at": s.created_at,
        "last_accessed": s.last_accessed, "archived": s.archived.unwrap_or(0) != 0})
}

pub(crate) async fn search(v: &Vault, p: SearchSessions) -> ToolOutcome {
    let tags: Vec<String> = p.tags.iter().filter_map(|t| normalize_tag(t)).collect();
    let rows = v
        .state
        .store
        .search_sessions(p.query.trim(), &tags, p.source.as_deref(), clamp(p.limit))
        .await
        .map_err(db_error)?;
    Ok(Value::Array(rows.iter().map(row).collect()))
}

pub(crate) async fn recent(v: &Vault, p: ListRecentSessions) -> ToolOutcome {
    let rows = v
        .state
        .store
        .list_sessions(&ListFilter {
            module: p.module,
            archived: p.archived,
            limit: clamp(p.limit),
            ..Default::default()
        })
        .await
        .map_err(db_error)?;
    Ok(Value::Array(rows.iter().map(row).collect()))
}

pub(crate) async fn get(v: &Vault, p: GetSession) -> ToolOutcome {
    let Some(s) = v
        .state
        .store
        .get_session(&p.session_id)
        .await
        .map_err(db_error)?
    else {
        return Err(format!("Session not found: {}", p.session_id));
    };
    let tags = v.state.store.session_tags(&s.id).await.map_err(db_error)?;
    let mut out = row(&s);
    out["working_directory"] = json!(s.working_directory);
    out["model"] = json!(s.model);
    out["tags"] = json!(tags);
    if p.include_messages {
        let config_dir = v.state.settings.claude_config_dir.clone();
        let id = s.id.clone();
        let messages = tokio::task::spawn_blocking(move || {
            transcript::find(&config_dir, &id)
                .and_then(|path| transcript::read_events(&path).ok())
                .map(|events| transcript::messages(&events))
                .unwrap_or_default()
        })
        .await
        .unwrap_or_default();
        let skip = messages.len().saturating_sub(MAX_MESSAGES);
        out["messages"] = json!(messages[skip..]);
    }
    Ok(out)
}

pub(crate) async fn by_tag(v: &Vault, p: SearchByTag) -> ToolOutcome {
    let Some(tag) = normalize_tag(&p.tag) else {
        return Err("A tag is 1 to 100 characters".into());
    };
    let rows = v
        .state
        .store
        .search_sessions("", &[tag], None, clamp(p.limit))
        .await
        .map_err(db_error)?;
    Ok(Value::Array(
        rows.iter()
            .map(|s| {
                json!({"id": s.id, "title": s.title, "source": s.source, "module": s.module,
                "message_count": s.message_count.unwrap_or(0), "last_accessed": s.last_accessed})
            })
            .collect(),
    ))
}

pub(crate) async fn tags(v: &Vault) -> ToolOutcome {
    let all = v.state.store.list_tags().await.map_err(db_error)?;
    Ok(Value::Array(
        all.into_iter()
            .map(|(tag, count)| json!({"tag": tag, "count": count}))
            .collect(),
    ))
}

pub(crate) async fn add_tag(v: &Vault, p: SessionTag) -> ToolOutcome {
    let Some(tag) = normalize_tag(&p.tag) else {
        return Err("A tag is 1 to 100 characters".into());
    };
    if !v
        .state
        .store
        .add_session_tag(&p.session_id, &tag)
        .await
        .map_err(db_error)?
    {
        return Err(format!("Session not found: {}", p.session_id));
    }
    Ok(json!({"success": true, "session_id": p.session_id, "tag": tag}))
}

pub(crate) async fn remove_tag(v: &Vault, p: SessionTag) -> ToolOutcome {
    let tag = normalize_tag(&p.tag).unwrap_or_default();
    let removed = v
        .state
        .store
        .remove_session_tag(&p.session_id, &tag)
        .await
        .map_err(db_error)?;
    Ok(json!({"success": true, "session_id": p.session_id, "tag": tag, "removed": removed}))
}
