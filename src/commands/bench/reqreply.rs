//! The request/reply scenario: `--in-flight` request loops on one connection, each sending its next
//! request as soon as the last is answered, against `--responders` responders that each run
//! `Client::serve` on their own connection with a handler that echoes the payload. Latency is the
//! round trip of `request().send()`; a request with no reply in time is lost.
//!
//! The responders' group is declared first, so a request sent before a responder has joined waits in
//! the group instead of failing for want of responders; it is deleted at the end.

use std::{
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use switchyard_client::{Client, Error, GroupConfig, Message, ServeOptions};
use tokio_util::sync::CancellationToken;

use super::{Counts, Failure, Session};
use crate::commands::describe;
use switchyard_loadgen::measure::{Stamp, Timeline};

/// How long a request waits for its reply before it counts as lost.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the loops may take to finish their last request once told to stop.
const STOP_LIMIT: Duration = Duration::from_secs(7);
/// A pause after a failed request, so a broker refusing everything is not asked in a busy loop.
const RETRY_PAUSE: Duration = Duration::from_millis(10);

pub async fn run(session: &Session) -> Result<Counts, Failure> {
    let (topic, group) = (session.topic.as_str(), session.group.as_str());
    let admin = session.connect().await?.admin();
    admin
        .declare_group(GroupConfig::new(topic, group))
        .await
        .map_err(|error| Failure::client(format!("cannot declare group {group}"), error))?;
    let counts = serve_and_request(session).await;
    // Best effort: the run's result does not depend on it.
    let _ = admin.delete_group(topic, group).await;
    counts
}

async fn serve_and_request(session: &Session) -> Result<Counts, Failure> {
    let args = &session.args;
    let mut responders = Vec::new();
    for _ in 0..args.responders {
        let client = session.connect().await?;
        let (topic, group) = (session.topic.clone(), session.group.clone());
        // `serve` asks for a prefetch of its concurrency, and a request holds its slot until its ack
        // goes out (batched, up to 5 ms later): a concurrency of only --in-flight would cap the
        // rate at about in-flight per 5 ms, whatever the broker can do.
        let options = ServeOptions::default().concurrency(args.prefetch as usize);
        responders.push(tokio::spawn(async move {
            let echo = |request: Message| async move { Ok::<_, Infallible>(request.payload) };
            client.serve_with(topic, group, options, echo).await
        }));
    }
    let client = session.connect().await?;
    let timeline = session.timeline();
    let stop = CancellationToken::new();
    let completed = Arc::new(AtomicU64::new(0));
    let loops: Vec<_> = (0..args.in_flight)
        .map(|index| {
            let requester = Requester {
                client: client.clone(),
                topic: session.topic.clone(),
                // In-flight is at most u16::MAX (checked by the flag's parser).
                source: index as u16,
                payload_bytes: args.payload_bytes as usize,
                timeline,
                completed: Arc::clone(&completed),
            };
            tokio::spawn(requester.run(stop.clone()))
        })
        .collect();
    let cpu = session
        .measure(timeline, std::slice::from_ref(&completed))
        .await;
    stop.cancel();
    let finished = tokio::time::timeout(STOP_LIMIT, futures_util::future::join_all(loops))
        .await
        .map_err(|_| Failure::new("the last requests did not end in time"))?;
    // Dropping a `serve` future lets its running handlers answer before it leaves the group.
    for responder in responders {
        responder.abort();
    }
    let mut counts = Counts {
        cpu,
        ..Counts::default()
    };
    for outcome in finished {
        let outcome =
            outcome.map_err(|error| Failure::new(format!("a request loop failed: {error}")))?;
        counts.sent += outcome.sent;
        counts.delivered += outcome.delivered;
        counts.latency.merge(&outcome.counts.latency);
        counts.lost += outcome.counts.lost;
        counts.errors += outcome.counts.errors;
        if let Some(error) = outcome.counts.first_error {
            counts.first_error.get_or_insert(error);
        }
    }
    Ok(counts)
}

/// One request loop.
struct Requester {
    client: Client,
    topic: String,
    source: u16,
    payload_bytes: usize,
    timeline: Timeline,
    /// Replies received by every loop, for the progress bar.
    completed: Arc<AtomicU64>,
}

/// What one loop counted; `counts` holds its latency, lost and errors.
struct Outcome {
    sent: u64,
    delivered: u64,
    counts: Counts,
}

impl Requester {
    /// Sends requests one after another until stopped.
    async fn run(self, stop: CancellationToken) -> Outcome {
        let mut outcome = Outcome {
            sent: 0,
            delivered: 0,
            counts: Counts::default(),
        };
        let mut sequence = 0;
        while !stop.is_cancelled() {
            let started = Instant::now();
            let stamp = Stamp {
                source: self.source,
                sequence,
                sent_ns: self.timeline.nanos(started),
            };
            sequence += 1;
            outcome.sent += u64::from(self.timeline.contains(started));
            let request = self
                .client
                .request(self.topic.as_str(), stamp.encode(self.payload_bytes))
                .timeout(REQUEST_TIMEOUT);
            let failure = match request.send().await {
                Ok(reply) if Stamp::decode(&reply.payload) == Some(stamp) => {
                    let answered = Instant::now();
                    self.completed.fetch_add(1, Ordering::Relaxed);
                    if self.timeline.contains(answered) {
                        outcome.delivered += 1;
                        outcome.counts.latency.record(answered - started);
                    }
                    continue;
                }
                Ok(_) => "a reply did not echo its request".to_owned(),
                Err(Error::TimedOut(_)) => {
                    outcome.counts.lost += 1;
                    continue;
                }
                Err(error) => format!("a request failed: {}", describe(&error)),
            };
            outcome.counts.errors += 1;
            outcome.counts.first_error.get_or_insert(failure);
            tokio::time::sleep(RETRY_PAUSE).await;
        }
        outcome
    }
}
