//! JetStream publishes, and their one retry rule: a stream that does not answer yet (just created,
//! its interest not yet known on every server, or between leaders) is sent the message again
//! under the same `Nats-Msg-Id`, which JetStream stores once, for up to [`RESEND_FOR`].

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
    id: String,
}

impl Outgoing {
    async fn send(&self, shared: &Shared) -> Result<PublishAckFuture, BrokerError> {
        let publish = PublishMessage::build()
            .payload(self.payload.clone())
            .headers(self.headers.clone())
            .message_id(&self.id);
        shared
            .jetstream
            .send_publish(self.subject.clone(), publish)
            .await
            .map_err(unavailable)
    }
}

/// Sends a message to the stream on `subject`, stored once per `id`.
pub async fn send(
    shared: &Shared,
    subject: String,
    payload: Bytes,
    headers: HeaderMap,
    id: String,
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
