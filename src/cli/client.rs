//! The arguments of the client commands (`pub`, `sub`, `consume`, `request`, `reply`, `groups`):
//! where the broker is, how to print, and what each command sends.

use std::{path::PathBuf, time::Duration};

use clap::{Args, Subcommand, ValueEnum};
use secrecy::SecretString;
use switchyard::config::parse_duration;
use switchyard_client::ConsumeMode;

/// The bearer token of every command that talks to a broker.
#[derive(Debug, Args)]
pub struct TokenArg {
    /// Bearer token sent with every call, for a broker with authentication on.
    #[arg(
        long,
        env = "SWITCHYARD_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<SecretString>,
}

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
    #[command(flatten)]
    pub auth: TokenArg,
    /// PEM CA certificate that signed the broker's: connect over TLS (an https:// URL), trusting it
    /// alone. Without it, TLS trusts the system's roots (or SSL_CERT_FILE / SSL_CERT_DIR).
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
            auth: TokenArg { token: None },
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

/// `switchyard top`: where the broker's HTTP listener is, and how to show it.
#[derive(Debug, Args)]
pub struct TopArgs {
    /// URL of the broker's HTTP listener (its `--http` address).
    #[arg(
        long,
        env = "SWITCHYARD_HTTP_URL",
        default_value = "http://127.0.0.1:50052",
        value_name = "URL"
    )]
    pub url: String,
    // With authentication on, an admin token (`"admin": true`); HELP says so.
    #[command(flatten)]
    pub auth: TokenArg,
    /// Print one snapshot and exit, without clearing the screen.
    #[arg(long)]
    pub once: bool,
    /// How often the screen is redrawn.
    #[arg(long, default_value = "1s", value_parser = parse_interval, value_name = "DURATION")]
    pub interval: Duration,
    /// How the groups are ordered.
    #[arg(long, value_enum, default_value_t = crate::commands::top::SortBy::Name)]
    pub sort: crate::commands::top::SortBy,
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

/// A duration above zero.
fn parse_interval(text: &str) -> Result<Duration, String> {
    match parse_duration(text).map_err(|error| error.to_string())? {
        Duration::ZERO => Err("must be more than 0".to_owned()),
        interval => Ok(interval),
    }
}

/// `NAME=VALUE`, split at the first `=`.
fn parse_header(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("expected NAME=VALUE, got {text:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_split_at_the_first_equals_sign() {
        assert_eq!(parse_header("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert!(parse_header("novalue").is_err());
        assert!(parse_header("=x").is_err());
    }
}
