//! The publishers of the fanout, queue and exclusive scenarios, each on its own connection, held
//! to `--window` by [`Window`] credit as `switchyard bench`'s are.
//!
//! The loop is the same for every broker: take credit, wait until the next message is due when
//! paced, stamp it, count its sequence number as issued, and hand it to the broker's [`Outlet`],
//! which sends it and counts the server's answers in a [`Tally`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use switchyard_loadgen::pacing::Pacing;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::{self, Clock};
use crate::config::Args;
use switchyard_loadgen::credit::{MAX_CHUNK, Window};
use switchyard_loadgen::measure::{Stamp, StampWriter};

/// How long the publishers may take to have every queued message answered once told to stop.
const STOP_LIMIT: Duration = Duration::from_secs(35);

/// How one publisher did.
#[derive(Debug, Default)]
pub struct Tally {
    /// Sequence numbers used: `0..issued`.
    pub issued: u64,
    /// Messages the server took (JetStream: stored and acked; Redis: its answer came back).
    pub accepted: u64,
    /// Of those, sent within the measured window.
    pub in_window: u64,
    /// Sequence numbers whose publish failed: never in the broker, so never lost.
    pub failed: Vec<u64>,
    pub first_error: Option<String>,
}

impl Tally {
    /// Counts a message the server took, sent at `sent_at`.
    pub fn accept(&mut self, clock: &Clock, sent_at: u64) {
        self.accepted += 1;
        self.in_window += u64::from(clock.in_window(sent_at));
    }

    /// Counts a publish that failed.
    pub fn fail(&mut self, seq: u64, error: impl std::fmt::Display) {
        self.failed.push(seq);
        self.first_error.get_or_insert_with(|| error.to_string());
    }
}

/// What a broker does with one publisher's stamped messages.
pub trait Outlet: Send + 'static {
    /// Sends message `seq`, stamped `sent_at`; a failure is counted, and its credit given back,
    /// by the outlet.
    fn send(&mut self, seq: u64, sent_at: u64, payload: Bytes) -> impl Future<Output = ()> + Send;

    /// Waits until the server has answered every message sent, and says how it went (`issued`
    /// is filled in by the caller).
    fn finish(self) -> impl Future<Output = Tally> + Send;
}

/// One connected publisher, ready to send.
pub trait Publisher: Send + 'static {
    type Outlet: Outlet;

    /// Starts sending, with the run's `clock`; a failed publish gives its credit back to `window`.
    fn open(self, load: Load, clock: Clock, window: &Window) -> Self::Outlet;
}

/// The load every publisher of a run shares, from the flags.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub payload_bytes: usize,
    /// `--window`, for the chunk of credit taken at once.
    pub window: usize,
    /// `--rate`: messages per second over all publishers; 0 = as fast as the window allows.
    pub rate: u64,
}

impl Load {
    pub fn of(args: &Args) -> Self {
        Self {
            payload_bytes: args.payload_bytes as usize,
            window: args.window as usize,
            rate: args.rate,
        }
    }
}

/// Connected publishers, ready to start.
pub struct Publishers<P> {
    connections: Vec<P>,
    issued: Arc<[AtomicU64]>,
}

impl<P: Publisher> Publishers<P> {
    /// One connection per publisher, made before the clock starts.
    pub fn new(connections: Vec<P>) -> Self {
        let issued = connections.iter().map(|_| AtomicU64::new(0)).collect();
        Self {
            connections,
            issued,
        }
    }

    /// Per publisher, how many sequence numbers it has used: what receivers check stamps against.
    pub fn issued(&self) -> Arc<[AtomicU64]> {
        Arc::clone(&self.issued)
    }

    /// Starts publishing stamped messages as fast as `window` allows.
    pub fn start(self, load: Load, clock: Clock, window: &Window) -> Publishing {
        let stop = CancellationToken::new();
        let count = self.connections.len();
        let chunk = (load.window / (2 * count)).clamp(1, MAX_CHUNK);
        let tasks = self
            .connections
            .into_iter()
            .enumerate()
            .map(|(index, connection)| {
                let source = Source {
                    // Publishers are at most u16::MAX (checked by the flag's parser).
                    index: index as u16,
                    payload_bytes: load.payload_bytes,
                    pace: pace(load.rate, count),
                    clock,
                    window: window.clone(),
                    chunk,
                    issued: Arc::clone(&self.issued),
                };
                let outlet = connection.open(load, clock, window);
                tokio::spawn(source.run(outlet, stop.clone()))
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

    /// Lets the publishers run to the end of the measured window, stops them, then waits (for a
    /// bounded time) until `received` says the receivers have every message the server accepted.
    pub async fn until_drained(
        self,
        clock: Clock,
        received: impl Fn(u64) -> bool,
    ) -> Result<Vec<Tally>, String> {
        clock::window_over(clock).await;
        let tallies = self.stop().await?;
        let accepted: u64 = tallies.iter().map(|tally| tally.accepted).sum();
        clock::drain(|| received(accepted)).await;
        Ok(tallies)
    }
}

/// The time between two messages of one of `publishers` sharing `rate` per second; `None` for 0.
fn pace(rate: u64, publishers: usize) -> Option<Duration> {
    (rate > 0).then(|| Duration::from_secs_f64(publishers as f64 / rate as f64))
}

/// One publisher.
struct Source {
    index: u16,
    payload_bytes: usize,
    /// Time between two messages, when paced.
    pace: Option<Duration>,
    clock: Clock,
    window: Window,
    chunk: usize,
    issued: Arc<[AtomicU64]>,
}

impl Source {
    async fn run<O: Outlet>(self, mut outlet: O, stop: CancellationToken) -> Tally {
        let mut writer = StampWriter::new(self.payload_bytes);
        let issued = &self.issued[usize::from(self.index)];
        let mut pacing = self
            .pace
            .map(|pace| Pacing::start(self.clock.instant(0), pace, stop.clone()));
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
            let sent_at = match &mut pacing {
                // Stamped with when it was due, not when it went: a stall that holds the
                // publisher back shows in the latency of everything it delayed.
                Some(pacing) => tokio::select! {
                    biased;
                    () = stop.cancelled() => break,
                    due = pacing.due(seq) => match due {
                        Some(due) => u64::try_from(due.as_nanos()).unwrap_or(u64::MAX),
                        None => break,
                    },
                },
                None => self.clock.now(),
            };
            let payload = writer.write(Stamp {
                source: self.index,
                sequence: seq,
                sent_ns: sent_at,
            });
            // Counted before it is sent, so a receiver never sees a sequence it does not know of.
            issued.store(seq + 1, Ordering::Relaxed);
            outlet.send(seq, sent_at, payload).await;
            seq += 1;
            allowance -= 1;
        }
        let mut tally = outlet.finish().await;
        tally.issued = seq;
        tally
    }
}
