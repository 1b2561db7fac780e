//! The publishers of the fanout, queue and exclusive scenarios, each on its own connection, held
//! to `--window` by [`Window`] credit as `switchyard bench`'s are.
//!
//! The loop is the same for every broker: take credit, wait until the pacing thread has released
//! the next message when paced, stamp it, count its sequence number as issued, and hand it to the broker's [`Outlet`],
//! which sends it and counts the server's answers in a [`Tally`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::{self, Clock};
use crate::config::Args;
use crate::credit::{MAX_CHUNK, Window};
use crate::payload::{PayloadWriter, Stamp};

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

/// The nanoseconds between two messages of one of `publishers` sharing `rate` per second; `None`
/// for 0.
fn pace(rate: u64, publishers: usize) -> Option<f64> {
    (rate > 0).then(|| publishers as f64 * 1e9 / rate as f64)
}

/// How often, at most, a paced publisher's pacing thread wakes to release the messages that came due.
const PACER_TICK: Duration = Duration::from_micros(50);

/// Releases a paced publisher's messages as they come due, as `switchyard bench` does
/// (src/commands/bench/publish.rs says why): sends how many are due so far, from an OS thread
/// that wakes when the next one is due, or after [`PACER_TICK`] when that is sooner. Tokio's
/// millisecond timer would release them in bursts.
fn pacer(clock: Clock, pace_ns: f64, stop: CancellationToken) -> mpsc::UnboundedReceiver<u64> {
    let (released, receiver) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        let mut due_so_far = 0;
        while !stop.is_cancelled() {
            let due = (clock.now() as f64 / pace_ns) as u64 + 1;
            if due > due_so_far {
                due_so_far = due;
                if released.send(due).is_err() {
                    return;
                }
            }
            let next_due = (pace_ns * due_so_far as f64) as u64;
            let until_due = Duration::from_nanos(next_due.saturating_sub(clock.now()));
            std::thread::sleep(until_due.max(PACER_TICK));
        }
    });
    receiver
}

/// One publisher.
struct Source {
    index: u16,
    payload_bytes: usize,
    /// Nanoseconds between two messages, when paced.
    pace: Option<f64>,
    clock: Clock,
    window: Window,
    chunk: usize,
    issued: Arc<[AtomicU64]>,
}

impl Source {
    async fn run<O: Outlet>(self, mut outlet: O, stop: CancellationToken) -> Tally {
        let mut writer = PayloadWriter::new(self.payload_bytes);
        let issued = &self.issued[usize::from(self.index)];
        // The releases of a paced publisher, and how many messages they have made due so far.
        let mut pacing = self
            .pace
            .map(|pace| (pacer(self.clock, pace, stop.clone()), 0));
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
            let sent_at = match (&mut pacing, self.pace) {
                (Some((releases, due_so_far)), Some(pace)) => {
                    while seq >= *due_so_far {
                        tokio::select! {
                            biased;
                            () = stop.cancelled() => break,
                            due = releases.recv() => match due {
                                Some(due) => *due_so_far = due,
                                None => break,
                            },
                        }
                    }
                    if seq >= *due_so_far {
                        break;
                    }
                    // Stamped with when it was due, not when it went: a stall that holds the
                    // publisher back shows in the latency of everything it delayed.
                    (pace * seq as f64) as u64
                }
                _ => self.clock.now(),
            };
            let payload = writer.write(Stamp {
                publisher: self.index,
                seq,
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
