//! reqreply, the part every broker shares: `--in-flight` request loops, each sending its next
//! request as soon as the last is answered, until the measured window is over. The broker modules
//! supply the responders and how one request is asked ([`Asker`]).
//!
//! Latency is the round trip of one request. A request with no reply within
//! [`REQUEST_TIMEOUT`] is lost; any other failure (no responders, a reply that does not echo the
//! request, a failed command) is an error.

use std::time::Duration;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use crate::clock::{self, Clock};
use crate::report::Counts;
use switchyard_loadgen::latency::Latency;
use switchyard_loadgen::measure::{Stamp, StampWriter};

/// How long a request waits for its reply before it counts as lost.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the loops may take to finish their last request once told to stop.
const STOP_LIMIT: Duration = Duration::from_secs(7);
/// A pause after a failed request, so a server refusing everything is not asked in a busy loop.
const RETRY_PAUSE: Duration = Duration::from_millis(10);

/// How a request ended.
pub enum Answer {
    /// Its reply came back and echoed it.
    Echoed,
    /// No reply within [`REQUEST_TIMEOUT`].
    TimedOut,
    Failed(String),
}

/// Asks one request at a time for one loop.
pub trait Asker: Send + 'static {
    /// Sends the request `payload`, stamped `stamp`, and waits for its reply.
    fn ask(&mut self, stamp: Stamp, payload: Bytes) -> impl Future<Output = Answer> + Send;
}

/// What one loop counted.
#[derive(Default)]
pub struct Outcome {
    sent: u64,
    delivered: u64,
    latency: Latency,
    lost: u64,
    errors: u64,
    first_error: Option<String>,
}

impl Outcome {
    /// Adds what the loops counted to `counts`.
    pub fn add_all(counts: &mut Counts, outcomes: Vec<Outcome>) {
        for outcome in outcomes {
            counts.sent += outcome.sent;
            counts.delivered += outcome.delivered;
            counts.latency.merge(&outcome.latency);
            counts.lost += outcome.lost;
            counts.errors += outcome.errors;
            if let Some(error) = outcome.first_error {
                counts.first_error.get_or_insert(error);
            }
        }
    }
}

/// Runs one loop per asker until the measured window is over, then waits for their last
/// requests. Loop `index` stamps its requests with `publisher: index`.
pub async fn run_loops<A: Asker>(
    askers: Vec<A>,
    payload_bytes: usize,
    clock: Clock,
) -> Result<Vec<Outcome>, String> {
    let stop = CancellationToken::new();
    let loops: Vec<_> = askers
        .into_iter()
        .enumerate()
        .map(|(index, asker)| {
            let requester = Requester {
                // In-flight is at most u16::MAX (checked by the flag's parser).
                source: index as u16,
                payload_bytes,
                clock,
            };
            tokio::spawn(requester.run(asker, stop.clone()))
        })
        .collect();
    clock::window_over(clock).await;
    stop.cancel();
    let finished = tokio::time::timeout(STOP_LIMIT, futures_util::future::join_all(loops))
        .await
        .map_err(|_| "the last requests did not end in time".to_owned())?;
    finished
        .into_iter()
        .map(|outcome| outcome.map_err(|e| format!("a request loop failed: {e}")))
        .collect()
}

/// One request loop.
struct Requester {
    source: u16,
    payload_bytes: usize,
    clock: Clock,
}

impl Requester {
    /// Sends requests one after another until stopped.
    async fn run<A: Asker>(self, mut asker: A, stop: CancellationToken) -> Outcome {
        let mut outcome = Outcome::default();
        let mut writer = StampWriter::new(self.payload_bytes);
        let mut seq = 0;
        while !stop.is_cancelled() {
            let started = self.clock.now();
            let stamp = Stamp {
                source: self.source,
                sequence: seq,
                sent_ns: started,
            };
            seq += 1;
            outcome.sent += u64::from(self.clock.in_window(started));
            let failure = match asker.ask(stamp, writer.write(stamp)).await {
                Answer::Echoed => {
                    let answered = self.clock.now();
                    if self.clock.in_window(answered) {
                        outcome.delivered += 1;
                        let round_trip = answered.saturating_sub(started);
                        outcome.latency.record(Duration::from_nanos(round_trip));
                    }
                    continue;
                }
                Answer::TimedOut => {
                    outcome.lost += 1;
                    continue;
                }
                Answer::Failed(failure) => failure,
            };
            outcome.errors += 1;
            outcome.first_error.get_or_insert(failure);
            tokio::time::sleep(RETRY_PAUSE).await;
        }
        outcome
    }
}
