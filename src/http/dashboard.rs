//! The live dashboard: one page, its script and style, and the vendored uPlot that draws its
//! charts, all compiled into the binary, so the broker serves them with nothing to install beside
//! it and the page fetches nothing from the internet. The page polls the JSON API (`/api/*`, see
//! docs/observability.md) each second.
//!
//! - `GET /`: the page (`dashboard/index.html`).
//! - `GET /assets/NAME`: each file in [`ASSETS`]; any other name is a 404.
//!
//! The files are written by hand, with no build step: what is in `src/http/dashboard/` is what the
//! browser runs. uPlot 1.6.32 (MIT, `vendor/uPlot.LICENSE`) is copied unchanged from its npm
//! package; `vendor/README.md` says how to update it.
//!
//! Every response says `Cache-Control: no-cache`: the browser revalidates each load, so a broker
//! upgraded in place never runs last version's script against this version's API.

use axum::{
    Router,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
    routing::get,
};

/// A file the dashboard serves: its name under `/assets/`, its media type and its bytes.
#[derive(Debug)]
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The page itself, served at `/`.
const INDEX: Asset = Asset {
    name: "index.html",
    content_type: "text/html; charset=utf-8",
    body: include_bytes!("dashboard/index.html"),
};

/// What `/assets/NAME` serves. The licence travels with the copy of uPlot, as its terms ask.
const ASSETS: &[Asset] = &[
    Asset {
        name: "dashboard.js",
        content_type: JS,
        body: include_bytes!("dashboard/dashboard.js"),
    },
    Asset {
        name: "dashboard.css",
        content_type: CSS,
        body: include_bytes!("dashboard/dashboard.css"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("dashboard/favicon.svg"),
    },
    Asset {
        name: "uPlot.iife.min.js",
        content_type: JS,
        body: include_bytes!("dashboard/vendor/uPlot.iife.min.js"),
    },
    Asset {
        name: "uPlot.min.css",
        content_type: CSS,
        body: include_bytes!("dashboard/vendor/uPlot.min.css"),
    },
    Asset {
        name: "uPlot.LICENSE",
        content_type: "text/plain; charset=utf-8",
        body: include_bytes!("dashboard/vendor/uPlot.LICENSE"),
    },
];

/// Only this origin's scripts, styles, images and API: a page that shows a broker's topics must not
/// load or send anything elsewhere, and must not be framed by another site.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
    object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The dashboard's routes, for the HTTP listener to merge beside its own. Generic over the state so
/// it merges into a router of any state; none of these handlers reads it.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let mut router = Router::new().route("/", get(|| async { INDEX.response() }));
    for asset in ASSETS {
        let path = format!("/assets/{}", asset.name);
        router = router.route(&path, get(move || async move { asset.response() }));
    }
    router
}

impl Asset {
    fn response(&self) -> Response {
        let mut response = self.body.into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        // The types above are the truth: a browser must not guess another from the bytes.
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
        response
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::{TcpListener, TcpStream},
    };

    use super::*;

    /// The `/assets/...` paths the page names in `src="..."` and `href="..."`.
    fn referenced_by_index() -> Vec<String> {
        let html = std::str::from_utf8(INDEX.body).expect("index.html is UTF-8");
        let mut names = Vec::new();
        for attribute in ["src=\"", "href=\""] {
            for (at, _) in html.match_indices(attribute) {
                let value = &html[at + attribute.len()..];
                let value = &value[..value.find('"').expect("a closed attribute")];
                if let Some(path) = value.strip_prefix("/assets/") {
                    names.push(path.to_owned());
                }
            }
        }
        names
    }

    /// `GET path` over a fresh connection: the status code, the headers (lowercase names) and the
    /// body's length.
    async fn get(addr: SocketAddr, path: &str) -> (u16, String, usize) {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.expect("read");
        let split = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a complete response head");
        let head = String::from_utf8_lossy(&response[..split]).to_lowercase();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .expect("a status line");
        (status, head, response.len() - split - 4)
    }

    /// Every file the page asks for is served whole, with its type and `no-cache`, and nothing
    /// else is under `/assets/`.
    #[tokio::test]
    async fn the_page_and_every_asset_it_names_are_served() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, routes::<()>()).await });

        let referenced = referenced_by_index();
        assert!(referenced.len() >= 4, "{referenced:?}");
        let index = (String::from("/"), &INDEX);
        let assets = ASSETS.iter().map(|a| (format!("/assets/{}", a.name), a));
        for (path, asset) in std::iter::once(index).chain(assets) {
            let (status, head, length) = get(addr, &path).await;
            assert_eq!(status, 200, "{path}: {head}");
            assert!(
                head.contains(&format!("content-type: {}", asset.content_type)),
                "{path}: {head}"
            );
            assert!(head.contains("cache-control: no-cache"), "{path}: {head}");
            assert_eq!(length, asset.body.len(), "{path}");
        }
        for name in &referenced {
            assert!(
                ASSETS.iter().any(|asset| asset.name == name),
                "index.html names /assets/{name}, which is not served"
            );
        }
        let (status, _, _) = get(addr, "/assets/missing.js").await;
        assert_eq!(status, 404);
        server.abort();
    }
}
