//! JetStream publishes: a batch of several messages goes as one atomic batch (ADR-50, nats-server
//! 2.12), stored all or none; and the one retry rule, by which a batch the stream did not take is
//! sent again whole for up to [`RESEND_FOR`].
//!
//! An atomic batch is each message with `Nats-Batch-Id` and `Nats-Batch-Sequence`, the last also
//! with `Nats-Batch-Commit: 1`. Only the last asks for an acknowledgement, which JetStream gives
//! once it has stored the whole batch, or an error if it stored none. The stream leader holds a
//! batch until its commit, for 10 s at most.
//!
//! Sent again whole, under a new batch id: a stream that does not answer yet (no responders:
//! just created, its interest not yet known on every server, or between leaders), a batch that
//! a leader change cut short (incomplete), and one the stream had no room for among the atomic
//! batches it holds at once (50 by default). None of these stored anything, so sending again
//! cannot store twice.
//!
//! A publish carries a `Nats-Msg-Id` only where it can be sent twice on purpose: a dead letter,
//! which a node that died between publishing it and terminating it in its group publishes once
//! more when the message comes back. Ordinary publishes carry none, and the stream keeps no
//! duplicate-window entry for them.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use async_nats::{
    HeaderMap,
    header::{NATS_BATCH_COMMIT, NATS_BATCH_ID, NATS_BATCH_SEQUENCE},
    jetstream::{
        self,
        context::{PublishAckFuture, PublishError, PublishErrorKind},
        message::PublishMessage,
        publish::PublishAck,
    },
};
use bytes::Bytes;
use tokio::time::Instant;

use super::{Shared, unavailable};
use crate::error::BrokerError;

/// How long a batch is sent again while the stream does not take it.
const RESEND_FOR: Duration = Duration::from_secs(5);
/// The pause before sending again.
const RESEND_PAUSE: Duration = Duration::from_millis(50);
/// The most messages JetStream takes in one atomic batch (its `max_batch_size` default).
pub const MAX_ATOMIC_BATCH: usize = 1000;
/// JetStream's error codes for an atomic batch that was cut short, and for one that found the
/// stream holding as many batches as it may.
const BATCH_INCOMPLETE: u64 = 10176;
const TOO_MANY_BATCHES: u64 = 10210;

/// The number of this process's next atomic batch, in its id after the node's name (which is
/// new at each start).
static NEXT_BATCH: AtomicU64 = AtomicU64::new(0);

/// One message for the stream.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub subject: String,
    pub payload: Bytes,
    pub headers: HeaderMap,
}

/// Messages on their way to the stream: what to await for their acknowledgement.
pub struct Sent {
    ack: PublishAckFuture,
    batch: Batch,
}

/// What is sent, as often as it must be.
struct Batch {
    messages: Vec<Outgoing>,
    /// A lone message's `Nats-Msg-Id`.
    id: Option<String>,
}

impl Batch {
    async fn send(&self, shared: &Shared) -> Result<PublishAckFuture, BrokerError> {
        let Some((last, first)) = self.messages.split_last() else {
            return Err(unavailable("an empty batch"));
        };
        if first.is_empty() {
            let mut publish = PublishMessage::build()
                .payload(last.payload.clone())
                .headers(last.headers.clone());
            if let Some(id) = &self.id {
                publish = publish.message_id(id);
            }
            return shared
                .jetstream
                .send_publish(last.subject.clone(), publish)
                .await
                .map_err(unavailable);
        }
        // Unique among the batches the stream holds at once, and short: each of its messages
        // carries it, and JetStream scans every message's headers for its own several times.
        let batch_id = format!(
            "{}{:x}",
            shared.node,
            NEXT_BATCH.fetch_add(1, Ordering::Relaxed)
        );
        let with_batch = |message: &Outgoing, sequence: usize| {
            let mut headers = message.headers.clone();
            headers.insert(NATS_BATCH_ID, batch_id.as_str());
            headers.insert(NATS_BATCH_SEQUENCE, sequence.to_string());
            headers
        };
        for (index, message) in first.iter().enumerate() {
            shared
                .client
                .publish_with_headers(
                    message.subject.clone(),
                    with_batch(message, index + 1),
                    message.payload.clone(),
                )
                .await
                .map_err(unavailable)?;
        }
        let mut headers = with_batch(last, self.messages.len());
        headers.insert(NATS_BATCH_COMMIT, "1");
        let publish = PublishMessage::build()
            .payload(last.payload.clone())
            .headers(headers);
        shared
            .jetstream
            .send_publish(last.subject.clone(), publish)
            .await
            .map_err(unavailable)
    }
}

/// Sends one message to the stream; with an `id`, JetStream stores it once per id within the
/// stream's duplicate window.
pub async fn send_one(
    shared: &Shared,
    message: Outgoing,
    id: Option<String>,
) -> Result<Sent, BrokerError> {
    send(
        shared,
        Batch {
            messages: vec![message],
            id,
        },
    )
    .await
}

/// Sends messages to the stream, to be stored all or none (at most [`MAX_ATOMIC_BATCH`]).
pub async fn send_all(shared: &Shared, messages: Vec<Outgoing>) -> Result<Sent, BrokerError> {
    send(shared, Batch { messages, id: None }).await
}

async fn send(shared: &Shared, batch: Batch) -> Result<Sent, BrokerError> {
    let ack = batch.send(shared).await?;
    Ok(Sent { ack, batch })
}

/// Whether the stream stored nothing of a batch for a reason that passes.
fn stored_none_for_now(error: &PublishError) -> bool {
    if error.kind() == PublishErrorKind::StreamNotFound {
        return true;
    }
    std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<jetstream::Error>())
        .is_some_and(|error| {
            let code = error.error_code().0;
            code == BATCH_INCOMPLETE || code == TOO_MANY_BATCHES
        })
}

impl Sent {
    /// Waits until the stream has stored the messages.
    pub async fn stored(self, shared: &Shared) -> Result<PublishAck, BrokerError> {
        let Self { mut ack, batch } = self;
        let deadline = Instant::now() + RESEND_FOR;
        loop {
            match ack.await {
                Ok(stored) => return Ok(stored),
                Err(error) if stored_none_for_now(&error) && Instant::now() < deadline => {
                    tokio::time::sleep(RESEND_PAUSE).await;
                    ack = batch.send(shared).await?;
                }
                Err(error) => return Err(unavailable(error)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(code: u64) -> PublishError {
        let error: jetstream::Error = serde_json::from_str(&format!(
            r#"{{"code": 400, "err_code": {code}, "description": "refused"}}"#
        ))
        .expect("a JetStream error");
        PublishError::with_source(PublishErrorKind::Other, error)
    }

    #[test]
    fn a_batch_is_sent_again_only_when_nothing_of_it_was_stored() {
        assert!(stored_none_for_now(&PublishError::new(
            PublishErrorKind::StreamNotFound
        )));
        assert!(stored_none_for_now(&refused(BATCH_INCOMPLETE)));
        assert!(stored_none_for_now(&refused(TOO_MANY_BATCHES)));
        // A stream out of room, or a publish whose answer did not come: not sent again.
        assert!(!stored_none_for_now(&refused(10077)));
        assert!(!stored_none_for_now(&PublishError::new(
            PublishErrorKind::TimedOut
        )));
    }
}
