//! Consumers that die while messages flow: several publishers of unique ids, a pool of consumers of
//! which one is killed abruptly every so often (a `switchyard consume` process by SIGKILL, an
//! in-process consumer's connection dropped, a Rust client consumer's task aborted) and replaced,
//! then a full drain. Checked like a Jepsen total queue: every acknowledged publish is received
//! (lost = 0), nothing is received that was not published (unexpected = 0), and duplicates, which
//! only a kill can cause, number at most kills x prefetch.
//!
//! The short run is part of the suite; `bench/soak.sh` runs the ignored `soak` test for as long as
//! `SWITCHYARD_SOAK_SECS` says.

mod common;

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use common::{
    child::ChildProcess,
    faults::{Rng, connect},
    process::switchyard,
    *,
};
use futures_util::{FutureExt, StreamExt};
use switchyard::pb;
use tokio::{task::JoinHandle, time::Instant};

const GROUP: &str = "churn";
/// Long enough that no delivery expires during a run: every redelivery comes from a kill.
const ACK_DEADLINE_MS: u32 = 600_000;
/// What an in-process consumer spends on a batch (or, through the client, on a delivery) before it
/// acks.
const WORK: Duration = Duration::from_millis(2);
/// How long the drain may take once publishing stops.
const DRAIN_LIMIT: Duration = Duration::from_secs(60);

/// The shape of one run.
#[derive(Debug, Clone)]
struct Plan {
    duration: Duration,
    /// A consumer is killed after a pause drawn from this range, again and again.
    kill_every: (Duration, Duration),
    publishers: usize,
    consumers: usize,
    prefetch: u32,
}

/// A short run with a kill about every second, under half a minute in all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_killed_while_messages_flow_lose_nothing() {
    churn(Plan {
        duration: Duration::from_secs(12),
        kill_every: (Duration::from_millis(500), Duration::from_millis(1500)),
        publishers: 3,
        consumers: 4,
        prefetch: 16,
    })
    .await;
}

/// The same for `SWITCHYARD_SOAK_SECS` seconds (default 180), a kill every 1 to 3 seconds; run by
/// `bench/soak.sh`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a long soak; run by bench/soak.sh"]
async fn soak() {
    let seconds = std::env::var("SWITCHYARD_SOAK_SECS")
        .ok()
        .and_then(|secs| secs.parse().ok())
        .unwrap_or(180);
    churn(Plan {
        duration: Duration::from_secs(seconds),
        kill_every: (Duration::from_secs(1), Duration::from_secs(3)),
        publishers: 3,
        consumers: 4,
        prefetch: 16,
    })
    .await;
}

/// The checker itself catches what it is there to catch.
#[test]
fn the_checker_reports_lost_unexpected_and_duplicated_ids() {
    let published: Vec<String> = ["a", "b", "c"].map(String::from).into();
    let received: Vec<String> = ["a", "a", "a", "c", "x"].map(String::from).into();
    let verdict = Verdict::of(&published, &received);
    assert_eq!(verdict.lost, ["b"]);
    assert_eq!(verdict.unexpected, ["x"]);
    assert_eq!((verdict.distinct, verdict.duplicates), (2, 2));
}

/// Jepsen's total-queue check of one run.
#[derive(Debug)]
struct Verdict {
    /// Published (acknowledged) but never received.
    lost: Vec<String>,
    /// Received but never published.
    unexpected: Vec<String>,
    /// Published ids received at least once.
    distinct: usize,
    /// Receipts beyond the first, over all ids.
    duplicates: usize,
}

impl Verdict {
    fn of(published: &[String], received: &[String]) -> Self {
        let published_set: HashSet<&String> = published.iter().collect();
        let mut counts: HashMap<&String, usize> = HashMap::new();
        for id in received {
            *counts.entry(id).or_default() += 1;
        }
        let mut lost: Vec<String> = published
            .iter()
            .filter(|id| !counts.contains_key(id))
            .cloned()
            .collect();
        lost.sort();
        let mut unexpected: Vec<String> = counts
            .keys()
            .filter(|id| !published_set.contains(*id))
            .map(|id| (*id).clone())
            .collect();
        unexpected.sort();
        Self {
            lost,
            unexpected,
            distinct: counts
                .keys()
                .filter(|id| published_set.contains(*id))
                .count(),
            duplicates: counts.values().map(|count| count - 1).sum(),
        }
    }
}

/// Every id any consumer received: a task's as they arrive, a process's once it is killed.
type Received = Arc<Mutex<Vec<String>>>;

fn record(received: &Received, ids: impl IntoIterator<Item = String>) {
    received
        .lock()
        .expect("no recorder panics while holding the lock")
        .extend(ids);
}

/// The three ways a consumer is run, and so killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Flavor {
    /// A `switchyard consume --json` child process; killed with SIGKILL.
    Process,
    /// An in-process consumer on its own connection; its task is aborted, which drops the connection.
    Connection,
    /// A `switchyard_client` consumer; its task is aborted.
    Client,
}

const FLAVORS: [Flavor; 3] = [Flavor::Process, Flavor::Connection, Flavor::Client];

/// A live consumer.
enum Running {
    /// Its stdout is recorded when it is killed: what it printed, it had received.
    Process(ChildProcess),
    Task(JoinHandle<()>),
}

impl Running {
    fn start(
        flavor: Flavor,
        server: &TestServer,
        topic: &str,
        prefetch: u32,
        received: &Received,
    ) -> Self {
        match flavor {
            Flavor::Process => {
                let mut command = switchyard(["consume", topic, "--group", GROUP, "--json"]);
                command
                    .args(["--prefetch", &prefetch.to_string()])
                    .args(["--ack-deadline", &format!("{ACK_DEADLINE_MS}ms")])
                    .args(["--server", &format!("http://{}", server.addr)]);
                Self::Process(ChildProcess::spawn(command, None))
            }
            Flavor::Connection => Self::Task(tokio::spawn(connection_consumer(
                server.addr,
                topic.to_owned(),
                prefetch,
                Arc::clone(received),
            ))),
            Flavor::Client => Self::Task(tokio::spawn(client_consumer(
                format!("http://{}", server.addr),
                topic.to_owned(),
                prefetch,
                Arc::clone(received),
            ))),
        }
    }

    /// Kills the consumer without warning and waits until it is gone; a process's deliveries are
    /// recorded then, from everything it printed.
    async fn kill(self, received: &Received) {
        match self {
            Self::Process(child) => {
                // SIGKILL: no handler runs, nothing is flushed or acked.
                let output = child.kill().await;
                let ids = output.stdout.iter().filter_map(|line| {
                    // A line cut short by the kill was never acked: it does not count.
                    let json = serde_json::from_str::<serde_json::Value>(line).ok()?;
                    json["payload"].as_str().map(str::to_owned)
                });
                record(received, ids);
            }
            Self::Task(task) => {
                task.abort();
                let _ = task.await;
            }
        }
    }
}

/// Reads deliveries over its own connection, records each batch that has arrived, then acks it.
async fn connection_consumer(
    addr: std::net::SocketAddr,
    topic: String,
    prefetch: u32,
    received: Received,
) {
    let mut broker = Broker::new(connect(addr).await);
    let request = consume_with(&topic, GROUP, prefetch, ACK_DEADLINE_MS);
    let Ok(mut stream) = consume(&mut broker, request).await else {
        return;
    };
    while let Ok(Some(first)) = stream.message().await {
        let mut batch = vec![first];
        while let Some(Ok(Some(more))) = stream.message().now_or_never() {
            batch.push(more);
        }
        let payloads = batch.iter().map(|delivery| {
            let message = delivery
                .message
                .as_ref()
                .expect("a delivery carries a message");
            String::from_utf8_lossy(&message.payload).into_owned()
        });
        record(&received, payloads);
        // A little work per batch keeps deliveries in flight, so a kill usually catches some.
        tokio::time::sleep(WORK).await;
        let acks = pb::AckRequest {
            ack_ids: batch
                .into_iter()
                .map(|delivery| delivery.delivery_id)
                .collect(),
            ..Default::default()
        };
        if broker.ack(acks).await.is_err() {
            return;
        }
    }
}

/// Reads deliveries through the Rust client, recording each before acking it.
async fn client_consumer(url: String, topic: String, prefetch: u32, received: Received) {
    let Ok(client) = switchyard_client::Client::connect(url).await else {
        return;
    };
    let consumer = client
        .consume(topic, GROUP)
        .prefetch(prefetch)
        .ack_deadline(Duration::from_millis(ACK_DEADLINE_MS.into()))
        .subscribe()
        .await;
    let Ok(mut consumer) = consumer else { return };
    while let Some(delivery) = consumer.next().await {
        // A disconnection is reported once, then the consumer goes on.
        let Ok(delivery) = delivery else { continue };
        let id = String::from_utf8_lossy(&delivery.message().payload).into_owned();
        record(&received, [id]);
        tokio::time::sleep(WORK).await;
        delivery.ack();
    }
}

/// Publishes batches of unique ids `{publisher}-{n}` until `stop`, and returns the acknowledged ones.
async fn publisher(
    server_addr: std::net::SocketAddr,
    topic: String,
    number: usize,
    stop: Arc<AtomicBool>,
    mut rng: Rng,
) -> Vec<String> {
    let mut broker = Broker::new(connect(server_addr).await);
    let mut published = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let size = rng.between(1, 10) as usize;
        let ids: Vec<String> = (published.len()..published.len() + size)
            .map(|n| format!("{number}-{n}"))
            .collect();
        let batch = ids.iter().map(|id| message(&topic, id.clone())).collect();
        publish_ok(&mut broker, batch).await;
        published.extend(ids);
        tokio::time::sleep(rng.duration(Duration::from_millis(5), Duration::from_millis(20))).await;
    }
    published
}

async fn churn(plan: Plan) {
    let server = TestServer::start().await;
    let topic = unique("faults.churn");
    let mut admin = server.admin().await;
    let declare = pb::DeclareGroupRequest {
        topic: topic.clone(),
        group: GROUP.into(),
        max_length: 1_000_000,
        ack_deadline_ms: ACK_DEADLINE_MS,
        ..Default::default()
    };
    declare_ok(&mut admin, declare).await;
    let mut rng = Rng::from_env("churn");
    let received: Received = Arc::default();

    let start = |flavor| {
        (
            flavor,
            Running::start(flavor, &server, &topic, plan.prefetch, &received),
        )
    };
    let mut consumers: Vec<(Flavor, Running)> = (0..plan.consumers)
        .map(|slot| start(FLAVORS[slot % 3]))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let publishers: Vec<_> = (0..plan.publishers)
        .map(|number| {
            let seed = Rng::from_seed(rng.next_u64());
            tokio::spawn(publisher(
                server.addr,
                topic.clone(),
                number,
                Arc::clone(&stop),
                seed,
            ))
        })
        .collect();

    let started = Instant::now();
    let mut kills: HashMap<Flavor, usize> = HashMap::new();
    let mut next_flavor = plan.consumers;
    while started.elapsed() < plan.duration {
        tokio::time::sleep(rng.duration(plan.kill_every.0, plan.kill_every.1)).await;
        let slot = rng.between(0, plan.consumers as u64 - 1) as usize;
        let flavor = FLAVORS[next_flavor % 3];
        next_flavor += 1;
        let (killed, victim) = std::mem::replace(&mut consumers[slot], start(flavor));
        *kills.entry(killed).or_default() += 1;
        victim.kill(&received).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut published = Vec::new();
    for publisher in publishers {
        published.extend(
            within("a publisher to stop", publisher)
                .await
                .expect("every publish succeeds"),
        );
    }

    // The drain: the surviving consumers settle everything that is left.
    let drain_started = Instant::now();
    let total = published.len() as u64;
    let info = loop {
        let info = group_info(&mut admin, &topic, GROUP)
            .await
            .expect("the declared group is listed");
        // Every publish has returned, so every message is in the group until it is acked: once
        // nothing is ready or in flight, nothing more will be delivered.
        let drained = (info.in_flight, info.ready) == (0, 0);
        if drained || drain_started.elapsed() > DRAIN_LIMIT {
            break info;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for (_, consumer) in consumers {
        consumer.kill(&received).await;
    }
    let received = std::mem::take(&mut *received.lock().expect("no recorder panicked"));
    let verdict = Verdict::of(&published, &received);
    let killed: usize = kills.values().sum();
    let bound = killed * plan.prefetch as usize;
    println!(
        "churn {:?}: {} publishers, {} consumers with prefetch {}; published {}, received {} \
         ({} distinct), lost {}, unexpected {}, duplicates {} (bound: {killed} kills x {} = {bound}), \
         redelivered {}; kills: {} processes (SIGKILL), {} connections dropped, {} client tasks \
         aborted; drained in {:?}",
        plan.duration,
        plan.publishers,
        plan.consumers,
        plan.prefetch,
        published.len(),
        received.len(),
        verdict.distinct,
        verdict.lost.len(),
        verdict.unexpected.len(),
        verdict.duplicates,
        plan.prefetch,
        info.redelivered,
        kills.get(&Flavor::Process).unwrap_or(&0),
        kills.get(&Flavor::Connection).unwrap_or(&0),
        kills.get(&Flavor::Client).unwrap_or(&0),
        drain_started.elapsed(),
    );
    assert!(
        verdict.lost.is_empty(),
        "lost {:?}; group {info:?}",
        first(&verdict.lost)
    );
    assert!(
        verdict.unexpected.is_empty(),
        "unexpected {:?}",
        first(&verdict.unexpected)
    );
    assert!(
        verdict.duplicates <= bound,
        "{} duplicates, more than {bound}",
        verdict.duplicates
    );
    assert_eq!(
        (info.acked, info.in_flight, info.ready),
        (total, 0, 0),
        "the group is drained: every message acked once"
    );
    assert!(
        killed > 0 && !published.is_empty(),
        "the run killed consumers while publishing"
    );
}

/// The first few of a long list, for a readable failure.
fn first(ids: &[String]) -> &[String] {
    &ids[..ids.len().min(20)]
}
