//! Plain HTTP/1.1 requests over a fresh connection, for the broker's HTTP listener and the NATS
//! servers' monitoring ports: enough of HTTP for a status and a body, with no client library.

use std::{io, net::SocketAddr};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use super::within;

/// `method path` with `headers` (whole lines, each ending in CRLF), addressed to `addr` unless
/// `headers` has a `Host`: the status code and the body, or for a refusal the head too.
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &str,
) -> (u16, String) {
    within("an HTTP request", exchange(addr, method, path, headers))
        .await
        .unwrap_or_else(|error| panic!("{method} http://{addr}{path}: {error}"))
}

/// `GET path`, or the error that kept it from being answered (nothing listening yet, say).
pub async fn try_get(addr: SocketAddr, path: &str) -> io::Result<(u16, String)> {
    exchange(addr, "GET", path, "").await
}

async fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &str,
) -> io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr).await?;
    let host = match headers.to_ascii_lowercase().contains("host:") {
        true => String::new(),
        false => format!("Host: {addr}\r\n"),
    };
    let request = format!("{method} {path} HTTP/1.1\r\n{host}{headers}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| io::Error::other(format!("no status line in {response:?}")))?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = match chunked {
        true => {
            unchunked(body).ok_or_else(|| io::Error::other(format!("bad chunks in {body:?}")))?
        }
        false => body.to_owned(),
    };
    Ok(match status {
        200..300 => (status, body),
        _ => (status, format!("{head}\r\n\r\n{body}")),
    })
}

/// A body sent in chunks (as Go's HTTP server sends one of more than a few KiB), joined.
fn unchunked(mut chunks: &str) -> Option<String> {
    let mut body = String::new();
    loop {
        let (size, rest) = chunks.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(body);
        }
        body.push_str(rest.get(..size)?);
        chunks = rest.get(size..)?.strip_prefix("\r\n")?;
    }
}
