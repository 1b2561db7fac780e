//! One GET of the broker's JSON API over HTTP/1.1: hyper's client connection (already built here
//! for tonic), one connection per refresh, which is nothing at one a second.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

/// How long one GET may take, connecting included.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Where the JSON API is, and the token to show it, if any.
#[derive(Debug, Clone)]
pub struct Api {
    /// `host:port`.
    pub authority: String,
    pub token: Option<String>,
}

impl Api {
    /// Parses `http://host:port` (or `host:port`); HTTPS is not served by the broker's listener.
    pub fn new(url: &str, token: Option<String>) -> Result<Self, String> {
        let rest = match url.split_once("://") {
            Some(("http", rest)) => rest,
            Some((scheme, _)) => {
                return Err(format!(
                    "--url {url}: the HTTP listener speaks http://, not {scheme}://"
                ));
            }
            None => url,
        };
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') {
            return Err(format!("--url {url}: expected http://HOST:PORT"));
        }
        Ok(Self {
            authority: authority.to_owned(),
            token,
        })
    }

    /// `GET path` as JSON, or why not, in a line for a person; a broker that has not answered
    /// within [`TIMEOUT`] has not answered.
    pub async fn get(&self, path: &str) -> Result<Value, String> {
        tokio::time::timeout(TIMEOUT, self.get_once(path))
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "http://{}{path}: no answer within {TIMEOUT:?}",
                    self.authority
                ))
            })
    }

    async fn get_once(&self, path: &str) -> Result<Value, String> {
        let url = format!("http://{}{path}", self.authority);
        let stream = TcpStream::connect(&self.authority)
            .await
            .map_err(|error| format!("cannot connect to {}: {error}", self.authority))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|error| format!("{url}: {error}"))?;
        tokio::spawn(connection);
        let mut request = Request::get(path).header(header::HOST, &self.authority);
        if let Some(token) = &self.token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request
            .body(Empty::<Bytes>::new())
            .map_err(|error| format!("{url}: {error}"))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|error| format!("{url}: {error}"))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|error| format!("{url}: {error}"))?
            .to_bytes();
        match status {
            StatusCode::OK => serde_json::from_slice(&body)
                .map_err(|error| format!("{url}: not the JSON API ({error})")),
            StatusCode::UNAUTHORIZED => Err(format!(
                "{url}: 401, the broker wants an admin token (--token or SWITCHYARD_TOKEN)"
            )),
            StatusCode::FORBIDDEN => Err(format!("{url}: 403, the token is not an admin token")),
            status => Err(format!(
                "{url}: {status}: {}",
                String::from_utf8_lossy(&body).trim()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_http_urls_and_bare_addresses() {
        let authority = |url: &str| Api::new(url, None).map(|api| api.authority);
        assert_eq!(
            authority("http://127.0.0.1:50052/").as_deref(),
            Ok("127.0.0.1:50052")
        );
        assert_eq!(authority("localhost:9").as_deref(), Ok("localhost:9"));
        assert!(authority("https://x:1").unwrap_err().contains("http://"));
        assert!(authority("http://x:1/api").is_err());
    }
}
