//! The HTTP listener's settings: an address (or `off`), and which of its endpoints need a token.

use std::{fmt, net::SocketAddr, str::FromStr};

/// Where the HTTP listener (metrics and health) listens, if anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HttpListen(pub Option<SocketAddr>);

impl HttpListen {
    pub const OFF: Self = Self(None);
    /// The default: beside the gRPC port, on loopback. Taken by another process, it is skipped with
    /// a warning (a second broker on one machine); any other address that cannot be bound is an
    /// error.
    pub const DEFAULT: &'static str = "127.0.0.1:50052";

    pub fn is_default(&self) -> bool {
        self.0.map(|addr| addr.to_string()).as_deref() == Some(Self::DEFAULT)
    }
}

/// Which HTTP endpoints need an admin token when authentication is on (`--auth-*`). Without
/// authentication nothing does.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum HttpAuth {
    /// The dashboard and the JSON API; `/metrics` and the health endpoints stay open, for
    /// Prometheus and load balancers.
    #[default]
    Dashboard,
    /// `/metrics` too; the health endpoints stay open.
    Metrics,
    /// Every endpoint, the health endpoints included.
    All,
}

/// The groups of HTTP endpoints, as [`HttpAuth`] protects them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpEndpoint {
    Dashboard,
    Metrics,
    Health,
}

impl HttpAuth {
    /// Whether `endpoint` needs an admin token under this setting.
    pub fn protects(self, endpoint: HttpEndpoint) -> bool {
        matches!(
            (self, endpoint),
            (_, HttpEndpoint::Dashboard) | (Self::All, _) | (Self::Metrics, HttpEndpoint::Metrics)
        )
    }
}

impl fmt::Display for HttpAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Dashboard => "dashboard",
            Self::Metrics => "metrics",
            Self::All => "all",
        })
    }
}

impl FromStr for HttpListen {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.eq_ignore_ascii_case("off") {
            return Ok(Self::OFF);
        }
        text.parse()
            .map(|addr| Self(Some(addr)))
            .map_err(|_| format!("{text:?} is neither an address (HOST:PORT) nor off"))
    }
}

impl fmt::Display for HttpListen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(addr) => addr.fmt(f),
            None => f.write_str("off"),
        }
    }
}

impl TryFrom<String> for HttpListen {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<HttpListen> for String {
    fn from(listen: HttpListen) -> Self {
        listen.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_or_off() {
        assert_eq!("off".parse::<HttpListen>(), Ok(HttpListen::OFF));
        let listen: HttpListen = HttpListen::DEFAULT.parse().unwrap();
        assert!(listen.is_default());
        assert_eq!(listen.to_string(), HttpListen::DEFAULT);
        assert!(!"127.0.0.1:0".parse::<HttpListen>().unwrap().is_default());
        assert!("nowhere".parse::<HttpListen>().is_err());
    }

    #[test]
    fn the_dashboard_is_always_protected_and_health_only_with_all() {
        use HttpEndpoint::*;
        let protected = |auth: HttpAuth| {
            [Dashboard, Metrics, Health]
                .into_iter()
                .filter(|&endpoint| auth.protects(endpoint))
                .collect::<Vec<_>>()
        };
        assert_eq!(protected(HttpAuth::Dashboard), [Dashboard]);
        assert_eq!(protected(HttpAuth::Metrics), [Dashboard, Metrics]);
        assert_eq!(protected(HttpAuth::All), [Dashboard, Metrics, Health]);
    }
}
