//! `/api/openapi.json` (the document generated from the handlers) and `/api/docs`, a
//! plain HTML page rendered from the same document — no JavaScript bundle, nothing
//! fetched from elsewhere.

use std::sync::Arc;

use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::OpenApi;

use parachute_core::app::AppState;

pub fn routes(doc: Arc<OpenApi>) -> Router<AppState> {
    let json = serde_json::to_value(&*doc).unwrap_or_default();
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

/// Renders every operation: method, path, summary, parameters, body and responses.
fn render(doc: &serde_json::Value) -> String {
    let mut out = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Parachute API</title><style>\
         body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}\
         .op{border:1px solid #ddd;border-radius:6px;margin:.6rem 0;padding:.5rem .8rem}\
         .m{display:inline-block;min-width:4.5rem;font-weight:bold;font-family:monospace}\
         code{background:#f4f4f4;padding:0 .2rem}small{color:#666}</style></head><body>\
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
            let summary = op
                .get("summary")
                .or_else(|| op.get("description"))
                .and_then(|s| s.as_str())
                .unwrap_or("");
            out += &format!(
                "<div class=\"op\"><span class=\"m\">{}</span><code>{}</code> <small>{}</small>",
                esc(&method.to_uppercase()),
                esc(path),
                esc(summary)
            );
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
                            esc(r.get("description").and_then(|d| d.as_str()).unwrap_or(""))
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
