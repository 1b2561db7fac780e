//! reqreply: core NATS request/reply. `--responders` connections share the queue group
//! `responders` on subject `bench.rpc`, so each request reaches one of them, which echoes the
//! payload to the request's reply inbox. `--in-flight` request loops share one connection (as in
//! `switchyard bench`), each sending its next request as soon as the last is answered; their
//! replies come back on the connection's one multiplexed inbox subscription.
//!
//! Latency is the round trip of `Client::send_request`. A request with no reply within 5 s is
//! lost; any other failure (no responders, a reply that does not echo the request) is an error.
//! Duplicates cannot be seen: the client keeps only the first reply to a request.

use std::time::Duration;

use async_nats::{Client, Request, RequestErrorKind, Subscriber};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::clock::{self, Clock, Start};
use crate::config::Args;
use crate::connection::{Connection, Events};
use crate::payload::{self, PayloadWriter, Stamp};
use crate::report::Counts;

const SUBJECT: &str = "bench.rpc";
const GROUP: &str = "responders";
/// How long a request waits for its reply before it counts as lost.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the loops may take to finish their last request once told to stop.
const STOP_LIMIT: Duration = Duration::from_secs(7);
/// A pause after a failed request, so a server refusing everything is not asked in a busy loop.
const RETRY_PAUSE: Duration = Duration::from_millis(10);

pub async fn run(args: &Args, events: &Events, start: Start) -> Result<Counts, String> {
    let stop_responding = CancellationToken::new();
    let mut responders = Vec::new();
    for index in 0..args.responders {
        let connection =
            Connection::open(&args.server, &format!("responder-{index}"), events).await?;
        let requests = connection
            .client
            .queue_subscribe(SUBJECT, GROUP.to_owned())
            .await
            .map_err(|e| format!("cannot subscribe to {SUBJECT}: {e}"))?;
        // The server has the subscription once the PONG is back: no early request finds nobody.
        connection
            .client
            .flush()
            .await
            .map_err(|e| format!("flush: {e}"))?;
        responders.push(tokio::spawn(respond(
            connection.client,
            requests,
            stop_responding.clone(),
        )));
    }
    let client = Connection::open(&args.server, "requester", events)
        .await?
        .client;

    let clock = start.now();
    let stop = CancellationToken::new();
    let loops: Vec<_> = (0..args.in_flight)
        .map(|index| {
            let requester = Requester {
                client: client.clone(),
                // In-flight is at most u16::MAX (checked by the flag's parser).
                source: index as u16,
                payload_bytes: args.payload_bytes as usize,
                clock,
            };
            tokio::spawn(requester.run(stop.clone()))
        })
        .collect();
    clock::window_over(clock).await;
    stop.cancel();
    let finished = tokio::time::timeout(STOP_LIMIT, futures_util::future::join_all(loops))
        .await
        .map_err(|_| "the last requests did not end in time".to_owned())?;
    stop_responding.cancel();
    for responder in responders {
        responder
            .await
            .map_err(|e| format!("a responder failed: {e}"))?;
    }
    let mut counts = Counts::default();
    for outcome in finished {
        let outcome = outcome.map_err(|e| format!("a request loop failed: {e}"))?;
        counts.sent += outcome.sent;
        counts.delivered += outcome.delivered;
        counts.latency.merge(&outcome.latency);
        counts.lost += outcome.lost;
        counts.errors += outcome.errors;
        if let Some(error) = outcome.first_error {
            counts.first_error.get_or_insert(error);
        }
    }
    Ok(counts)
}

/// One request loop.
struct Requester {
    client: Client,
    source: u16,
    payload_bytes: usize,
    clock: Clock,
}

/// What one loop counted.
#[derive(Default)]
struct Outcome {
    sent: u64,
    delivered: u64,
    latency: crate::tally::Latency,
    lost: u64,
    errors: u64,
    first_error: Option<String>,
}

impl Requester {
    /// Sends requests one after another until stopped.
    async fn run(self, stop: CancellationToken) -> Outcome {
        let mut outcome = Outcome::default();
        let mut writer = PayloadWriter::new(self.payload_bytes);
        let mut seq = 0;
        while !stop.is_cancelled() {
            let started = self.clock.now();
            let stamp = Stamp {
                publisher: self.source,
                seq,
                sent_ns: started,
            };
            seq += 1;
            outcome.sent += u64::from(self.clock.in_window(started));
            let request = Request::new()
                .payload(writer.write(stamp))
                .timeout(Some(REQUEST_TIMEOUT));
            let failure = match self.client.send_request(SUBJECT, request).await {
                Ok(reply) if payload::read(&reply.payload) == Some(stamp) => {
                    let answered = self.clock.now();
                    if self.clock.in_window(answered) {
                        outcome.delivered += 1;
                        outcome.latency.record(answered.saturating_sub(started));
                    }
                    continue;
                }
                Ok(_) => "a reply did not echo its request".to_owned(),
                Err(error) if error.kind() == RequestErrorKind::TimedOut => {
                    outcome.lost += 1;
                    continue;
                }
                Err(error) => format!("a request failed: {error}"),
            };
            outcome.errors += 1;
            outcome.first_error.get_or_insert(failure);
            tokio::time::sleep(RETRY_PAUSE).await;
        }
        outcome
    }
}

/// Echoes every request's payload to its reply inbox until stopped.
async fn respond(client: Client, mut requests: Subscriber, stop: CancellationToken) {
    loop {
        let request = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            request = requests.next() => request,
        };
        let Some(request) = request else { break };
        let Some(reply) = request.reply else { continue };
        // A failed publish means the connection is closing; the requester's timeout counts it.
        let _ = client.publish(reply, request.payload).await;
    }
}
