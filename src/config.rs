//! The broker's configuration: every limit and default in one plain struct, passed in, never global.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use crate::auth::Secret;

/// Everything the server and the in-memory broker need to know, with the defaults documented in the
/// README. The command line fills it from flags and `SWITCHYARD_*` variables; tests build it directly.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where `switchyard serve` listens. Loopback by default: nothing is exposed until asked.
    pub listen: SocketAddr,
    /// Largest payload of one message. Bigger ones are INVALID_ARGUMENT naming the message.
    pub max_payload_bytes: usize,
    /// Largest encoded gRPC message either way; bounds a whole Publish batch. Must leave room for one
    /// maximal payload plus its envelope, so a too-large payload is reported as such, not as a frame error.
    pub max_request_bytes: usize,
    /// Most messages in one Publish call.
    pub max_batch_messages: usize,
    /// Longest topic, pattern or dead-letter topic, in bytes.
    pub max_topic_bytes: usize,
    /// Most dot-separated tokens in a topic or pattern.
    pub max_topic_tokens: usize,
    /// Longest group name, in bytes.
    pub max_group_name_bytes: usize,
    /// Most headers on one message.
    pub max_headers: usize,
    /// Largest sum of header name and value lengths on one message.
    pub max_header_bytes: usize,
    /// Longest `key`, `correlation_id` or `reply_to`, in bytes.
    pub max_id_bytes: usize,
    /// Messages a subscriber may have buffered before newer ones are dropped for it and reported as a
    /// `Gap`. This is what keeps a slow subscriber from slowing anyone else.
    pub subscriber_buffer: usize,
    /// Unacked deliveries per consumer when the consumer asks for 0.
    pub default_prefetch: u32,
    /// Largest prefetch a consumer may ask for.
    pub max_prefetch: u32,
    /// Ack deadline of a group created without one.
    pub default_ack_deadline: Duration,
    /// Longest ack deadline a group or consumer may ask for.
    pub max_ack_deadline: Duration,
    /// Messages a group holds (waiting, delayed and in flight) when created without `max_length`.
    pub default_max_length: u32,
    /// Longest delay a nack may ask for.
    pub max_nack_delay: Duration,
    /// Most delivery ids in one Ack call, all lists together.
    pub max_ack_ids: usize,
    /// A group created by Consume alone (not declared) is removed after it has had neither consumers
    /// nor messages for this long.
    pub group_idle_timeout: Duration,
    /// Request timeout when the request gives none.
    pub default_request_timeout: Duration,
    /// Longest request timeout a request may ask for.
    pub max_request_timeout: Duration,
    /// How long shutdown waits for connections to close after ending every stream.
    pub shutdown_grace: Duration,
    /// Requests one RequestStream may have waiting for replies; past it the broker stops reading the
    /// stream until replies free room, so HTTP/2 flow control holds the client back.
    pub max_stream_requests: usize,
    /// Client connections served at once; one more is closed as soon as it is accepted.
    pub max_connections: usize,
    /// Concurrent gRPC calls on one HTTP/2 connection (its SETTINGS_MAX_CONCURRENT_STREAMS); a client
    /// past it waits for a call to end.
    pub max_streams_per_connection: u32,
    /// Subscriptions and consumers open at once on the whole broker; one more is RESOURCE_EXHAUSTED.
    pub max_subscriptions: usize,
    /// What the messages the broker holds (in groups, subscriber buffers, anywhere) may take, by the
    /// estimate in `budget::footprint`; past it a Publish is RESOURCE_EXHAUSTED.
    pub max_memory_bytes: usize,
    /// Longest a publisher that asked to wait for room (`wait_for_room`) waits before it is refused.
    pub max_publish_wait: Duration,
    /// PEM certificate chain the server presents. With `tls_key`, the server speaks TLS only.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates. When set, a client must present a certificate signed by one of them
    /// (mutual TLS); one without is refused during the handshake.
    pub tls_client_ca: Option<PathBuf>,
    /// Longest a TLS handshake may take. Handshakes run apart from the accept loop, so a client that
    /// connects and sends nothing delays no one, but it holds a socket and a task until this passes.
    pub tls_handshake_timeout: Duration,
    /// JSON file of bearer tokens and their permissions (README, Security). With it or
    /// `auth_tokens`, every Broker and Admin call needs `authorization: Bearer <token>`.
    pub auth_file: Option<PathBuf>,
    /// Tokens that may do everything, admin included (`--auth-token`).
    pub auth_tokens: Vec<Secret>,
    /// How long a connection may be silent before the server pings it. Together with
    /// `keepalive_timeout` this bounds how long a consumer that vanished without closing its socket
    /// (a crashed host, a cut network) keeps its deliveries before they return to the group.
    pub keepalive_interval: Duration,
    /// How long a keepalive ping may go unanswered before the connection, and every stream on it, is
    /// closed.
    pub keepalive_timeout: Duration,
    /// Where to write, once the broker serves, one JSON object naming its bound address
    /// (`{"listen":"127.0.0.1:40123","pid":4242}`). With `--listen 127.0.0.1:0` this is how a
    /// supervisor or a test harness learns the port the kernel chose, without reading logs. The file
    /// appears whole (written beside it, then renamed) and is removed at shutdown.
    pub ready_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            max_payload_bytes: 1024 * 1024,
            max_request_bytes: 4 * 1024 * 1024,
            max_batch_messages: 1000,
            max_topic_bytes: 256,
            max_topic_tokens: 32,
            max_group_name_bytes: 128,
            max_headers: 64,
            max_header_bytes: 16 * 1024,
            max_id_bytes: 256,
            subscriber_buffer: 4096,
            default_prefetch: 64,
            max_prefetch: 10_000,
            default_ack_deadline: Duration::from_secs(30),
            max_ack_deadline: Duration::from_secs(3600),
            default_max_length: 100_000,
            max_nack_delay: Duration::from_secs(3600),
            max_ack_ids: 10_000,
            group_idle_timeout: Duration::from_secs(300),
            default_request_timeout: Duration::from_secs(5),
            max_request_timeout: Duration::from_secs(300),
            shutdown_grace: Duration::from_secs(5),
            max_stream_requests: 4096,
            max_connections: 10_000,
            max_streams_per_connection: 1_000,
            max_subscriptions: 100_000,
            max_memory_bytes: 1024 * 1024 * 1024,
            max_publish_wait: Duration::from_secs(30),
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            tls_handshake_timeout: Duration::from_secs(10),
            auth_file: None,
            auth_tokens: Vec::new(),
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
            ready_file: None,
        }
    }
}

/// A configuration that cannot work, named by its setting.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {setting}: {reason}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub reason: String,
}

impl Config {
    /// The limits that topic and pattern parsing apply.
    pub fn topic_limits(&self) -> crate::topic::TopicLimits {
        crate::topic::TopicLimits {
            max_bytes: self.max_topic_bytes,
            max_tokens: self.max_topic_tokens,
        }
    }

    /// Rejects settings that would make the broker misbehave rather than merely be strict.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |setting, reason: String| Err(ConfigError { setting, reason });
        let positive: [(&'static str, u64); 16] = [
            ("max_payload_bytes", self.max_payload_bytes as u64),
            ("max_batch_messages", self.max_batch_messages as u64),
            ("max_topic_bytes", self.max_topic_bytes as u64),
            ("max_topic_tokens", self.max_topic_tokens as u64),
            ("max_group_name_bytes", self.max_group_name_bytes as u64),
            ("subscriber_buffer", self.subscriber_buffer as u64),
            ("default_prefetch", u64::from(self.default_prefetch)),
            ("default_max_length", u64::from(self.default_max_length)),
            ("max_ack_ids", self.max_ack_ids as u64),
            ("max_stream_requests", self.max_stream_requests as u64),
            ("max_connections", self.max_connections as u64),
            (
                "max_streams_per_connection",
                u64::from(self.max_streams_per_connection),
            ),
            ("max_subscriptions", self.max_subscriptions as u64),
            ("max_memory_bytes", self.max_memory_bytes as u64),
            ("max_publish_wait", self.max_publish_wait.as_millis() as u64),
            (
                "default_ack_deadline",
                self.default_ack_deadline.as_millis() as u64,
            ),
        ];
        for (setting, value) in positive {
            if value == 0 {
                return fail(setting, "must be greater than 0".into());
            }
        }
        let envelope = self.max_payload_bytes.saturating_add(64 * 1024);
        if self.max_request_bytes < envelope {
            return fail(
                "max_request_bytes",
                format!("must be at least max_payload_bytes + 64 KiB ({envelope})"),
            );
        }
        if self.default_prefetch > self.max_prefetch {
            return fail("default_prefetch", "must not exceed max_prefetch".into());
        }
        if self.default_ack_deadline > self.max_ack_deadline {
            return fail(
                "default_ack_deadline",
                "must not exceed max_ack_deadline".into(),
            );
        }
        if self.default_request_timeout.is_zero()
            || self.default_request_timeout > self.max_request_timeout
        {
            return fail(
                "default_request_timeout",
                "must be greater than 0 and not exceed max_request_timeout".into(),
            );
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => return fail("tls_cert", "needs tls_key as well".into()),
            (None, Some(_)) => return fail("tls_key", "needs tls_cert as well".into()),
            _ => {}
        }
        if self.tls_client_ca.is_some() && self.tls_cert.is_none() {
            return fail(
                "tls_client_ca",
                "needs tls_cert and tls_key: client certificates are checked only over TLS".into(),
            );
        }
        if self.tls_handshake_timeout.is_zero() {
            return fail("tls_handshake_timeout", "must be greater than 0".into());
        }
        // A zero interval would ping without pause, and a zero timeout would close every connection
        // at its first ping; neither is a way to turn keepalive off.
        for (setting, value) in [
            ("keepalive_interval", self.keepalive_interval),
            ("keepalive_timeout", self.keepalive_timeout),
        ] {
            if value.is_zero() {
                return fail(setting, "must be greater than 0".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn request_limit_must_fit_a_maximal_payload() {
        let config = Config {
            max_request_bytes: 1024 * 1024,
            ..Config::default()
        };
        let error = config.validate().unwrap_err();
        assert_eq!(error.setting, "max_request_bytes");
    }

    #[test]
    fn tls_needs_both_cert_and_key_and_mutual_tls_needs_tls() {
        let with = |cert: bool, key: bool, client_ca: bool| Config {
            tls_cert: cert.then(|| "cert.pem".into()),
            tls_key: key.then(|| "key.pem".into()),
            tls_client_ca: client_ca.then(|| "ca.pem".into()),
            ..Config::default()
        };
        assert_eq!(
            with(true, false, false).validate().unwrap_err().setting,
            "tls_cert"
        );
        assert_eq!(
            with(false, true, false).validate().unwrap_err().setting,
            "tls_key"
        );
        assert_eq!(
            with(false, false, true).validate().unwrap_err().setting,
            "tls_client_ca"
        );
        with(true, true, true).validate().unwrap();
    }

    #[test]
    fn keepalive_must_be_positive() {
        for (config, setting) in [
            (
                Config {
                    keepalive_interval: Duration::ZERO,
                    ..Config::default()
                },
                "keepalive_interval",
            ),
            (
                Config {
                    keepalive_timeout: Duration::ZERO,
                    ..Config::default()
                },
                "keepalive_timeout",
            ),
        ] {
            assert_eq!(config.validate().unwrap_err().setting, setting);
        }
    }
}
