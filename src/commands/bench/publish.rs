//! The publishers of the fan-out, queue and exclusive scenarios, and the credit that keeps them at
//! most `--window` messages ahead of their receivers.
//!
//! Each publisher has its own connection and the client's batching `Publisher`, and stamps every
//! payload. A message takes one unit of credit from every receiver that must see it (each subscriber
//! of a fan-out; the group as a whole for a queue), and a receiver gives it back as it receives. So
//! no subscriber ever has more than the window waiting for it, and with the window below the broker's
//! `--subscriber-buffer` the broker never has reason to drop: a run measures the rate the broker
//! sustains without loss, not how fast it can drop. Credit is taken in chunks, so a publisher touches
//! the semaphores once per chunk rather than once per message.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::{FutureExt, Stream, StreamExt};
use switchyard_client::{Client, OutgoingMessage, PendingPublish};
use tokio::{
    sync::{Semaphore, mpsc},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

use super::{
    Failure, Session,
    measure::{Stamp, Timeline},
};
use crate::commands::describe;

/// Most credit a publisher takes at once.
const MAX_CHUNK: usize = 64;
/// A receiver gives credit back at least this often, and whenever it is about to wait.
const RETURN_EVERY: usize = 64;
/// How long the publishers may take to have every queued message answered once told to stop.
const STOP_LIMIT: Duration = Duration::from_secs(35);

/// The publishing side of the credit: one lane per receiver that must see every message.
#[derive(Debug, Clone)]
pub struct Window {
    lanes: Vec<Arc<Semaphore>>,
}

impl Window {
    /// `lanes` receivers, each allowing `size` messages not yet received.
    pub fn new(lanes: usize, size: usize) -> Self {
        Self {
            lanes: (0..lanes).map(|_| Arc::new(Semaphore::new(size))).collect(),
        }
    }

    /// The receiving end of lane `index`.
    pub fn lane(&self, index: usize) -> Credit {
        Credit {
            semaphore: Arc::clone(&self.lanes[index]),
            owed: 0,
        }
    }

    /// Whether the receiver of lane `index` still counts (see [`Credit::close`]).
    pub fn is_open(&self, index: usize) -> bool {
        !self.lanes[index].is_closed()
    }

    /// Waits for `count` units on every open lane. A closed lane (a receiver that stopped counting)
    /// no longer holds anyone back.
    async fn take(&self, count: usize) {
        // A chunk is at most MAX_CHUNK, so it fits a u32.
        let count = count as u32;
        for lane in &self.lanes {
            if let Ok(permits) = lane.acquire_many(count).await {
                permits.forget();
            }
        }
    }

    /// Gives back credit for messages that will never arrive (their publish failed).
    fn give_back(&self, count: usize) {
        for lane in &self.lanes {
            lane.add_permits(count);
        }
    }
}

/// The receiving side of one lane: credit owed to the publishers for messages received.
#[derive(Debug)]
pub struct Credit {
    semaphore: Arc<Semaphore>,
    owed: usize,
}

impl Credit {
    /// Counts `count` messages as received (or as missed: either way they no longer wait).
    pub fn received(&mut self, count: usize) {
        self.owed += count;
        if self.owed >= RETURN_EVERY {
            self.give();
        }
    }

    /// This receiver stops counting: publishers stop waiting for it.
    pub fn close(&self) {
        self.semaphore.close();
    }

    /// The next item of `stream`, giving back what is owed before waiting for it; `None` once `stop`
    /// is cancelled while waiting. The stop is only watched on that slow path: a receiver with items
    /// ready keeps taking them, and after the drain there are none.
    pub async fn next<S>(&mut self, stream: &mut S, stop: &CancellationToken) -> Option<S::Item>
    where
        S: Stream + Unpin,
    {
        if let Some(item) = stream.next().now_or_never() {
            return item;
        }
        self.give();
        tokio::select! {
            biased;
            () = stop.cancelled() => None,
            item = stream.next() => item,
        }
    }

    fn give(&mut self) {
        if self.owed > 0 {
            self.semaphore.add_permits(self.owed);
            self.owed = 0;
        }
    }
}

/// How one publisher did.
#[derive(Debug, Default)]
pub struct Tally {
    /// Sequence numbers used: `0..issued`.
    pub issued: u64,
    /// Messages the broker accepted.
    pub accepted: u64,
    /// Of those, sent within the measured window.
    pub in_window: u64,
    /// Sequence numbers whose publish failed: never in the broker, so never lost.
    pub failed: Vec<u64>,
    pub first_error: Option<String>,
}

/// Connected publishers, ready to start.
pub struct Publishers {
    clients: Vec<Client>,
    issued: Arc<[AtomicU64]>,
}

impl Publishers {
    /// One connection per publisher, made before the clock starts.
    pub async fn connect(session: &Session, count: usize) -> Result<Self, Failure> {
        let mut clients = Vec::with_capacity(count);
        for _ in 0..count {
            clients.push(session.connect().await?);
        }
        Ok(Self {
            clients,
            issued: (0..count).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    /// Per publisher, how many sequence numbers it has used: what a receiver checks stamps against.
    pub fn issued(&self) -> Arc<[AtomicU64]> {
        Arc::clone(&self.issued)
    }

    /// Starts publishing stamped messages to `topic` as fast as `window` allows.
    pub fn start(
        self,
        session: &Session,
        topic: &str,
        timeline: Timeline,
        window: &Window,
    ) -> Publishing {
        let stop = CancellationToken::new();
        let count = self.clients.len();
        let chunk = (session.args.window as usize / (2 * count)).clamp(1, MAX_CHUNK);
        let tasks = self
            .clients
            .into_iter()
            .enumerate()
            .map(|(index, client)| {
                let source = Source {
                    // Publishers are at most u16::MAX (checked by the flag's parser).
                    index: index as u16,
                    topic: topic.to_owned(),
                    payload_bytes: session.args.payload_bytes as usize,
                    batch: session.args.batch as usize,
                    timeline,
                    window: window.clone(),
                    chunk,
                    pace: pace(session.args.rate, count),
                    issued: Arc::clone(&self.issued),
                };
                tokio::spawn(source.run(client, stop.clone()))
            })
            .collect();
        Publishing { stop, tasks }
    }
}

/// Running publishers.
pub struct Publishing {
    stop: CancellationToken,
    tasks: Vec<JoinHandle<Tally>>,
}

impl Publishing {
    /// Stops publishing and waits until every message sent has been answered by the broker.
    pub async fn stop(self) -> Result<Vec<Tally>, Failure> {
        self.stop.cancel();
        let joined = tokio::time::timeout(STOP_LIMIT, futures_util::future::join_all(self.tasks))
            .await
            .map_err(|_| {
                Failure::new(format!(
                    "the broker did not answer the last publishes within {} s",
                    STOP_LIMIT.as_secs()
                ))
            })?;
        joined
            .into_iter()
            .map(|tally| {
                tally.map_err(|error| Failure::new(format!("a publisher failed: {error}")))
            })
            .collect()
    }
}

/// One publisher's settings.
struct Source {
    index: u16,
    topic: String,
    payload_bytes: usize,
    batch: usize,
    timeline: Timeline,
    window: Window,
    chunk: usize,
    /// Time between two messages, when paced.
    pace: Option<Duration>,
    issued: Arc<[AtomicU64]>,
}

/// The time between two messages of one of `publishers` sharing `rate` per second; `None` for 0.
fn pace(rate: u64, publishers: usize) -> Option<Duration> {
    (rate > 0).then(|| Duration::from_secs_f64(publishers as f64 / rate as f64))
}

/// How often, at most, a paced publisher's pacing thread wakes to release the messages that came due.
const PACER_TICK: Duration = Duration::from_micros(50);

/// Releases a paced publisher's messages as they come due: sends how many are due so far, from an OS
/// thread that wakes when the next one is due, or after [`PACER_TICK`] when that is sooner.
///
/// Tokio's timers wake on a millisecond tick: pacing with them released a millisecond's worth of
/// messages at once, and the queueing inside each burst showed as a p99 of 3 ms at half load, where
/// the same load unpaced (a closed window) had 0.6 ms. `std::thread::sleep` wakes within tens of
/// microseconds. Releasing per tick rather than per message keeps the batches a real publisher at
/// that rate would send, and the wake-ups few. Messages are stamped with when they were due, not
/// when they went, so any delay after that (this thread oversleeping, the publisher waiting for
/// credit or for the broker) shows in the latency of everything it delayed.
fn pacer(origin: Instant, pace: Duration, stop: CancellationToken) -> mpsc::UnboundedReceiver<u64> {
    let (released, receiver) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        let pace_ns = pace.as_nanos().max(1);
        let mut due_so_far = 0;
        while !stop.is_cancelled() {
            let elapsed_ns = Instant::now().saturating_duration_since(origin).as_nanos();
            let due = u64::try_from(elapsed_ns / pace_ns + 1).unwrap_or(u64::MAX);
            if due > due_so_far {
                due_so_far = due;
                if released.send(due).is_err() {
                    return;
                }
            }
            // Until the next message is due, but no less than a tick.
            let next_due = origin + pace.mul_f64(due_so_far as f64);
            let until_due = next_due.saturating_duration_since(Instant::now());
            std::thread::sleep(until_due.max(PACER_TICK));
        }
    });
    receiver
}

impl Source {
    async fn run(self, client: Client, stop: CancellationToken) -> Tally {
        let publisher = client.publisher().max_batch(self.batch).build();
        // Answers are awaited on their own task, in order, so the loop below only queues.
        let (answers, queue) = mpsc::unbounded_channel();
        let confirming = tokio::spawn(confirm(queue, self.timeline, self.window.clone()));
        let issued = &self.issued[usize::from(self.index)];
        // The releases of a paced publisher, and how many messages they have made due so far.
        let mut pacing = self
            .pace
            .map(|pace| (pacer(self.timeline.origin, pace, stop.clone()), 0));
        let mut sequence = 0;
        let mut allowance = 0;
        while !stop.is_cancelled() {
            if allowance == 0 {
                tokio::select! {
                    biased;
                    () = stop.cancelled() => break,
                    () = self.window.take(self.chunk) => allowance = self.chunk,
                }
            }
            let sent_at = match (&mut pacing, self.pace) {
                (Some((releases, due_so_far)), Some(pace)) => {
                    while sequence >= *due_so_far {
                        tokio::select! {
                            biased;
                            () = stop.cancelled() => break,
                            due = releases.recv() => match due {
                                Some(due) => *due_so_far = due,
                                None => break,
                            },
                        }
                    }
                    if sequence >= *due_so_far {
                        break;
                    }
                    self.timeline.origin + pace.mul_f64(sequence as f64)
                }
                _ => Instant::now(),
            };
            let payload = Stamp {
                source: self.index,
                sequence,
                sent_ns: self.timeline.nanos(sent_at),
            }
            .encode(self.payload_bytes);
            // Counted before it is sent, so a receiver never sees a sequence it does not know of.
            issued.store(sequence + 1, Ordering::Relaxed);
            let message = OutgoingMessage::new(self.topic.as_str(), payload);
            match publisher.publish(message).await {
                Ok(pending) => {
                    // The confirming task lives until this sender is dropped.
                    let _ = answers.send((sequence, sent_at, pending));
                }
                // Only when the publisher's task is gone, which it is not while we hold it.
                Err(_) => break,
            }
            sequence += 1;
            allowance -= 1;
        }
        drop(answers);
        let mut tally = confirming.await.unwrap_or_default();
        tally.issued = sequence;
        tally
    }
}

/// Awaits each published message's answer, in order, and counts them.
async fn confirm(
    mut queue: mpsc::UnboundedReceiver<(u64, Instant, PendingPublish)>,
    timeline: Timeline,
    window: Window,
) -> Tally {
    let mut tally = Tally::default();
    while let Some((sequence, sent_at, pending)) = queue.recv().await {
        match pending.await {
            Ok(_) => {
                tally.accepted += 1;
                tally.in_window += u64::from(timeline.contains(sent_at));
            }
            Err(error) => {
                tally.failed.push(sequence);
                tally.first_error.get_or_insert_with(|| describe(&error));
                window.give_back(1);
            }
        }
    }
    tally
}
