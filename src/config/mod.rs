//! The broker's configuration: every setting declared once, as a field of [`Config`].
//!
//! Each field carries its flag, its `SWITCHYARD_*` variable and its default (clap's `#[arg]`), its
//! config-file key and format (serde), and its documentation (the doc comment is the `--help` text
//! and the docs' settings table). `Config::default()` reads the defaults back from the flags, so
//! nothing repeats them. The struct is plain and passed in, never global: tests build it directly.

mod file;
mod http;
mod nats;
mod otlp;
mod validate;

use std::{net::SocketAddr, path::PathBuf, sync::OnceLock, time::Duration};

use clap::{Args, FromArgMatches};
use serde::{Deserialize, Serialize};

pub use file::ConfigFileError;
pub use http::{HttpAuth, HttpEndpoint, HttpListen};
pub use nats::{NatsPrefix, NatsServers};
pub use otlp::OtlpEndpoint;
pub use validate::ConfigError;

use crate::auth::TokenDigest;

/// Everything the server and the in-memory broker need to know.
///
/// Durations are human durations everywhere (`500ms`, `30s`, `2m`, `1h`): on the command line, in
/// variables and as strings in the config file.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    ///
    /// Loopback by default: nothing is exposed until asked. Port 0 lets the kernel choose one (see
    /// `ready_file`).
    #[arg(
        long,
        env = "SWITCHYARD_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:50051"
    )]
    pub listen: SocketAddr,

    /// Largest payload of one message, in bytes.
    ///
    /// Bigger ones are INVALID_ARGUMENT naming the message.
    #[arg(long, env = "SWITCHYARD_MAX_PAYLOAD_BYTES", value_name = "BYTES", default_value_t = 1024 * 1024)]
    pub max_payload_bytes: usize,

    /// Largest gRPC message either way, in bytes; bounds a whole Publish batch.
    ///
    /// Must leave room for one maximal payload plus its envelope (64 KiB), so a too-large payload is
    /// reported as such, not as a frame error.
    #[arg(long, env = "SWITCHYARD_MAX_REQUEST_BYTES", value_name = "BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_request_bytes: usize,

    /// Most messages in one Publish call or PublishStream frame.
    #[arg(
        long,
        env = "SWITCHYARD_MAX_BATCH_MESSAGES",
        value_name = "N",
        default_value_t = 1000
    )]
    pub max_batch_messages: usize,

    /// Longest topic, pattern or dead-letter topic, in bytes.
    #[arg(
        long,
        env = "SWITCHYARD_MAX_TOPIC_BYTES",
        value_name = "BYTES",
        default_value_t = 256
    )]
    pub max_topic_bytes: usize,

    /// Most dot-separated tokens in a topic or pattern.
    #[arg(
        long,
        env = "SWITCHYARD_MAX_TOPIC_TOKENS",
        value_name = "N",
        default_value_t = 32
    )]
    pub max_topic_tokens: usize,

    /// Longest group name, in bytes.
    #[arg(
        long,
        env = "SWITCHYARD_MAX_GROUP_NAME_BYTES",
        value_name = "BYTES",
        default_value_t = 128
    )]
    pub max_group_name_bytes: usize,

    /// Most headers on one message.
    #[arg(
        long,
        env = "SWITCHYARD_MAX_HEADERS",
        value_name = "N",
        default_value_t = 64
    )]
    pub max_headers: usize,

    /// Most header bytes (names and values together) on one message.
    #[arg(long, env = "SWITCHYARD_MAX_HEADER_BYTES", value_name = "BYTES", default_value_t = 16 * 1024)]
    pub max_header_bytes: usize,

    /// Longest `key`, `correlation_id` or `reply_to`, in bytes.
    #[arg(
        long,
        env = "SWITCHYARD_MAX_ID_BYTES",
        value_name = "BYTES",
        default_value_t = 256
    )]
    pub max_id_bytes: usize,

    /// Messages one subscriber may have buffered before newer ones are dropped for it (a Gap).
    ///
    /// This and `subscriber_buffer_bytes` keep a slow subscriber from slowing anyone else: past
    /// either, newer messages are dropped for that subscriber alone and it later receives a `Gap`
    /// with the exact count. NATS's default pending limit per subscription is the same.
    #[arg(
        long,
        env = "SWITCHYARD_SUBSCRIBER_BUFFER",
        value_name = "N",
        default_value_t = 65_536
    )]
    pub subscriber_buffer: usize,

    /// Bytes one subscriber may have buffered before newer messages are dropped for it (a Gap).
    ///
    /// Counted as the memory budget counts a message (`budget::footprint`: payload, fixed overhead,
    /// headers), so many 1 MiB messages fill it long before `subscriber_buffer` does. NATS's
    /// default pending bytes per subscription is the same. The broker-wide `max_memory_bytes` still
    /// bounds all buffers together.
    #[arg(
        long,
        env = "SWITCHYARD_SUBSCRIBER_BUFFER_BYTES",
        value_name = "BYTES",
        default_value_t = 64 * 1024 * 1024
    )]
    pub subscriber_buffer_bytes: usize,

    /// Unacked deliveries per consumer when the consumer asks for 0.
    #[arg(
        long,
        env = "SWITCHYARD_DEFAULT_PREFETCH",
        value_name = "N",
        default_value_t = 64
    )]
    pub default_prefetch: u32,

    /// Largest prefetch a consumer may ask for.
    #[arg(
        long,
        env = "SWITCHYARD_MAX_PREFETCH",
        value_name = "N",
        default_value_t = 10_000
    )]
    pub max_prefetch: u32,

    /// Ack deadline of a group created without one.
    #[arg(long, env = "SWITCHYARD_DEFAULT_ACK_DEADLINE", default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    #[serde(with = "humantime_serde")]
    pub default_ack_deadline: Duration,

    /// Longest ack deadline a group or consumer may ask for.
    #[arg(long, env = "SWITCHYARD_MAX_ACK_DEADLINE", default_value = "1h", value_parser = parse_duration, value_name = "DURATION")]
    #[serde(with = "humantime_serde")]
    pub max_ack_deadline: Duration,

    /// Messages a group holds (waiting, delayed and in flight) when created without `max_length`.
    #[arg(
        long,
        env = "SWITCHYARD_DEFAULT_MAX_LENGTH",
        value_name = "N",
        default_value_t = 100_000
    )]
    pub default_max_length: u32,

    /// Longest delay a nack may ask for.
    #[arg(long, env = "SWITCHYARD_MAX_NACK_DELAY", default_value = "1h", value_parser = parse_duration, value_name = "DURATION")]
    #[serde(with = "humantime_serde")]
    pub max_nack_delay: Duration,

    /// Most delivery ids in one Ack call, all lists together.
    #[arg(
        long,
        env = "SWITCHYARD_MAX_ACK_IDS",
        value_name = "N",
        default_value_t = 10_000
    )]
    pub max_ack_ids: usize,

    /// How long a group created by Consume alone may have neither consumers nor messages.
    ///
    /// Then it is removed. Declared groups stay until DeleteGroup.
    #[arg(long, env = "SWITCHYARD_GROUP_IDLE_TIMEOUT", default_value = "5m", value_parser = parse_duration, value_name = "DURATION")]
    #[serde(with = "humantime_serde")]
    pub group_idle_timeout: Duration,

    /// Request timeout when the request gives none.
    #[arg(long, env = "SWITCHYARD_DEFAULT_REQUEST_TIMEOUT", default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    #[serde(with = "humantime_serde")]
    pub default_request_timeout: Duration,

    /// Longest request timeout a request may ask for.
    #[arg(long, env = "SWITCHYARD_MAX_REQUEST_TIMEOUT", default_value = "5m", value_parser = parse_duration, value_name = "DURATION")]
    #[serde(with = "humantime_serde")]
    pub max_request_timeout: Duration,

    /// How long shutdown waits for connections to close after ending every stream.
    #[arg(long, env = "SWITCHYARD_SHUTDOWN_GRACE", default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,

    /// Requests one RequestStream may have waiting for replies.
    ///
    /// Past it the broker stops reading the stream until replies free room, so HTTP/2 flow control
    /// holds the client back.
    #[arg(
        long,
        env = "SWITCHYARD_MAX_STREAM_REQUESTS",
        value_name = "N",
        default_value_t = 4096
    )]
    pub max_stream_requests: usize,

    /// Client connections served at once; one more is closed as soon as it is accepted.
    #[arg(
        long,
        env = "SWITCHYARD_MAX_CONNECTIONS",
        value_name = "N",
        default_value_t = 10_000
    )]
    pub max_connections: usize,

    /// Concurrent gRPC calls on one HTTP/2 connection; a client past it waits for a call to end.
    ///
    /// The connection's SETTINGS_MAX_CONCURRENT_STREAMS.
    #[arg(
        long,
        env = "SWITCHYARD_MAX_STREAMS_PER_CONNECTION",
        value_name = "N",
        default_value_t = 1_000
    )]
    pub max_streams_per_connection: u32,

    /// Subscriptions and consumers open at once on the broker; one more is RESOURCE_EXHAUSTED.
    #[arg(
        long,
        env = "SWITCHYARD_MAX_SUBSCRIPTIONS",
        value_name = "N",
        default_value_t = 100_000
    )]
    pub max_subscriptions: usize,

    /// Bytes the messages held by the broker may take; past it a Publish is RESOURCE_EXHAUSTED.
    ///
    /// Messages in groups, subscriber buffers and anywhere else, by the estimate in
    /// `budget::footprint`.
    #[arg(long, env = "SWITCHYARD_MAX_MEMORY_BYTES", value_name = "BYTES", default_value_t = 1024 * 1024 * 1024)]
    pub max_memory_bytes: usize,

    /// Longest a publisher that asked to wait for room (`wait_for_room`) waits before it is refused.
    #[arg(long, env = "SWITCHYARD_MAX_PUBLISH_WAIT", default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    #[serde(with = "humantime_serde")]
    pub max_publish_wait: Duration,

    /// PEM certificate chain the server presents; with `tls_key`, the server speaks TLS only.
    #[arg(long, env = "SWITCHYARD_TLS_CERT", value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of `tls_cert`.
    #[arg(long, env = "SWITCHYARD_TLS_KEY", value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,

    /// PEM CA certificates: a client must present a certificate signed by one (mutual TLS).
    ///
    /// One without is refused during the handshake.
    #[arg(long, env = "SWITCHYARD_TLS_CLIENT_CA", value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_client_ca: Option<PathBuf>,

    /// Longest a TLS handshake may take.
    ///
    /// Handshakes run apart from the accept loop, so a client that connects and sends nothing delays
    /// no one, but it holds a socket and a task until this passes.
    #[arg(long, env = "SWITCHYARD_TLS_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    #[serde(with = "humantime_serde")]
    pub tls_handshake_timeout: Duration,

    /// JSON file of bearer tokens and their permissions; turns authentication on.
    ///
    /// With it or `auth_tokens`, every Broker and Admin call needs `authorization: Bearer <token>`
    /// (docs/security.md).
    #[arg(long, env = "SWITCHYARD_AUTH_FILE", value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_file: Option<PathBuf>,

    /// A bearer token that may do everything, admin included; turns authentication on.
    ///
    /// Repeat the flag for more, or separate tokens with commas (so a token given here cannot hold
    /// a comma; `auth_file` takes any). Flags show in `ps`: prefer the variable, the config file or
    /// `auth_file`. Only the tokens' SHA-256 digests are kept, and they are never printed.
    #[arg(
        long = "auth-token",
        env = "SWITCHYARD_AUTH_TOKENS",
        value_name = "TOKEN",
        value_delimiter = ',',
        hide_env_values = true
    )]
    #[serde(skip_serializing)]
    pub auth_tokens: Vec<TokenDigest>,

    /// How long a connection may be silent before the server pings it.
    ///
    /// With `keepalive_timeout` this bounds how long a consumer that vanished without closing its
    /// socket (a crashed host, a cut network) keeps its deliveries before they return to the group.
    #[arg(long, env = "SWITCHYARD_KEEPALIVE_INTERVAL", default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    #[serde(with = "humantime_serde")]
    pub keepalive_interval: Duration,

    /// How long a keepalive ping may go unanswered before the connection and its streams close.
    #[arg(long, env = "SWITCHYARD_KEEPALIVE_TIMEOUT", default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    #[serde(with = "humantime_serde")]
    pub keepalive_timeout: Duration,

    /// Once serving, write `{"listen":"HOST:PORT","pid":N}` to this file; removed at shutdown.
    ///
    /// With `listen` on port 0 this is how a supervisor or a test harness learns the port the kernel
    /// chose, without reading logs. The file appears whole (written beside it, then renamed).
    #[arg(long, env = "SWITCHYARD_READY_FILE", value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_file: Option<PathBuf>,

    /// HTTP listener for the dashboard (`/`), its JSON API (`/api/...`), Prometheus metrics
    /// (`/metrics`) and health (`/healthz`, `/readyz`), or `off`.
    ///
    /// Plain HTTP/1.1 (no TLS): keep it on loopback or behind a proxy or firewall. If the default
    /// address is taken (a second broker on one machine), the broker warns and serves without it;
    /// any other address that cannot be bound stops the start.
    #[arg(long, env = "SWITCHYARD_HTTP", value_name = "ADDR|off", default_value = HttpListen::DEFAULT)]
    pub http: HttpListen,

    /// With authentication on, which HTTP endpoints need a token with `"admin": true`:
    /// `dashboard` (the dashboard and the JSON API), `metrics` (those and `/metrics`) or `all`
    /// (the health endpoints too).
    ///
    /// The token goes in `Authorization: Bearer TOKEN`, or as the password of HTTP Basic
    /// authentication (any user name), which is what a browser asks for. Without authentication
    /// every endpoint is open.
    #[arg(long, env = "SWITCHYARD_HTTP_AUTH", value_name = "WHAT", default_value_t = HttpAuth::Dashboard)]
    pub http_auth: HttpAuth,

    /// Keep queue groups and their messages in this directory, durable across crashes.
    ///
    /// Unset, the broker keeps everything in memory. Set, Publish returns only once every group copy
    /// is fsynced, and settlements and group changes are durable before they are acknowledged (see
    /// the README's DURABILITY section). The directory must exist and be writable; one broker at a
    /// time may use it (an advisory lock).
    #[arg(long, env = "SWITCHYARD_DATA_DIR", value_name = "DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,

    /// At start, cut the log at damage in its middle instead of refusing to start.
    ///
    /// Drops the damaged record and everything after it, which may have been acknowledged: for an
    /// operator who has a damaged disk and no better copy. A torn tail (a record a crash cut short)
    /// is always cut, with or without this.
    #[arg(long, env = "SWITCHYARD_REPAIR")]
    pub repair: bool,

    /// Size of one segment file of the durable log, in bytes.
    ///
    /// Space is reclaimed a segment at a time: when the log takes more than twice what the groups
    /// hold plus one segment (or has more than 64 files), what is live is restated at its end and
    /// the older segments are deleted.
    #[arg(long, env = "SWITCHYARD_SEGMENT_BYTES", value_name = "BYTES", default_value_t = 64 * 1024 * 1024)]
    pub segment_bytes: u64,

    /// Export the broker's spans (publish, request, deliver, settle) to this OpenTelemetry collector.
    ///
    /// OTLP over gRPC, plain `http://HOST:PORT` (4317 is the collector's usual port). Only messages
    /// that carry a W3C `traceparent` header get spans, as children of it; unset, the broker makes
    /// no spans at all (docs/operations.md, Tracing).
    #[arg(long, env = "SWITCHYARD_OTLP_ENDPOINT", value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<OtlpEndpoint>,

    /// Cluster mode: keep groups and route messages through these NATS servers
    /// (`nats://HOST:PORT`, comma separated), with JetStream.
    ///
    /// Every node given the same servers and `nats_prefix` serves the same topics and groups, and
    /// keeps nothing that matters itself (the README's CLUSTERING section). Needs nats-server 2.10 or
    /// later with JetStream on. Credentials may ride in a URL (`nats://user:pass@host`); unset, the
    /// broker keeps everything in memory, or in `data_dir`.
    #[arg(long, env = "SWITCHYARD_NATS", value_name = "URLS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nats: Option<NatsServers>,

    /// The first subject token and the stream name of this deployment in NATS.
    ///
    /// Deployments with different prefixes share a NATS cluster without seeing each other.
    #[arg(long, env = "SWITCHYARD_NATS_PREFIX", value_name = "TOKEN", default_value = NatsPrefix::DEFAULT)]
    pub nats_prefix: NatsPrefix,

    /// Copies JetStream keeps of the stream and of every group: 1, 3 or 5.
    ///
    /// 3 survives the loss of one NATS server; 1 suits a single server (development). Fixed when the
    /// stream is first created.
    #[arg(
        long,
        env = "SWITCHYARD_NATS_REPLICAS",
        value_name = "N",
        default_value_t = 3
    )]
    pub nats_replicas: usize,

    /// A NATS credentials file (`.creds`: a user JWT and its NKey seed), for servers with
    /// decentralized authentication.
    #[arg(long, env = "SWITCHYARD_NATS_CREDENTIALS", value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nats_credentials: Option<PathBuf>,

    /// PEM certificate authorities that sign the NATS servers' certificates; set, the connection
    /// requires TLS.
    #[arg(long, env = "SWITCHYARD_NATS_TLS_CA", value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nats_tls_ca: Option<PathBuf>,

    /// PEM client certificate for NATS servers that verify their clients (with `nats_tls_key`).
    #[arg(long, env = "SWITCHYARD_NATS_TLS_CERT", value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nats_tls_cert: Option<PathBuf>,

    /// PEM private key of `nats_tls_cert`.
    #[arg(long, env = "SWITCHYARD_NATS_TLS_KEY", value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nats_tls_key: Option<PathBuf>,
}

/// A human duration: `500ms`, `30s`, `2m`, `1h 30m`. A bare number is refused: its unit would be a
/// guess.
pub fn parse_duration(text: &str) -> Result<Duration, humantime::DurationError> {
    humantime::parse_duration(text)
}

impl Default for Config {
    /// The defaults declared on the flags, read back through clap with the variables ignored, so
    /// that `Config::default()`, `--help` and the docs cannot disagree.
    fn default() -> Self {
        static DEFAULT: OnceLock<Config> = OnceLock::new();
        DEFAULT
            .get_or_init(|| {
                let command = Config::augment_args(clap::Command::new("defaults"))
                    .mut_args(|arg| arg.env(None));
                // Cannot fail: every field has a default or is optional, and no argument is given.
                // The `defaults_are_valid` test runs this path.
                let matches = command
                    .try_get_matches_from(["defaults"])
                    .expect("the defaults parse");
                Config::from_arg_matches(&matches).expect("the defaults convert")
            })
            .clone()
    }
}

impl Config {
    /// The limits that topic and pattern parsing apply.
    pub fn topic_limits(&self) -> crate::topic::TopicLimits {
        crate::topic::TopicLimits {
            max_bytes: self.max_topic_bytes,
            max_tokens: self.max_topic_tokens,
        }
    }
}
