//! A listener on loopback answers only requests addressed to loopback. Without it, a web page the
//! operator visits could point its own name at 127.0.0.1 (DNS rebinding) and read the dashboard's
//! JSON through the browser, since without authentication loopback is the only boundary. A request
//! whose `Host` names anything but `localhost` or a loopback address is refused with 421. A listener
//! bound beyond loopback is reachable by name on purpose, and takes any `Host`.

use std::net::IpAddr;

use axum::{
    extract::Request,
    http::{StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

/// Whether `host` (a `Host` header: a name or address, with or without a port) names loopback.
fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        // `[::1]:50052`
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Middleware for a loopback listener: passes on requests addressed to loopback (or with no
/// `Host`, which no browser sends).
pub async fn loopback_only(request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .map(|value| value.to_str().unwrap_or("?"));
    match host {
        Some(host) if !is_loopback(host) => (
            StatusCode::MISDIRECTED_REQUEST,
            "this listener is on loopback and answers only requests for localhost or a loopback \
             address; to reach it by another name, listen on that address (--http)\n",
        )
            .into_response(),
        _ => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_and_addresses_pass_and_others_do_not() {
        for host in [
            "127.0.0.1:50052",
            "127.1.2.3",
            "localhost:50052",
            "LOCALHOST",
            "dash.localhost:1",
            "[::1]:50052",
            "localhost.",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "evil.example:50052",
            "10.0.0.1",
            "[::2]:1",
            "localhost.evil.example",
            "?",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
