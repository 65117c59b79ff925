//! The page shell every screen shares: the document head, the left navigation (a top
//! bar at phone width) and the main area.

use axum::http::{header, HeaderValue};
use axum::response::{Html, IntoResponse, Response};
use leptos::prelude::*;

/// The screens, in navigation order: (slug, path, label).
const SCREENS: &[(&str, &str, &str)] = &[
    ("dashboard", "/ui/", "Dashboard"),
    ("chat", "/ui/chat", "Chat"),
    ("approvals", "/ui/approvals", "Approvals"),
    ("keys", "/ui/keys", "Devices & keys"),
    ("settings", "/ui/settings", "Settings"),
];

/// Renders a full page: `active` is the screen's slug, `body` its content.
pub fn page(title: &str, active: &str, body: impl IntoView + 'static) -> Response {
    let nav = SCREENS
        .iter()
        .map(|(slug, href, label)| {
            let current = (*slug == active).then_some("page");
            view! { <a href=*href aria-current=current>{*label}</a> }
        })
        .collect_view();
    let title = format!("{title} · Parachute");
    let doc = view! {
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <title>{title}</title>
                <link rel="icon" href="/ui/assets/icon.svg" type="image/svg+xml"/>
                <link rel="stylesheet" href="/ui/assets/app.css"/>
                <script src="/ui/assets/markdown.js" defer></script>
                <script src="/ui/assets/app.js" defer></script>
            </head>
            <body data-page=active.to_string()>
                <nav class="side" aria-label="Main">
                    <a class="brand" href="/ui/">"Parachute"</a>
                    {nav}
                </nav>
                <main>{body}</main>
            </body>
        </html>
    };
    let html = Owner::new().with(|| format!("<!doctype html>{}", doc.to_html()));
    html_response(Html(html).into_response())
}

/// What every page's response carries: never cached (pages hold no secrets, but they
/// describe the machine), and a content policy that runs only the UI's own scripts and
/// styles (no inline script, no other origin), so injected markup cannot act.
pub fn html_response(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
             frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}
