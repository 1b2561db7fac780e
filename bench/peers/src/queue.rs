//! queue and exclusive, the part every broker shares: workers of one group take the messages of
//! `--publishers` publishers, the publishers stay `--window` messages ahead of the workers
//! together (as in `switchyard bench`), a message counts as delivered when a worker receives it,
//! and every message should reach the group once. The broker modules supply the workers and the
//! publishers' outlets.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::Start;
use crate::config::{Args, Scenario};
use crate::publish::{Load, Publisher, Publishers};
use crate::report::Counts;
use switchyard_loadgen::credit::{Credit, Window};
use switchyard_loadgen::{measure::Tracker, sequence::SequenceSet};

/// A worker gives up after this many failed reads in a row (the stream or consumer is gone, say).
pub const MAX_ERRORS_IN_A_ROW: u64 = 100;

/// Whether the scenario is exclusive (one worker, order checked) rather than queue.
pub fn is_exclusive(args: &Args) -> bool {
    args.scenario == Scenario::Exclusive
}

/// How many workers the scenario has: `--consumers` for queue, 1 for exclusive.
pub fn workers(args: &Args) -> usize {
    if is_exclusive(args) {
        1
    } else {
        args.consumers as usize
    }
}

/// What one worker saw.
pub struct Member {
    pub tracker: Tracker,
    pub problems: Problems,
}

/// Failed reads, acks and flushes of one worker.
#[derive(Default)]
pub struct Problems {
    count: u64,
    first: Option<String>,
}

impl Problems {
    pub fn note(&mut self, what: impl FnOnce() -> String) {
        self.count += 1;
        self.first.get_or_insert_with(what);
    }
}

/// One worker of the group, connected and ready.
pub trait Worker: Send + 'static {
    /// Receives and acks until `stop`, counting in `tracker` and giving credit back.
    fn run(
        self,
        tracker: Tracker,
        credit: Credit,
        stop: CancellationToken,
    ) -> impl Future<Output = Member> + Send;
}

/// Runs the scenario with `workers` and `publishers`, connected beforehand.
pub async fn consume<W: Worker, P: Publisher>(
    args: &Args,
    start: Start,
    workers: Vec<W>,
    publishers: Publishers<P>,
) -> Result<Counts, String> {
    let exclusive = is_exclusive(args);
    // One lane: the workers together give credit back, whichever got the message.
    let window = Window::new(1, args.window as usize);

    let clock = start.now();
    let stop = CancellationToken::new();
    let mut settled = Vec::new();
    let tasks: Vec<JoinHandle<Member>> = workers
        .into_iter()
        .map(|worker| {
            let tracker = Tracker::new(clock.timeline(), publishers.issued(), exclusive);
            settled.push(tracker.settled());
            tokio::spawn(worker.run(tracker, window.lane(0), stop.clone()))
        })
        .collect();
    let publishing = publishers.start(Load::of(args), clock, &window);
    let tallies = publishing
        .until_drained(clock, |accepted| total(&settled) >= accepted)
        .await?;
    stop.cancel();

    let mut counts = Counts::from_tallies(&tallies);
    // Every message once across the workers: one two workers both got is a duplicate too.
    let mut group_seen = vec![SequenceSet::default(); tallies.len()];
    for task in tasks {
        let Member { tracker, problems } =
            task.await.map_err(|e| format!("a worker failed: {e}"))?;
        for (all, seen) in group_seen.iter_mut().zip(&tracker.seen) {
            counts.duplicates += all.merge(seen);
        }
        counts.delivered += tracker.delivered;
        counts.latency.merge(&tracker.latency);
        counts.duplicates += tracker.duplicates;
        counts.out_of_order += tracker.out_of_order;
        counts.errors += tracker.foreign + problems.count;
        if let Some(error) = problems.first {
            counts.first_error.get_or_insert(error);
        }
    }
    counts.lost = group_seen
        .iter()
        .zip(&tallies)
        .map(|(seen, tally)| seen.missing(tally.issued, &tally.failed))
        .sum();
    Ok(counts)
}

fn total(counters: &[Arc<AtomicU64>]) -> u64 {
    counters
        .iter()
        .map(|counter| counter.load(Ordering::Relaxed))
        .sum()
}
