//! `/api/openapi.json` (the document generated from the handlers) and `/api/docs`, a
//! plain HTML page rendered from the same document — no JavaScript bundle, nothing
//! fetched from elsewhere.

use std::sync::Arc;

use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::OpenApi;

use parachute_core::app::AppState;

mod complete;

pub fn routes(doc: Arc<OpenApi>) -> Router<AppState> {
    let mut json = serde_json::to_value(&*doc).unwrap_or_default();
    complete::complete(&mut json);
    let html = render(&json);
    Router::new()
        .route(
            "/api/openapi.json",
            get(move || async move { Json(json).into_response() }),
        )
        .route(
            "/api/docs",
            get(move || async move { Html(html).into_response() }),
        )
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Renders Markdown (the handlers' doc text) to HTML. Raw HTML in the source is shown
/// as text, never passed through; a single paragraph is unwrapped so it can sit inline.
fn md(s: &str) -> String {
    use pulldown_cmark::{Event, Parser};
    let events = Parser::new(s).map(|e| match e {
        Event::Html(h) | Event::InlineHtml(h) => Event::Text(h),
        other => other,
    });
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events);
    let trimmed = html.trim_end();
    match trimmed
        .strip_prefix("<p>")
        .and_then(|t| t.strip_suffix("</p>"))
    {
        Some(inner) if !inner.contains("<p>") => inner.to_string(),
        _ => html,
    }
}

/// Renders every operation: method, path, summary, parameters, body and responses.
fn render(doc: &serde_json::Value) -> String {
    let mut out = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Parachute API</title><style>\
         body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}\
         .op{border:1px solid #ddd;border-radius:6px;margin:.6rem 0;padding:.5rem .8rem}\
         .m{display:inline-block;min-width:4.5rem;font-weight:bold;font-family:monospace}\
         code{background:#f4f4f4;padding:0 .2rem}small{color:#666}.d{color:#444;font-size:.92rem}.d p{margin:.3rem 0}</style></head><body>\
         <h1>Parachute API</h1><p>Machine-readable: <a href=\"/api/openapi.json\">/api/openapi.json</a>. \
         Remote clients send an API key as <code>X-API-Key</code> or <code>Authorization: Bearer</code>.</p>",
    );
    let Some(paths) = doc.get("paths").and_then(|p| p.as_object()) else {
        return out + "</body></html>";
    };
    for (path, item) in paths {
        let Some(ops) = item.as_object() else {
            continue;
        };
        for (method, op) in ops {
            let text = |k: &str| op.get(k).and_then(|s| s.as_str()).unwrap_or("");
            let (summary, description) = (text("summary"), text("description"));
            out +=
                &format!(
                "<div class=\"op\"><span class=\"m\">{}</span><code>{}</code> <small>{}</small>",
                esc(&method.to_uppercase()),
                esc(path),
                md(if summary.is_empty() { description } else { summary })
            );
            if !summary.is_empty() && !description.is_empty() && description != summary {
                out += &format!("<div class=\"d\">{}</div>", md(description));
            }
            if let Some(params) = op.get("parameters").and_then(|p| p.as_array()) {
                let names: Vec<String> = params
                    .iter()
                    .map(|p| {
                        format!(
                            "<code>{}</code> ({})",
                            esc(p.get("name").and_then(|n| n.as_str()).unwrap_or("?")),
                            esc(p.get("in").and_then(|n| n.as_str()).unwrap_or("?"))
                        )
                    })
                    .collect();
                out += &format!("<div>Parameters: {}</div>", names.join(", "));
            }
            if let Some(responses) = op.get("responses").and_then(|r| r.as_object()) {
                let codes: Vec<String> = responses
                    .iter()
                    .map(|(code, r)| {
                        format!(
                            "{} {}",
                            esc(code),
                            md(r.get("description").and_then(|d| d.as_str()).unwrap_or(""))
                        )
                    })
                    .collect();
                out += &format!("<div><small>Responses: {}</small></div>", codes.join("; "));
            }
            out += "</div>";
        }
    }
    out + "</body></html>"
}

#[cfg(test)]
mod tests {
    use super::md;

    #[test]
    fn markdown_is_rendered_and_raw_html_is_escaped() {
        assert_eq!(md("the `sessionId` key"), "the <code>sessionId</code> key");
        assert_eq!(md("**bold**"), "<strong>bold</strong>");
        assert!(!md("<script>x</script>").contains("<script>"));
        assert!(md("one\n\ntwo").contains("<p>two</p>"));
    }
}
