//! The OTLP endpoint setting: where the broker exports its spans, checked when it is read.

use std::{fmt, str::FromStr};

use tonic::codegen::http::{Uri, uri::Scheme};

/// An OpenTelemetry collector's OTLP/gRPC address, `http://HOST:PORT`.
///
/// Plain HTTP/2 only: the exporter is built without TLS roots of its own, so an `https://` endpoint
/// could not verify the collector, and is refused here rather than failing at every export. A
/// collector on this host or network (a sidecar, an agent) is the usual shape.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OtlpEndpoint(String);

impl OtlpEndpoint {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for OtlpEndpoint {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let uri: Uri = text
            .parse()
            .map_err(|error| format!("{text:?} is not a URL: {error}"))?;
        if uri.scheme() == Some(&Scheme::HTTPS) {
            return Err(format!(
                "{text:?}: TLS to the collector is not supported; use http:// to a collector on \
                 this host or network"
            ));
        }
        let bare = uri.path_and_query().is_none_or(|path| path.as_str() == "/");
        if uri.scheme() != Some(&Scheme::HTTP)
            || uri.host().is_none_or(str::is_empty)
            || uri.port().is_none()
            || !bare
        {
            return Err(format!(
                "{text:?} is not an http://HOST:PORT URL (OTLP/gRPC listens on 4317 by default)"
            ));
        }
        Ok(Self(text.to_owned()))
    }
}

impl fmt::Display for OtlpEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for OtlpEndpoint {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<OtlpEndpoint> for String {
    fn from(endpoint: OtlpEndpoint) -> Self {
        endpoint.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http_url_with_a_host() {
        let endpoint: OtlpEndpoint = "http://127.0.0.1:4317".parse().unwrap();
        assert_eq!(endpoint.as_str(), "http://127.0.0.1:4317");
        assert!("http://collector:4317".parse::<OtlpEndpoint>().is_ok());
        assert!("http://collector:4317/".parse::<OtlpEndpoint>().is_ok());
        for refused in [
            "https://collector:4317",
            "collector:4317",
            "grpc://x:1",
            "",
            "http://",
            "http://collector",
            "http://collector:4317/v1/traces",
        ] {
            assert!(refused.parse::<OtlpEndpoint>().is_err(), "{refused:?}");
        }
        let error = "https://collector:4317"
            .parse::<OtlpEndpoint>()
            .unwrap_err();
        assert!(error.contains("TLS"), "{error}");
    }
}
