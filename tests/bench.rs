//! `switchyard bench` end to end: each scenario, run for a second against a broker the bench starts
//! itself, prints one JSON object with every field of the schema, delivers, and loses, duplicates or
//! reorders nothing. Behaviour only: no assertion depends on how fast the machine is.
//!
//! Every run is bounded by [`RUN_LIMIT`]; the child is killed if it takes longer.

use std::{
    io::Read,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

/// The longest one bench run may take: a second of load, the drain, and starting a broker.
const RUN_LIMIT: Duration = Duration::from_secs(30);

/// What a finished `switchyard bench` printed.
struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

/// Runs `switchyard bench ARGS`, killing it if it outlasts [`RUN_LIMIT`].
fn run(args: &[&str]) -> Run {
    let mut child = Command::new(BIN)
        .arg("bench")
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start switchyard bench");
    // Read on threads, so a full pipe never stalls the child while we wait for it.
    let read = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = read(Box::new(child.stdout.take().expect("stdout is piped")));
    let stderr = read(Box::new(child.stderr.take().expect("stderr is piped")));
    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll the bench") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "switchyard bench {} ran longer than {RUN_LIMIT:?}; stderr: {}",
                args.join(" "),
                stderr.join().unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    Run {
        success: status.success(),
        stdout: stdout.join().expect("the stdout reader"),
        stderr: stderr.join().expect("the stderr reader"),
    }
}

/// Runs `scenario` for one second with no warmup and returns its JSON report, checked for soundness.
fn bench(scenario: &str) -> Value {
    bench_with(scenario, &[])
}

/// As [`bench`], with more flags.
fn bench_with(scenario: &str, flags: &[&str]) -> Value {
    let mut args = vec![scenario, "--duration", "1s", "--warmup", "0s", "--json"];
    args.extend_from_slice(flags);
    let run = run(&args);
    assert!(
        run.success,
        "switchyard bench {scenario} failed: {}",
        run.stderr
    );
    let report: Value = serde_json::from_str(run.stdout.trim())
        .unwrap_or_else(|error| panic!("not one JSON object ({error}): {:?}", run.stdout));
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
            "{field} in {report}; stderr: {}",
            run.stderr
        );
    }
    report
}

/// Every subscriber of the fan-out gets every message.
#[test]
fn fanout_delivers_every_message_to_every_subscriber() {
    let report = bench("fanout");
    assert_eq!(report["publishers"], 1);
    assert_eq!(report["subscribers"], 4);
}

/// A paced publisher sends at the rate asked, not in bursts faster or slower than it.
#[test]
fn a_paced_fanout_publishes_at_the_rate_asked() {
    let report = bench_with("fanout", &["--rate", "2000"]);
    let sent = report["sent"].as_u64().expect("sent is a count");
    // One second at 2,000 per second; the window's edges cut a message or two either way.
    assert!((1_900..=2_100).contains(&sent), "sent {sent}: {report}");
    // Deliveries are counted as they arrive inside the window, so the last few fall outside it.
    let delivered = report["delivered"].as_u64().expect("delivered is a count");
    assert!(delivered >= sent * 4 * 95 / 100, "{report}");
}

/// Competing consumers get and ack each message once.
#[test]
fn queue_delivers_every_message_once() {
    let report = bench("queue");
    assert_eq!(report["consumers"], 4);
}

/// The exclusive consumer gets every message once, in order.
#[test]
fn exclusive_delivers_every_message_once_in_order() {
    let report = bench("exclusive");
    assert_eq!(report["consumers"], 1);
}

/// Every request is answered by the serving responder.
#[test]
fn reqreply_answers_every_request() {
    let report = bench("reqreply");
    assert_eq!(report["in_flight"], 16);
    assert_eq!(report["consumers"], 1);
}

/// Flags out of range are refused before anything starts, and two scenarios at once are refused.
#[test]
fn bad_flags_are_refused() {
    for args in [
        &["fanout", "--payload-bytes", "8"][..],
        &["fanout", "--scenario", "queue"],
        &["fanout", "--broker-pid", "1"],
        &["nonsense"],
    ] {
        let run = run(args);
        assert!(!run.success, "switchyard bench {args:?} succeeded");
        assert!(!run.stderr.is_empty(), "no error for {args:?}");
    }
}
