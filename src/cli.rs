//! The command line: `switchyard [serve]` with a flag, and a `SWITCHYARD_*` variable, per setting.

use std::{net::SocketAddr, time::Duration};

use clap::{Parser, Subcommand};
use switchyard::config::Config;

#[derive(Debug, Parser)]
#[command(
    name = "switchyard",
    version,
    about = "A message broker that speaks gRPC",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// With no subcommand, `switchyard` serves with these flags.
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the broker (the default).
    Serve(ServeArgs),
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
    }
}
