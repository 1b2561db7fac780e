//! Subscriptions in cluster mode: a core NATS subscription per subscriber, drained at once into the
//! bounded buffer the in-memory broker uses, so a slow subscriber loses messages only in its own
//! buffer, where each loss is counted and reported as a `Gap`.
//!
//! A NATS server tells the other servers of a new subscription asynchronously, so a publisher on
//! another node, connected to another server, could miss a subscriber that had been told it was
//! subscribed. So a subscription also subscribes a probe subject of its own, last, and
//! [`census::reach`] has every node request the probe: a server tells its routes of subscriptions
//! in order, so once every node reaches the probe, every node's server knows the subscription.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use futures_util::StreamExt;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::{Shared, census, codec, unavailable};
use crate::{
    broker::{EventStream, SubscriptionEvent},
    error::BrokerError,
    memory::subscriber::{BufferLimits, SubscriberQueue, subscription_stream},
    topic::Pattern,
};

/// Numbers subscriptions for the monitoring registry.
static NEXT_SUBSCRIPTION: AtomicU64 = AtomicU64::new(0);

/// Subscribes to `pattern` on every node's publishes. Active when this returns: NATS has the
/// subscription (a flush is its round trip).
pub async fn subscribe(
    shared: &Arc<Shared>,
    pattern: Pattern,
    slot: OwnedSemaphorePermit,
) -> Result<EventStream<SubscriptionEvent>, BrokerError> {
    let client = &shared.client;
    let messages = client
        .subscribe(shared.subjects.subscription(&pattern))
        .await
        .map_err(unavailable)?;
    let entry = NEXT_SUBSCRIPTION.fetch_add(1, Ordering::Relaxed);
    let probe = shared.subjects.probe(&shared.node, entry);
    let probes = client.subscribe(probe.clone()).await.map_err(unavailable)?;
    let queue = Arc::new(SubscriberQueue::new(BufferLimits {
        messages: shared.config.subscriber_buffer,
        bytes: shared.config.subscriber_buffer_bytes,
    }));
    shared
        .subscriptions
        .opened(&pattern, entry, Arc::clone(&queue));
    let stop = CancellationToken::new();
    tokio::spawn({
        let (queue, stop, shared) = (Arc::clone(&queue), stop.clone(), Arc::clone(shared));
        let probe = probe.clone();
        let mut incoming = futures_util::stream::select(messages, probes);
        async move {
            let limits = shared.config.topic_limits();
            loop {
                let message = tokio::select! {
                    () = stop.cancelled() => break,
                    message = incoming.next() => message,
                };
                // The client ends the subscriptions only when its connection is closed for good.
                let Some(message) = message else { break };
                if message.subject.as_str() == probe {
                    if let Some(reply) = message.reply {
                        // The node that asked now knows this subscription.
                        let _ = shared.client.publish(reply, bytes::Bytes::new()).await;
                    }
                    continue;
                }
                let Some(topic) = shared.subjects.published_topic_of(message.subject.as_str())
                else {
                    continue;
                };
                // A request stored after it was handed straight to a consumer: read already.
                if codec::prior_attempts(message.headers.as_ref()).is_some() {
                    continue;
                }
                match codec::decode(topic, message.payload, message.headers.as_ref(), limits) {
                    Ok(message) => queue.offer(&message, message.footprint()),
                    Err(error) => {
                        tracing::warn!(%error, "dropped a NATS message that is not a Switchyard message")
                    }
                }
            }
        }
    });
    // Every node's server knows of the subscription before it counts as active.
    census::reach(shared, probe).await;
    let registration = Registration {
        shared: Arc::clone(shared),
        pattern,
        entry,
        _stop: stop.drop_guard(),
        _slot: slot,
    };
    Ok(subscription_stream(
        queue,
        registration,
        shared.shutdown.clone(),
    ))
}

/// Held by a subscription's stream: dropping it ends the drain task (and with it the NATS
/// subscriptions) and forgets the subscription.
struct Registration {
    shared: Arc<Shared>,
    pattern: Pattern,
    entry: u64,
    _stop: DropGuard,
    _slot: OwnedSemaphorePermit,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.shared.subscriptions.closed(&self.pattern, self.entry);
    }
}
