//! What both peer programs do around a scenario: parse the flags, sample CPU over the measured
//! window, run the broker's scenario, and print the report (a summary, or JSON with `--json`).
//!
//! Each participant (publisher, subscriber, worker, responder, the requesters) has its own
//! connection. The clock starts once every connection is up.

use std::process::ExitCode;

use switchyard_loadgen::cpu::CpuSample;
use tokio::sync::oneshot;

use crate::clock::{Clock, Start};
use crate::config::{Args, Broker};
use crate::report::{Counts, Report};

/// The whole program for `broker`, whose `scenario` runs the scenario the flags name.
pub async fn main(
    broker: &'static Broker,
    scenario: impl AsyncFn(&Args, Start) -> Result<Counts, String>,
) -> ExitCode {
    let program = broker.program;
    let args = Args::parse_for(broker);
    if args.duration.is_zero() {
        eprintln!("{program}: --duration must be more than 0");
        return ExitCode::from(2);
    }
    match run(broker, &args, scenario).await {
        Ok(report) => {
            if let Some(error) = &report.counts.first_error {
                eprintln!(
                    "{program}: {} errors; the first: {error}",
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
            eprintln!("{program}: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run<'a>(
    broker: &'a Broker,
    args: &'a Args,
    scenario: impl AsyncFn(&Args, Start) -> Result<Counts, String>,
) -> Result<Report<'a>, String> {
    let (start, started) = Start::new(args.warmup, args.duration);
    let sampler = tokio::spawn(sample_cpu(started, args.server_pid.clone()));
    let counts = scenario(args, start).await?;
    let (cpu_broker, cpu_client) = sampler.await.map_err(|e| format!("cpu sampler: {e}"))?;
    Ok(Report {
        broker,
        args,
        counts,
        cpu_broker,
        cpu_client,
    })
}

/// CPU use of the server and of this process over the measured window. Every scenario runs past
/// the window before it returns, so both samples are in by then.
async fn sample_cpu(
    started: oneshot::Receiver<Clock>,
    server_pid: Vec<u32>,
) -> (Option<f64>, Option<f64>) {
    let Ok(clock) = started.await else {
        return (None, None);
    };
    tokio::time::sleep_until(clock.measure_start().into()).await;
    let before = CpuSample::take(&server_pid);
    tokio::time::sleep_until(clock.measure_end().into()).await;
    let usage = CpuSample::take(&server_pid).since(&before);
    (usage.broker, usage.client)
}
