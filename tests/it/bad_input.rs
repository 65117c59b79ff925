//! Bad input: every malformed request gets a clear 4xx, never a 500.

use serde_json::json;

use crate::support::{seed_sessions, Dirs, Opts, Server};

async fn raw(
    s: &Server,
    method: &str,
    path: &str,
    ct: Option<&str>,
    body: Vec<u8>,
) -> (u16, String) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut rb = s.client.request(m, s.url(path)).body(body);
    if let Some(ct) = ct {
        rb = rb.header("Content-Type", ct);
    }
    let r = rb.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn malformed_bodies_get_422_with_the_problem_named() {
    let d = Dirs::new();
    let ids = seed_sessions(&d, 1, |_, _| {}).await;
    let s = Server::start(&d).await;
    let cfg = format!("/api/chat/{}/config", ids[0]);
    let json_ct = Some("application/json");

    let (st, body) = raw(
        &s,
        "PATCH",
        &cfg,
        json_ct,
        b"{\"module\": \"unterminated".to_vec(),
    )
    .await;
    assert_eq!(st, 422);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["detail"][0]["type"], "json_invalid");
    assert_eq!(v["detail"][0]["loc"][0], "body");

    let (st, body) = raw(&s, "POST", "/api/auth/keys", json_ct, Vec::new()).await;
    assert_eq!(st, 422);
    assert!(body.contains("\"missing\""), "{body}");

    let (st, body) = raw(
        &s,
        "POST",
        "/api/auth/keys",
        json_ct,
        br#"{"text":"no label"}"#.to_vec(),
    )
    .await;
    assert_eq!(st, 422);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["detail"][0]["loc"], json!(["body", "label"]));
    assert_eq!(v["detail"][0]["type"], "missing");

    let (st, body) = raw(
        &s,
        "POST",
        "/api/auth/keys",
        json_ct,
        br#"{"label":42}"#.to_vec(),
    )
    .await;
    assert_eq!(st, 422);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["detail"][0]["type"], "string_type");
    assert_eq!(v["detail"][0]["input"], 42);

    for (body, what) in [
        (&br#"[1,2,3]"#[..], "array body"),
        (br#"{"trustLevel": 7}"#, "number for a string"),
        (br#"{"configOverrides": "x"}"#, "string for an object"),
        (b"\xff\xfe\x00garbage", "binary"),
        (b"null", "null"),
    ] {
        let (st, text) = raw(&s, "PATCH", &cfg, json_ct, body.to_vec()).await;
        assert!(st == 422 || st == 400, "{what}: {st} {text}");
    }
    let (st, _) = raw(
        &s,
        "PATCH",
        &cfg,
        Some("text/plain"),
        br#"{"module":"chat"}"#.to_vec(),
    )
    .await;
    assert_eq!(st, 415);
    let (st, text) = raw(
        &s,
        "PUT",
        "/api/workspaces/x",
        json_ct,
        br#"{"bogus_field": 1}"#.to_vec(),
    )
    .await;
    assert_eq!(st, 422, "{text}");
    assert!(text.contains("extra_forbidden"));
}

/// Sends a request over a raw socket, writing the body in the background so a server
/// that answers early (413) and closes cannot turn into a client-side broken pipe.
async fn raw_tcp(port: u16, head: String, body: Vec<u8>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(head.as_bytes()).await;
        let _ = wr.write_all(&body).await;
    });
    let mut out = Vec::new();
    let _ = rd.read_to_end(&mut out).await;
    writer.abort();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn huge_bodies_get_413() {
    let d = Dirs::new();
    let s = Server::start_with(
        &d,
        Opts {
            env: vec![("MAX_BODY_BYTES".into(), "65536".into())],
            ..Default::default()
        },
    )
    .await;
    let big = format!("{{\"label\": \"{}\"}}", "y".repeat(200_000)).into_bytes();
    let head = format!(
        "POST /api/auth/keys HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        s.port,
        big.len()
    );
    let reply = raw_tcp(s.port, head, big).await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.contains("max_body_bytes"), "{reply}");
    // Without a Content-Length (chunked), the limit still holds.
    let chunk = vec![b'y'; 100_000];
    let mut body = Vec::new();
    body.extend_from_slice(format!("{:x}\r\n", chunk.len() + 11).as_bytes());
    body.extend_from_slice(b"{\"label\": \"");
    body.extend_from_slice(&chunk);
    body.extend_from_slice(b"\"}\r\n0\r\n\r\n");
    let head = format!(
        "POST /api/auth/keys HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        s.port
    );
    let reply = raw_tcp(s.port, head, body).await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    // The server is fine afterwards and nothing was created.
    let (st, v) = s.get("/api/auth/keys").await;
    assert_eq!((st, v["keys"].as_array().unwrap().len()), (200, 0));
}

#[tokio::test]
async fn bad_query_parameters_are_422_never_500() {
    let d = Dirs::new();
    seed_sessions(&d, 2, |_, _| {}).await;
    let s = Server::start(&d).await;
    for q in [
        "limit=-1",
        "limit=0",
        "limit=1001",
        "limit=abc",
        "limit=99999999999999999999999",
        "offset=-5",
        "offset=abc",
        "archived=maybe",
        "limit=",
        "limit=1.5",
    ] {
        let (st, v) = s.get(&format!("/api/chat?{q}")).await;
        assert_eq!(st, 422, "{q}: {v}");
        assert!(v["detail"][0]["loc"][0] == "query", "{q}: {v}");
    }
    for q in [
        "limit=1000",
        "limit=1",
        "offset=100000",
        "archived=1",
        "search=%00%ff",
        "module=%27%3B--",
    ] {
        let (st, v) = s.get(&format!("/api/chat?{q}")).await;
        assert_eq!(st, 200, "{q}: {v}");
    }
    let (st, _) = s.get("/api/workspaces/x/sessions?limit=501").await;
    assert!(st == 422 || st == 404);
    let (st, _) = s.get("/api/health?detailed=perhaps").await;
    assert_eq!(st, 422);
}

#[tokio::test]
async fn odd_ids_and_paths_are_404_or_400_never_500() {
    let d = Dirs::new();
    let s = Server::start(&d).await;
    let long = "a".repeat(5000);
    for p in [
        "/api/chat/00000000-0000-0000-0000-000000000000".to_string(),
        "/api/chat/..%2F..%2Fetc%2Fpasswd".into(),
        "/api/chat/%2e%2e".into(),
        "/api/chat/%00".into(),
        format!("/api/chat/{long}"),
        "/api/chat/%F0%9F%98%80".into(),
    ] {
        let (st, v) = s.get(&p).await;
        assert_eq!(st, 404, "{p}: {v}");
        let (st, _) = s.send("POST", &format!("{p}/archive"), None).await;
        assert_eq!(st, 404, "{p}");
    }
    for p in [
        "/api/workspaces/..%2Fx",
        "/api/workspaces/Bad_Slug",
        "/api/workspaces/-x",
    ] {
        let (st, v) = s.get(p).await;
        assert_eq!(st, 400, "{p}: {v}");
        assert!(v["detail"]
            .as_str()
            .unwrap()
            .starts_with("Invalid workspace slug"));
    }
    let (st, _) = s.get("/api/workspaces/nope").await;
    assert_eq!(st, 404);
    let (st, v) = s
        .send(
            "PATCH",
            "/api/chat/x/config",
            Some(json!({"trustLevel": "admin"})),
        )
        .await;
    assert!(st == 400 || st == 404, "{v}");
    let (st, v) = s
        .send(
            "POST",
            "/api/workspaces",
            Some(json!({"name": "x", "default_trust_level": "root"})),
        )
        .await;
    assert_eq!(st, 400, "{v}");
    assert!(v["detail"]
        .as_str()
        .unwrap()
        .contains("Invalid trust level"));
}
