//! Requests pipelined on one RequestStream, shared by every clone of a [`Client`](crate::Client).
//!
//! A unary Request call costs a stream of its own (headers, trailers, a round trip); a frame on an
//! open stream costs a few bytes, so many requests in flight share one stream. One task owns the
//! stream: it numbers each request, sends it, and hands each answer to its caller by number. The
//! stream is opened when the first request comes, and reopened by the next request after it breaks;
//! a break fails the requests it carried (they may or may not have been handled: never resent).

use std::{collections::HashMap, time::Duration};

use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::{
    client::Transport,
    pb::{self, broker_client::BrokerClient, request_stream_response},
};

/// Requests queued for the stream task before callers wait for room.
const QUEUE: usize = 1024;
/// Frames handed to the transport ahead of the network.
const FRAMES: usize = 64;

/// The caller's end: queues requests for the stream task.
#[derive(Debug, Clone)]
pub(crate) struct RequestChannel {
    queue: mpsc::Sender<Queued>,
}

/// A request waiting for a sequence number and a place on the stream.
#[derive(Debug)]
struct Queued {
    message: pb::Message,
    timeout_ms: u32,
    answer: oneshot::Sender<Result<pb::Message, Status>>,
}

impl RequestChannel {
    /// Starts the stream task; it opens no stream before the first request, and ends when every
    /// clone of this channel is gone. Needs a Tokio runtime.
    pub(crate) fn start(broker: BrokerClient<Transport>, open_timeout: Duration) -> Self {
        let (queue, queued) = mpsc::channel(QUEUE);
        tokio::spawn(run(broker, queued, open_timeout));
        Self { queue }
    }

    /// Sends one request and waits for its reply, or the status a unary Request would have ended with.
    pub(crate) async fn call(
        &self,
        message: pb::Message,
        timeout_ms: u32,
    ) -> Result<pb::Message, Status> {
        let (answer, answered) = oneshot::channel();
        let queued = Queued {
            message,
            timeout_ms,
            answer,
        };
        let gone = || Status::unavailable("the request stream task has stopped");
        self.queue.send(queued).await.map_err(|_| gone())?;
        answered.await.map_err(|_| gone())?
    }
}

/// Sequence numbers and callers of the requests sent on one stream and not answered yet.
#[derive(Default)]
struct Outstanding {
    next_sequence: u64,
    callers: HashMap<u64, oneshot::Sender<Result<pb::Message, Status>>>,
}

impl Outstanding {
    fn frame(&mut self, queued: Queued) -> pb::RequestStreamRequest {
        self.next_sequence += 1;
        self.callers.insert(self.next_sequence, queued.answer);
        pb::RequestStreamRequest {
            sequence: self.next_sequence,
            message: Some(queued.message),
            timeout_ms: queued.timeout_ms,
        }
    }

    fn answer(&mut self, answer: pb::RequestStreamResponse) {
        let Some(caller) = self.callers.remove(&answer.sequence) else {
            return;
        };
        let outcome = match answer.result {
            Some(request_stream_response::Result::Reply(reply)) => Ok(reply),
            Some(request_stream_response::Result::Error(error)) => {
                Err(crate::error::frame_status(error))
            }
            None => Err(Status::internal("the broker sent an empty answer")),
        };
        // The caller may have given up waiting; nothing to do then.
        let _ = caller.send(outcome);
    }

    fn fail_all(self, status: &Status) {
        for caller in self.callers.into_values() {
            let _ = caller.send(Err(status.clone()));
        }
    }
}

async fn run(
    mut broker: BrokerClient<Transport>,
    mut queue: mpsc::Receiver<Queued>,
    open_timeout: Duration,
) {
    // A request taken from the queue but not sent when the stream broke goes on the next stream.
    let mut unsent = None;
    loop {
        let first = match unsent.take() {
            Some(queued) => queued,
            None => match queue.recv().await {
                Some(queued) => queued,
                None => return,
            },
        };
        let (frames, body) = mpsc::channel(FRAMES);
        let mut outstanding = Outstanding::default();
        // Room is certain: the channel is new.
        let _ = frames.try_send(outstanding.frame(first));
        let opened = tokio::time::timeout(
            open_timeout,
            broker.request_stream(ReceiverStream::new(body)),
        )
        .await;
        let mut answers = match opened {
            Ok(Ok(response)) => response.into_inner(),
            Ok(Err(status)) => {
                outstanding.fail_all(&status);
                continue;
            }
            Err(_) => {
                let status = Status::deadline_exceeded(format!(
                    "the broker did not open a request stream within {} ms",
                    open_timeout.as_millis()
                ));
                outstanding.fail_all(&status);
                continue;
            }
        };
        let broken = loop {
            tokio::select! {
                // Answers first: they free callers, and the broker waits for them to be read.
                biased;
                answer = answers.message() => match answer {
                    Ok(Some(answer)) => outstanding.answer(answer),
                    Ok(None) => break Status::unavailable("the broker ended the request stream"),
                    Err(status) => break status,
                },
                permit = frames.reserve(), if unsent.is_some() => match (permit, unsent.take()) {
                    (Ok(permit), Some(queued)) => permit.send(outstanding.frame(queued)),
                    (Err(_), queued) => {
                        unsent = queued;
                        break Status::unavailable("the request stream closed");
                    }
                    (Ok(_), None) => {}
                },
                queued = queue.recv(), if unsent.is_none() => match queued {
                    Some(queued) => unsent = Some(queued),
                    // Every client is gone, so nobody waits for an answer.
                    None => return,
                },
            }
        };
        outstanding.fail_all(&broken);
    }
}
