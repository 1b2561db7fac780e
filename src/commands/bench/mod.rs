//! `switchyard bench`: a load generator that measures a broker the way people compare brokers:
//! throughput, publish-to-delivery latency, loss, duplicates and order, and the CPU both sides spent.
//!
//! This file is the glue: the flags, the run's session (where the broker is, the names it uses), and
//! the steps every scenario shares: the measured window with its CPU samples and progress bar, and
//! the bounded drain at the end. Each scenario has its own file; the broker it measures, spawned or
//! given, is in `broker`.

mod broker;
mod fanout;
mod publish;
mod queue;
mod report;
mod reqreply;

use std::{
    io::IsTerminal,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use switchyard_client::{Client, ConsumeMode};

use self::{broker::BrokerUnderTest, report::Report};
use super::{Failure, connect, interrupted, note};
use switchyard::config::parse_duration;

use crate::cli::ClientArgs;
use switchyard_loadgen::{
    cpu::{CpuSample, CpuUsage},
    latency::Latency,
    measure::Timeline,
};

/// How long the drain waits, after the last publish was answered, for receivers to get everything.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);
/// How often the drain checks, and the progress bar redraws.
const POLL: Duration = Duration::from_millis(10);
const REDRAW: Duration = Duration::from_millis(250);

pub const HELP: &str = "\
Scenarios:
  fanout     P publishers, S subscribers of one topic; every subscriber gets every message
  queue      P publishers, C competing consumers of one shared group; every message acked
  exclusive  P publishers, one exclusive consumer; acked, checked for order
  reqreply   --in-flight requests at a time against R responders (Client::serve, echoing)

Without --server it starts a broker (this executable, `serve --listen 127.0.0.1:0`, every setting \
at its default: no SWITCHYARD_* variable reaches it), learns its port from its ready file, and kills \
it at the end. Publishers stay at most --window messages ahead of every receiver, so \
a subscriber that keeps up is never dropped for being slow; with --rate they are also paced. \
After --warmup, it measures for \
--duration, then stops publishing and drains (at most 5 s) before counting loss.

Payloads start with a 16-byte stamp, big-endian: the publisher's index (16 bits) and sequence number \
(48 bits), then the send time in nanoseconds since the run started; latency is from that send time (the call to Publisher::publish, \
or when the message was due, with --rate) to receipt, or a request's round trip. CPU is utime+stime from /proc, as percent of one core over the \
measured window.

With --json, one JSON object on stdout: scenario, broker, payload_bytes, duration_s, publishers, \
subscribers, consumers (the responders, for reqreply), in_flight, sent, delivered, throughput_per_s, \
latency_us {p50, p99, p999}, cpu_percent {broker, client} (null when unknown), lost, duplicates, \
out_of_order, gaps, errors. Lost: messages a subscriber that saw no Gap never got (fanout), accepted \
but never delivered (queue, exclusive), requests with no reply within 5 s (reqreply). Duplicates: a \
message delivered twice to one subscriber, or twice across the group. Gaps: messages the broker \
reported dropped for slow subscribers. Errors: failed calls and unexpected payloads.";

/// The flags of `switchyard bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The scenario to run.
    #[arg(value_enum, value_name = "SCENARIO")]
    pub scenario: Option<Scenario>,
    /// The scenario, as a flag instead of the argument.
    #[arg(
        long = "scenario",
        value_enum,
        value_name = "SCENARIO",
        conflicts_with = "scenario"
    )]
    pub scenario_flag: Option<Scenario>,
    /// Size of every payload, at least the 16-byte stamp.
    #[arg(long, default_value_t = 128, value_name = "BYTES",
        value_parser = clap::value_parser!(u32).range(16..))]
    pub payload_bytes: u32,
    /// Publishers, each on its own connection (fanout, queue, exclusive).
    #[arg(long, default_value_t = 1, value_name = "N",
        value_parser = clap::value_parser!(u16).range(1..))]
    pub publishers: u16,
    /// Subscribers of the fanout topic, each on its own connection.
    #[arg(long, default_value_t = 4, value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub subscribers: u32,
    /// Competing consumers of the queue group, each on its own connection.
    #[arg(long, default_value_t = 4, value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub consumers: u32,
    /// Requests waiting for their reply at any time (reqreply).
    #[arg(long, default_value_t = 16, value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..=65_535))]
    pub in_flight: u32,
    /// Responders in the request group, each on its own connection (reqreply).
    #[arg(long, default_value_t = 1, value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub responders: u32,
    /// Most messages published but not yet received by a subscriber (fanout) or by the group
    /// (queue, exclusive). Keep it below the broker's --subscriber-buffer. The same default as the
    /// bench peers', so a comparison gives every broker the same window.
    #[arg(long, default_value_t = 2048, value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..))]
    pub window: u32,
    /// Most messages in one PublishStream frame of a publisher's batching `Publisher` (its
    /// `max_batch`; 500 is the client's default), which keeps up to 16 frames in flight.
    #[arg(long, default_value_t = 500, value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: u32,
    /// Messages per second across all publishers, evenly paced; 0 is as fast as --window allows
    /// (fanout, queue, exclusive). Latency then counts from when each message was due.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub rate: u64,
    /// Unacked deliveries per consumer (queue, exclusive), and requests each responder handles at
    /// once (reqreply).
    #[arg(long, default_value_t = 256, value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..))]
    pub prefetch: u32,
    /// How long to measure (e.g. 8s, 500ms, 1m).
    #[arg(long, default_value = "8s", value_parser = parse_duration, value_name = "DURATION")]
    pub duration: Duration,
    /// How long the load runs before measuring starts.
    #[arg(long, default_value = "1s", value_parser = parse_duration, value_name = "DURATION")]
    pub warmup: Duration,
    /// Measure the broker at this URL instead of starting one. Several, comma-separated (the
    /// nodes of a cluster), are taken in turn by each new connection.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// With --server: the broker's process id, to report its CPU (it must be on this machine).
    /// Several, comma-separated, are summed: a cluster's nodes and its NATS servers.
    #[arg(long, requires = "server", value_name = "PID", value_delimiter = ',')]
    pub broker_pid: Vec<u32>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Start the broker durable, on a fresh data directory made inside DIR (and removed after).
    #[arg(long, conflicts_with = "server", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// What to measure.
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

pub async fn run(args: BenchArgs) -> Result<(), Failure> {
    if args.duration.is_zero() {
        return Err(Failure::new("--duration must be more than 0"));
    }
    let scenario = args
        .scenario
        .or(args.scenario_flag)
        .unwrap_or(Scenario::Fanout);
    let broker = match &args.server {
        Some(url) => BrokerUnderTest::given(url, args.broker_pid.clone()),
        None => BrokerUnderTest::spawn(args.data_dir.as_deref()).await?,
    };
    let session = Session::new(args, &broker);
    // On Ctrl-C the scenario is dropped, and with it the broker this command started.
    let counts = tokio::select! {
        counts = session.run(scenario) => counts?,
        () = interrupted() => return Err(Failure::new("interrupted")),
    };
    let journal = broker.finish();
    let report = Report::new(scenario, &session, counts, journal);
    report.print(session.args.json)
}

/// One run: the flags, the broker's address and process, and names no other run uses.
pub struct Session {
    pub args: BenchArgs,
    /// The broker's addresses, taken in turn by new connections.
    urls: Vec<String>,
    next_url: std::sync::atomic::AtomicUsize,
    url: String,
    broker_pids: Vec<u32>,
    /// The topic of the run; a scenario may add tokens after it.
    pub topic: String,
    /// The queue group of the run (one token).
    pub group: String,
}

impl Session {
    fn new(args: BenchArgs, broker: &BrokerUnderTest) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos());
        let run = format!("{:x}{:x}", std::process::id(), nanos);
        Self {
            args,
            urls: broker.url().split(',').map(str::to_owned).collect(),
            next_url: std::sync::atomic::AtomicUsize::new(0),
            url: broker.url().to_owned(),
            broker_pids: broker.pids().to_vec(),
            topic: format!("bench.{run}"),
            group: format!("bench{run}"),
        }
    }

    async fn run(&self, scenario: Scenario) -> Result<Counts, Failure> {
        match scenario {
            Scenario::Fanout => fanout::run(self).await,
            Scenario::Queue => queue::run(self, ConsumeMode::Shared).await,
            Scenario::Exclusive => queue::run(self, ConsumeMode::Exclusive).await,
            Scenario::ReqReply => reqreply::run(self).await,
        }
    }

    /// A new connection to the broker: to the next of its addresses.
    pub async fn connect(&self) -> Result<Client, Failure> {
        let turn = self
            .next_url
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let url = &self.urls[turn % self.urls.len()];
        connect(&ClientArgs::plaintext(url.clone())).await
    }

    /// The timeline of a load that starts now.
    pub fn timeline(&self) -> Timeline {
        Timeline::new(self.args.warmup, self.args.duration)
    }

    /// Waits out the warmup and the measured window while the load runs, sampling CPU at both ends
    /// of the window and showing progress (the sum of `counters`) when stderr is a terminal.
    pub async fn measure(&self, timeline: Timeline, counters: &[Arc<AtomicU64>]) -> CpuUsage {
        let progress = Progress::new(timeline, counters);
        progress.run_until(timeline.start, "warming up").await;
        let before = CpuSample::take(&self.broker_pids);
        progress.run_until(timeline.end, "measuring").await;
        CpuSample::take(&self.broker_pids).since(&before)
    }
}

/// Waits until `done` holds, for at most [`DRAIN_LIMIT`]; what is still missing then counts as lost.
pub async fn drain(done: impl Fn() -> bool) {
    let deadline = Instant::now() + DRAIN_LIMIT;
    while !done() {
        if Instant::now() >= deadline {
            note(format_args!(
                "stopped waiting for the last deliveries after {} s",
                DRAIN_LIMIT.as_secs()
            ));
            return;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The sum of the counters.
fn total(counters: &[Arc<AtomicU64>]) -> u64 {
    counters
        .iter()
        .map(|counter| counter.load(Ordering::Relaxed))
        .sum()
}

/// What a scenario counted; [`Report`] adds the settings.
#[derive(Debug, Default)]
pub struct Counts {
    /// Messages (or requests) sent within the window.
    pub sent: u64,
    /// Deliveries (or replies) received within the window.
    pub delivered: u64,
    pub latency: Latency,
    pub cpu: CpuUsage,
    pub lost: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub gaps: u64,
    /// Failed calls, foreign payloads, mismatched replies.
    pub errors: u64,
    /// What the first of them was, for stderr.
    pub first_error: Option<String>,
}

impl Counts {
    /// What the publishers counted: messages sent in the window, and failed publishes.
    fn from_tallies(tallies: &[publish::Tally]) -> Self {
        Self {
            sent: tallies.iter().map(|tally| tally.in_window).sum(),
            errors: tallies.iter().map(|tally| tally.failed.len() as u64).sum(),
            first_error: tallies
                .iter()
                .find_map(|tally| tally.first_error.clone())
                .map(|error| format!("a publish failed: {error}")),
            ..Self::default()
        }
    }
}

/// The progress bar on stderr: time elapsed over warmup plus window, and the current rate.
struct Progress<'a> {
    bar: ProgressBar,
    timeline: Timeline,
    counters: &'a [Arc<AtomicU64>],
}

impl<'a> Progress<'a> {
    fn new(timeline: Timeline, counters: &'a [Arc<AtomicU64>]) -> Self {
        let length = (timeline.end - timeline.origin).as_millis();
        let bar = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(u64::try_from(length).unwrap_or(u64::MAX));
            // A constant template that indicatif parses.
            if let Ok(style) =
                ProgressStyle::with_template("{prefix:>10} [{bar:30}] {elapsed:>3} {msg}")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        } else {
            ProgressBar::hidden()
        };
        Self {
            bar,
            timeline,
            counters,
        }
    }

    /// Redraws until `deadline`.
    async fn run_until(&self, deadline: Instant, phase: &'static str) {
        self.bar.set_prefix(phase);
        let mut last = (Instant::now(), total(self.counters));
        loop {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            tokio::time::sleep_until((now + REDRAW).min(deadline).into()).await;
            let (now, count) = (Instant::now(), total(self.counters));
            let seconds = now.duration_since(last.0).as_secs_f64();
            if seconds > 0.0 {
                let rate = (count - last.1.min(count)) as f64 / seconds;
                self.bar
                    .set_message(format!("{} /s", report::thousands(rate as u64)));
            }
            let elapsed = now.duration_since(self.timeline.origin).as_millis();
            self.bar
                .set_position(u64::try_from(elapsed).unwrap_or(u64::MAX));
            last = (now, count);
        }
    }
}

impl Drop for Progress<'_> {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
