//! reqreply: core NATS request/reply. `--responders` connections share the queue group
//! `responders` on subject `bench.rpc`, so each request reaches one of them, which echoes the
//! payload to the request's reply inbox. `--in-flight` request loops ([`crate::reqreply`]) share
//! one connection (as in `switchyard bench`); their replies come back on the connection's one
//! multiplexed inbox subscription.
//!
//! A request is asked with `Client::send_request`. Duplicates cannot be seen: the client keeps
//! only the first reply to a request.

use async_nats::{Client, Request, RequestErrorKind, Subscriber};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::connection::{Connection, Events};
use crate::clock::Start;
use crate::config::Args;
use crate::report::Counts;
use crate::reqreply::{self, Answer, Asker, Outcome, REQUEST_TIMEOUT};
use switchyard_loadgen::measure::Stamp;

const SUBJECT: &str = "bench.rpc";
const GROUP: &str = "responders";

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
    let askers = (0..args.in_flight)
        .map(|_| Requester {
            client: client.clone(),
        })
        .collect();
    let outcomes = reqreply::run_loops(askers, args.payload_bytes as usize, clock).await?;
    stop_responding.cancel();
    for responder in responders {
        responder
            .await
            .map_err(|e| format!("a responder failed: {e}"))?;
    }
    let mut counts = Counts::default();
    Outcome::add_all(&mut counts, outcomes);
    Ok(counts)
}

/// One request loop's way of asking: the shared connection's request/reply.
struct Requester {
    client: Client,
}

impl Asker for Requester {
    async fn ask(&mut self, stamp: Stamp, payload: Bytes) -> Answer {
        let request = Request::new()
            .payload(payload)
            .timeout(Some(REQUEST_TIMEOUT));
        match self.client.send_request(SUBJECT, request).await {
            Ok(reply) if Stamp::decode(&reply.payload) == Some(stamp) => Answer::Echoed,
            Ok(_) => Answer::Failed("a reply did not echo its request".to_owned()),
            Err(error) if error.kind() == RequestErrorKind::TimedOut => Answer::TimedOut,
            Err(error) => Answer::Failed(format!("a request failed: {error}")),
        }
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
