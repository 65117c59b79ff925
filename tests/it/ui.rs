//! The web UI in a real browser: Debian's Chromium driven over WebDriver (chromedriver,
//! from Rust with fantoccini) against the server on loopback. Screens are checked at
//! phone and desktop width and saved as screenshots in `target/ui-screenshots/`.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::support::{free_port, wait_until, Dirs, Server};

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
}

#[tokio::test]
async fn the_dashboard_renders_in_a_real_browser_at_phone_and_desktop_width() {
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
            ("Settings", "Settings"),
            ("Devices & keys", "Devices & keys"),
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
        }
        c.close().await.unwrap();
    }
    // Other clients keep the contract's JSON at `/`.
    let (st, v) = s.get("/").await;
    assert_eq!((st, v["name"].clone()), (200, json!("Parachute Computer")));
}
