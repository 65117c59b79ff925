//! The key prompt: what a browser gets instead of a page when the auth mode asks it for
//! an API key (mode `always`, or a browser on another device). The page's script keeps
//! the key in `sessionStorage` and loads pages with it as `X-API-Key`; no cookie is set.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use leptos::prelude::*;

use crate::shell::html_response;

/// The prompt page, answered with 401. It holds nothing about this machine.
pub fn key_prompt() -> Response {
    let doc = view! {
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <title>"API key needed · Parachute"</title>
                <link rel="icon" href="/ui/assets/icon.svg" type="image/svg+xml"/>
                <link rel="stylesheet" href="/ui/assets/app.css"/>
                <script src="/ui/assets/app.js" defer></script>
            </head>
            <body data-page="key-prompt">
                <nav class="side" aria-label="Main"><span class="brand">"Parachute"</span></nav>
                <main>
                    <h1>"API key needed"</h1>
                    <form id="key-form" class="card">
                        <p>"This Parachute asks for an API key. Create one on the server's own machine under "
                           <strong>"Devices & keys"</strong>" (open Parachute in a browser there)."</p>
                        <div class="field">
                            <label for="api-key">"API key"</label>
                            <input id="api-key" type="password" autocomplete="off" required
                                spellcheck="false" aria-describedby="key-error"/>
                            <p class="field-error" id="key-error" role="alert" hidden></p>
                        </div>
                        <p class="muted">"The key is kept in this browser tab only, and sent with each request."</p>
                        <button type="submit" class="primary">"Continue"</button>
                    </form>
                </main>
            </body>
        </html>
    };
    let html = Owner::new().with(|| format!("<!doctype html>{}", doc.to_html()));
    let mut r = html_response(Html(html).into_response());
    *r.status_mut() = StatusCode::UNAUTHORIZED;
    r
}
