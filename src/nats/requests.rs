//! Request/reply in cluster mode. Each node reads one NATS subscription, `P.i.NODE.*`, for the
//! replies to its requests: a reply is a message published (on any node) to the request's inbox
//! topic `_INBOX.NODE.ID`, matched on its correlation id as in memory.
//!
//! A request that a group may take is a JetStream publish like any message, since a group is a
//! responder. Any other request is a core NATS message on `P.r.TOPIC` whose NATS reply subject
//! is its inbox: with no subscriber on any node, the server sends a no-responders status there at
//! once, and the request fails with `NO_RESPONDERS` without waiting for its timeout. (While this
//! node may have missed a group change, every request goes through the stream, and one that
//! nobody takes times out.)

use std::{sync::Arc, time::Duration};

use futures_util::StreamExt;

use super::{Shared, codec, publish, unavailable};
use crate::{
    error::BrokerError,
    memory::stats::RequestEnd,
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
            if message.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
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
    let inbox = Topic::new_inbox_under(&shared.node);
    if request.correlation_id.is_empty() {
        request.correlation_id = uuid::Uuid::now_v7().to_string();
    }
    request.reply_to = Some(inbox.clone());
    let topic = request.topic.clone();
    // Wait before publishing: a fast responder may answer before the publish returns.
    let mut pending = shared
        .replies
        .wait_for(inbox.clone(), request.correlation_id.clone());
    let bytes = request.payload.len();
    let message = Message::stamp(request);
    let headers = codec::headers(&message);
    if shared.groups.matching(&topic) > 0 || !shared.view.trusted() {
        let subject = shared.subjects.topic(&topic);
        let outgoing = publish::Outgoing {
            subject,
            payload: message.payload_bytes(),
            headers,
        };
        publish::send_one(shared, outgoing, None)
            .await?
            .stored(shared)
            .await?;
    } else {
        shared
            .client
            .publish_with_reply_and_headers(
                shared.subjects.core(&topic),
                shared.subjects.topic(&inbox),
                headers,
                message.payload_bytes(),
            )
            .await
            .map_err(unavailable)?;
    }
    shared.traffic.published(1, bytes);
    let traffic = &shared.traffic;
    tokio::select! {
        reply = pending.reply() => match reply {
            Some(reply) => {
                traffic.request_ended(RequestEnd::Answered);
                Ok(reply)
            }
            None => {
                traffic.request_ended(RequestEnd::NoResponders);
                Err(BrokerError::NoResponders { topic: topic.to_string() })
            }
        },
        () = tokio::time::sleep(timeout) => {
            traffic.request_ended(RequestEnd::TimedOut);
            Err(BrokerError::RequestTimedOut(timeout))
        }
        () = shared.shutdown.cancelled() => Err(BrokerError::ShuttingDown),
    }
}

/// Whether a reply to `inbox` may go through whatever the replier's publish permissions: a request
/// waits on it here, or it is another node's inbox. Those cannot be checked from here, and their
/// random part is as unguessable as a local one's.
pub fn awaits_reply(shared: &Shared, inbox: &Topic) -> bool {
    if shared.replies.is_waiting(inbox) {
        return true;
    }
    let node = inbox
        .as_str()
        .strip_prefix(INBOX_PREFIX)
        .and_then(|rest| rest.split_once('.'))
        .map(|(node, _)| node);
    node.is_some_and(|node| node != shared.node)
}
