//! The command line: `switchyard [serve]` with a flag and a `SWITCHYARD_*` variable per setting (and
//! a config file), and the client commands that talk to a running broker through
//! `switchyard_client`. This file is the root parser; `serve` puts the configuration together,
//! `client` holds the client commands' arguments, `legacy` the old names of renamed flags.

mod client;
mod help;
mod legacy;
mod serve;

use std::ffi::OsString;

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};

pub use client::{
    ClientArgs, ConsumeArgs, GroupsCommand, GroupsDeclareArgs, GroupsDeleteArgs, GroupsListArgs,
    Mode, OutgoingArgs, PublishArgs, ReplyArgs, RequestArgs, SubscribeArgs, TopArgs,
};
pub use serve::{Serve, ServeArgs, SettingsError};

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

// Made once per process: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
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
    #[command(name = "pub", after_long_help = help::PUBLISH)]
    Publish(PublishArgs),
    /// Print the messages published to a topic pattern.
    #[command(name = "sub", after_long_help = help::MESSAGE_OUTPUT)]
    Subscribe(SubscribeArgs),
    /// Join a queue group and print (and ack) the messages it hands out.
    #[command(after_long_help = help::CONSUME_OUTPUT)]
    Consume(ConsumeArgs),
    /// Send a request and print the reply.
    #[command(after_long_help = help::REQUEST)]
    Request(RequestArgs),
    /// Answer requests: echo each one, or run a command per request.
    #[command(after_long_help = help::REPLY)]
    Reply(ReplyArgs),
    /// List, declare and delete queue groups.
    #[command(subcommand)]
    Groups(GroupsCommand),
    /// Watch a broker: rates, groups, subscriptions and connections, redrawn every second.
    #[command(after_long_help = crate::commands::top::HELP)]
    Top(TopArgs),
    /// Measure a broker: throughput, latency, loss and CPU under load.
    #[command(after_long_help = crate::commands::bench::HELP)]
    Bench(crate::commands::bench::BenchArgs),
}

/// What the command line asks for.
#[allow(clippy::large_enum_variant)] // made once per process
#[derive(Debug)]
pub enum Invocation {
    Serve(Serve),
    Client(ClientCommand),
}

/// Parses `argv` (the program name first). A usage error, `--help` and `--version` come back as
/// [`SettingsError::Arguments`], for `clap::Error::exit` to print with clap's status.
pub fn parse(argv: Vec<OsString>) -> Result<Invocation, SettingsError> {
    let matches = command().try_get_matches_from(&argv)?;
    let cli = Cli::from_arg_matches(&matches)?;
    let args = match cli.command {
        Some(Command::Client(command)) => return Ok(Invocation::Client(command)),
        Some(Command::Serve(args)) => args,
        None => cli.serve,
    };
    let serve = Serve::resolve(args, serve_matches(&matches), &argv)?;
    Ok(Invocation::Serve(serve))
}

/// The whole command line, with the hidden old names of renamed serve flags.
pub fn command() -> clap::Command {
    legacy::add_to(Cli::command()).mut_subcommand("serve", legacy::add_to)
}

/// [`command`] with no defaults on the serve flags: a parse with it finds only what was given as a
/// flag or a variable.
fn command_without_defaults() -> clap::Command {
    let strip = |arg: clap::Arg| arg.default_value(None);
    command()
        .mut_args(strip)
        .mut_subcommand("serve", |serve| serve.mut_args(strip))
}

/// The serve arguments of a parse: those of `serve`, or the root's for plain `switchyard`.
fn serve_matches(matches: &ArgMatches) -> &ArgMatches {
    matches.subcommand_matches("serve").unwrap_or(matches)
}

#[cfg(test)]
mod tests {
    use std::{path::PathBuf, time::Duration};

    use secrecy::ExposeSecret;
    use switchyard::config::Config;

    use super::*;

    fn serve(args: &[&str]) -> Result<Serve, SettingsError> {
        let argv = std::iter::once("switchyard").chain(args.iter().copied());
        match parse(argv.map(OsString::from).collect())? {
            Invocation::Serve(serve) => Ok(serve),
            other => panic!("expected serve, got {other:?}"),
        }
    }

    fn client(args: &[&str]) -> ClientCommand {
        let argv = std::iter::once("switchyard").chain(args.iter().copied());
        match parse(argv.map(OsString::from).collect()) {
            Ok(Invocation::Client(command)) => command,
            other => panic!("expected a client command, got {other:?}"),
        }
    }

    fn config_file(text: &str) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("switchyard.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path.to_str().unwrap().to_owned())
    }

    #[test]
    fn flags_reach_the_config_with_or_without_serve() {
        for prefix in [&[][..], &["serve"][..]] {
            let mut args = prefix.to_vec();
            args.extend([
                "--listen",
                "127.0.0.1:7000",
                "--default-prefetch",
                "5",
                "--keepalive-interval",
                "1s",
                "--default-ack-deadline",
                "1m 30s",
                "--subscriber-buffer-bytes",
                "1024",
            ]);
            let config = serve(&args).unwrap().config;
            assert_eq!(config.listen.port(), 7000);
            assert_eq!(config.default_prefetch, 5);
            assert_eq!(config.keepalive_interval, Duration::from_secs(1));
            assert_eq!(config.default_ack_deadline, Duration::from_secs(90));
            assert_eq!(config.subscriber_buffer_bytes, 1024);
        }
    }

    #[test]
    fn no_flags_is_the_default_config() {
        let config = serve(&["serve"]).unwrap().config;
        assert_eq!(format!("{config:?}"), format!("{:?}", Config::default()));
    }

    #[test]
    fn a_bare_number_is_no_duration() {
        let error = serve(&["--shutdown-grace", "5"]).unwrap_err();
        assert!(error.to_string().contains("--shutdown-grace"), "{error}");
    }

    /// Flag over file over default (variables are covered by the process tests in tests/config.rs).
    #[test]
    fn a_flag_beats_the_file_and_the_file_beats_the_default() {
        let (_dir, path) =
            config_file("max_headers = 3\nshutdown_grace = \"2s\"\nmax_topic_tokens = 9\n");
        for prefix in [&[][..], &["serve"][..]] {
            let mut args = prefix.to_vec();
            args.extend(["--config", &path, "--max-headers", "5"]);
            let config = serve(&args).unwrap().config;
            assert_eq!(config.max_headers, 5);
            assert_eq!(config.shutdown_grace, Duration::from_secs(2));
            assert_eq!(config.max_topic_tokens, 9);
            assert_eq!(
                config.max_payload_bytes,
                Config::default().max_payload_bytes
            );
        }
    }

    #[test]
    fn an_old_flag_beats_the_file() {
        let (_dir, path) = config_file("shutdown_grace = \"2s\"\n");
        let serve = serve(&["--config", &path, "--shutdown-grace-secs", "7"]).unwrap();
        assert_eq!(serve.config.shutdown_grace, Duration::from_secs(7));
        assert_eq!(serve.warnings.len(), 1);
    }

    #[test]
    fn an_unknown_key_names_itself_and_the_file() {
        let (_dir, path) = config_file("max_header = 3\n");
        let error = serve(&["--config", &path]).unwrap_err().to_string();
        assert!(
            error.contains("max_header") && error.contains(&path),
            "{error}"
        );
    }

    #[test]
    fn security_flags_reach_the_config_and_tokens_never_show() {
        let serve = serve(&[
            "serve",
            "--tls-cert",
            "server.pem",
            "--tls-key",
            "server.key",
            "--tls-client-ca",
            "ca.pem",
            "--tls-handshake-timeout",
            "250ms",
            "--auth-file",
            "tokens.json",
            "--auth-token",
            "s3cret-1",
            "--auth-token",
            "s3cret-2",
            "--print-config",
        ])
        .unwrap();
        assert!(serve.print_config);
        let config = serve.config;
        assert!(!format!("{config:?}").contains("s3cret"));
        assert!(!config.to_toml().unwrap().contains("s3cret"));
        assert_eq!(config.tls_cert, Some(PathBuf::from("server.pem")));
        assert_eq!(config.tls_key, Some(PathBuf::from("server.key")));
        assert_eq!(config.tls_client_ca, Some(PathBuf::from("ca.pem")));
        assert_eq!(config.tls_handshake_timeout, Duration::from_millis(250));
        assert_eq!(config.auth_file, Some(PathBuf::from("tokens.json")));
        let expected: Vec<switchyard::auth::TokenDigest> =
            vec!["s3cret-1".parse().unwrap(), "s3cret-2".parse().unwrap()];
        assert_eq!(config.auth_tokens, expected);
        // A certificate without its key is the configuration's to refuse (it may be in the file).
        let half = self::serve(&["--tls-cert", "server.pem"]).unwrap().config;
        assert_eq!(half.validate().unwrap_err().setting, "tls_cert");
        assert!(self::serve(&["--auth-token", ""]).is_err());
    }

    #[test]
    fn client_commands_take_a_token_and_tls_files() {
        let command = client(&[
            "pub",
            "orders.created",
            "x",
            "--token",
            "s3cret",
            "--tls-ca",
            "ca.pem",
        ]);
        assert!(!format!("{command:?}").contains("s3cret"));
        let ClientCommand::Publish(args) = command else {
            panic!("expected pub, got {command:?}");
        };
        let token = args.client.auth.token.as_ref().map(|t| t.expose_secret());
        assert_eq!(token, Some("s3cret"));
        assert_eq!(args.client.tls_ca, Some(PathBuf::from("ca.pem")));
    }

    /// clap's own checks of the definitions (conflicting names, bad defaults), old names included.
    #[test]
    fn the_command_line_is_consistent() {
        command().debug_assert();
        command_without_defaults().debug_assert();
    }

    #[test]
    fn the_client_commands_parse_beside_plain_serve() {
        let ClientCommand::Publish(args) = client(&["pub", "orders.created", "-H", "a=b=c"]) else {
            panic!("expected pub");
        };
        assert_eq!(args.message.headers, [("a".to_owned(), "b=c".to_owned())]);
        assert_eq!(args.payload, None);
        let ClientCommand::Request(args) = client(&["request", "svc", "x", "--timeout", "250ms"])
        else {
            panic!("expected request");
        };
        assert_eq!(args.timeout, Duration::from_millis(250));
    }

    #[test]
    fn ack_is_the_default_and_the_last_of_ack_and_no_ack_wins() {
        let consume = |extra: &[&str]| {
            let mut args = vec!["consume", "jobs", "-g", "workers"];
            args.extend(extra);
            match client(&args) {
                ClientCommand::Consume(args) => args.no_ack,
                other => panic!("expected consume, got {other:?}"),
            }
        };
        assert!(!consume(&[]));
        assert!(consume(&["--no-ack"]));
        assert!(!consume(&["--no-ack", "--ack"]));
    }
}
