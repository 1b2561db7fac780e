//! queue and exclusive: JetStream. Publishers send to a stream (awaiting every publish's ack,
//! pipelined); workers pull from one durable pull consumer and ack everything.
//!
//! - stream `BENCH_QUEUE` / `BENCH_EXCLUSIVE` on subject `bench.queue` / `bench.exclusive`:
//!   `--storage` storage, memory by default (to compare with Switchyard in memory) or file (to
//!   compare with a durable Switchyard; how often the server then syncs to disk is its own
//!   `sync_interval`, not the client's to choose), one replica, no limits, default 2-minute
//!   duplicate window (unused: no message ids are sent). Retention removes a message once acked:
//!   work-queue retention for queue; interest retention for exclusive (the same with one
//!   consumer, and unlike work-queue retention it allows cumulative acks).
//! - consumer `workers`: durable, pull, deliver all, ack wait 30 s (past any drain), max ack
//!   pending = `--prefetch` × workers. Each worker pulls `--prefetch` messages per pull request.
//! - queue: `--consumers` workers, `AckPolicy::Explicit`, every message acked on receipt. NATS has
//!   no multi-id ack, but the client writes the many small `+ACK` publishes in few socket writes.
//! - exclusive: one worker, `AckPolicy::All`, so one ack settles everything before it: the worker
//!   acks every `--prefetch / 2` messages and whenever it is about to wait, as a fast in-order
//!   client batches its acks. Messages must come in each publisher's order.
//!
//! The load, the credit window and the counting (a message is delivered when a worker receives
//! it) are [`crate::queue`]'s.

use std::time::Duration;

use async_nats::Client;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::stream::{self, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, Context};
use futures_util::{FutureExt, StreamExt};
use tokio_util::sync::CancellationToken;

use super::connection::{Connection, Events};
use super::publish::{self, Mode};
use crate::clock::Start;
use crate::config::{Args, Storage};
use crate::queue::{self, MAX_ERRORS_IN_A_ROW, Member, Problems};
use crate::report::Counts;
use switchyard_loadgen::credit::Credit;
use switchyard_loadgen::measure::Tracker;

const CONSUMER: &str = "workers";

pub async fn run(args: &Args, events: &Events, start: Start) -> Result<Counts, String> {
    let exclusive = queue::is_exclusive(args);
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
    let workers = queue::workers(args);
    let stream = admin
        .create_stream(stream::Config {
            name: stream_name.to_owned(),
            subjects: vec![subject.to_owned()],
            storage: match args.storage {
                Storage::Memory => StorageType::Memory,
                Storage::File => StorageType::File,
            },
            retention: if exclusive {
                RetentionPolicy::Interest
            } else {
                RetentionPolicy::WorkQueue
            },
            num_replicas: args.replicas,
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
    let counts = consume(args, events, start, stream_name, subject, workers).await;
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
) -> Result<Counts, String> {
    let mut pullers = Vec::with_capacity(workers);
    for index in 0..workers {
        let connection =
            Connection::open(&args.server, &format!("consumer-{index}"), events).await?;
        let consumer: PullConsumer = jetstream::new(connection.client.clone())
            .get_consumer_from_stream(CONSUMER, stream_name)
            .await
            .map_err(|e| format!("cannot get consumer {CONSUMER}: {e}"))?;
        pullers.push(Puller {
            client: connection.client,
            consumer,
            prefetch: args.prefetch as usize,
            ack_all: queue::is_exclusive(args),
        });
    }
    let publishers = publish::connect(
        &args.server,
        args.publishers.into(),
        events,
        subject,
        Mode::JetStream,
    )
    .await?;
    queue::consume(args, start, pullers, publishers).await
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
struct Puller {
    /// Its connection, flushed at the end so that the last acks leave before it closes.
    client: Client,
    consumer: PullConsumer,
    prefetch: usize,
    /// Cumulative acks (exclusive) instead of one per message.
    ack_all: bool,
}

impl queue::Worker for Puller {
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
}

impl Puller {
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
