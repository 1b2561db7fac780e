//! The cluster-mode settings' own types: the NATS servers to connect to, and the subject prefix that
//! names the stream, checked when they are read.

use std::{fmt, str::FromStr};

/// The NATS servers a cluster-mode node connects to: `nats://HOST:PORT` (or `tls://`), comma
/// separated. Credentials may ride in a URL (`nats://user:pass@host`, `nats://token@host`), as NATS
/// clients accept them; the client tries the others when one fails.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NatsServers(Vec<async_nats::ServerAddr>);

impl NatsServers {
    pub fn addrs(&self) -> &[async_nats::ServerAddr] {
        &self.0
    }
}

impl FromStr for NatsServers {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let addrs = text
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(|url| {
                url.parse::<async_nats::ServerAddr>()
                    .map_err(|error| format!("{url:?} is not a NATS URL: {error}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if addrs.is_empty() {
            return Err("no NATS URL given (nats://HOST:PORT[,nats://...])".into());
        }
        Ok(Self(addrs))
    }
}

impl fmt::Display for NatsServers {
    /// The URLs without their credentials, so the configuration can be shown and logged.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, addr) in self.0.iter().enumerate() {
            if n > 0 {
                f.write_str(",")?;
            }
            let url = addr.as_url_str();
            match url.split_once("://").zip(url.rsplit_once('@')) {
                Some(((scheme, _), (_, host))) => write!(f, "{scheme}://***@{host}")?,
                None => f.write_str(url)?,
            }
        }
        Ok(())
    }
}

impl TryFrom<String> for NatsServers {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<NatsServers> for String {
    /// With their credentials: what the config file said is written back whole.
    fn from(servers: NatsServers) -> Self {
        let urls: Vec<&str> = servers.0.iter().map(|addr| addr.as_url_str()).collect();
        urls.join(",")
    }
}

/// The first token of every subject a deployment uses, and the name of its stream: one NATS
/// cluster can carry several Switchyard deployments that never see each other's messages.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NatsPrefix(String);

impl NatsPrefix {
    pub const DEFAULT: &str = "sy";

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for NatsPrefix {
    type Err = String;

    /// One subject token that is also a valid stream name: letters, digits, `_` and `-`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let valid = !text.is_empty()
            && text.len() <= 32
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        match valid {
            true => Ok(Self(text.to_owned())),
            false => Err(format!(
                "{text:?}: 1 to 32 letters, digits, '_' or '-' (it names a subject token and a stream)"
            )),
        }
    }
}

impl fmt::Display for NatsPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for NatsPrefix {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<NatsPrefix> for String {
    fn from(prefix: NatsPrefix) -> Self {
        prefix.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_parse_a_list_and_hide_credentials_when_shown() {
        let servers: NatsServers = "nats://a:4222, nats://user:secret@b:4223".parse().unwrap();
        assert_eq!(servers.addrs().len(), 2);
        let shown = servers.to_string();
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("b:4223"), "{shown}");
        assert!("".parse::<NatsServers>().is_err());
        assert!("nats://bad host".parse::<NatsServers>().is_err());
    }

    #[test]
    fn a_prefix_is_one_token_and_a_stream_name() {
        assert!("sy".parse::<NatsPrefix>().is_ok());
        assert!("tenant-1_a".parse::<NatsPrefix>().is_ok());
        for bad in ["", "a.b", "a*", ">", "a b", &"x".repeat(33)] {
            assert!(bad.parse::<NatsPrefix>().is_err(), "{bad:?}");
        }
    }
}
