//! `switchyard bench` end to end: each scenario, run for a second against a broker the bench starts
//! itself, prints one JSON object with every field of the schema, delivers, and loses, duplicates or
//! reorders nothing. Behaviour only: no assertion depends on how fast the machine is.
//!
//! Every run is bounded by [`RUN_LIMIT`]; the child is killed if it takes longer.
//!
//! The bench starts its broker with `--ready-file`, so these runs also prove that path.

mod common;

use std::time::Duration;

use common::{
    child::{ChildProcess, Output},
    process::switchyard,
};
use serde_json::Value;

/// The longest one bench run may take: a second of load, the drain, and starting a broker.
const RUN_LIMIT: Duration = Duration::from_secs(30);

/// Runs `switchyard bench ARGS`, failing (with its stderr) if it outlasts [`RUN_LIMIT`].
async fn run(args: &[&str]) -> Output {
    let mut command = switchyard(["bench"]);
    command.args(args);
    ChildProcess::spawn(command, None)
        .finish_within(RUN_LIMIT)
        .await
}

/// Runs `scenario` for one second with no warmup and returns its JSON report, checked for soundness.
async fn bench(scenario: &str) -> Value {
    bench_with(scenario, &[]).await
}

/// As [`bench`], with more flags.
async fn bench_with(scenario: &str, flags: &[&str]) -> Value {
    let mut args = vec![scenario, "--duration", "1s", "--warmup", "0s", "--json"];
    args.extend_from_slice(flags);
    let run = run(&args).await;
    assert!(
        run.status.success(),
        "switchyard bench {scenario} failed: {run:?}"
    );
    let report: Value = match &run.stdout[..] {
        [line] => serde_json::from_str(line)
            .unwrap_or_else(|error| panic!("not a JSON object ({error}): {run:?}")),
        _ => panic!("not one line on stdout: {run:?}"),
    };
    for field in [
        "scenario",
        "broker",
        "payload_bytes",
        "duration_s",
        "publishers",
        "subscribers",
        "consumers",
        "in_flight",
        "sent",
        "delivered",
        "throughput_per_s",
        "latency_us",
        "cpu_percent",
        "lost",
        "duplicates",
        "out_of_order",
        "gaps",
    ] {
        assert!(report.get(field).is_some(), "no {field} in {report}");
    }
    for quantile in ["p50", "p99", "p999"] {
        assert!(report["latency_us"][quantile].is_f64(), "{report}");
    }
    // The bench started the broker, so it knows its process and reports its CPU.
    assert!(report["cpu_percent"]["broker"].is_f64(), "{report}");
    assert!(report["cpu_percent"]["client"].is_f64(), "{report}");
    assert_eq!(report["scenario"], scenario);
    assert_eq!(report["broker"], "switchyard");
    assert_eq!(report["payload_bytes"], 128);
    assert_eq!(report["duration_s"], 1.0);
    let count = |field: &str| {
        report[field]
            .as_u64()
            .unwrap_or_else(|| panic!("{field} is not a count in {report}"))
    };
    assert!(count("sent") > 0, "{report}");
    assert!(count("delivered") > 0, "{report}");
    for field in ["lost", "duplicates", "out_of_order", "gaps", "errors"] {
        assert_eq!(
            count(field),
            0,
            "{field} in {report}; stderr: {:?}",
            run.stderr
        );
    }
    report
}

/// Every subscriber of the fan-out gets every message.
#[tokio::test]
async fn fanout_delivers_every_message_to_every_subscriber() {
    let report = bench("fanout").await;
    assert_eq!(report["publishers"], 1);
    assert_eq!(report["subscribers"], 4);
}

/// A paced publisher sends at the rate asked, not in bursts faster or slower than it.
#[tokio::test]
async fn a_paced_fanout_publishes_at_the_rate_asked() {
    let report = bench_with("fanout", &["--rate", "2000"]).await;
    let sent = report["sent"].as_u64().expect("sent is a count");
    // One second at 2,000 per second; the window's edges cut a message or two either way.
    assert!((1_900..=2_100).contains(&sent), "sent {sent}: {report}");
    // Deliveries are counted as they arrive inside the window, so the last few fall outside it.
    let delivered = report["delivered"].as_u64().expect("delivered is a count");
    assert!(delivered >= sent * 4 * 95 / 100, "{report}");
}

/// Competing consumers get and ack each message once.
#[tokio::test]
async fn queue_delivers_every_message_once() {
    let report = bench("queue").await;
    assert_eq!(report["consumers"], 4);
}

/// The exclusive consumer gets every message once, in order.
#[tokio::test]
async fn exclusive_delivers_every_message_once_in_order() {
    let report = bench("exclusive").await;
    assert_eq!(report["consumers"], 1);
}

/// Every request is answered by the serving responder.
#[tokio::test]
async fn reqreply_answers_every_request() {
    let report = bench("reqreply").await;
    assert_eq!(report["in_flight"], 16);
    assert_eq!(report["consumers"], 1);
}

/// Flags out of range are refused before anything starts, and two scenarios at once are refused.
#[tokio::test]
async fn bad_flags_are_refused() {
    for args in [
        &["fanout", "--payload-bytes", "8"][..],
        &["fanout", "--scenario", "queue"],
        &["fanout", "--broker-pid", "1"],
        &["nonsense"],
    ] {
        let run = run(args).await;
        assert!(!run.status.success(), "switchyard bench {args:?} succeeded");
        assert!(!run.stderr.is_empty(), "no error for {args:?}");
    }
}
