//! A minimal HTTP/1.0 client over a local stream, used where pulling in an HTTP client
//! is not worth it: the CLI asking its own server (`/api/health`, `/api/bots/…`), and
//! the Docker engine's `/_ping` over its unix socket.

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Status code and body of a response.
#[derive(Debug)]
pub struct Reply {
    /// The HTTP status code from the status line.
    pub status: u16,
    /// Everything after the headers, decoded lossily as UTF-8 (read capped at 4 MiB).
    pub body: String,
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    s: S,
    host: &str,
    path: &str,
) -> std::io::Result<Reply> {
    exchange_with(s, host, "GET", path, None).await
}

async fn exchange_with<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    host: &str,
    method: &str,
    path: &str,
    json_body: Option<&str>,
) -> std::io::Result<Reply> {
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: parachute-cli\r\nConnection: close\r\n");
    if let Some(b) = json_body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    if let Some(b) = json_body {
        req.push_str(b);
    }
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    s.take(4 * 1024 * 1024).read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP response")
        })?;
    Ok(Reply {
        status,
        body: body.to_string(),
    })
}

/// GET `path` from a TCP server at `127.0.0.1:port` within `timeout`.
pub async fn get_loopback(port: u16, path: &str, timeout: Duration) -> std::io::Result<Reply> {
    let fut = async {
        let s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        exchange(s, &format!("127.0.0.1:{port}"), path).await
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out"))?
}

/// `method path` with an optional JSON body to `127.0.0.1:port` within `timeout` (the
/// command line asking its own server to act).
pub async fn request_loopback(
    port: u16,
    method: &str,
    path: &str,
    json_body: Option<&str>,
    timeout: Duration,
) -> std::io::Result<Reply> {
    let fut = async {
        let s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        exchange_with(s, &format!("127.0.0.1:{port}"), method, path, json_body).await
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out"))?
}

/// GET `path` from a server on a unix socket within `timeout`.
pub async fn get_unix(socket: &Path, path: &str, timeout: Duration) -> std::io::Result<Reply> {
    let fut = async {
        let s = tokio::net::UnixStream::connect(socket).await?;
        exchange(s, "localhost", path).await
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out"))?
}
