//! Fan-out subscriptions as a `Stream`.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use futures_core::Stream;
use futures_util::FutureExt;

use crate::{
    client::Client,
    error::{Error, Result},
    message::Message,
    pb,
    reconnect::{ItemStream, Resumed, open_resumable},
};

/// What a subscription yields.
// Nearly every event is a message: boxing it to shrink the rare gap would cost an allocation each.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A message published to a matching topic.
    Message(Message),
    /// This subscriber fell behind and the broker dropped `missed` messages for it, right here.
    Gap {
        /// How many messages were dropped.
        missed: u64,
    },
    /// The connection dropped here, and the subscription is being renewed: what is published until
    /// it is back is not seen, and nobody counts it. Like a [`Event::Gap`], a mark in the stream,
    /// not its end.
    Disconnected {
        /// The status the stream dropped with (UNAVAILABLE, usually).
        code: tonic::Code,
        /// Its message.
        message: String,
    },
}

/// A live subscription: a `Stream` of [`Event`]s. Dropping it ends the server stream.
///
/// If the connection drops, the stream yields one [`Event::Disconnected`] and resubscribes; what was
/// published while it was away is not seen.
pub struct Subscription {
    pattern: String,
    events: ItemStream<pb::SubscribeResponse>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("pattern", &self.pattern)
            .finish()
    }
}

impl Subscription {
    pub(crate) async fn open(client: Client, pattern: String) -> Result<Self> {
        let request = pb::SubscribeRequest {
            topic: pattern.clone(),
        };
        let broker = client.broker.clone();
        let reopen = move || {
            let (mut broker, request) = (broker.clone(), request.clone());
            async move {
                broker
                    .subscribe(request)
                    .await
                    .map(tonic::Response::into_inner)
            }
            .boxed()
        };
        let events = open_resumable(client.call_timeout, Box::new(reopen)).await?;
        Ok(Self { pattern, events })
    }

    /// The pattern subscribed to.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }
}

impl Stream for Subscription {
    type Item = Result<Event>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.events.as_mut().poll_next(cx).map(|item| {
            item.map(|response| {
                use pb::subscribe_response::Event as Wire;
                let response = match response? {
                    Resumed::Item(response) => response,
                    Resumed::Disconnected(status) => {
                        return Ok(Event::Disconnected {
                            code: status.code(),
                            message: status.message().to_owned(),
                        });
                    }
                };
                match response.event {
                    Some(Wire::Message(message)) => Ok(Event::Message(message.into())),
                    Some(Wire::Gap(gap)) => Ok(Event::Gap { missed: gap.missed }),
                    None => Err(Error::Status(tonic::Status::internal(
                        "the broker sent an empty subscription event",
                    ))),
                }
            })
        })
    }
}
