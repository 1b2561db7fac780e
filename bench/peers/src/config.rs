//! The command line: the scenarios and flags of `switchyard bench`, with the same names, defaults
//! and meaning, plus where the broker is. Both peers share these flags; a [`Broker`] supplies the
//! program's name, the server's default address and the help texts that differ per broker. One flag
//! is a broker's own: `--storage`, which only a broker with `storage_help` (NATS) has.

use std::time::Duration;

use clap::{Arg, ArgMatches, CommandFactory, FromArgMatches, Parser, ValueEnum};

/// What tells one peer program from the other: its names and the help of the flags whose meaning
/// depends on the broker.
#[derive(Debug)]
pub struct Broker {
    /// `"broker"` in the JSON report, and the first word of the summary: `nats`.
    pub name: &'static str,
    /// The program: `nats-peer`.
    pub program: &'static str,
    /// The server's process: `nats-server`.
    pub server: &'static str,
    /// `--server`'s default.
    pub default_url: &'static str,
    /// `--server`'s help.
    pub server_help: &'static str,
    /// `--consumers`' help.
    pub consumers_help: &'static str,
    /// `--responders`' help.
    pub responders_help: &'static str,
    /// `--prefetch`'s help.
    pub prefetch_help: &'static str,
    /// `--storage`'s help, for a broker whose queue chooses where it stores messages. `None` leaves
    /// the flag out, so the program refuses it rather than ignore it: Redis persists by its
    /// server's configuration, not by anything a client asks for.
    pub storage_help: Option<&'static str>,
}

/// Runs one Switchyard benchmark scenario against a broker and prints what
/// `switchyard bench --json` prints, with the broker's name in `"broker"`.
#[derive(Debug, Parser)]
#[command(version)]
pub struct Args {
    /// Which pattern to load.
    #[arg(value_enum, value_name = "SCENARIO")]
    pub scenario: Scenario,
    /// The server to load (the broker fills in the default and the help).
    #[arg(long, value_name = "URL")]
    pub server: String,
    /// The server's process id, to report its CPU; without it `cpu_percent.broker` is null.
    /// Several, comma-separated, are summed: a cluster's servers.
    #[arg(long, alias = "broker-pid", value_name = "PID", value_delimiter = ',')]
    pub server_pid: Vec<u32>,
    /// Size of every payload, at least the 16-byte stamp.
    #[arg(long, default_value_t = 128, value_name = "BYTES",
        value_parser = clap::value_parser!(u32).range(16..=1_048_576))]
    pub payload_bytes: u32,
    /// Publishers, each on its own connection (fanout, queue, exclusive).
    #[arg(long, default_value_t = 1, value_name = "N",
        value_parser = clap::value_parser!(u16).range(1..))]
    pub publishers: u16,
    /// Subscribers of the fanout subject, each on its own connection.
    #[arg(long, default_value_t = 4, value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub subscribers: u32,
    /// Workers of the queue, each on its own connection (help per broker).
    #[arg(long, default_value_t = 4, value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub consumers: u32,
    /// Requests waiting for their reply at any time (reqreply).
    #[arg(long, default_value_t = 16, value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..=65_535))]
    pub in_flight: u32,
    /// Responders, each on its own connection (reqreply; help per broker).
    #[arg(long, default_value_t = 1, value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub responders: u32,
    /// Most messages published but not yet received by a subscriber (fanout) or by the workers
    /// together (queue, exclusive).
    #[arg(long, default_value_t = 2048, value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..))]
    pub window: u32,
    /// Messages per second across all publishers, evenly paced; 0 is as fast as --window allows
    /// (fanout, queue, exclusive). Latency then counts from when each message was due.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub rate: u64,
    /// Unacked messages per worker (queue, exclusive; help per broker).
    #[arg(long, default_value_t = 256, value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..))]
    pub prefetch: u32,
    /// How long to measure (e.g. 8s, 500ms, 1m).
    #[arg(long, default_value = "8s", value_parser = parse_duration, value_name = "DURATION")]
    pub duration: Duration,
    /// How long the load runs before measuring starts.
    #[arg(long, default_value = "1s", value_parser = parse_duration, value_name = "DURATION")]
    pub warmup: Duration,
    /// Print one JSON object instead of a summary.
    #[arg(long)]
    pub json: bool,
    /// Where the queue keeps its messages (queue, exclusive): `--storage`, added by [`command`] for
    /// a broker that has it, memory otherwise.
    #[arg(skip)]
    pub storage: Storage,
    /// How many servers keep a copy of the queue's stream: `--replicas`, added with `--storage`,
    /// 1 otherwise.
    #[arg(skip = 1usize)]
    pub replicas: usize,
}

impl Args {
    /// The command line of `broker`'s program, parsed; exits with clap's message on a bad one.
    pub fn parse_for(broker: &Broker) -> Self {
        let matches = command(broker).get_matches();
        Self::from_matches(&matches)
    }

    fn from_matches(matches: &ArgMatches) -> Self {
        let mut args = Self::from_arg_matches(matches).unwrap_or_else(|error| error.exit());
        // Absent for a broker without the flag, which keeps the default.
        if let Ok(Some(storage)) = matches.try_get_one::<Storage>("storage") {
            args.storage = *storage;
        }
        if let Ok(Some(replicas)) = matches.try_get_one::<usize>("replicas") {
            args.replicas = *replicas;
        }
        args
    }
}

/// The flags, named and described for `broker`.
fn command(broker: &Broker) -> clap::Command {
    let server_pid_help = format!(
        "The {}'s process id, to report its CPU; without it `cpu_percent.broker` is null. \
         Several, comma-separated, are summed: a cluster's servers",
        broker.server
    );
    let command = Args::command()
        .name(broker.program)
        .bin_name(broker.program)
        .about(format!(
            "Runs one Switchyard benchmark scenario against a {} and prints what \
             `switchyard bench --json` prints, with `\"broker\": \"{}\"`",
            broker.server, broker.name
        ))
        .mut_arg("server", |arg| {
            // The derived flag is required, having no default of its own; the broker's is it.
            arg.default_value(broker.default_url)
                .required(false)
                .help(broker.server_help)
        })
        .mut_arg("server_pid", |arg| arg.help(server_pid_help))
        .mut_arg("consumers", |arg| arg.help(broker.consumers_help))
        .mut_arg("responders", |arg| arg.help(broker.responders_help))
        .mut_arg("prefetch", |arg| arg.help(broker.prefetch_help));
    match broker.storage_help {
        Some(help) => command
            .arg(
                Arg::new("storage")
                    .long("storage")
                    .value_name("STORAGE")
                    .value_parser(clap::value_parser!(Storage))
                    .default_value("memory")
                    .help(help),
            )
            .arg(
                Arg::new("replicas")
                    .long("replicas")
                    .value_name("N")
                    .value_parser(clap::value_parser!(usize))
                    .default_value("1")
                    .help(
                        "How many servers of a cluster keep a copy of the queue's stream \
                         (queue, exclusive); give --server every server's URL, comma-separated",
                    ),
            ),
        None => command,
    }
}

/// Where a broker's queue keeps its messages (`--storage`): memory by default, so that a run
/// without the flag measures what it always did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Storage {
    #[default]
    Memory,
    File,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    Fanout,
    Queue,
    Exclusive,
    #[value(name = "reqreply")]
    ReqReply,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Self::Fanout => "fanout",
            Self::Queue => "queue",
            Self::Exclusive => "exclusive",
            Self::ReqReply => "reqreply",
        }
    }
}

/// `500ms`, `5s` (or `5`), `1m`: the duration syntax of `switchyard bench`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("expected a duration like 500ms, 5s or 1m, got {text:?}"))?;
    let duration = match &text[digits.len()..] {
        "ms" => Duration::from_millis(number),
        "" | "s" => Duration::from_secs(number),
        "m" => Duration::from_secs(number.saturating_mul(60)),
        unit => return Err(format!("unknown unit {unit:?} in {text:?}; use ms, s or m")),
    };
    if duration > Duration::from_secs(3600) {
        return Err(format!("{text:?} is over an hour"));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BROKER: Broker = Broker {
        name: "test",
        program: "test-peer",
        server: "test-server",
        default_url: "test://127.0.0.1:1",
        server_help: "where",
        consumers_help: "workers",
        responders_help: "responders",
        prefetch_help: "prefetch",
        storage_help: None,
    };

    /// The broker's default address fills in `--server`, and the shared flags keep their defaults.
    #[test]
    fn broker_defaults() {
        let matches = command(&BROKER)
            .try_get_matches_from(["test-peer", "queue"])
            .expect("valid flags");
        let args = Args::from_matches(&matches);
        assert_eq!(args.server, "test://127.0.0.1:1");
        assert_eq!(args.scenario, Scenario::Queue);
        assert_eq!(args.prefetch, 256);
        assert_eq!(args.duration, Duration::from_secs(8));
        assert_eq!(args.storage, Storage::Memory);
        let help = command(&BROKER).render_help().to_string();
        assert!(help.contains("test-server's process id"), "{help}");
        assert!(help.contains("workers"), "{help}");
    }

    /// `--storage` exists only for a broker that documents it: there it defaults to memory and
    /// takes file; elsewhere it is refused, not ignored.
    #[test]
    fn storage_is_the_brokers_own() {
        let with_storage = Broker {
            storage_help: Some("where"),
            ..BROKER
        };
        let parse = |broker: &Broker, flags: &[&str]| {
            command(broker)
                .try_get_matches_from(["test-peer", "queue"].iter().chain(flags))
                .map(|matches| Args::from_matches(&matches).storage)
        };
        assert_eq!(parse(&with_storage, &[]).ok(), Some(Storage::Memory));
        assert_eq!(
            parse(&with_storage, &["--storage", "file"]).ok(),
            Some(Storage::File)
        );
        assert!(parse(&with_storage, &["--storage", "disk"]).is_err());
        assert!(parse(&BROKER, &["--storage", "memory"]).is_err());
    }

    /// The units of `switchyard bench` parse, and anything else is refused.
    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("8s"), Ok(Duration::from_secs(8)));
        assert_eq!(parse_duration("8"), Ok(Duration::from_secs(8)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("1h").is_err());
        assert!(parse_duration("1.5s").is_err());
        assert!(parse_duration("2m0").is_err());
    }
}
