//! Requests handed straight to a consumer: a request that one shared group reads skips the
//! stream while a consumer of that group has room, since a replicated write, its delivery and
//! its ack (a Raft round each) cost far more than the request itself.
//!
//! - Each node with a consumer of a shared group attached holds one queue subscription on
//!   `P.q.GROUP.>` ([`Subjects::direct`](super::subjects::Subjects::direct)), so NATS hands each
//!   request to one such node.
//! - That node gives the request to one of its consumers of the group with a free prefetch slot,
//!   which delivers it like any other delivery, with its deadline. Acked, it is done; rejected, it
//!   is dead-lettered. Nacked, past its deadline, or held by a consumer that goes, it is stored in
//!   the stream with the deliveries it had ([`store`]), and the group redelivers it from there.
//! - A node none of whose consumers has room answers [`codec::busy`], and NATS answers no
//!   responders where no node has such a consumer: either way the requesting node stores the
//!   request in the stream instead, as it stores every request when this path is not open.
//! - Subscribers read requests too: the requesting node publishes their copy on `P.r.TOPIC`, and
//!   a request stored afterwards is marked ([`codec::mark_attempts`]) so that they skip it.
//!
//! What this gives up: a request handed to a node that dies before settling it is lost with the
//! node, and its requester times out, where one in the stream would come back after the group's
//! ack deadline, which is mostly after the requester stopped waiting for its reply anyway.

use std::{
    collections::HashMap,
    sync::{Arc, Weak},
    time::Duration,
};

use async_nats::Subscriber;
use futures_util::StreamExt;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use super::{CALL_TIMEOUT, Shared, codec, publish};
use crate::{error::BrokerError, message::Message};

/// The queue subscriptions this node holds, one per shared group with consumers here.
#[derive(Debug, Default)]
pub struct Routes {
    /// By JetStream consumer name: how many of this node's consumers read the group, and what
    /// ends its subscription.
    open: Mutex<HashMap<String, Route>>,
}

#[derive(Debug)]
struct Route {
    consumers: usize,
    stop: CancellationToken,
}

/// Opens the route to `group` (its JetStream consumer's name) for one more consumer of it on
/// this node. A route that cannot be opened leaves requests on the stream path.
pub async fn attach(shared: &Arc<Shared>, group: &str) {
    let stop = {
        let mut open = shared.direct.open.lock();
        if let Some(route) = open.get_mut(group) {
            route.consumers += 1;
            return;
        }
        let stop = CancellationToken::new();
        let route = Route {
            consumers: 1,
            stop: stop.clone(),
        };
        open.insert(group.to_owned(), route);
        stop
    };
    let subject = shared.subjects.direct_group(group);
    match shared.client.queue_subscribe(subject, "q".into()).await {
        Ok(requests) => {
            let weak = Arc::downgrade(shared);
            tokio::spawn(serve(weak, group.to_owned(), requests, stop));
        }
        Err(error) => {
            tracing::warn!(%error, group, "cannot open the direct path for a group's requests; they go through the stream");
        }
    }
}

/// Closes the route to `group` when the last of this node's consumers of it goes.
pub fn detach(shared: &Shared, group: &str) {
    let mut open = shared.direct.open.lock();
    let Some(route) = open.get_mut(group) else {
        return;
    };
    route.consumers -= 1;
    if route.consumers == 0 {
        route.stop.cancel();
        open.remove(group);
    }
}

/// Hands each request that comes to a consumer here, until the route closes; then unsubscribes
/// and still answers what the server sent before it heard of that.
async fn serve(
    shared: Weak<Shared>,
    group: String,
    mut requests: Subscriber,
    stop: CancellationToken,
) {
    loop {
        let request = tokio::select! {
            () = stop.cancelled() => break,
            request = requests.next() => request,
        };
        let (Some(request), Some(shared)) = (request, shared.upgrade()) else {
            return;
        };
        take(&shared, &group, request).await;
    }
    if requests.drain().await.is_err() {
        return;
    }
    while let Ok(Some(request)) = tokio::time::timeout(CALL_TIMEOUT, requests.next()).await {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        take(&shared, &group, request).await;
    }
}

/// Gives one request to a consumer of `group` here, or answers that none has room.
async fn take(shared: &Shared, group: &str, request: async_nats::Message) {
    let Some(answer_to) = request.reply.clone() else {
        return;
    };
    let limits = shared.config.topic_limits();
    let decoded = shared
        .subjects
        .direct_topic_of(group, request.subject.as_str())
        .ok_or_else(|| "not a direct request's subject".to_owned())
        .and_then(|topic| {
            codec::decode(
                topic.to_owned(),
                request.payload,
                request.headers.as_ref(),
                limits,
            )
            .map_err(|error| error.to_string())
        });
    let taken = match decoded {
        Ok(message) => shared.consumers.hand(group, message).is_ok(),
        Err(error) => {
            tracing::debug!(%error, "a direct request that is not a message; sent back to its node");
            false
        }
    };
    if !taken {
        let busy = shared
            .client
            .publish_with_headers(answer_to, codec::busy(), bytes::Bytes::new())
            .await;
        if let Err(error) = busy {
            tracing::debug!(%error, "cannot answer a direct request; its requester times out");
        }
    }
}

/// Stores a request that was handed straight to a consumer in the stream, for its group to
/// deliver again: marked with the deliveries it had, which later attempts count on from, and
/// so that subscribers, which had their copy, skip it.
pub async fn store(shared: &Shared, message: &Message, attempts: u32) -> Result<(), BrokerError> {
    let mut headers = codec::headers(message);
    codec::mark_attempts(&mut headers, attempts);
    let outgoing = publish::Outgoing {
        subject: shared.subjects.topic(message.topic()),
        payload: message.payload_bytes(),
        headers,
    };
    publish::send_one(shared, outgoing, None)
        .await?
        .stored(shared)
        .await
        .map(drop)
}

/// [`store`]s a request after `delay` (a nack's), or at once when the broker shuts down: the
/// node keeps it meanwhile, as JetStream keeps a nacked message.
pub async fn store_after(shared: Arc<Shared>, message: Message, attempts: u32, delay: Duration) {
    tokio::select! {
        () = tokio::time::sleep(delay) => {}
        () = shared.shutdown.cancelled() => {}
    }
    if let Err(error) = store(&shared, &message, attempts).await {
        tracing::warn!(%error, "cannot store a nacked request; its requester times out");
    }
}
