//! Compatibility check: every call the mobile app makes (tests/it/app_calls.json) gets the contract's status and top-level
//! keys. Calls of features not built yet are listed as `awaiting` and must still be
//! missing, so the list is updated the moment one lands.

use serde_json::Value;

use crate::support::{seed_sessions, Dirs, Opts, Server};

const MISSING: &str = "00000000-0000-0000-0000-000000000000";

fn fill(path: &str, session: &str) -> String {
    path.replace("{session}", session)
        .replace("{missing}", MISSING)
}

async fn call(s: &Server, method: &str, path: &str, body: Option<&Value>) -> (u16, String, String) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut rb = s
        .client
        .request(m, s.url(path))
        .header("User-Agent", "Parachute-Chat/1.0");
    if let Some(b) = body {
        rb = rb.json(b);
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, ct, r.text().await.unwrap())
}

#[tokio::test]
async fn every_app_call_gets_the_contract_status_and_keys() {
    let spec: Value = serde_json::from_str(include_str!("app_calls.json")).unwrap();
    let d = Dirs::new();
    std::fs::create_dir_all(d.vault.join("Daily")).unwrap();
    std::fs::create_dir_all(d.vault.join("Notes")).unwrap();
    let session = seed_sessions(&d, 1, |_, s| s.title = Some("A note about things".into()))
        .await
        .remove(0);
    // No Docker engine for this server: `POST /api/sandbox/build` answers its 400 rather
    // than building an image.
    let no_docker = format!("unix://{}", d.tmp.path().join("no-docker.sock").display());
    let s = Server::start_with(
        &d,
        Opts {
            env: vec![("DOCKER_HOST".into(), no_docker)],
            ..Default::default()
        },
    )
    .await;
    let mut failures = Vec::new();
    for c in spec["checked"].as_array().unwrap() {
        let (method, path) = (
            c["method"].as_str().unwrap(),
            fill(c["path"].as_str().unwrap(), &session),
        );
        let (status, ct, text) = call(&s, method, &path, c.get("body")).await;
        let allowed: Vec<u64> = c["status"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_u64)
            .collect();
        if !allowed.contains(&(status as u64)) {
            failures.push(format!(
                "{method} {path} ({}): status {status}, expected {allowed:?}: {text}",
                c["app"]
            ));
            continue;
        }
        if c["sse"] == true {
            if !ct.starts_with("text/event-stream") || !text.starts_with("id: ") {
                failures.push(format!("{method} {path}: not an SSE stream ({ct})"));
            }
            continue;
        }
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        for k in c["keys"].as_array().into_iter().flatten() {
            let k = k.as_str().unwrap();
            if v.get(k).is_none() {
                failures.push(format!(
                    "{method} {path} ({}): missing key `{k}` in {text}",
                    c["app"]
                ));
            }
        }
    }
    for c in spec["awaiting"].as_array().unwrap() {
        let (method, path) = (
            c["method"].as_str().unwrap(),
            fill(c["path"].as_str().unwrap(), &session),
        );
        let (status, _, text) = call(&s, method, &path, c.get("body")).await;
        if status != 404 || !text.contains("Not Found") {
            failures.push(format!(
                "{method} {path} now answers {status}: move it from `awaiting` ({}) to `checked` with its contract status and keys",
                c["owner"]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} app calls off-contract:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
