//! JetStream publishes, and their one retry rule: a stream that does not answer yet (just created,
//! its interest not yet known on every server, or between leaders) is sent the message again, for
//! up to [`RESEND_FOR`]. No responders means no server took the message, so sending it again
//! cannot store it twice.
//!
//! A publish carries a `Nats-Msg-Id` only where it can be sent twice on purpose: a dead letter,
//! which a node that died between publishing it and terminating it in its group publishes once
//! more when the message comes back. Ordinary publishes carry none, and the stream keeps no
//! duplicate-window entry for them.

use std::time::Duration;

use async_nats::{
    HeaderMap,
    jetstream::{
        context::{PublishAckFuture, PublishErrorKind},
        message::PublishMessage,
        publish::PublishAck,
    },
};
use bytes::Bytes;
use tokio::time::Instant;

use super::{Shared, unavailable};
use crate::error::BrokerError;

/// How long a message is sent again while the stream does not answer.
const RESEND_FOR: Duration = Duration::from_secs(5);
/// The pause before sending again.
const RESEND_PAUSE: Duration = Duration::from_millis(50);

/// A message on its way to the stream: what to await for its acknowledgement.
pub struct Sent {
    ack: PublishAckFuture,
    message: Outgoing,
}

struct Outgoing {
    subject: String,
    payload: Bytes,
    headers: HeaderMap,
    id: Option<String>,
}

impl Outgoing {
    async fn send(&self, shared: &Shared) -> Result<PublishAckFuture, BrokerError> {
        let mut publish = PublishMessage::build()
            .payload(self.payload.clone())
            .headers(self.headers.clone());
        if let Some(id) = &self.id {
            publish = publish.message_id(id);
        }
        shared
            .jetstream
            .send_publish(self.subject.clone(), publish)
            .await
            .map_err(unavailable)
    }
}

/// Sends a message to the stream on `subject`; with an `id`, JetStream stores it once per id
/// within the stream's duplicate window.
pub async fn send(
    shared: &Shared,
    subject: String,
    payload: Bytes,
    headers: HeaderMap,
    id: Option<String>,
) -> Result<Sent, BrokerError> {
    let message = Outgoing {
        subject,
        payload,
        headers,
        id,
    };
    let ack = message.send(shared).await?;
    Ok(Sent { ack, message })
}

impl Sent {
    /// Waits until the stream has stored the message.
    pub async fn stored(self, shared: &Shared) -> Result<PublishAck, BrokerError> {
        let Self { mut ack, message } = self;
        let deadline = Instant::now() + RESEND_FOR;
        loop {
            match ack.await {
                Ok(stored) => return Ok(stored),
                Err(error)
                    if error.kind() == PublishErrorKind::StreamNotFound
                        && Instant::now() < deadline =>
                {
                    tokio::time::sleep(RESEND_PAUSE).await;
                    ack = message.send(shared).await?;
                }
                Err(error) => return Err(unavailable(error)),
            }
        }
    }
}
