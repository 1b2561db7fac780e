//! reqreply: request/reply over Redis lists. `--in-flight` request loops share one connection (as
//! in `switchyard bench`): each LPUSHes its request onto the list `bench.rpc` and sends the next
//! one as soon as the last is answered. A request carries the name of the requester's own reply
//! list. `--responders` connections pop requests (`BLMPOP ... RIGHT COUNT 64`, so each request
//! goes to one responder, oldest first) and LPUSH each payload back onto the reply list named in
//! it, pipelined. One reader on a second connection pops the reply list the same way and hands
//! each reply to the loop whose stamp it carries, like NATS's one multiplexed reply inbox per
//! connection.
//!
//! The request loops are [`crate::reqreply`]'s. Latency is the round trip from the LPUSH to the
//! reply's arrival; a late reply to a request that timed out is ignored.

use bytes::Bytes;
use redis::Value;
use redis::aio::MultiplexedConnection;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::connection::{self, array, bulk};
use crate::clock::Start;
use crate::config::Args;
use crate::report::Counts;
use crate::reqreply::{self, Answer, Asker, Outcome, REQUEST_TIMEOUT};
use switchyard_loadgen::measure::Stamp;

const REQUESTS: &str = "bench.rpc";
/// How long one BLMPOP waits, in seconds: how late a responder or the reader sees the stop.
const POP_TIMEOUT_S: f64 = 0.1;
/// Most list items one BLMPOP takes.
const POP_COUNT: usize = 64;

pub async fn run(args: &Args, start: Start) -> Result<Counts, String> {
    let replies_key = format!("bench.rpc.replies.{}", std::process::id());
    let mut admin = connection::open(&args.server, "admin").await?;
    connection::delete(&mut admin, &[REQUESTS, &replies_key]).await?;
    let stop_serving = CancellationToken::new();
    let mut responders = Vec::new();
    for index in 0..args.responders {
        let connection = connection::open(&args.server, &format!("responder-{index}")).await?;
        responders.push(tokio::spawn(respond(connection, stop_serving.clone())));
    }
    let requests = connection::open(&args.server, "requester").await?;
    let reader = connection::open(&args.server, "reply reader").await?;
    let (inboxes, outboxes): (Vec<_>, Vec<_>) = (0..args.in_flight)
        .map(|_| mpsc::unbounded_channel::<Vec<u8>>())
        .unzip();
    let reading = tokio::spawn(read_replies(
        reader,
        replies_key.clone(),
        inboxes,
        stop_serving.clone(),
    ));

    let clock = start.now();
    let askers = outboxes
        .into_iter()
        .map(|replies| Requester {
            connection: requests.clone(),
            replies_key: replies_key.clone(),
            replies,
        })
        .collect();
    let outcomes = reqreply::run_loops(askers, args.payload_bytes as usize, clock).await?;
    stop_serving.cancel();
    let mut counts = Counts::default();
    for responder in responders {
        if let Some(error) = responder
            .await
            .map_err(|e| format!("a responder failed: {e}"))?
        {
            counts.error(|| error);
        }
    }
    if let Some(error) = reading
        .await
        .map_err(|e| format!("the reply reader failed: {e}"))?
    {
        counts.error(|| error);
    }
    Outcome::add_all(&mut counts, outcomes);
    // Best effort: the run's result does not depend on it.
    let _ = connection::delete(&mut admin, &[REQUESTS, &replies_key]).await;
    Ok(counts)
}

/// A request on the list: the reply list's name (one byte of length, then the name), then the
/// payload to echo.
fn request(replies_key: &str, payload: &[u8]) -> Vec<u8> {
    let name = replies_key.as_bytes();
    let mut request = Vec::with_capacity(1 + name.len() + payload.len());
    // Reply list names are short (a prefix and a process id), well under 256 bytes.
    request.push(name.len() as u8);
    request.extend_from_slice(name);
    request.extend_from_slice(payload);
    request
}

/// (reply list, payload) of a request, or `None` for a malformed one.
fn parse_request(request: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&length, rest) = request.split_first()?;
    let length = usize::from(length);
    (rest.len() >= length).then(|| rest.split_at(length))
}

/// Pops up to [`POP_COUNT`] items from the right of `key`, waiting at most [`POP_TIMEOUT_S`];
/// none when it timed out.
async fn pop(connection: &mut MultiplexedConnection, key: &str) -> Result<Vec<Vec<u8>>, String> {
    let reply = redis::cmd("BLMPOP")
        .arg(POP_TIMEOUT_S)
        .arg(1)
        .arg(key)
        .arg("RIGHT")
        .arg("COUNT")
        .arg(POP_COUNT)
        .query_async::<Value>(connection)
        .await
        .map_err(|e| format!("BLMPOP {key} failed: {e}"))?;
    // [key, [item, ...]], or nil on timeout.
    if let Value::Nil = reply {
        return Ok(Vec::new());
    }
    array(reply)
        .and_then(|mut pair| pair.pop())
        .and_then(array)
        .and_then(|items| items.into_iter().map(bulk).collect())
        .ok_or_else(|| format!("BLMPOP {key}: unexpected reply"))
}

/// Echoes every request's payload onto its reply list until stopped; returns the first failure.
async fn respond(mut connection: MultiplexedConnection, stop: CancellationToken) -> Option<String> {
    while !stop.is_cancelled() {
        let requests = match pop(&mut connection, REQUESTS).await {
            Ok(requests) if requests.is_empty() => continue,
            Ok(requests) => requests,
            Err(error) => return Some(error),
        };
        let mut pipe = redis::pipe();
        for request in &requests {
            // A malformed request has nobody to answer; its requester's timeout counts it.
            if let Some((replies_key, payload)) = parse_request(request) {
                pipe.cmd("LPUSH").arg(replies_key).arg(payload).ignore();
            }
        }
        if let Err(error) = pipe.query_async::<()>(&mut connection).await {
            return Some(format!("replying failed: {error}"));
        }
    }
    None
}

/// Pops the reply list until stopped, handing each reply to the loop whose stamp it carries;
/// returns the first failure.
async fn read_replies(
    mut connection: MultiplexedConnection,
    key: String,
    inboxes: Vec<mpsc::UnboundedSender<Vec<u8>>>,
    stop: CancellationToken,
) -> Option<String> {
    while !stop.is_cancelled() {
        let replies = match pop(&mut connection, &key).await {
            Ok(replies) => replies,
            Err(error) => return Some(error),
        };
        for reply in replies {
            let inbox =
                Stamp::decode(&reply).and_then(|stamp| inboxes.get(usize::from(stamp.source)));
            // A reply for no loop is one the loop will miss: its timeout counts it.
            if let Some(inbox) = inbox {
                let _ = inbox.send(reply);
            }
        }
    }
    None
}

/// One request loop's way of asking: LPUSH on the shared connection, then wait for the reply the
/// reader hands over.
struct Requester {
    connection: MultiplexedConnection,
    replies_key: String,
    replies: mpsc::UnboundedReceiver<Vec<u8>>,
}

impl Asker for Requester {
    async fn ask(&mut self, stamp: Stamp, payload: Bytes) -> Answer {
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        let pushed = redis::cmd("LPUSH")
            .arg(REQUESTS)
            .arg(request(&self.replies_key, &payload))
            .query_async::<Value>(&mut self.connection)
            .await;
        if let Err(error) = pushed {
            return Answer::Failed(format!("a request failed: {error}"));
        }
        loop {
            let reply = match tokio::time::timeout_at(deadline, self.replies.recv()).await {
                Err(_) => return Answer::TimedOut,
                Ok(None) => return Answer::Failed("the reply reader stopped".to_owned()),
                Ok(Some(reply)) => reply,
            };
            match Stamp::decode(&reply) {
                Some(echo) if echo == stamp => return Answer::Echoed,
                // The late reply to a request that timed out already.
                Some(echo) if echo.sequence < stamp.sequence => continue,
                _ => return Answer::Failed("a reply did not echo its request".to_owned()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reply list's name and the payload come back apart; a truncated request is refused.
    #[test]
    fn request_framing() {
        let framed = request("bench.rpc.replies.7", b"payload");
        assert_eq!(
            parse_request(&framed),
            Some((&b"bench.rpc.replies.7"[..], &b"payload"[..]))
        );
        assert_eq!(parse_request(&[5, b'a']), None);
        assert_eq!(parse_request(&[]), None);
    }
}
