//! Settling one JetStream delivery: the subject its acknowledgements go to, and the two ways of
//! sending one there.
//!
//! A confirmed settlement is a request on the client's one shared reply subscription. async-nats's
//! own `double_ack` subscribes to a fresh inbox for each call and unsubscribes after, and every
//! server of the cluster hears of each such subscription: under load that churn cost the servers
//! more than the acks themselves.

use async_nats::{Client, Subject, client::Request, jetstream::AckKind};

use super::{CALL_TIMEOUT, unavailable};
use crate::error::BrokerError;

/// Where a delivery's settlement goes.
#[derive(Debug)]
pub struct AckHandle {
    client: Client,
    /// JetStream's `$JS.ACK…` subject of this delivery.
    reply: Subject,
}

impl AckHandle {
    /// The handle of a message JetStream delivered, if it is one (it has an ack subject).
    pub fn of(client: &Client, message: &async_nats::Message) -> Option<Self> {
        Some(Self {
            client: client.clone(),
            reply: message.reply.clone()?,
        })
    }

    /// Sends `kind` without waiting to hear that JetStream has it.
    pub async fn send(&self, kind: AckKind) -> Result<(), BrokerError> {
        self.client
            .publish(self.reply.clone(), kind.into())
            .await
            .map_err(unavailable)
    }

    /// Sends `kind` and waits until JetStream confirms it (a double ack). A consumer that is gone
    /// answers at once with no responders, which is an error like any other here. The wait is
    /// bounded by [`CALL_TIMEOUT`] like every other JetStream call, not by the client's default,
    /// because a dropped delivery's give-back has no other bound.
    pub async fn confirm(&self, kind: AckKind) -> Result<(), BrokerError> {
        let request = Request::new()
            .payload(kind.into())
            .timeout(Some(CALL_TIMEOUT));
        self.client
            .send_request(self.reply.clone(), request)
            .await
            .map(drop)
            .map_err(unavailable)
    }
}
