//! queue and exclusive: JetStream. Publishers send to an in-memory stream (awaiting every
//! publish's ack, pipelined); workers pull from one durable pull consumer and ack everything.
//!
//! - stream `BENCH_QUEUE` / `BENCH_EXCLUSIVE` on subject `bench.queue` / `bench.exclusive`:
//!   memory storage, one replica, no limits, default 2-minute duplicate window (unused: no
//!   message ids are sent). Retention removes a message once acked: work-queue retention for
//!   queue; interest retention for exclusive (the same with one consumer, and unlike work-queue
//!   retention it allows cumulative acks).
//! - consumer `workers`: durable, pull, deliver all, ack wait 30 s (past any drain), max ack
//!   pending = `--prefetch` × workers. Each worker pulls `--prefetch` messages per pull request.
//! - queue: `--consumers` workers, `AckPolicy::Explicit`, every message acked on receipt. NATS has
//!   no multi-id ack, but the client writes the many small `+ACK` publishes in few socket writes.
//! - exclusive: one worker, `AckPolicy::All`, so one ack settles everything before it: the worker
//!   acks every `--prefetch / 2` messages and whenever it is about to wait, as a fast in-order
//!   client batches its acks. Messages must come in each publisher's order.
//!
//! As in `switchyard bench`, the publishers stay `--window` messages ahead of the workers
//! together, a message counts as delivered when a worker receives it, and it is acked right then.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::Client;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::stream::{self, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, Context};
use futures_util::{FutureExt, StreamExt};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::{self, Start};
use crate::config::{Args, Scenario};
use crate::connection::{Connection, Events};
use crate::credit::{Credit, Window};
use crate::publish::{Mode, Publishers, Setup};
use crate::report::Counts;
use crate::tally::{SequenceSet, Tracker};

const CONSUMER: &str = "workers";
/// A worker gives up after this many pull errors in a row (the consumer is gone, say).
const MAX_ERRORS_IN_A_ROW: u64 = 100;

/// What one worker saw.
struct Member {
    tracker: Tracker,
    problems: Problems,
}

/// Failed pulls, acks and flushes of one worker.
#[derive(Default)]
struct Problems {
    count: u64,
    first: Option<String>,
}

impl Problems {
    fn note(&mut self, what: impl FnOnce() -> String) {
        self.count += 1;
        self.first.get_or_insert_with(what);
    }
}

pub async fn run(args: &Args, events: &Events, start: Start) -> Result<Counts, String> {
    let exclusive = args.scenario == Scenario::Exclusive;
    let (stream_name, subject) = if exclusive {
        ("BENCH_EXCLUSIVE", "bench.exclusive")
    } else {
        ("BENCH_QUEUE", "bench.queue")
    };
    let admin = jetstream::new(
        Connection::open(&args.server, "admin", events)
            .await?
            .client,
    );
    // A stream left by an interrupted run would hand its old messages to this one.
    let _ = admin.delete_stream(stream_name).await;
    let workers = if exclusive {
        1
    } else {
        args.consumers as usize
    };
    let stream = admin
        .create_stream(stream::Config {
            name: stream_name.to_owned(),
            subjects: vec![subject.to_owned()],
            storage: StorageType::Memory,
            retention: if exclusive {
                RetentionPolicy::Interest
            } else {
                RetentionPolicy::WorkQueue
            },
            num_replicas: 1,
            ..Default::default()
        })
        .await
        .map_err(|e| {
            format!("cannot create stream {stream_name} (is nats-server running with -js?): {e}")
        })?;
    stream
        .create_consumer(pull::Config {
            durable_name: Some(CONSUMER.to_owned()),
            deliver_policy: DeliverPolicy::All,
            ack_policy: if exclusive {
                AckPolicy::All
            } else {
                AckPolicy::Explicit
            },
            ack_wait: Duration::from_secs(30),
            max_ack_pending: i64::from(args.prefetch) * workers as i64,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("cannot create consumer {CONSUMER}: {e}"))?;
    let counts = consume(
        args,
        events,
        start,
        stream_name,
        subject,
        workers,
        exclusive,
    )
    .await;
    report_unsettled(&admin, stream_name).await;
    // Best effort: the run's result does not depend on it.
    let _ = admin.delete_stream(stream_name).await;
    counts
}

async fn consume(
    args: &Args,
    events: &Events,
    start: Start,
    stream_name: &str,
    subject: &'static str,
    workers: usize,
    exclusive: bool,
) -> Result<Counts, String> {
    let mut consumers = Vec::with_capacity(workers);
    for index in 0..workers {
        let connection =
            Connection::open(&args.server, &format!("consumer-{index}"), events).await?;
        let consumer: PullConsumer = jetstream::new(connection.client.clone())
            .get_consumer_from_stream(CONSUMER, stream_name)
            .await
            .map_err(|e| format!("cannot get consumer {CONSUMER}: {e}"))?;
        consumers.push((connection.client, consumer));
    }
    let publishers = Publishers::connect(&args.server, args.publishers.into(), events).await?;
    // One lane: the workers together give credit back, whichever got the message.
    let window = Window::new(1, args.window as usize);

    let clock = start.now();
    let stop = CancellationToken::new();
    let mut settled = Vec::new();
    let tasks: Vec<JoinHandle<Member>> = consumers
        .into_iter()
        .map(|(client, consumer)| {
            let tracker = Tracker::new(clock, publishers.issued(), exclusive);
            settled.push(tracker.settled());
            let worker = Worker {
                client,
                consumer,
                prefetch: args.prefetch as usize,
                ack_all: exclusive,
            };
            tokio::spawn(worker.run(tracker, window.lane(0), stop.clone()))
        })
        .collect();
    let setup = Setup {
        subject,
        mode: Mode::JetStream,
        payload_bytes: args.payload_bytes as usize,
        window: args.window as usize,
        rate: args.rate,
    };
    let publishing = publishers.start(setup, clock, &window);
    clock::window_over(clock).await;
    let tallies = publishing.stop().await?;
    let accepted: u64 = tallies.iter().map(|tally| tally.accepted).sum();
    clock::drain(|| total(&settled) >= accepted).await;
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

/// Says on stderr if the stream still holds messages: acked messages are removed from it, so
/// anything left was never delivered, or its ack never reached the server.
async fn report_unsettled(admin: &Context, stream_name: &str) {
    // Acks are fire-and-forget publishes, flushed by the workers; give the server a moment to
    // apply the last ones.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let left = match admin.get_stream(stream_name).await {
        Ok(mut stream) => stream
            .info()
            .await
            .map(|info| info.state.messages)
            .map_err(|e| e.to_string()),
        Err(err) => Err(err.to_string()),
    };
    match left {
        Ok(0) => {}
        Ok(left) => {
            eprintln!("nats-peer: {left} messages were left unacked in stream {stream_name}")
        }
        Err(err) => eprintln!("nats-peer: cannot read stream {stream_name}: {err}"),
    }
}

/// One worker of the pull consumer, on its own connection.
struct Worker {
    /// Its connection, flushed at the end so that the last acks leave before it closes.
    client: Client,
    consumer: PullConsumer,
    prefetch: usize,
    /// Cumulative acks (exclusive) instead of one per message.
    ack_all: bool,
}

impl Worker {
    /// Receives and acks until stopped.
    async fn run(
        self,
        mut tracker: Tracker,
        mut credit: Credit,
        stop: CancellationToken,
    ) -> Member {
        let mut problems = Problems::default();
        let mut messages = match self
            .consumer
            .stream()
            .max_messages_per_batch(self.prefetch)
            .messages()
            .await
        {
            Ok(messages) => messages,
            Err(error) => {
                problems.note(|| format!("cannot pull: {error}"));
                return Member { tracker, problems };
            }
        };
        // With cumulative acks: the newest message not acked yet, and how many its ack covers.
        let mut unacked: Option<jetstream::Message> = None;
        let mut covered = 0;
        let ack_every = (self.prefetch / 2).max(1);
        let mut errors_in_a_row = 0;
        loop {
            let item = match messages.next().now_or_never() {
                Some(item) => item,
                None => {
                    // About to wait: settle what is held and give the credit back first.
                    self.ack(unacked.take(), &mut covered, &mut problems).await;
                    credit.give();
                    tokio::select! {
                        biased;
                        () = stop.cancelled() => break,
                        item = messages.next() => item,
                    }
                }
            };
            let message = match item {
                Some(Ok(message)) => message,
                Some(Err(error)) => {
                    problems.note(|| format!("a pull failed: {error}"));
                    errors_in_a_row += 1;
                    if errors_in_a_row >= MAX_ERRORS_IN_A_ROW {
                        break;
                    }
                    continue;
                }
                None => break,
            };
            errors_in_a_row = 0;
            tracker.record(&message.payload);
            credit.received(1);
            covered += 1;
            if !self.ack_all || covered >= ack_every {
                self.ack(Some(message), &mut covered, &mut problems).await;
            } else {
                unacked = Some(message);
            }
        }
        self.ack(unacked.take(), &mut covered, &mut problems).await;
        if let Err(error) = self.client.flush().await {
            problems.note(|| format!("the final flush failed: {error}"));
        }
        Member { tracker, problems }
    }

    /// Acks `message` (with `AckPolicy::All`, everything before it too).
    async fn ack(
        &self,
        message: Option<jetstream::Message>,
        covered: &mut usize,
        problems: &mut Problems,
    ) {
        let Some(message) = message else { return };
        *covered = 0;
        if let Err(error) = message.ack().await {
            problems.note(|| format!("an ack failed: {error}"));
        }
    }
}
