//! nats-peer: runs `switchyard bench`'s scenarios (fanout, queue, exclusive, reqreply) against a
//! nats-server, with the same flags, the same load shape and the same counting, and prints the
//! same report, so that `bench/compare.sh` can put the two brokers side by side.
//!
//! Each participant (publisher, subscriber, worker, responder, the requesters) has its own
//! connection. The clock starts once every connection is up.

mod clock;
mod config;
mod connection;
mod cpu;
mod credit;
mod fanout;
mod payload;
mod publish;
mod queue;
mod report;
mod reqreply;
mod tally;

use std::process::ExitCode;

use clap::Parser;
use tokio::sync::oneshot;

use crate::clock::{Clock, Start};
use crate::config::{Args, Scenario};
use crate::connection::Events;
use crate::cpu::CpuSample;
use crate::report::Report;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if args.duration.is_zero() {
        eprintln!("nats-peer: --duration must be more than 0");
        return ExitCode::from(2);
    }
    match run(&args).await {
        Ok(report) => {
            if let Some(error) = &report.counts.first_error {
                eprintln!(
                    "nats-peer: {} errors; the first: {error}",
                    report.counts.errors
                );
            }
            if args.json {
                println!("{}", report.to_json());
            } else {
                println!("{}", report.summary());
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("nats-peer: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> Result<Report<'_>, String> {
    let events = Events::default();
    let (start, started) = Start::new(args.warmup, args.duration);
    let sampler = tokio::spawn(sample_cpu(started, args.server_pid));
    let counts = match args.scenario {
        Scenario::Fanout => fanout::run(args, &events, start).await?,
        Scenario::Queue | Scenario::Exclusive => queue::run(args, &events, start).await?,
        Scenario::ReqReply => reqreply::run(args, &events, start).await?,
    };
    let (cpu_broker, cpu_client) = sampler.await.map_err(|e| format!("cpu sampler: {e}"))?;
    let (slow, disconnects, errors) = events.totals();
    if slow + disconnects + errors > 0 {
        eprintln!(
            "nats-peer: connection events: {slow} slow consumer, {disconnects} disconnects, {errors} errors"
        );
    }
    Ok(Report {
        args,
        counts,
        cpu_broker,
        cpu_client,
    })
}

/// CPU use of nats-server and of this process over the measured window. Every scenario runs past
/// the window before it returns, so both samples are in by then.
async fn sample_cpu(
    started: oneshot::Receiver<Clock>,
    server_pid: Option<u32>,
) -> (Option<f64>, Option<f64>) {
    let Ok(clock) = started.await else {
        return (None, None);
    };
    tokio::time::sleep_until(clock.measure_start().into()).await;
    let broker_start = server_pid.and_then(|pid| CpuSample::take(Some(pid)));
    let client_start = CpuSample::take(None);
    tokio::time::sleep_until(clock.measure_end().into()).await;
    let broker_end = server_pid.and_then(|pid| CpuSample::take(Some(pid)));
    let client_end = CpuSample::take(None);
    let percent =
        |start: Option<CpuSample>, end: Option<CpuSample>| Some(start?.percent_until(&end?));
    (
        percent(broker_start, broker_end),
        percent(client_start, client_end),
    )
}
