//! The publishers of the fanout, queue and exclusive scenarios, each on its own connection, held
//! to `--window` by [`Window`] credit as `switchyard bench`'s are.
//!
//! fanout publishes with core NATS: a publish is done once it is in the client's buffer, and a
//! final flush (PING/PONG) proves the server has read them all. queue and exclusive publish to
//! JetStream: every publish gets the stream's ack, awaited in order on a separate task so that the
//! publishing loop only queues, like a fast client pipelining its publishes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::Client;
use async_nats::jetstream::{self, context::PublishAckFuture};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::connection::{Connection, Events};
use crate::credit::{MAX_CHUNK, Window};
use crate::payload::{PayloadWriter, Stamp};

/// How long the publishers may take to have every queued message answered once told to stop.
const STOP_LIMIT: Duration = Duration::from_secs(35);

/// How one publisher did.
#[derive(Debug, Default)]
pub struct Tally {
    /// Sequence numbers used: `0..issued`.
    pub issued: u64,
    /// Messages the server took (JetStream: stored and acked).
    pub accepted: u64,
    /// Of those, sent within the measured window.
    pub in_window: u64,
    /// Sequence numbers whose publish failed: never in the broker, so never lost.
    pub failed: Vec<u64>,
    pub first_error: Option<String>,
}

impl Tally {
    fn fail(&mut self, seq: u64, error: impl std::fmt::Display) {
        self.failed.push(seq);
        self.first_error.get_or_insert_with(|| error.to_string());
    }
}

/// Core NATS or JetStream publishing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Core,
    JetStream,
}

/// Connected publishers, ready to start.
pub struct Publishers {
    connections: Vec<Connection>,
    issued: Arc<[AtomicU64]>,
}

impl Publishers {
    /// One connection per publisher, made before the clock starts.
    pub async fn connect(server: &str, count: usize, events: &Events) -> Result<Self, String> {
        let mut connections = Vec::with_capacity(count);
        for index in 0..count {
            connections
                .push(Connection::open(server, &format!("publisher-{index}"), events).await?);
        }
        Ok(Self {
            connections,
            issued: (0..count).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    /// Per publisher, how many sequence numbers it has used: what receivers check stamps against.
    pub fn issued(&self) -> Arc<[AtomicU64]> {
        Arc::clone(&self.issued)
    }

    /// Starts publishing stamped messages to `subject` as fast as `window` allows.
    pub fn start(self, setup: Setup, clock: Clock, window: &Window) -> Publishing {
        let stop = CancellationToken::new();
        let count = self.connections.len();
        let chunk = (setup.window / (2 * count)).clamp(1, MAX_CHUNK);
        let tasks = self
            .connections
            .into_iter()
            .enumerate()
            .map(|(index, connection)| {
                let source = Source {
                    // Publishers are at most u16::MAX (checked by the flag's parser).
                    index: index as u16,
                    setup,
                    pace: pace(setup.rate, count),
                    clock,
                    window: window.clone(),
                    chunk,
                    issued: Arc::clone(&self.issued),
                };
                tokio::spawn(source.run(connection.client, stop.clone()))
            })
            .collect();
        Publishing { stop, tasks }
    }
}

/// What every publisher of a run shares.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    pub subject: &'static str,
    pub mode: Mode,
    pub payload_bytes: usize,
    /// `--window`, for the chunk size and the JetStream ack window.
    pub window: usize,
    /// `--rate`: messages per second over all publishers; 0 = as fast as the window allows.
    pub rate: u64,
}

/// Running publishers.
pub struct Publishing {
    stop: CancellationToken,
    tasks: Vec<JoinHandle<Tally>>,
}

impl Publishing {
    /// Stops publishing and waits until every message sent has been answered by the server.
    pub async fn stop(self) -> Result<Vec<Tally>, String> {
        self.stop.cancel();
        let joined = tokio::time::timeout(STOP_LIMIT, futures_util::future::join_all(self.tasks))
            .await
            .map_err(|_| {
                format!(
                    "the last publishes were not answered within {} s",
                    STOP_LIMIT.as_secs()
                )
            })?;
        joined
            .into_iter()
            .map(|tally| tally.map_err(|e| format!("a publisher failed: {e}")))
            .collect()
    }
}

/// The nanoseconds between two messages of one of `publishers` sharing `rate` per second; `None`
/// for 0.
fn pace(rate: u64, publishers: usize) -> Option<f64> {
    (rate > 0).then(|| publishers as f64 * 1e9 / rate as f64)
}

/// One publisher.
struct Source {
    index: u16,
    setup: Setup,
    /// Nanoseconds between two messages, when paced.
    pace: Option<f64>,
    clock: Clock,
    window: Window,
    chunk: usize,
    issued: Arc<[AtomicU64]>,
}

impl Source {
    async fn run(self, client: Client, stop: CancellationToken) -> Tally {
        // JetStream acks are awaited on their own task, in order, so the loop below only queues.
        let (answers, queue) = mpsc::unbounded_channel();
        let confirming = tokio::spawn(confirm(queue, self.clock, self.window.clone()));
        let context = (self.setup.mode == Mode::JetStream).then(|| {
            jetstream::ContextBuilder::new()
                .max_ack_inflight(self.setup.window.max(2_500) * 2)
                .backpressure_on_inflight(true)
                .build(client.clone())
        });
        let mut writer = PayloadWriter::new(self.setup.payload_bytes);
        let mut core = Tally::default();
        let issued = &self.issued[usize::from(self.index)];
        let mut seq = 0;
        let mut allowance = 0;
        while !stop.is_cancelled() {
            if allowance == 0 {
                tokio::select! {
                    biased;
                    () = stop.cancelled() => break,
                    () = self.window.take(self.chunk) => allowance = self.chunk,
                }
            }
            let mut sent_at = self.clock.now();
            if let Some(pace) = self.pace {
                // Stamped with when it was due, not when it went: a stall that holds the
                // publisher back shows in the latency of everything it delayed.
                let due = (pace * seq as f64) as u64;
                if due > sent_at {
                    tokio::select! {
                        biased;
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep_until(self.clock.instant(due).into()) => {}
                    }
                }
                sent_at = due;
            }
            let payload = writer.write(Stamp {
                publisher: self.index,
                seq,
                sent_ns: sent_at,
            });
            // Counted before it is sent, so a receiver never sees a sequence it does not know of.
            issued.store(seq + 1, Ordering::Relaxed);
            match &context {
                Some(context) => match context.publish(self.setup.subject, payload).await {
                    // The confirming task lives until this sender is dropped.
                    Ok(ack) => drop(answers.send((seq, sent_at, ack))),
                    Err(error) => {
                        core.fail(seq, error);
                        self.window.give_back(1);
                    }
                },
                None => match client.publish(self.setup.subject, payload).await {
                    Ok(()) => {
                        core.accepted += 1;
                        core.in_window += u64::from(self.clock.in_window(sent_at));
                    }
                    Err(error) => {
                        core.fail(seq, error);
                        self.window.give_back(1);
                    }
                },
            }
            seq += 1;
            allowance -= 1;
        }
        drop(answers);
        let mut tally = confirming.await.unwrap_or_default();
        if context.is_none() {
            if let Err(error) = client.flush().await {
                core.first_error
                    .get_or_insert_with(|| format!("the final flush failed: {error}"));
            }
            tally = core;
        } else {
            tally.failed.extend(core.failed);
            tally.first_error = tally.first_error.or(core.first_error);
        }
        tally.issued = seq;
        tally
    }
}

/// Awaits each JetStream publish's ack, in order, and counts them.
async fn confirm(
    mut queue: mpsc::UnboundedReceiver<(u64, u64, PublishAckFuture)>,
    clock: Clock,
    window: Window,
) -> Tally {
    let mut tally = Tally::default();
    while let Some((seq, sent_at, ack)) = queue.recv().await {
        match ack.await {
            Ok(_) => {
                tally.accepted += 1;
                tally.in_window += u64::from(clock.in_window(sent_at));
            }
            Err(error) => {
                tally.fail(seq, error);
                window.give_back(1);
            }
        }
    }
    tally
}
