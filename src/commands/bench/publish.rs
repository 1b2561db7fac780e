//! The publishers of the fan-out, queue and exclusive scenarios, held at most `--window` messages
//! ahead of their receivers by the credit of `switchyard_loadgen::credit`.
//!
//! Each publisher has its own connection and the client's batching `Publisher`, and stamps every
//! payload. With the window below the broker's `--subscriber-buffer` the broker never has reason to
//! drop: a run measures the rate the broker sustains without loss, not how fast it can drop.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use switchyard_client::{Client, OutgoingMessage, PendingPublish};
pub use switchyard_loadgen::credit::{Credit, Window};
use switchyard_loadgen::{credit::MAX_CHUNK, pacing::Pacing};
use tokio::{sync::mpsc, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use super::{Failure, Session};
use crate::commands::describe;
use switchyard_loadgen::measure::{Stamp, StampWriter, Timeline};

/// How long the publishers may take to have every queued message answered once told to stop.
const STOP_LIMIT: Duration = Duration::from_secs(35);

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

impl Source {
    async fn run(self, client: Client, stop: CancellationToken) -> Tally {
        let publisher = client.publisher().max_batch(self.batch).build();
        // Answers are awaited on their own task, in order, so the loop below only queues.
        let (answers, queue) = mpsc::unbounded_channel();
        let confirming = tokio::spawn(confirm(queue, self.timeline, self.window.clone()));
        let issued = &self.issued[usize::from(self.index)];
        let mut writer = StampWriter::new(self.payload_bytes);
        let mut pacing = self
            .pace
            .map(|pace| Pacing::start(self.timeline.origin, pace, stop.clone()));
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
            let sent_at = match &mut pacing {
                Some(pacing) => tokio::select! {
                    biased;
                    () = stop.cancelled() => break,
                    due = pacing.due(sequence) => match due {
                        Some(due) => self.timeline.origin + due,
                        None => break,
                    },
                },
                None => Instant::now(),
            };
            let payload = writer.write(Stamp {
                source: self.index,
                sequence,
                sent_ns: self.timeline.nanos(sent_at),
            });
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
