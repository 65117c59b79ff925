//! The web UI in a real browser: Debian's Chromium driven over WebDriver (chromedriver,
//! from Rust with fantoccini) against the server on loopback. Screens are checked at
//! phone and desktop width and saved as screenshots in `target/ui-screenshots/`.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::support::fake_anthropic::{FakeAnthropic, FakeTurn};
use crate::support::{chat_server, free_port, seed_sessions, wait_until, Dirs, Server, CLI_SLOTS};

/// Chromedriver's browser log (`POST /session/{id}/se/log`): console messages, failed
/// scripts and content-policy violations.
#[derive(Debug)]
struct BrowserLog;

impl fantoccini::wd::WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }
    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({"type": "browser"}).to_string()),
        )
    }
}

/// The browser's console errors since the last call.
async fn console_errors(c: &Client) -> Vec<String> {
    let log = c.issue_cmd(BrowserLog).await.expect("the browser log");
    log.as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["level"] == "SEVERE")
        .map(|e| e["message"].as_str().unwrap_or("").to_string())
        .collect()
}

/// A chromedriver of our own, stopped (by its pid) when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // chromedriver and the browsers it started share its process group: stop them
        // all, also when a test failed before closing its browser.
        parachute_core::util::sys::signal_group(
            self.child.id(),
            parachute_core::util::sys::Signal::Kill,
        );
        let _ = self.child.wait();
    }
}

async fn driver() -> Driver {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect(
            "chromedriver (Debian's chromium-driver; scripts/install-test-deps.sh installs it)",
        );
    let url = format!("http://127.0.0.1:{port}");
    let probe = reqwest::Client::new();
    let ready = wait_until(Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
    .await;
    assert!(ready, "chromedriver did not start");
    drop(probe);
    Driver { child, url }
}

/// A headless Chromium window `width` pixels wide.
async fn browser(d: &Driver, width: u32) -> Client {
    let mut caps = serde_json::Map::new();
    // Headless windows are at least 500 px wide: narrower screens are emulated.
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            format!("--window-size={},900", width.max(500))],
            "mobileEmulation": {"deviceMetrics": {"width": width, "height": 900, "pixelRatio": 1}}}),
    );
    caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&d.url)
        .await
        .expect("a browser session")
}

/// The text of the first element matching `css`.
async fn text_of(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Saves the window as `target/ui-screenshots/{name}.png`.
async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

/// What every screen must satisfy: no horizontal scroll, its stylesheet applied, no
/// failed resource load, a label for every input.
async fn check_screen(c: &Client, width: u32, what: &str) {
    let v: Value = c
        .execute(
            "return {
                scroll: document.documentElement.scrollWidth <= window.innerWidth,
                width: window.innerWidth,
                styled: getComputedStyle(document.querySelector('nav.side')).display === 'flex',
                failed: performance.getEntriesByType('resource')
                    .filter(e => e.responseStatus >= 400).map(e => e.name),
                unlabelled: [...document.querySelectorAll('input, select, textarea')]
                    .filter(i => i.type !== 'hidden' && !(i.labels && i.labels.length) && !i.getAttribute('aria-label'))
                    .map(i => i.name || i.id),
            };",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(v["scroll"], true, "{what}: horizontal scroll");
    assert_eq!(
        v["width"], width,
        "{what}: the window is not {width} px wide"
    );
    assert_eq!(v["styled"], true, "{what}: the stylesheet did not apply");
    assert_eq!(v["failed"], json!([]), "{what}: failed loads");
    assert_eq!(v["unlabelled"], json!([]), "{what}: inputs without a label");
    let errors: Vec<String> = console_errors(c)
        .await
        .into_iter()
        // The key prompt is answered with 401 on purpose; the browser notes the status.
        .filter(|e| !(what.contains("key prompt") && e.contains("status of 401")))
        .collect();
    assert_eq!(errors, Vec::<String>::new(), "{what}: console errors");
}

/// Waits until `js` (a function body returning a value) returns something truthy;
/// returns that value.
async fn wait_js(c: &Client, js: &str, what: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let v = c.execute(js, vec![]).await.unwrap();
        if !(v.is_null() || v == json!(false) || v == json!("") || v == json!(0)) {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn type_into(c: &Client, css: &str, text: &str) {
    let e = c.find(Locator::Css(css)).await.unwrap();
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}

#[tokio::test]
async fn every_screen_renders_in_a_real_browser_at_phone_and_desktop_width() {
    let d = Dirs::new();
    let s = Server::start(&d).await;
    let drv = driver().await;
    for width in [1280, 375] {
        let c = browser(&drv, width).await;
        // A browser asking for `/` is sent to the UI.
        c.goto(&s.url("/")).await.unwrap();
        assert!(c.current_url().await.unwrap().path().ends_with("/ui/"));
        let h1 = text_of(&c, "h1").await;
        assert_eq!(h1, "Dashboard");
        let text = text_of(&c, "main").await;
        assert!(text.contains(&d.vault.display().to_string()), "{text}");
        // No credential in this vault's server: the dashboard says what to do.
        assert!(text.contains("No Claude credential"), "{text}");
        assert!(text.contains("parachute setup-token"), "{text}");
        check_screen(&c, width, &format!("dashboard at {width}px")).await;
        screenshot(&c, &format!("dashboard-{width}")).await;
        // Every screen is reachable from the navigation.
        for (label, heading) in [
            ("Chat", "Chat"),
            ("Approvals", "Approvals"),
            ("Devices & keys", "Devices & keys"),
            ("Settings", "Settings"),
        ] {
            c.find(Locator::LinkText(label))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
            let h1 = text_of(&c, "h1").await;
            assert_eq!(h1, heading);
            check_screen(&c, width, &format!("{label} at {width}px")).await;
            let slug = label.split_whitespace().next().unwrap().to_lowercase();
            screenshot(&c, &format!("{slug}-{width}")).await;
        }
        // The first-run page (the desktop app opens it while no credential is set).
        c.goto(&s.url("/ui/setup")).await.unwrap();
        assert_eq!(text_of(&c, "h1").await, "Welcome to Parachute");
        assert!(text_of(&c, "main")
            .await
            .contains(&d.vault.display().to_string()));
        check_screen(&c, width, &format!("setup at {width}px")).await;
        screenshot(&c, &format!("setup-{width}")).await;
        c.close().await.unwrap();
    }
    // Other clients keep the contract's JSON at `/`.
    let (st, v) = s.get("/").await;
    assert_eq!((st, v["name"].clone()), (200, json!("Parachute Computer")));
}

/// The last assistant message's text as shown, and how many assistant blocks exist.
const LAST_REPLY: &str =
    "const b = [...document.querySelectorAll('#messages li.msg.assistant')].pop();
    return b ? b.innerText : '';";

#[tokio::test]
async fn a_chat_streams_in_pieces_survives_a_reload_and_answers_a_permission_prompt() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    let d = Dirs::new();
    let allowed = d.vault.canonicalize().unwrap().join("from-the-ui.md");
    let first = "Here is **bold** text and code:\n\n```rust\nfn main() {}\n```\n\nThat was the first answer, done.";
    let second = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon phi chi psi omega END";
    fake.script(vec![
        FakeTurn::text(first).slow(12, Duration::from_millis(120)),
        FakeTurn::text(second).slow(16, Duration::from_millis(200)),
        FakeTurn::tool(
            "Write",
            json!({"file_path": allowed.display().to_string(), "content": "written\n"}),
        ),
        FakeTurn::text("Wrote it."),
    ]);
    // A second chat whose owner asks before every guarded tool call.
    let asking = seed_sessions(&d, 1, |_, s| {
        s.title = Some("Asks first".into());
        s.metadata = Some(json!({"permissions": {"trustMode": false}}).to_string())
    })
    .await
    .remove(0);
    let s = chat_server(&d, &fake, &[]).await;
    let drv = driver().await;
    let c = browser(&drv, 1280).await;

    // A new chat, sent with the keyboard alone: type, then Enter.
    c.goto(&s.url("/ui/chat")).await.unwrap();
    let active = c.active_element().await.unwrap();
    assert_eq!(active.attr("id").await.unwrap().as_deref(), Some("message"));
    active.send_keys("Say something with code").await.unwrap();
    active.send_keys("\u{E007}").await.unwrap();
    // The reply appears in pieces, not all at once.
    let mut seen = Vec::<String>::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let t = c.execute(LAST_REPLY, vec![]).await.unwrap();
        let t = t.as_str().unwrap_or("").to_string();
        if !t.is_empty() && seen.last() != Some(&t) {
            seen.push(t.clone());
        }
        if t.contains("done.") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no full reply: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        seen.len() >= 3,
        "the reply arrived in {} piece(s): {seen:?}",
        seen.len()
    );
    // Markdown is rendered: bold and a code block, no raw asterisks or fences.
    let v = wait_js(
        &c,
        "const b = [...document.querySelectorAll('#messages li.msg.assistant')].pop();
         return b && !document.querySelector('.chat[data-streaming=\"1\"]') && {
            strong: b.querySelector('strong') && b.querySelector('strong').textContent,
            code: b.querySelector('pre code') && b.querySelector('pre code').textContent,
            raw: b.innerText.includes('**') || b.innerText.includes('```'),
            firstText: Number(b.dataset.firstTextAt) };",
        "the finished reply",
    )
    .await;
    assert_eq!(v["strong"], "bold");
    assert!(v["code"].as_str().unwrap().contains("fn main()"), "{v}");
    assert_eq!(v["raw"], false);
    // How long from the model's first token to the text on screen.
    let sent = fake.first_text_times()[0];
    let shown = v["firstText"].as_f64().unwrap() as u128;
    eprintln!(
        "FIGURE first token to visible text: {} ms",
        shown.saturating_sub(sent)
    );
    // The page now names the session; the list has it.
    let path = c.current_url().await.unwrap().path().to_string();
    assert!(path.starts_with("/ui/chat/"), "{path}");
    let id = path.trim_start_matches("/ui/chat/").to_string();
    let (st, session) = s.get(&format!("/api/chat/{id}")).await;
    assert_eq!(st, 200, "{session}");
    screenshot(&c, "chat-reply-1280").await;
    check_screen(&c, 1280, "a conversation").await;

    // A second message; reload while it streams; the rest arrives after the reload.
    let ta = c.find(Locator::Id("message")).await.unwrap();
    ta.send_keys("Now the Greek alphabet").await.unwrap();
    c.find(Locator::Id("send"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_js(
        &c,
        "const t = [...document.querySelectorAll('#messages li.msg.assistant')].pop().innerText;
         return t.includes('alpha') && !t.includes('END');",
        "part of the second reply",
    )
    .await;
    c.refresh().await.unwrap();
    let v = wait_js(
        &c,
        "const all = [...document.querySelectorAll('#messages li.msg.assistant')].map(b => b.innerText);
         return all.some(t => t.includes('END')) && all;",
        "the rest of the second reply after the reload",
    )
    .await;
    let with_alpha = v
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t.as_str().unwrap().contains("alpha"))
        .count();
    assert_eq!(with_alpha, 1, "the second reply shows once, whole: {v}");
    assert_eq!(console_errors(&c).await, Vec::<String>::new());

    // The asking chat: the permission prompt is answered inline, and the tool runs.
    c.goto(&s.url(&format!("/ui/chat/{asking}"))).await.unwrap();
    // Seeded without a transcript: the page says its messages are elsewhere.
    let note = text_of(&c, "#no-transcript").await;
    assert!(note.contains("not stored on this machine"), "{note}");
    type_into(&c, "#message", "Write the file").await;
    click(&c, "#send").await;
    wait_js(
        &c,
        "return document.querySelector('.prompt.permission button.primary');",
        "the permission prompt",
    )
    .await;
    // A reload while the prompt waits shows it again (the turn is replayed).
    c.refresh().await.unwrap();
    wait_js(
        &c,
        "return document.querySelector('.prompt.permission button.primary');",
        "the permission prompt after a reload",
    )
    .await;
    let prompt = text_of(&c, ".prompt.permission").await;
    assert!(prompt.contains("Write"), "{prompt}");
    assert!(prompt.contains("from-the-ui.md"), "{prompt}");
    screenshot(&c, "chat-permission-1280").await;
    click(&c, ".prompt.permission button.primary").await;
    wait_js(
        &c,
        "return [...document.querySelectorAll('#messages li.msg.assistant')].pop().innerText.includes('Wrote it.');",
        "the reply after the grant",
    )
    .await;
    assert_eq!(std::fs::read_to_string(&allowed).unwrap(), "written\n");

    // Archive from the list: it leaves the list and the API agrees.
    let button = format!("[data-session-action='archive'][data-id='{asking}']");
    click(&c, &button).await;
    wait_js(
        &c,
        &format!("return !document.querySelector(\"{button}\");"),
        "the archived chat to leave the list",
    )
    .await;
    let (_, v) = s.get(&format!("/api/chat/{asking}")).await;
    assert_eq!(v["archived"], true);
    c.close().await.unwrap();

    // The conversation at phone width.
    let c = browser(&drv, 375).await;
    c.goto(&s.url(&format!("/ui/chat/{id}"))).await.unwrap();
    let text = text_of(&c, "#messages").await;
    assert!(text.contains("omega END"), "{text}");
    check_screen(&c, 375, "a conversation at phone width").await;
    screenshot(&c, "chat-conversation-375").await;
    c.close().await.unwrap();
}

#[tokio::test]
async fn a_key_is_shown_once_with_a_qr_code_and_can_be_revoked() {
    let d = Dirs::new();
    let s = Server::start(&d).await;
    let drv = driver().await;
    let c = browser(&drv, 1280).await;
    c.goto(&s.url("/ui/keys")).await.unwrap();
    type_into(&c, "#key-label", "My phone").await;
    click(&c, "#create-key button[type=submit]").await;
    let v = wait_js(
        &c,
        "const img = document.getElementById('new-key-qr');
         return !document.getElementById('new-key').hidden && img.complete && img.naturalWidth > 0 && {
            key: document.getElementById('new-key-value').textContent,
            src: img.getAttribute('src').slice(0, 26), width: img.naturalWidth };",
        "the new key and its QR code",
    )
    .await;
    let key = v["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("para_"), "{v}");
    assert_eq!(v["src"], "data:image/svg+xml;base64,");
    assert!(v["width"].as_u64().unwrap() >= 200, "{v}");
    check_screen(&c, 1280, "keys with a new key").await;
    screenshot(&c, "keys-created-1280").await;
    // The key works, and is listed by its label (never by value).
    let r = crate::support::client()
        .get(s.url("/api/auth/keys"))
        .header("X-API-Key", &key)
        .send()
        .await
        .unwrap();
    let listed: Value = r.json().await.unwrap();
    assert_eq!(listed["keys"][0]["label"], "My phone");
    // Shown once: a reload lists the device but not the key.
    c.refresh().await.unwrap();
    let source = c.source().await.unwrap();
    assert!(source.contains("My phone"));
    assert!(
        !source.contains(&key),
        "the key is in the page after a reload"
    );
    // Revoking takes a second click to confirm.
    click(&c, "[data-revoke]").await;
    assert_eq!(text_of(&c, "[data-revoke]").await, "Revoke: sure?");
    click(&c, "[data-revoke]").await;
    wait_js(
        &c,
        "return !document.querySelector('[data-revoke]');",
        "the key row to go",
    )
    .await;
    let (_, listed) = s.get("/api/auth/keys").await;
    assert_eq!(listed["keys"], json!([]));
    c.close().await.unwrap();
}

#[tokio::test]
async fn settings_are_checked_next_to_the_field_and_persist() {
    let d = Dirs::new();
    let s = Server::start(&d).await;
    let drv = driver().await;
    let c = browser(&drv, 1280).await;
    c.goto(&s.url("/ui/settings")).await.unwrap();
    // A refused value: the reason appears under the field, nothing is written.
    type_into(&c, "#s-port", "99999").await;
    type_into(&c, "#s-warm_pool_size", "3").await;
    click(&c, "#settings button[type=submit]").await;
    let err = wait_js(
        &c,
        "const e = document.getElementById('err-port'); return !e.hidden && e.textContent;",
        "the port's error",
    )
    .await;
    assert!(err.as_str().unwrap().contains("99999"), "{err}");
    let config = d.vault.join(".parachute/config.yaml");
    assert!(
        !config.exists()
            || !std::fs::read_to_string(&config)
                .unwrap()
                .contains("warm_pool_size")
    );
    screenshot(&c, "settings-error-1280").await;
    // The browser notes the refused request itself; nothing else went wrong.
    let errors = console_errors(&c).await;
    assert!(
        errors.len() == 1 && errors[0].contains("status of 422"),
        "{errors:?}"
    );
    // A good value is saved, and is there after a reload.
    type_into(&c, "#s-port", "4999").await;
    click(&c, "#settings button[type=submit]").await;
    wait_js(
        &c,
        "return !document.getElementById('settings-saved').hidden;",
        "the saved note",
    )
    .await;
    let saved = std::fs::read_to_string(&config).unwrap();
    assert!(saved.contains("port: 4999"), "{saved}");
    assert!(saved.contains("warm_pool_size: 3"), "{saved}");
    c.refresh().await.unwrap();
    let port = c
        .find(Locator::Id("s-port"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(port.as_deref(), Some("4999"));
    let main = text_of(&c, "main").await;
    assert!(main.contains("in force after the next start"), "{main}");
    // The credential is write-only: set, reported by kind, never in the page.
    let token = "sk-ant-api03-uitest0123456789abcdef";
    type_into(&c, "#token", token).await;
    click(&c, "#credential button[type=submit]").await;
    let state = wait_js(
        &c,
        "const t = document.getElementById('credential-state').textContent; return t.startsWith('Set:') && t;",
        "the credential state",
    )
    .await;
    assert!(state.as_str().unwrap().contains("API key"), "{state}");
    c.refresh().await.unwrap();
    assert!(!c.source().await.unwrap().contains(token));
    let (_, v) = s.get("/api/settings").await;
    assert_eq!(v["claude_credential"]["kind"], "api_key");
    assert!(!v.to_string().contains(token));
    // Outside the desktop app there is no login item to change.
    let (_, v) = s.get("/api/desktop/login-item").await;
    assert_eq!(v, json!({"available": false, "enabled": null}));
    let (st, _) = s
        .send(
            "PUT",
            "/api/desktop/login-item",
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(st, 404);
    check_screen(&c, 1280, "settings").await;
    screenshot(&c, "settings-1280").await;
    c.close().await.unwrap();
}

#[tokio::test]
async fn a_browser_without_a_key_gets_the_key_prompt() {
    let d = Dirs::new();
    let s = Server::start_with(
        &d,
        crate::support::Opts {
            host: Some("0.0.0.0".into()),
            ..Default::default()
        },
    )
    .await;
    let (_, created) = s
        .send("POST", "/api/auth/keys", Some(json!({"label": "browser"})))
        .await;
    let key = created["key"].as_str().unwrap().to_string();

    // Another device (a test host in its own network namespace) opening the UI gets the
    // prompt, which says nothing about this machine; with the key, the page.
    let ns = crate::support::NetNs::create();
    let (st, body) = ns.curl("GET", s.port, "/ui/", &[("Accept", "text/html")], None);
    assert_eq!(st, 401);
    assert!(body.contains("API key needed"), "{body}");
    assert!(!body.contains(&d.vault.display().to_string()));
    let (st, body) = ns.curl(
        "GET",
        s.port,
        "/ui/",
        &[("Accept", "text/html"), ("X-API-Key", &key)],
        None,
    );
    assert_eq!(st, 200);
    assert!(body.contains(&d.vault.display().to_string()));
    // Its assets load without a key (they describe nothing).
    let (st, _) = ns.curl("GET", s.port, "/ui/assets/app.js", &[], None);
    assert_eq!(st, 200);

    // In `always` mode this machine's browser is asked too: a wrong key is refused in
    // place, the right one opens the page, and navigation and reloads keep working.
    let (st, _) = s
        .send(
            "PUT",
            "/api/auth/settings",
            Some(json!({"require_auth": "always"})),
        )
        .await;
    assert_eq!(st, 200);
    let drv = driver().await;
    let c = browser(&drv, 375).await;
    c.goto(&s.url("/ui/")).await.unwrap();
    assert_eq!(text_of(&c, "h1").await, "API key needed");
    check_screen(&c, 375, "the key prompt").await;
    screenshot(&c, "key-prompt-375").await;
    type_into(&c, "#api-key", "para_wrong").await;
    click(&c, "#key-form button").await;
    wait_js(
        &c,
        "return !document.getElementById('key-error').hidden;",
        "the refusal",
    )
    .await;
    type_into(&c, "#api-key", &key).await;
    click(&c, "#key-form button").await;
    wait_js(
        &c,
        "const h = document.querySelector('h1'); return h && h.textContent === 'Dashboard';",
        "the dashboard",
    )
    .await;
    let main = text_of(&c, "main").await;
    assert!(main.contains(&d.vault.display().to_string()), "{main}");
    c.find(Locator::LinkText("Devices & keys"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_js(
        &c,
        "const h = document.querySelector('h1'); return h && h.textContent === 'Devices & keys' && location.pathname === '/ui/keys';",
        "the keys page, loaded with the key",
    )
    .await;
    c.refresh().await.unwrap();
    wait_js(
        &c,
        "const h = document.querySelector('h1'); return h && h.textContent === 'Devices & keys';",
        "the keys page after a reload",
    )
    .await;
    // The key lives in this tab's sessionStorage, not in a cookie.
    let v = c
        .execute(
            "return {cookie: document.cookie, stored: sessionStorage.getItem('parachute.apiKey') !== null};",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(v, json!({"cookie": "", "stored": true}));
    c.close().await.unwrap();
}

#[tokio::test]
async fn questions_are_answered_inline_and_a_reply_can_be_stopped() {
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    let questions = json!([{"question": "Which colour do you like?", "header": "Colour", "multiSelect": false,
        "options": [{"label": "Red", "description": "warm"}, {"label": "Blue", "description": "cool"}]}]);
    let long = "word ".repeat(80);
    fake.script(vec![
        FakeTurn::tool("AskUserQuestion", json!({"questions": questions})),
        FakeTurn::text("Blue it is."),
        FakeTurn::text(&long).slow(80, Duration::from_millis(100)),
    ]);
    let d = Dirs::new();
    let s = chat_server(&d, &fake, &[]).await;
    let drv = driver().await;
    let c = browser(&drv, 375).await;
    c.goto(&s.url("/ui/chat")).await.unwrap();
    type_into(&c, "#message", "Ask me something").await;
    click(&c, "#send").await;
    wait_js(
        &c,
        "return document.querySelector('form.prompt.question input[value=\"Blue\"]');",
        "the question",
    )
    .await;
    let prompt = text_of(&c, "form.prompt.question").await;
    assert!(prompt.contains("Which colour do you like?"), "{prompt}");
    check_screen(&c, 375, "a question at phone width").await;
    screenshot(&c, "chat-question-375").await;
    click(&c, "form.prompt.question input[value=\"Blue\"]").await;
    click(&c, "form.prompt.question button[type=submit]").await;
    wait_js(
        &c,
        "return [...document.querySelectorAll('#messages li.msg.assistant')].pop().innerText.includes('Blue it is.');",
        "the reply after the answer",
    )
    .await;
    assert!(
        tool_results_contain(&fake, "Blue"),
        "the answer reached the model"
    );

    // A long reply, stopped part-way: it ends, short, and the composer is usable again.
    type_into(&c, "#message", "Talk a lot").await;
    click(&c, "#send").await;
    wait_js(
        &c,
        "return [...document.querySelectorAll('#messages li.msg.assistant')].pop().innerText.includes('word');",
        "the long reply to start",
    )
    .await;
    click(&c, "#abort").await;
    let v = wait_js(
        &c,
        "return document.querySelector('.chat').dataset.streaming === '0' && {
            text: [...document.querySelectorAll('#messages li.msg.assistant')].pop().innerText,
            sendable: !document.getElementById('send').disabled };",
        "the stopped reply",
    )
    .await;
    assert_eq!(v["sendable"], true);
    let shown = v["text"].as_str().unwrap().trim().len();
    assert!(
        shown < long.trim().len(),
        "the reply was not stopped: {shown} chars"
    );
    c.close().await.unwrap();
}

/// Whether a tool result the CLI sent back to the model contains `text`.
fn tool_results_contain(fake: &FakeAnthropic, text: &str) -> bool {
    crate::support::tool_results(fake).contains(text)
        || fake
            .turn_requests()
            .iter()
            .any(|r| r["body"]["messages"].to_string().contains(text))
}

#[tokio::test]
async fn a_pairing_request_is_approved_on_the_approvals_screen_and_the_user_gets_in() {
    use crate::support::telegram::{Telegram, TOKEN};
    let _slot = CLI_SLOTS.acquire().await.unwrap();
    let fake = FakeAnthropic::start().await;
    let tg = Telegram::start().await;
    let d = Dirs::new();
    let dot = d.vault.join(".parachute");
    std::fs::create_dir_all(&dot).unwrap();
    std::fs::write(
        dot.join("bots.yaml"),
        format!(
            "telegram:\n  enabled: true\n  api_url: {}\n  allowed_users: []\n",
            tg.url
        ),
    )
    .unwrap();
    let s = chat_server(&d, &fake, &[("TELEGRAM_BOT_TOKEN", TOKEN)]).await;
    let stranger = 4242i64;
    let polling = wait_until(Duration::from_secs(20), || {
        s.log_text().contains("telegram connector polling")
    })
    .await;
    assert!(polling, "{}", s.log_text());
    tg.send(
        stranger,
        stranger,
        "Ada",
        "Hello, may I use your agent?",
        Value::Null,
    )
    .await;
    tg.wait_texts(stranger, 1, Duration::from_secs(10)).await;

    let drv = driver().await;
    let c = browser(&drv, 1280).await;
    c.goto(&s.url("/ui/")).await.unwrap();
    assert!(text_of(&c, "main")
        .await
        .contains("1 bot user is waiting for your approval"));
    c.goto(&s.url("/ui/approvals")).await.unwrap();
    let row = text_of(&c, "#pairing li").await;
    assert!(row.contains("Ada") && row.contains("telegram"), "{row}");
    assert!(row.contains("Hello, may I use your agent?"), "{row}");
    check_screen(&c, 1280, "approvals with a request").await;
    screenshot(&c, "approvals-request-1280").await;
    c.find(Locator::Css("#pairing select"))
        .await
        .unwrap()
        .select_by_value("full")
        .await
        .unwrap();
    click(&c, "[data-approve]").await;
    let done = wait_js(
        &c,
        "const d = document.getElementById('pairing-done'); return !d.hidden && d.textContent;",
        "the approval to be confirmed",
    )
    .await;
    assert_eq!(done, json!("Ada can now chat, at trust level full."));
    assert!(
        c.find(Locator::Css("#pairing li")).await.is_err(),
        "the row is gone"
    );
    c.close().await.unwrap();

    let t = tg.wait_texts(stranger, 2, Duration::from_secs(10)).await;
    assert_eq!(
        t[1],
        "You've been approved! Send me a message to start chatting."
    );
    tg.send(stranger, stranger, "Ada", "Thank you!", Value::Null)
        .await;
    let t = tg.wait_texts(stranger, 3, Duration::from_secs(60)).await;
    assert_eq!(
        t.get(2).map(String::as_str),
        Some(crate::support::fake_anthropic::DEFAULT_REPLY),
        "{t:?}"
    );
}

#[tokio::test]
async fn a_module_waiting_for_approval_is_approved_on_the_approvals_screen() {
    let d = Dirs::new();
    let m = d.vault.join(".modules/notes");
    std::fs::create_dir_all(m.join("skills")).unwrap();
    std::fs::write(
        m.join("manifest.yaml"),
        "name: notes\nversion: 1.2.0\ndescription: Keeps notes tidy\ntrust_level: vault\nprovides: [Tidy]\nrequests:\n  skills: [tidy]\n",
    )
    .unwrap();
    std::fs::write(
        m.join("skills/tidy.md"),
        "---\nname: tidy\n---\nTidy the note.\n",
    )
    .unwrap();
    let s = Server::start(&d).await;

    let drv = driver().await;
    let c = browser(&drv, 1280).await;
    c.goto(&s.url("/ui/")).await.unwrap();
    let main = text_of(&c, "main").await;
    assert!(
        main.contains("1 vault module is waiting for your approval"),
        "{main}"
    );
    c.goto(&s.url("/ui/approvals")).await.unwrap();
    let row = text_of(&c, "#modules li").await;
    for part in [
        "notes",
        "v1.2.0",
        "new",
        "Keeps notes tidy",
        "Skills: tidy",
        "Provides: Tidy",
    ] {
        assert!(row.contains(part), "{part:?} missing from {row}");
    }
    check_screen(&c, 1280, "approvals with a module").await;
    c.find(Locator::Css("#modules select"))
        .await
        .unwrap()
        .select_by_value("sandboxed")
        .await
        .unwrap();
    click(&c, "[data-approve-module]").await;
    let done = wait_js(
        &c,
        "const d = document.getElementById('modules-done'); return !d.hidden && d.textContent;",
        "the module approval to be confirmed",
    )
    .await;
    assert_eq!(done, json!("notes is enabled, at trust level sandboxed."));
    let (_, list) = s.get("/api/modules").await;
    let notes = list["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "notes")
        .unwrap()
        .clone();
    assert_eq!(notes["status"], "loaded", "{notes}");
    assert_eq!(notes["approved_trust_level"], "sandboxed");

    // Changed after the approval: back on the screen, with what changed.
    std::fs::write(
        m.join("skills/tidy.md"),
        "---\nname: tidy\n---\nTidy the note!\n",
    )
    .unwrap();
    c.goto(&s.url("/ui/approvals")).await.unwrap();
    let row = text_of(&c, "#modules li").await;
    assert!(
        row.contains("changed since its approval") && row.contains("changed: skills/tidy.md"),
        "{row}"
    );
    screenshot(&c, "approvals-module-1280").await;
    click(&c, "[data-approve-module]").await;
    wait_js(
        &c,
        "const d = document.getElementById('modules-done'); return !d.hidden && d.textContent;",
        "the second approval",
    )
    .await;
    let (_, list) = s.get("/api/modules").await;
    assert!(
        list["modules"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["status"] == "loaded"),
        "{list}"
    );
    c.close().await.unwrap();
}
