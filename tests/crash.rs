//! The durable broker survives `kill -9` in a loop. One data directory; a `switchyard serve
//! --data-dir` process started on it, loaded by publishers and by consumers of a declared queue
//! group, and killed with SIGKILL at a random moment; started again on the same directory, and
//! again; then started once more to drain the group. Every call's outcome goes into one history,
//! checked at the end like a Jepsen total queue:
//!
//! - lost: an id whose Publish returned OK and that was never delivered (must be none);
//! - unexpected: a delivered id that was never sent in a Publish (none);
//! - delivered after its ack: a delivery of an id, in a later run or later in the same one, after
//!   an Ack of it returned OK (none): an acknowledged ack is never undone by a crash;
//! - redelivered with attempt 1: a second delivery of an id whose `attempt` says it is the first
//!   (none): the broker remembers across a crash that it handed the message out;
//! - never acked: an id published OK that the drain did not settle (none).
//!
//! A Publish that failed because of the kill may or may not have stored its batch: its ids are
//! "uncertain", and either outcome is correct. Duplicates of messages not yet acked are what
//! at-least-once delivery allows: they are counted, not failed. A call that fails while the broker
//! is up is a failure, as are the checks at each start: the declared group is listed before any
//! consumer could create it again, and at the end it still has the settings it was declared with.
//! Before the loop, a second broker on the directory in use must exit at once, saying so.
//!
//! What SIGKILL tests and what it cannot: the process dies but the kernel keeps what it had
//! written, so this catches a broker that answers before it has written, that recovers too little
//! or too much, or that forgets its groups or attempts. It cannot catch a missing fsync, which only
//! a power cut shows; the storage tests' simulated disk covers that.
//!
//! `SWITCHYARD_CRASH_CYCLES` sets the number of kills (default 10, well under a minute);
//! `bench/crash-soak.sh` runs hundreds. `SWITCHYARD_TEST_SEED` replays a run's choices (its
//! timings still vary with the machine).

mod common;
// A crate root's modules are found beside it, not in `tests/crash/`: named by path, the checker
// stays with this test and is not a test target of its own.
#[path = "crash/history.rs"]
mod history;

use std::{
    collections::HashMap,
    fmt::Debug,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use common::{
    child::ChildProcess,
    faults::Rng,
    process::{BrokerProcess, switchyard},
    *,
};
use futures_util::FutureExt;
use history::{History, Run, Verdict};
use switchyard::pb;
use tokio::{task::JoinHandle, time::Instant};
use tonic::Code;

/// The shared group every run consumes from, declared once before the first run.
const PATTERN: &str = "jobs.>";
const GROUP: &str = "workers";
/// The group's ack deadline. Far longer than a run (at most 700 ms), so within a run nothing is
/// redelivered for lateness and every redelivery comes from a crash; short enough that a broker
/// which, after a restart, lets what was in flight wait out its deadline still drains in seconds.
const ACK_DEADLINE_MS: u32 = 5_000;
/// Far more than all the runs publish, so that no Publish is refused for room.
const MAX_LENGTH: u32 = 1_000_000;
const PUBLISHERS: usize = 3;
const CONSUMERS: usize = 2;
const PREFETCH: u32 = 16;
/// How long a broker serves before it is killed, drawn from this range for each run.
const RUN_LENGTH: (Duration, Duration) = (Duration::from_millis(150), Duration::from_millis(700));
/// Kills in a run of the suite; `SWITCHYARD_CRASH_CYCLES` overrides.
const DEFAULT_CYCLES: usize = 10;
/// How long the last broker may take to settle everything left.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);
/// How often an idle consumer looks whether the drain is over.
const IDLE_POLL: Duration = Duration::from_millis(50);

/// Acknowledged publishes and acks survive `kill -9` of the broker, run after run, on one data
/// directory; a second broker cannot take the directory while one holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_work_survives_kill_9_in_a_loop() {
    // A setting that is not a number fails the run rather than quietly running the default.
    let cycles = std::env::var("SWITCHYARD_CRASH_CYCLES").map_or(DEFAULT_CYCLES, |cycles| {
        cycles
            .parse()
            .unwrap_or_else(|_| panic!("SWITCHYARD_CRASH_CYCLES={cycles:?} is not a count"))
    });
    let mut rng = Rng::from_env("crash");
    // Before its first draw, a generator's Debug is its seed: the summary line repeats it.
    let seed = format!("{rng:?}");
    let data = tempfile::tempdir().expect("a temporary data directory");
    let dir = data
        .path()
        .to_str()
        .expect("the path of a temporary directory is UTF-8");
    let started = Instant::now();

    // Declared on a broker that is then killed with no traffic at all: the declaration alone must
    // be durable. While that broker holds the directory, a second one must be refused.
    let broker = start(dir).await;
    declare_ok(
        &mut Admin::new(broker.channel().await),
        declaration(MAX_LENGTH),
    )
    .await;
    assert_second_broker_refused(dir).await;
    broker.kill().await;

    let history = Shared::default();
    for run in 0..cycles {
        let broker = start(dir).await;
        assert_group_listed(&broker, run).await;
        let clients = Clients::new(run, &history);
        let tasks = spawn_clients(&broker, &clients, PUBLISHERS, &mut rng).await;
        tokio::time::sleep(rng.duration(RUN_LENGTH.0, RUN_LENGTH.1)).await;
        clients.killed.store(true, Ordering::SeqCst);
        broker.kill().await;
        join(tasks, "a client to give up after the kill").await;
    }

    // The drain: one more start, consumers only, until the group holds nothing.
    let broker = start(dir).await;
    assert_group_listed(&broker, cycles).await;
    let clients = Clients::new(cycles, &history);
    let tasks = spawn_clients(&broker, &clients, 0, &mut rng).await;
    let mut admin = Admin::new(broker.channel().await);
    let drained = drain(&mut admin).await;
    clients.stop.store(true, Ordering::SeqCst);
    join(tasks, "a consumer to stop once the group is drained").await;
    assert_declaration_kept(&mut admin).await;
    broker.kill().await;

    let history = history.take();
    let verdict = Verdict::of(&history);
    println!(
        "crash {seed}: {cycles} kills in {:?}; {}; drained: {drained}",
        started.elapsed(),
        verdict.summary(&history)
    );
    let mut failures = verdict.failures(&history);
    if !drained {
        failures.push(format!(
            "the group still held messages {DRAIN_LIMIT:?} into the drain"
        ));
    }
    assert!(
        failures.is_empty(),
        "the crash loop ({seed}; SWITCHYARD_TEST_SEED replays it) found:\n{}",
        failures.join("\n")
    );
}

/// `switchyard serve --listen 127.0.0.1:0 --data-dir DIR`, once it serves.
async fn start(dir: &str) -> BrokerProcess {
    BrokerProcess::start(&["--data-dir", dir]).await
}

/// The group as the loop declares it; `max_length` varies only to provoke a conflict. No
/// `max_deliveries`: no number of crashes may dead-letter a message.
fn declaration(max_length: u32) -> pb::DeclareGroupRequest {
    pb::DeclareGroupRequest {
        topic: PATTERN.into(),
        group: GROUP.into(),
        max_length,
        ack_deadline_ms: ACK_DEADLINE_MS,
        ..Default::default()
    }
}

/// A second broker on a directory in use exits at once, non-zero, saying on stderr that the
/// directory (named as given, or as resolved) is in use.
async fn assert_second_broker_refused(dir: &str) {
    let command = switchyard(["serve", "--listen", "127.0.0.1:0", "--data-dir", dir]);
    let output = ChildProcess::spawn(command, None).finish_within(WAIT).await;
    let stderr = output.stderr.join("\n");
    let resolved = std::fs::canonicalize(dir).ok();
    let names_dir = stderr.contains(dir)
        || resolved.is_some_and(|path| stderr.contains(&path.display().to_string()));
    assert!(
        !output.status.success() && names_dir && stderr.contains("in use"),
        "a second broker on {dir}, which another broker holds, must exit at once with a non-zero \
         status and say on stderr that the directory is in use; it exited with {output:?}"
    );
}

/// The declared group is listed by a broker that has just started, before any consumer could
/// create it again by consuming.
async fn assert_group_listed(broker: &BrokerProcess, run: Run) {
    let mut admin = Admin::new(broker.channel().await);
    if group_info(&mut admin, PATTERN, GROUP).await.is_none() {
        broker.fail(&format!(
            "run {run}: the declared group {GROUP} on {PATTERN} is not listed after a restart"
        ));
    }
}

/// The group kept its settings through every crash: its declaration is accepted again, and one
/// with another `max_length` is refused, naming the one kept.
async fn assert_declaration_kept(admin: &mut Admin) {
    declare_ok(admin, declaration(MAX_LENGTH)).await;
    let conflicting = within(
        "DeclareGroup",
        admin.declare_group(declaration(MAX_LENGTH / 2)),
    )
    .await;
    assert_status(
        conflicting,
        Code::FailedPrecondition,
        &["max_length", &MAX_LENGTH.to_string()],
    );
}

/// Starts `publishers` publishers and [`CONSUMERS`] consumers, each on its own connection, made
/// here while the broker is certainly up; the caller's clock for the kill starts after.
async fn spawn_clients(
    broker: &BrokerProcess,
    clients: &Clients,
    publishers: usize,
    rng: &mut Rng,
) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::with_capacity(publishers + CONSUMERS);
    for number in 0..publishers {
        let connection = Broker::new(broker.channel().await);
        let rng = Rng::from_seed(rng.next_u64());
        tasks.push(tokio::spawn(publisher(
            connection,
            clients.clone(),
            number,
            rng,
        )));
    }
    for _ in 0..CONSUMERS {
        let connection = Broker::new(broker.channel().await);
        let rng = Rng::from_seed(rng.next_u64());
        tasks.push(tokio::spawn(consumer(connection, clients.clone(), rng)));
    }
    tasks
}

/// Waits for every task, each within [`WAIT`]; a client that panicked fails the test.
async fn join(tasks: Vec<JoinHandle<()>>, what: &str) {
    for task in tasks {
        within(what, task).await.expect("no client task panics");
    }
}

/// Polls the group until nothing is ready or in flight (true), or [`DRAIN_LIMIT`] passes (false).
async fn drain(admin: &mut Admin) -> bool {
    let deadline = Instant::now() + DRAIN_LIMIT;
    while Instant::now() < deadline {
        // No publisher runs now, so a group with nothing ready or in flight gets nothing more.
        let info = group_info(admin, PATTERN, GROUP).await;
        if info.is_some_and(|info| (info.ready, info.in_flight) == (0, 0)) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Publishes small batches of fresh ids until a Publish fails, which the kill makes happen.
async fn publisher(mut broker: Broker, clients: Clients, number: usize, mut rng: Rng) {
    let topic = format!("jobs.p{number}");
    let mut next = 0;
    loop {
        let size = rng.between(1, 8) as usize;
        let ids: Vec<String> = (next..next + size)
            .map(|n| format!("r{}-p{number}-{n}", clients.run))
            .collect();
        next += size;
        // Before the call: a delivery may arrive before the Publish returns.
        clients
            .history
            .with(|history| history.attempted.extend(ids.iter().cloned()));
        let request = pb::PublishRequest {
            messages: ids.iter().map(|id| message(&topic, id.clone())).collect(),
            wait_for_room: false,
        };
        match within("Publish", broker.publish(request)).await {
            Ok(response) => clients.published(ids, &response.into_inner().published),
            Err(status) => {
                clients
                    .history
                    .with(|history| history.uncertain.extend(ids));
                return clients.failed("Publish", &status);
            }
        }
        tokio::time::sleep(rng.duration(Duration::from_millis(1), Duration::from_millis(8))).await;
    }
}

/// Consumes from the group, recording each batch of deliveries as it arrives and then acking it,
/// until the stream fails (the kill) or, idle, it is told to stop.
async fn consumer(mut broker: Broker, clients: Clients, mut rng: Rng) {
    // Ack deadline 0: the group's, as declared.
    let request = consume_with(PATTERN, GROUP, PREFETCH, 0);
    let mut stream = match within("Consume", broker.consume(request)).await {
        Ok(response) => response.into_inner(),
        Err(status) => return clients.failed("Consume", &status),
    };
    loop {
        let first = match tokio::time::timeout(IDLE_POLL, stream.message()).await {
            Err(_idle) if clients.stop.load(Ordering::SeqCst) => return,
            Err(_idle) => continue,
            Ok(Ok(Some(delivery))) => delivery,
            Ok(Ok(None)) => {
                return clients.failed("Consume", "the stream ended");
            }
            Ok(Err(status)) => return clients.failed("Consume", &status),
        };
        let mut batch = vec![first];
        // Whatever else has arrived goes into the same Ack; a failure shows on the next read.
        while let Some(Ok(Some(more))) = stream.message().now_or_never() {
            batch.push(more);
        }
        let ids = clients.delivered(&batch);
        // A little work before the ack keeps deliveries in flight, so that kills catch some.
        tokio::time::sleep(rng.duration(Duration::ZERO, Duration::from_millis(3))).await;
        let request = pb::AckRequest {
            ack_ids: batch
                .into_iter()
                .map(|delivery| delivery.delivery_id)
                .collect(),
            ..Default::default()
        };
        clients
            .history
            .with(|history| history.ack_sent.extend(ids.values().cloned()));
        match within("Ack", broker.ack(request)).await {
            Ok(response) => clients.acked(ids, &response.into_inner().unknown_ids),
            Err(status) => return clients.failed("Ack", &status),
        }
    }
}

/// The history, shared by every client task: a `std` mutex, since no `.await` happens while it is
/// held.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<History>>);

impl Shared {
    fn with<T>(&self, change: impl FnOnce(&mut History) -> T) -> T {
        let mut history = self
            .0
            .lock()
            .expect("no recorder panics while holding the lock");
        change(&mut history)
    }

    /// The whole history, once every client task has ended.
    fn take(&self) -> History {
        self.with(std::mem::take)
    }
}

/// What the client tasks of one run share.
#[derive(Clone)]
struct Clients {
    run: Run,
    history: Shared,
    /// Set just before the SIGKILL: a call that fails once it is set failed because of the kill.
    killed: Arc<AtomicBool>,
    /// Set when the drain is over: idle consumers return.
    stop: Arc<AtomicBool>,
}

impl Clients {
    fn new(run: Run, history: &Shared) -> Self {
        Self {
            run,
            history: history.clone(),
            killed: Arc::default(),
            stop: Arc::default(),
        }
    }

    fn anomaly(&self, what: String) {
        let run = self.run;
        self.history
            .with(|history| history.anomalies.push(format!("run {run}: {what}")));
    }

    /// A failed call: expected once the kill has begun, an anomaly before it.
    fn failed(&self, call: &str, why: impl Debug) {
        if !self.killed.load(Ordering::SeqCst) {
            self.anomaly(format!("{call} failed while the broker was up: {why:?}"));
        }
    }

    /// A Publish of `ids` returned OK with `published`: one answer per message, each stored in the
    /// one group (a copy stored nowhere would make "lost" mean nothing).
    fn published(&self, ids: Vec<String>, published: &[pb::Published]) {
        if published.len() != ids.len() || published.iter().any(|answer| answer.groups != 1) {
            self.anomaly(format!(
                "Publish of {ids:?} answered {published:?}, not one copy in the group each"
            ));
        }
        self.history.with(|history| history.published.extend(ids));
    }

    /// Records `batch` as received, and returns the id each delivery carries, by delivery id.
    fn delivered(&self, batch: &[pb::Delivery]) -> HashMap<String, String> {
        let run = self.run;
        let mut ids = HashMap::with_capacity(batch.len());
        let mut empty = Vec::new();
        self.history.with(|history| {
            for delivery in batch {
                let Some(message) = &delivery.message else {
                    empty.push(delivery.delivery_id.clone());
                    continue;
                };
                let id = String::from_utf8_lossy(&message.payload).into_owned();
                history.record_delivery(&id, run, delivery.attempt);
                ids.insert(delivery.delivery_id.clone(), id);
            }
        });
        if !empty.is_empty() {
            self.anomaly(format!("deliveries {empty:?} carry no message"));
        }
        ids
    }

    /// An Ack of `ids` (id by delivery id) returned OK: all but the `unknown` ones are settled.
    fn acked(&self, ids: HashMap<String, String>, unknown: &[String]) {
        let run = self.run;
        self.history.with(|history| {
            for (delivery_id, id) in ids {
                if unknown.contains(&delivery_id) {
                    history.unknown_acks += 1;
                } else {
                    history.record_ack(id, run);
                }
            }
        });
    }
}
