//! Recovery and disk use of durable mode: how long a broker takes to come back with a million
//! queued messages, and how many bytes of log each held message takes.
//!
//! Run with `cargo bench --bench recovery` (optionally `-- DIR` for another file system than the
//! temporary directory's, and `-- --messages N` for another count). It publishes N 128-byte
//! messages to one declared group through the durable broker itself (in process, no network), in
//! batches of 1,000, each fsynced before the next; stops the broker; then times what a start does
//! before serving: locking the directory, reading and checking every frame, decoding every record
//! and rebuilding the group, with the new run's first record fsynced. It prints a Markdown table.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use switchyard::{
    broker::{Broker, ConsumeMode, GroupSpec},
    budget::MemoryBudget,
    config::Config,
    durable,
    memory::MemoryBroker,
    message::NewMessage,
    topic::{GroupName, Pattern, Topic, TopicLimits},
};

const PAYLOAD_BYTES: usize = 128;
const BATCH: usize = 1000;
const LIMITS: TopicLimits = TopicLimits {
    max_bytes: 256,
    max_tokens: 16,
};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let messages = args
        .iter()
        .position(|arg| arg == "--messages")
        .and_then(|at| args.get(at + 1))
        .map_or(1_000_000, |count| count.parse().expect("--messages N"));
    let base = args
        .iter()
        .enumerate()
        .find(|(at, arg)| !arg.starts_with('-') && (*at == 0 || args[at - 1] != "--messages"))
        .map(|(_, arg)| PathBuf::from(arg));
    let dir = match &base {
        Some(base) => tempfile::tempdir_in(base),
        None => tempfile::tempdir(),
    }
    .expect("a directory to write in");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let config = Config {
        max_memory_bytes: 4 << 30,
        default_max_length: u32::MAX,
        ..Config::default()
    };
    let published = Instant::now();
    runtime.block_on(fill(dir.path(), &config, messages));
    let published = published.elapsed();
    // The broker's tasks and the committer thread let go of the directory once the broker is gone.
    std::thread::sleep(Duration::from_millis(500));
    let bytes = log_bytes(dir.path());
    let (recovery, held) = runtime.block_on(recover(dir.path(), &config));
    println!("| messages held | published in | log bytes | bytes per message | recovery |");
    println!("|---:|---:|---:|---:|---:|");
    println!(
        "| {held} | {:.2} s | {bytes} | {:.0} ({:.2}x the payload) | {:.2} s |",
        published.as_secs_f64(),
        bytes as f64 / messages as f64,
        bytes as f64 / (messages * PAYLOAD_BYTES) as f64,
        recovery.as_secs_f64()
    );
}

/// Publishes `messages` to one declared group of a durable broker on `dir`.
async fn fill(dir: &Path, config: &Config, messages: usize) {
    let broker = open(dir, config).await;
    broker
        .declare_group(GroupSpec {
            pattern: Pattern::parse("jobs.>", LIMITS).unwrap(),
            group: GroupName::parse("workers", 64).unwrap(),
            mode: ConsumeMode::Shared,
            max_length: Some(u32::MAX),
            max_bytes: None,
            ack_deadline: None,
            max_deliveries: None,
            dead_letter_topic: None,
        })
        .await
        .expect("the group is declared");
    let topic = Topic::parse("jobs.a", LIMITS).unwrap();
    let payload = bytes::Bytes::from(vec![7u8; PAYLOAD_BYTES]);
    for first in (0..messages).step_by(BATCH) {
        let batch = (first..messages.min(first + BATCH))
            .map(|_| NewMessage::new(topic.clone(), payload.clone()))
            .collect();
        broker.publish(batch).await.expect("the batch is published");
    }
    broker.shutdown();
}

/// Starts a durable broker on `dir` as `serve` does, timed, and counts what it holds.
async fn recover(dir: &Path, config: &Config) -> (Duration, u64) {
    let started = Instant::now();
    let broker = open(dir, config).await;
    let elapsed = started.elapsed();
    let groups = broker.list_groups().await.expect("groups are listed");
    broker.shutdown();
    (elapsed, groups.iter().map(|group| group.ready).sum())
}

async fn open(dir: &Path, config: &Config) -> MemoryBroker {
    let budget = Arc::new(MemoryBudget::new(config.max_memory_bytes));
    let opened = durable::open(dir, false, config.segment_bytes, &budget)
        .await
        .expect("the data directory opens");
    MemoryBroker::with_journal(config.clone(), budget, opened.journal, opened.recovered)
}

fn log_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir.join("wal"))
        .expect("the log directory")
        .filter_map(Result::ok)
        .filter_map(|entry| entry.metadata().ok())
        .map(|metadata| metadata.len())
        .sum()
}
