//! Request/reply in cluster mode. Each node reads one NATS subscription, `P.i.NODE.*`, for the
//! replies to its requests: a reply is a message published (on any node) to the request's inbox
//! topic `_INBOX.NODE.ID`, matched on its correlation id as in memory.
//!
//! A request that a group may take is a JetStream publish like any message, since a group is a
//! responder. Any other request is a core NATS message on `P.r.TOPIC` whose NATS reply subject
//! is its inbox: with no subscriber on any node, the server sends a no-responders status there at
//! once, and the request fails with `NO_RESPONDERS` without waiting for its timeout. (While this
//! node may have missed a group change, every request goes through the stream, and one that
//! nobody takes times out.) A request that one shared group reads is handed straight to one of
//! its consumers where one has room ([`direct`]), and stored in the stream only where none has.

use std::{sync::Arc, time::Duration};

use futures_util::StreamExt;

use tokio::time::Instant;

use super::{Shared, codec, direct, publish, unavailable};
use crate::{
    error::BrokerError,
    memory::{replies::PendingReply, stats::RequestEnd},
    message::{Message, NewMessage},
    topic::{INBOX_PREFIX, Topic},
};

/// Starts reading this node's inboxes, for as long as the broker runs.
pub async fn listen(shared: &Arc<Shared>) -> Result<(), async_nats::SubscribeError> {
    let mut inboxes = shared
        .client
        .subscribe(shared.subjects.node_inboxes(&shared.node))
        .await?;
    let weak = Arc::downgrade(shared);
    let shutdown = shared.shutdown.clone();
    tokio::spawn(async move {
        loop {
            let message = tokio::select! {
                () = shutdown.cancelled() => return,
                message = inboxes.next() => message,
            };
            let (Some(message), Some(shared)) = (message, weak.upgrade()) else {
                return;
            };
            let Some(topic) = shared.subjects.topic_of(message.subject.as_str()) else {
                continue;
            };
            // Nobody took the request: NATS found no subscriber, or the node had no room.
            if message.status == Some(async_nats::StatusCode::NO_RESPONDERS)
                || codec::is_busy(message.headers.as_ref())
            {
                let limits = shared.config.topic_limits();
                if let Ok(inbox) = Topic::parse(&topic, limits) {
                    shared.replies.refuse(&inbox);
                }
                continue;
            }
            let limits = shared.config.topic_limits();
            match codec::decode(topic, message.payload, message.headers.as_ref(), limits) {
                Ok(reply) => {
                    shared.replies.deliver(&reply);
                }
                Err(error) => tracing::debug!(%error, "dropped a reply that is not a message"),
            }
        }
    });
    Ok(())
}

/// Publishes `request` with a fresh inbox on this node and waits up to `timeout` for its reply.
pub async fn request(
    shared: &Arc<Shared>,
    mut request: NewMessage,
    timeout: Duration,
) -> Result<Message, BrokerError> {
    let deadline = Instant::now() + timeout;
    // In a node's first second it cannot tell that nobody listens (`census::greet`): a request
    // waits for that rather than go through the stream and time out.
    tokio::select! {
        () = shared.greeted.cancelled() => {}
        () = tokio::time::sleep_until(deadline) => {
            return end(shared, Outcome::TimedOut, &request.topic, timeout);
        }
    }
    let inbox = Topic::new_inbox_under(&shared.node);
    if request.correlation_id.is_empty() {
        request.correlation_id = uuid::Uuid::now_v7().to_string();
    }
    let correlation_id = request.correlation_id.clone();
    request.reply_to = Some(inbox.clone());
    let topic = request.topic.clone();
    // Wait before publishing: a fast responder may answer before the publish returns.
    let mut pending = shared
        .replies
        .wait_for(inbox.clone(), correlation_id.clone());
    let bytes = request.payload.len();
    let message = Message::stamp(request);
    let headers = codec::headers(&message);
    let trusted = shared.view.trusted();
    let reader = match trusted {
        true => shared.groups.sole_shared_reader(&topic),
        false => None,
    };
    let client = &shared.client;
    let outcome = if let Some(group) = reader {
        // Subscribers' copy, then the request for one consumer of the group (`direct`): one of
        // this node's if it has room, as NATS prefers a queue subscriber on the same server.
        client
            .publish_with_headers(
                shared.subjects.core(&topic),
                headers.clone(),
                message.payload_bytes(),
            )
            .await
            .map_err(unavailable)?;
        if shared
            .consumers
            .hand(&group.consumer, message.clone())
            .is_ok()
        {
            shared.traffic.published(1, bytes);
            return end(
                shared,
                wait(shared, &mut pending, deadline).await,
                &topic,
                timeout,
            );
        }
        client
            .publish_with_reply_and_headers(
                shared.subjects.direct(&group.consumer, &topic),
                shared.subjects.topic(&inbox),
                headers,
                message.payload_bytes(),
            )
            .await
            .map_err(unavailable)?;
        shared.traffic.published(1, bytes);
        match wait(shared, &mut pending, deadline).await {
            // No consumer had room: the group takes it from the stream.
            Outcome::Refused => {
                drop(pending);
                pending = shared.replies.wait_for(inbox, correlation_id);
                direct::store(shared, &message, 0).await?;
                wait(shared, &mut pending, deadline).await
            }
            outcome => outcome,
        }
    } else if shared.groups.matching(&topic) > 0 || !trusted {
        let outgoing = publish::Outgoing {
            subject: shared.subjects.topic(&topic),
            payload: message.payload_bytes(),
            headers,
        };
        publish::send_one(shared, outgoing, None)
            .await?
            .stored(shared)
            .await?;
        shared.traffic.published(1, bytes);
        wait(shared, &mut pending, deadline).await
    } else {
        client
            .publish_with_reply_and_headers(
                shared.subjects.core(&topic),
                shared.subjects.topic(&inbox),
                headers,
                message.payload_bytes(),
            )
            .await
            .map_err(unavailable)?;
        shared.traffic.published(1, bytes);
        wait(shared, &mut pending, deadline).await
    };
    end(shared, outcome, &topic, timeout)
}

/// What the caller is told of a request that ended so, counted.
fn end(
    shared: &Shared,
    outcome: Outcome,
    topic: &Topic,
    timeout: Duration,
) -> Result<Message, BrokerError> {
    let traffic = &shared.traffic;
    match outcome {
        Outcome::Answered(reply) => {
            traffic.request_ended(RequestEnd::Answered);
            Ok(reply)
        }
        Outcome::Refused => {
            traffic.request_ended(RequestEnd::NoResponders);
            Err(BrokerError::NoResponders {
                topic: topic.to_string(),
            })
        }
        Outcome::TimedOut => {
            traffic.request_ended(RequestEnd::TimedOut);
            Err(BrokerError::RequestTimedOut(timeout))
        }
        Outcome::ShuttingDown => Err(BrokerError::ShuttingDown),
    }
}

/// How a wait for a reply ended.
enum Outcome {
    Answered(Message),
    /// Nobody took the request: NATS said no responders, or the node it was handed to had no room.
    Refused,
    TimedOut,
    ShuttingDown,
}

async fn wait(shared: &Shared, pending: &mut PendingReply, deadline: Instant) -> Outcome {
    tokio::select! {
        reply = pending.reply() => match reply {
            Some(reply) => Outcome::Answered(reply),
            None => Outcome::Refused,
        },
        () = tokio::time::sleep_until(deadline) => Outcome::TimedOut,
        () = shared.shutdown.cancelled() => Outcome::ShuttingDown,
    }
}

/// Whether a reply to `inbox` may go through whatever the replier's publish permissions: a request
/// waits on it here, or it is another node's inbox. Those cannot be checked from here, and their
/// random part is as unguessable as a local one's.
pub fn awaits_reply(shared: &Shared, inbox: &Topic) -> bool {
    if shared.replies.is_waiting(inbox) {
        return true;
    }
    node_of(inbox).is_some_and(|node| node != shared.node)
}

/// Whether `inbox` is one of this node's: a reply to it needs no trip through NATS.
pub fn is_own(shared: &Shared, inbox: &Topic) -> bool {
    node_of(inbox) == Some(shared.node.as_str())
}

/// The node whose request an inbox is for.
fn node_of(inbox: &Topic) -> Option<&str> {
    inbox
        .as_str()
        .strip_prefix(INBOX_PREFIX)
        .and_then(|rest| rest.split_once('.'))
        .map(|(node, _)| node)
}
