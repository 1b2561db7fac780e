//! The command line: `switchyard [serve]` with a flag, and a `SWITCHYARD_*` variable, per setting;
//! and the client commands (`pub`, `sub`, `consume`, `request`, `reply`, `groups`) that talk to a
//! running broker through `switchyard_client`.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};
use switchyard::{auth::Secret, config::Config};
use switchyard_client::ConsumeMode;

#[derive(Debug, Parser)]
#[command(
    name = "switchyard",
    version,
    about = "A message broker that speaks gRPC, and a command line client for it",
    long_about = "A message broker that speaks gRPC, and a command line client for it.\n\n\
        With no command, or with `serve`, it runs the broker. The other commands connect to a \
        running broker (--server, default http://127.0.0.1:50051) and print one line per message.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// With no subcommand, `switchyard` serves with these flags.
    #[command(flatten, next_help_heading = "Serve options (with no command)")]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the broker (the default).
    Serve(ServeArgs),
    #[command(flatten)]
    Client(ClientCommand),
}

/// The commands that talk to a running broker.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Publish a message, or one message per line of stdin.
    #[command(name = "pub", after_long_help = PUBLISH_HELP)]
    Publish(PublishArgs),
    /// Print the messages published to a topic pattern.
    #[command(name = "sub", after_long_help = MESSAGE_OUTPUT_HELP)]
    Subscribe(SubscribeArgs),
    /// Join a queue group and print (and ack) the messages it hands out.
    #[command(after_long_help = CONSUME_OUTPUT_HELP)]
    Consume(ConsumeArgs),
    /// Send a request and print the reply.
    #[command(after_long_help = REQUEST_HELP)]
    Request(RequestArgs),
    /// Answer requests: echo each one, or run a command per request.
    #[command(after_long_help = REPLY_HELP)]
    Reply(ReplyArgs),
    /// List, declare and delete queue groups.
    #[command(subcommand)]
    Groups(GroupsCommand),
    /// Measure a broker: throughput, latency, loss and CPU under load.
    #[command(after_long_help = crate::commands::bench::HELP)]
    Bench(crate::commands::bench::BenchArgs),
}

const MESSAGE_OUTPUT_HELP: &str = "\
Output: one line per message on stdout, `[topic] (header=value, ...) payload`, with `key=...` \
before the headers when the message has a key. Control characters in a payload are escaped so a \
message stays on one line, and a payload that is not UTF-8 is shown as `base64:...`.

With --json, one JSON object per line: id, topic, headers, published_at (RFC 3339), and key, \
reply_to, correlation_id when set. The payload is the string `payload` when it is valid UTF-8; \
otherwise it is `payload_base64` (standard alphabet, padded) and `payload` is absent.

Notes (subscribed, reconnecting, messages missed by a slow subscriber) go to stderr.";

const CONSUME_OUTPUT_HELP: &str = "\
Output: one line per delivery on stdout, `[topic] attempt=N delivery=ID (header=value, ...) \
payload`; see `switchyard sub --help` for how payloads are shown. With --json, the object of \
`sub --json` plus `delivery_id` and `attempt`.

Each delivery is acked once its line is written (unless --no-ack). With --no-ack, deliveries stay \
unsettled: they go back to the group when their ack deadline passes or when this command exits.";

const PUBLISH_HELP: &str = "\
Without a PAYLOAD argument, every line of stdin (without its line ending) is published as one \
message, in order, until end of input: `printf 'a\\nb\\n' | switchyard pub jobs.new` publishes two \
messages.

Output: one line per message published, with the id the broker gave it and how many subscribers \
and groups it reached; with --json, {\"topic\", \"id\", \"subscribers\", \"groups\"} per line.";

const REQUEST_HELP: &str = "\
Without a PAYLOAD argument, every line of stdin is sent as one request, one after the other, and \
each reply is printed as it comes.

Each reply is printed on one line as its payload, after `key=...` and `(header=value, ...)` when \
it has them (see `switchyard sub --help` for how payloads are shown); with --json, as the JSON \
object of `sub --json`, whose topic is the request's reply inbox.

No responder on the topic, or no reply in time, is an error (exit status 1).";

const REPLY_HELP: &str = "\
Each request is printed like a message of `switchyard sub`, then answered. Without --exec the \
reply is the request's payload. With --exec, COMMAND runs through `sh -c` once per request, with \
the payload on its stdin; its stdout (less one trailing newline) is the reply. A command that \
fails or outlasts --exec-timeout sends no reply (the requester times out) and the request is \
rejected. Responders in one group share the requests, so more of them answer more at once.";

/// Where the broker is and how to print; shared by every client command.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// URL of the broker.
    #[arg(
        long,
        env = "SWITCHYARD_SERVER",
        default_value = "http://127.0.0.1:50051",
        value_name = "URL"
    )]
    pub server: String,
    /// Print one JSON object per line instead of text.
    ///
    /// Payloads that are valid UTF-8 are the string "payload"; any other payload is base64 under
    /// "payload_base64" instead.
    #[arg(long)]
    pub json: bool,
    /// Bearer token sent with every call, for a broker with authentication on.
    #[arg(
        long,
        env = "SWITCHYARD_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<Secret>,
    /// PEM CA certificate that signed the broker's: connect over TLS (an https:// URL).
    #[arg(long, env = "SWITCHYARD_TLS_CA", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// PEM client certificate, for a broker that requires one (mutual TLS).
    #[arg(
        long,
        env = "SWITCHYARD_TLS_CLIENT_CERT",
        value_name = "FILE",
        requires = "tls_client_key"
    )]
    pub tls_client_cert: Option<PathBuf>,
    /// PEM private key of --tls-client-cert.
    #[arg(
        long,
        env = "SWITCHYARD_TLS_CLIENT_KEY",
        value_name = "FILE",
        requires = "tls_client_cert"
    )]
    pub tls_client_key: Option<PathBuf>,
    /// The name the broker's certificate must carry, when it is not the URL's host.
    #[arg(long, env = "SWITCHYARD_TLS_DOMAIN", value_name = "NAME")]
    pub tls_domain: Option<String>,
}

impl ClientArgs {
    /// `url` without a token or TLS, printing text: what the load generator connects with.
    pub fn plaintext(url: String) -> Self {
        Self {
            server: url,
            json: false,
            token: None,
            tls_ca: None,
            tls_client_cert: None,
            tls_client_key: None,
            tls_domain: None,
        }
    }
}

/// What a published message or a request carries besides its topic and payload.
#[derive(Debug, Args)]
pub struct OutgoingArgs {
    /// A header, as NAME=VALUE; repeat for more.
    #[arg(
        long = "header",
        short = 'H',
        visible_alias = "headers",
        value_name = "NAME=VALUE",
        value_parser = parse_header
    )]
    pub headers: Vec<(String, String)>,
    /// The message key.
    #[arg(long)]
    pub key: Option<String>,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Topic to publish to (no wildcards).
    pub topic: String,
    /// The payload; without it, each line of stdin is one message.
    pub payload: Option<String>,
    #[command(flatten)]
    pub message: OutgoingArgs,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct SubscribeArgs {
    /// Topic pattern: `*` matches one token, `>` one or more trailing tokens.
    pub pattern: String,
    /// Stop after this many messages.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// Topic pattern of the group: `*` matches one token, `>` one or more trailing tokens.
    pub topic: String,
    /// The group to join; it is created with the broker's defaults if it does not exist.
    #[arg(long, short = 'g')]
    pub group: String,
    /// How the group hands out messages; must match the group's mode if it exists.
    #[arg(long, value_enum, default_value_t = Mode::Shared)]
    pub mode: Mode,
    /// Exclusive groups: wait to take over instead of being refused while another consumer is active.
    #[arg(long)]
    pub standby: bool,
    /// Most unacked deliveries at once; 0 is the broker's default.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub prefetch: u32,
    /// Ack deadline of this consumer's deliveries (e.g. 30s); default the group's.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub ack_deadline: Option<Duration>,
    /// Stop after this many deliveries (and ask for a prefetch of at most N).
    ///
    /// What the broker sent beyond the N printed goes back to the group on exit, with one more
    /// attempt counted; capping the prefetch at N bounds how many.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Ack each delivery once it is printed (the default).
    #[arg(long, overrides_with = "no_ack")]
    pub ack: bool,
    /// Leave deliveries unsettled: they return to the group after their ack deadline, or on exit.
    #[arg(long, overrides_with = "ack")]
    pub no_ack: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct RequestArgs {
    /// Topic to send the request to (no wildcards).
    pub topic: String,
    /// The payload; without it, each line of stdin is one request.
    pub payload: Option<String>,
    /// How long to wait for each reply (e.g. 500ms, 5s, 1m).
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
    #[command(flatten)]
    pub message: OutgoingArgs,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct ReplyArgs {
    /// Topic pattern to answer requests on.
    pub topic: String,
    /// Queue group of the responders: each request goes to one member.
    #[arg(long, short = 'g', default_value = "responders")]
    pub group: String,
    /// Run COMMAND (through `sh -c`) per request: payload on stdin, reply from stdout.
    #[arg(long, value_name = "COMMAND")]
    pub exec: Option<String>,
    /// Longest an --exec command may run before it is killed and the request rejected.
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub exec_timeout: Duration,
    /// Requests handled at once.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub concurrency: usize,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// List every group with its counters.
    #[command(visible_alias = "ls")]
    List(GroupsListArgs),
    /// Create a group ahead of traffic, or check that an identical one exists.
    Declare(GroupsDeclareArgs),
    /// Delete a group with its messages; its consumers are ended.
    #[command(visible_alias = "rm")]
    Delete(GroupsDeleteArgs),
}

#[derive(Debug, Args)]
pub struct GroupsListArgs {
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct GroupsDeclareArgs {
    /// Topic pattern of the group: `*` matches one token, `>` one or more trailing tokens.
    pub topic: String,
    /// Name of the group (one token).
    #[arg(long, short = 'g')]
    pub group: String,
    /// How the group hands out messages.
    #[arg(long, value_enum, default_value_t = Mode::Shared)]
    pub mode: Mode,
    /// Messages the group may hold before a publish to it fails; default the broker's.
    #[arg(long, value_name = "N")]
    pub max_length: Option<u32>,
    /// Bytes the group's messages may take (payload plus a fixed overhead each); default no limit.
    #[arg(long, value_name = "BYTES")]
    pub max_bytes: Option<u64>,
    /// Ack deadline of the group's deliveries (e.g. 30s); default the broker's.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub ack_deadline: Option<Duration>,
    /// Deliveries before a failing message is dead-lettered; default unlimited.
    #[arg(long, value_name = "N")]
    pub max_deliveries: Option<u32>,
    /// Where dead letters are published; without it they are discarded.
    #[arg(long, value_name = "TOPIC")]
    pub dead_letter_topic: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct GroupsDeleteArgs {
    /// Topic pattern of the group, as it was declared or consumed.
    pub topic: String,
    /// Name of the group.
    #[arg(long, short = 'g')]
    pub group: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// A group's mode, as the command line spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Competing consumers: each message goes to one of them.
    Shared,
    /// One active consumer at a time, in publish order.
    Exclusive,
}

impl From<Mode> for ConsumeMode {
    fn from(mode: Mode) -> Self {
        match mode {
            Mode::Shared => ConsumeMode::Shared,
            Mode::Exclusive => ConsumeMode::Exclusive,
        }
    }
}

/// `NAME=VALUE`, split at the first `=`.
fn parse_header(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("expected NAME=VALUE, got {text:?}")),
    }
}

/// A whole number with a unit: `250ms`, `5s`, `2m`; a bare number is seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("expected a duration like 500ms, 5s or 1m, got {text:?}"))?;
    match &text[digits.len()..] {
        "ms" => Ok(Duration::from_millis(number)),
        "" | "s" => Ok(Duration::from_secs(number)),
        "m" => Ok(Duration::from_secs(number.saturating_mul(60))),
        unit => Err(format!("unknown unit {unit:?} in {text:?}; use ms, s or m")),
    }
}

/// Every setting of [`Config`]; the defaults here are `Config::default()`'s.
#[derive(Debug, Parser)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SWITCHYARD_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    /// Largest message payload, in bytes.
    #[arg(long, env = "SWITCHYARD_MAX_PAYLOAD_BYTES", default_value_t = 1024 * 1024)]
    pub max_payload_bytes: usize,
    /// Largest gRPC message either way, in bytes (bounds a Publish batch).
    #[arg(long, env = "SWITCHYARD_MAX_REQUEST_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_request_bytes: usize,
    /// Most messages in one Publish.
    #[arg(long, env = "SWITCHYARD_MAX_BATCH_MESSAGES", default_value_t = 1000)]
    pub max_batch_messages: usize,
    /// Longest topic or pattern, in bytes.
    #[arg(long, env = "SWITCHYARD_MAX_TOPIC_BYTES", default_value_t = 256)]
    pub max_topic_bytes: usize,
    /// Most tokens in a topic or pattern.
    #[arg(long, env = "SWITCHYARD_MAX_TOPIC_TOKENS", default_value_t = 32)]
    pub max_topic_tokens: usize,
    /// Longest group name, in bytes.
    #[arg(long, env = "SWITCHYARD_MAX_GROUP_NAME_BYTES", default_value_t = 128)]
    pub max_group_name_bytes: usize,
    /// Most headers on one message.
    #[arg(long, env = "SWITCHYARD_MAX_HEADERS", default_value_t = 64)]
    pub max_headers: usize,
    /// Most header bytes (names and values) on one message.
    #[arg(long, env = "SWITCHYARD_MAX_HEADER_BYTES", default_value_t = 16 * 1024)]
    pub max_header_bytes: usize,
    /// Longest key, correlation id or reply_to, in bytes.
    #[arg(long, env = "SWITCHYARD_MAX_ID_BYTES", default_value_t = 256)]
    pub max_id_bytes: usize,
    /// Messages buffered per subscriber before it gets a Gap.
    #[arg(long, env = "SWITCHYARD_SUBSCRIBER_BUFFER", default_value_t = 4096)]
    pub subscriber_buffer: usize,
    /// Unacked deliveries per consumer when it asks for 0.
    #[arg(long, env = "SWITCHYARD_DEFAULT_PREFETCH", default_value_t = 64)]
    pub default_prefetch: u32,
    /// Largest prefetch a consumer may ask for.
    #[arg(long, env = "SWITCHYARD_MAX_PREFETCH", default_value_t = 10_000)]
    pub max_prefetch: u32,
    /// Ack deadline of groups created without one, in milliseconds.
    #[arg(
        long,
        env = "SWITCHYARD_DEFAULT_ACK_DEADLINE_MS",
        default_value_t = 30_000
    )]
    pub default_ack_deadline_ms: u64,
    /// Longest ack deadline, in milliseconds.
    #[arg(
        long,
        env = "SWITCHYARD_MAX_ACK_DEADLINE_MS",
        default_value_t = 3_600_000
    )]
    pub max_ack_deadline_ms: u64,
    /// Messages a group holds when created without max_length.
    #[arg(long, env = "SWITCHYARD_DEFAULT_MAX_LENGTH", default_value_t = 100_000)]
    pub default_max_length: u32,
    /// Longest nack delay, in milliseconds.
    #[arg(
        long,
        env = "SWITCHYARD_MAX_NACK_DELAY_MS",
        default_value_t = 3_600_000
    )]
    pub max_nack_delay_ms: u64,
    /// Most delivery ids in one Ack call.
    #[arg(long, env = "SWITCHYARD_MAX_ACK_IDS", default_value_t = 10_000)]
    pub max_ack_ids: usize,
    /// Seconds an undeclared group may sit without consumers and messages before it is removed.
    #[arg(
        long,
        env = "SWITCHYARD_GROUP_IDLE_TIMEOUT_SECS",
        default_value_t = 300
    )]
    pub group_idle_timeout_secs: u64,
    /// Request timeout when a request gives none, in milliseconds.
    #[arg(
        long,
        env = "SWITCHYARD_DEFAULT_REQUEST_TIMEOUT_MS",
        default_value_t = 5_000
    )]
    pub default_request_timeout_ms: u64,
    /// Longest request timeout, in milliseconds.
    #[arg(
        long,
        env = "SWITCHYARD_MAX_REQUEST_TIMEOUT_MS",
        default_value_t = 300_000
    )]
    pub max_request_timeout_ms: u64,
    /// Seconds shutdown waits for connections after ending every stream.
    #[arg(long, env = "SWITCHYARD_SHUTDOWN_GRACE_SECS", default_value_t = 5)]
    pub shutdown_grace_secs: u64,
    /// Requests one RequestStream may have waiting for replies before the broker stops reading it.
    #[arg(long, env = "SWITCHYARD_MAX_STREAM_REQUESTS", default_value_t = 4096)]
    pub max_stream_requests: usize,
    /// Client connections served at once; more are closed when accepted.
    #[arg(long, env = "SWITCHYARD_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Concurrent calls on one HTTP/2 connection.
    #[arg(
        long,
        env = "SWITCHYARD_MAX_STREAMS_PER_CONNECTION",
        default_value_t = 1_000
    )]
    pub max_streams_per_connection: u32,
    /// Subscriptions and consumers open at once on the broker.
    #[arg(long, env = "SWITCHYARD_MAX_SUBSCRIPTIONS", default_value_t = 100_000)]
    pub max_subscriptions: usize,
    /// Bytes the messages held by the broker may take (estimated per message); then Publish is refused.
    #[arg(long, env = "SWITCHYARD_MAX_MEMORY_BYTES", default_value_t = 1024 * 1024 * 1024)]
    pub max_memory_bytes: usize,
    /// Longest a publisher asking wait_for_room waits for room, in milliseconds.
    #[arg(long, env = "SWITCHYARD_MAX_PUBLISH_WAIT_MS", default_value_t = 30_000)]
    pub max_publish_wait_ms: u64,
    /// PEM certificate chain to serve TLS with (needs --tls-key).
    #[arg(
        long,
        env = "SWITCHYARD_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(
        long,
        env = "SWITCHYARD_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates: clients must present a certificate signed by one (mutual TLS).
    #[arg(
        long,
        env = "SWITCHYARD_TLS_CLIENT_CA",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_client_ca: Option<PathBuf>,
    /// Longest a TLS handshake may take, in milliseconds.
    #[arg(
        long,
        env = "SWITCHYARD_TLS_HANDSHAKE_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub tls_handshake_timeout_ms: u64,
    /// JSON file of bearer tokens and their permissions; turns authentication on.
    #[arg(long, env = "SWITCHYARD_AUTH_FILE", value_name = "FILE")]
    pub auth_file: Option<PathBuf>,
    /// A bearer token that may do everything; repeat for more (the variable takes a comma list).
    /// Turns authentication on. Prefer the variable or --auth-file: flags show in `ps`.
    #[arg(
        long = "auth-token",
        env = "SWITCHYARD_AUTH_TOKENS",
        value_name = "TOKEN",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub auth_tokens: Vec<Secret>,
    /// How long a connection may be silent before it is pinged (e.g. 30s, 500ms).
    #[arg(
        long,
        env = "SWITCHYARD_KEEPALIVE_INTERVAL",
        default_value = "30s",
        value_parser = parse_duration,
        value_name = "DURATION"
    )]
    pub keepalive_interval: Duration,
    /// How long a ping may go unanswered before the connection and its streams are closed; a
    /// consumer that vanished without closing its socket is noticed within interval + timeout.
    #[arg(
        long,
        env = "SWITCHYARD_KEEPALIVE_TIMEOUT",
        default_value = "10s",
        value_parser = parse_duration,
        value_name = "DURATION"
    )]
    pub keepalive_timeout: Duration,
    /// Once serving, write `{"listen":"HOST:PORT","pid":N}` to FILE (removed at shutdown): how a
    /// supervisor or test learns the port of `--listen 127.0.0.1:0`.
    #[arg(long, env = "SWITCHYARD_READY_FILE", value_name = "FILE")]
    pub ready_file: Option<PathBuf>,
}

impl ServeArgs {
    pub fn into_config(self) -> Config {
        Config {
            listen: self.listen,
            max_payload_bytes: self.max_payload_bytes,
            max_request_bytes: self.max_request_bytes,
            max_batch_messages: self.max_batch_messages,
            max_topic_bytes: self.max_topic_bytes,
            max_topic_tokens: self.max_topic_tokens,
            max_group_name_bytes: self.max_group_name_bytes,
            max_headers: self.max_headers,
            max_header_bytes: self.max_header_bytes,
            max_id_bytes: self.max_id_bytes,
            subscriber_buffer: self.subscriber_buffer,
            default_prefetch: self.default_prefetch,
            max_prefetch: self.max_prefetch,
            default_ack_deadline: Duration::from_millis(self.default_ack_deadline_ms),
            max_ack_deadline: Duration::from_millis(self.max_ack_deadline_ms),
            default_max_length: self.default_max_length,
            max_nack_delay: Duration::from_millis(self.max_nack_delay_ms),
            max_ack_ids: self.max_ack_ids,
            group_idle_timeout: Duration::from_secs(self.group_idle_timeout_secs),
            default_request_timeout: Duration::from_millis(self.default_request_timeout_ms),
            max_request_timeout: Duration::from_millis(self.max_request_timeout_ms),
            shutdown_grace: Duration::from_secs(self.shutdown_grace_secs),
            max_stream_requests: self.max_stream_requests,
            max_connections: self.max_connections,
            max_streams_per_connection: self.max_streams_per_connection,
            max_subscriptions: self.max_subscriptions,
            max_memory_bytes: self.max_memory_bytes,
            max_publish_wait: Duration::from_millis(self.max_publish_wait_ms),
            tls_cert: self.tls_cert,
            tls_key: self.tls_key,
            tls_client_ca: self.tls_client_ca,
            tls_handshake_timeout: Duration::from_millis(self.tls_handshake_timeout_ms),
            auth_file: self.auth_file,
            auth_tokens: self.auth_tokens,
            keepalive_interval: self.keepalive_interval,
            keepalive_timeout: self.keepalive_timeout,
            ready_file: self.ready_file,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The flag defaults are the library's defaults, so `switchyard` and `Config::default()` agree.
    #[test]
    fn flag_defaults_match_config_defaults() {
        let from_flags = format!("{:?}", ServeArgs::parse_from(["serve"]).into_config());
        assert_eq!(from_flags, format!("{:?}", Config::default()));
    }

    #[test]
    fn flags_reach_the_config() {
        let args = ServeArgs::parse_from([
            "serve",
            "--listen",
            "127.0.0.1:7000",
            "--default-prefetch",
            "5",
        ]);
        let config = args.into_config();
        assert_eq!(config.listen.port(), 7000);
        assert_eq!(config.default_prefetch, 5);
        let keepalive = ServeArgs::parse_from([
            "serve",
            "--keepalive-interval",
            "1s",
            "--keepalive-timeout",
            "500ms",
        ])
        .into_config();
        assert_eq!(keepalive.keepalive_interval, Duration::from_secs(1));
        assert_eq!(keepalive.keepalive_timeout, Duration::from_millis(500));
    }

    #[test]
    fn security_flags_reach_the_config_and_tokens_stay_out_of_debug_output() {
        let args = ServeArgs::parse_from([
            "serve",
            "--tls-cert",
            "server.pem",
            "--tls-key",
            "server.key",
            "--tls-client-ca",
            "ca.pem",
            "--tls-handshake-timeout-ms",
            "250",
            "--auth-file",
            "tokens.json",
            "--auth-token",
            "s3cret-1",
            "--auth-token",
            "s3cret-2",
        ]);
        assert!(!format!("{args:?}").contains("s3cret"));
        let config = args.into_config();
        assert!(!format!("{config:?}").contains("s3cret"));
        assert_eq!(config.tls_cert, Some(PathBuf::from("server.pem")));
        assert_eq!(config.tls_key, Some(PathBuf::from("server.key")));
        assert_eq!(config.tls_client_ca, Some(PathBuf::from("ca.pem")));
        assert_eq!(config.tls_handshake_timeout, Duration::from_millis(250));
        assert_eq!(config.auth_file, Some(PathBuf::from("tokens.json")));
        let tokens: Vec<&str> = config.auth_tokens.iter().map(|t| t.expose()).collect();
        assert_eq!(tokens, ["s3cret-1", "s3cret-2"]);
        // A certificate without its key is refused by the command line already.
        assert!(ServeArgs::try_parse_from(["serve", "--tls-cert", "server.pem"]).is_err());
    }

    #[test]
    fn client_commands_take_a_token_and_tls_files() {
        let cli = Cli::parse_from([
            "switchyard",
            "pub",
            "orders.created",
            "x",
            "--token",
            "s3cret",
            "--tls-ca",
            "ca.pem",
        ]);
        assert!(!format!("{cli:?}").contains("s3cret"));
        let Some(Command::Client(ClientCommand::Publish(args))) = cli.command else {
            panic!("expected pub, got {cli:?}");
        };
        assert_eq!(
            args.client.token.as_ref().map(Secret::expose),
            Some("s3cret")
        );
        assert_eq!(args.client.tls_ca, Some(PathBuf::from("ca.pem")));
    }

    /// clap's own checks of the definitions (conflicting names, bad defaults).
    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    /// Plain `switchyard` takes the serve flags; the client commands parse beside it.
    #[test]
    fn serve_stays_the_default_beside_the_client_commands() {
        let plain = Cli::parse_from(["switchyard", "--listen", "127.0.0.1:7000"]);
        assert!(plain.command.is_none());
        assert_eq!(plain.serve.listen.port(), 7000);
        let publish = Cli::parse_from(["switchyard", "pub", "orders.created", "-H", "a=b=c"]);
        let Some(Command::Client(ClientCommand::Publish(args))) = publish.command else {
            panic!("expected pub, got {publish:?}");
        };
        assert_eq!(args.message.headers, [("a".to_owned(), "b=c".to_owned())]);
        assert_eq!(args.payload, None);
    }

    #[test]
    fn ack_is_the_default_and_the_last_of_ack_and_no_ack_wins() {
        let consume = |extra: &[&str]| {
            let mut args = vec!["switchyard", "consume", "jobs", "-g", "workers"];
            args.extend(extra);
            match Cli::parse_from(args).command {
                Some(Command::Client(ClientCommand::Consume(args))) => args.no_ack,
                other => panic!("expected consume, got {other:?}"),
            }
        };
        assert!(!consume(&[]));
        assert!(consume(&["--no-ack"]));
        assert!(!consume(&["--no-ack", "--ack"]));
    }

    #[test]
    fn durations_and_headers_parse() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("fast").is_err());
        assert!(parse_header("novalue").is_err());
        assert!(parse_header("=x").is_err());
    }
}
