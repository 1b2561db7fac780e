//! The command line: the scenarios and flags of `switchyard bench`, with the same names, defaults
//! and meaning, plus where nats-server is.

use std::time::Duration;

use clap::{Parser, ValueEnum};

/// Runs one Switchyard benchmark scenario against a nats-server and prints what
/// `switchyard bench --json` prints, with `"broker": "nats"`.
#[derive(Debug, Parser)]
#[command(name = "nats-peer", version)]
pub struct Args {
    /// Which pattern to load.
    #[arg(value_enum, value_name = "SCENARIO")]
    pub scenario: Scenario,
    /// The nats-server to load; queue and exclusive need it started with JetStream (`-js`).
    #[arg(long, default_value = "nats://127.0.0.1:4222", value_name = "URL")]
    pub server: String,
    /// The nats-server's process id, to report its CPU; without it `cpu_percent.broker` is null.
    #[arg(long, alias = "broker-pid", value_name = "PID")]
    pub server_pid: Option<u32>,
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
    /// Workers sharing the queue's pull consumer, each on its own connection.
    #[arg(long, default_value_t = 4, value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub consumers: u32,
    /// Requests waiting for their reply at any time (reqreply).
    #[arg(long, default_value_t = 16, value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..=65_535))]
    pub in_flight: u32,
    /// Responders in the queue group, each on its own connection (reqreply).
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
    /// Unacked messages per worker (queue, exclusive): its pull batch; the consumer's
    /// max_ack_pending is this times the workers.
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
