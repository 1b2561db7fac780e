//! The HTTP listener's setting: an address, or `off`.

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
}
