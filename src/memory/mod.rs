//! The in-memory broker: routers as plain Rust behind the [`Broker`] seam.
//!
//! One index (a [`sublist::Sublist`]) maps patterns to subscriptions and queue groups. Publishing
//! takes the index's read lock only to collect targets, so publishers never exclude each other; each
//! group and each subscriber has its own small lock. A housekeeping task forwards dead letters and
//! removes idle groups, so groups never hold a handle to the broker.

mod group;
/// Public for benchmarks and embedding: the queue group's state machine, usable without a runtime.
pub mod group_state;
mod registry;
mod replies;
mod route;
/// Public for benchmarks and embedding: the subscription trie, usable on its own.
pub mod sublist;
mod subscriber;

use std::{
    sync::{Arc, Weak},
    time::{Duration, SystemTime},
};

use futures_util::StreamExt;
use parking_lot::RwLock;
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore, mpsc},
    time::Instant,
};
use tokio_util::sync::CancellationToken;

use self::{
    group::{Housekeeping, QueueGroup},
    group_state::{ConsumerTerms, Settle},
    registry::Registry,
    replies::ReplyRouter,
    route::{Admission, Target},
    sublist::{EntryId, Sublist},
    subscriber::{BufferLimits, SubscriberQueue, subscription_stream},
};
use crate::{
    broker::{
        Broker, ConsumeSpec, Delivery, EventStream, GroupInfo, GroupSpec, Published, Settlement,
        SubscriptionEvent,
    },
    budget::MemoryBudget,
    config::Config,
    error::BrokerError,
    message::{Message, NewMessage},
    topic::{GroupName, Pattern, Topic},
};

/// A cheap `Clone` handle to one in-memory broker.
#[derive(Debug, Clone)]
pub struct MemoryBroker {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    config: Config,
    /// Patterns to subscriptions and groups. A `parking_lot` read-write lock: publishers share it for
    /// a trie walk; only subscribing and group changes take it exclusively.
    index: RwLock<Sublist<Target>>,
    registry: Registry,
    replies: Arc<ReplyRouter>,
    housekeeping: mpsc::UnboundedSender<Housekeeping>,
    /// Cancelled once, at shutdown: ends every stream and refuses new work.
    shutdown: CancellationToken,
    /// `max_subscriptions` permits, one held by each open subscription and consumer.
    stream_slots: Arc<Semaphore>,
    /// `max_memory_bytes`: what the messages held may take.
    budget: Arc<MemoryBudget>,
}

/// How often a publisher waiting for room looks again even if no message was released: an ack frees
/// room in its group while a subscriber may still hold the message.
const ROOM_POLL: Duration = Duration::from_millis(20);

impl MemoryBroker {
    /// Creates a broker and starts its housekeeping task. Needs a Tokio runtime.
    pub fn new(config: Config) -> Self {
        let (housekeeping, events) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            budget: Arc::new(MemoryBudget::new(config.max_memory_bytes)),
            stream_slots: Arc::new(Semaphore::new(
                config.max_subscriptions.min(Semaphore::MAX_PERMITS),
            )),
            config,
            index: RwLock::new(Sublist::default()),
            registry: Registry::default(),
            replies: Arc::default(),
            housekeeping,
            shutdown: CancellationToken::new(),
        });
        tokio::spawn(run_housekeeping(Arc::downgrade(&shared), events));
        Self { shared }
    }

    /// Replies that arrived when no request was waiting for them.
    pub fn unmatched_replies(&self) -> u64 {
        self.shared.replies.unmatched()
    }

    /// Publishes a batch; while the memory budget or a group it goes to is full, waits for room until
    /// `deadline` (if any) and tries again, then fails with what was full.
    async fn publish_until(
        &self,
        batch: Vec<NewMessage>,
        deadline: Option<Instant>,
    ) -> Result<Vec<Published>, BrokerError> {
        self.check_running()?;
        let budget = &self.shared.budget;
        let cost = batch.iter().map(NewMessage::footprint).sum();
        while let Err(over) = budget.try_charge(cost) {
            // A batch bigger than the whole budget would wait in vain.
            if cost > budget.limit() || !self.room_freed(deadline).await? {
                return Err(BrokerError::MemoryFull {
                    used: over.used,
                    limit: over.limit,
                });
            }
        }
        // Each message now carries its part of the charge and gives it back when dropped: at once
        // if the batch is refused or nobody takes it, later when the last holder lets go.
        let messages: Vec<Message> = batch
            .into_iter()
            .map(|new| Message::stamp_charged(new, budget))
            .collect();
        loop {
            match self.shared.route(&messages, Admission::Checked) {
                Err(
                    full @ (BrokerError::GroupFull {
                        never_fits: false, ..
                    }
                    | BrokerError::GroupBytesFull {
                        never_fits: false, ..
                    }),
                ) => {
                    if !self.room_freed(deadline).await? {
                        return Err(full);
                    }
                }
                outcome => return outcome,
            }
        }
    }

    /// Waits a little for room (see [`MemoryBudget::room_freed`]); `false` when there is no deadline or
    /// it has passed.
    async fn room_freed(&self, deadline: Option<Instant>) -> Result<bool, BrokerError> {
        let Some(deadline) = deadline else {
            return Ok(false);
        };
        let freed = tokio::select! {
            freed = self.shared.budget.room_freed(deadline, ROOM_POLL) => freed,
            () = self.shared.shutdown.cancelled() => return Err(BrokerError::ShuttingDown),
        };
        Ok(freed)
    }

    /// One of the `max_subscriptions` slots, held for as long as a subscription or consumer lives.
    fn stream_slot(&self) -> Result<OwnedSemaphorePermit, BrokerError> {
        Arc::clone(&self.shared.stream_slots)
            .try_acquire_owned()
            .map_err(|_| BrokerError::TooManyStreams {
                limit: self.shared.config.max_subscriptions,
            })
    }

    fn check_running(&self) -> Result<(), BrokerError> {
        if self.shared.shutdown.is_cancelled() {
            return Err(BrokerError::ShuttingDown);
        }
        Ok(())
    }
}

/// A subscription's place in the index; dropping it (with the stream) unsubscribes.
struct Registration {
    shared: Arc<Shared>,
    pattern: Pattern,
    entry: EntryId,
    _slot: OwnedSemaphorePermit,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.shared.index.write().remove(&self.pattern, self.entry);
    }
}

impl Broker for MemoryBroker {
    async fn publish(&self, batch: Vec<NewMessage>) -> Result<Vec<Published>, BrokerError> {
        self.publish_until(batch, None).await
    }

    async fn publish_waiting(
        &self,
        batch: Vec<NewMessage>,
        wait: Duration,
    ) -> Result<Vec<Published>, BrokerError> {
        self.publish_until(batch, Some(Instant::now() + wait)).await
    }

    async fn subscribe(
        &self,
        pattern: Pattern,
    ) -> Result<EventStream<SubscriptionEvent>, BrokerError> {
        self.check_running()?;
        let slot = self.stream_slot()?;
        let queue = Arc::new(SubscriberQueue::new(BufferLimits {
            messages: self.shared.config.subscriber_buffer,
            bytes: self.shared.config.subscriber_buffer_bytes,
        }));
        let entry = self
            .shared
            .index
            .write()
            .insert(&pattern, Target::Subscriber(Arc::clone(&queue)));
        let registration = Registration {
            shared: Arc::clone(&self.shared),
            pattern,
            entry,
            _slot: slot,
        };
        Ok(subscription_stream(
            queue,
            registration,
            self.shared.shutdown.clone(),
        ))
    }

    async fn consume(&self, spec: ConsumeSpec) -> Result<EventStream<Delivery>, BrokerError> {
        // The spec's terms were checked against the limits by `validate::consume`.
        self.check_running()?;
        let config = &self.shared.config;
        let slot = self.stream_slot()?;
        let deliveries = self
            .shared
            .registry
            .for_consumer(&self.shared, &spec, |group| {
                let terms = ConsumerTerms {
                    prefetch: spec.prefetch.unwrap_or(config.default_prefetch),
                    ack_deadline: spec.ack_deadline.unwrap_or(group.settings().ack_deadline),
                    standby: spec.standby,
                };
                group.attach(terms, self.shared.shutdown.clone())
            })?;
        // The slot is given back when the consumer's stream is dropped.
        Ok(Box::pin(deliveries.map(move |delivery| {
            let _held = &slot;
            delivery
        })))
    }

    fn delivery_pattern(&self, delivery_id: &str) -> Option<Pattern> {
        let (group, _) = QueueGroup::parse_delivery_id(delivery_id)?;
        let group = self.shared.registry.by_id(group)?;
        Some(group.pattern.clone())
    }

    async fn settle(&self, settlement: Settlement) -> Result<Vec<String>, BrokerError> {
        // Its size and nack delay were checked by `validate::settlement`.
        let Settlement {
            ack,
            nack,
            nack_delay,
            reject,
            extend,
        } = settlement;
        let mut unknown = Vec::new();
        let batches = [
            (ack, Settle::Ack),
            (nack, Settle::Nack { delay: nack_delay }),
            (reject, Settle::Reject),
            (extend, Settle::Extend),
        ];
        for (ids, action) in batches {
            for id in ids {
                let settled = QueueGroup::parse_delivery_id(&id)
                    .and_then(|(group, delivery)| {
                        let group = self.shared.registry.by_id(group)?;
                        Some(group.settle(delivery, action))
                    })
                    .unwrap_or(false);
                if !settled {
                    unknown.push(id);
                }
            }
        }
        Ok(unknown)
    }

    async fn request(
        &self,
        mut request: NewMessage,
        timeout: Duration,
    ) -> Result<Message, BrokerError> {
        self.check_running()?;
        let inbox = Topic::new_inbox();
        if request.correlation_id.is_empty() {
            request.correlation_id = uuid::Uuid::now_v7().to_string();
        }
        request.reply_to = Some(inbox.clone());
        let topic = request.topic.to_string();
        // Wait before publishing: a fast responder may answer before `publish` returns.
        let mut pending = self
            .shared
            .replies
            .wait_for(inbox, request.correlation_id.clone());
        let published = self.publish(vec![request]).await?;
        if published
            .first()
            .is_none_or(|p| p.subscribers == 0 && p.groups == 0)
        {
            return Err(BrokerError::NoResponders { topic });
        }
        tokio::select! {
            reply = pending.reply() => reply.ok_or(BrokerError::ShuttingDown),
            () = tokio::time::sleep(timeout) => Err(BrokerError::RequestTimedOut(timeout)),
            () = self.shared.shutdown.cancelled() => Err(BrokerError::ShuttingDown),
        }
    }

    async fn declare_group(&self, spec: GroupSpec) -> Result<(), BrokerError> {
        // The declaration was checked by `validate::group`.
        self.check_running()?;
        self.shared.registry.declare(&self.shared, spec)
    }

    async fn delete_group(&self, pattern: Pattern, group: GroupName) -> Result<(), BrokerError> {
        self.shared.registry.delete(&self.shared, &pattern, &group)
    }

    async fn list_groups(&self) -> Result<Vec<GroupInfo>, BrokerError> {
        Ok(self.shared.registry.list())
    }

    fn awaits_reply(&self, inbox: &Topic) -> bool {
        self.shared.replies.is_waiting(inbox)
    }

    fn shutdown(&self) {
        self.shared.shutdown.cancel();
    }
}

/// Forwards dead letters and removes idle groups until the broker is dropped.
async fn run_housekeeping(shared: Weak<Shared>, mut events: mpsc::UnboundedReceiver<Housekeeping>) {
    while let Some(event) = events.recv().await {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        match event {
            Housekeeping::DeadLetter(letter, id) => {
                shared.budget.force_charge(letter.footprint());
                let message =
                    Message::stamp_as(letter, id, SystemTime::now(), Some(&shared.budget));
                if let Err(error) = shared.route(&[message], Admission::Forced) {
                    tracing::warn!(%id, %error, "dead letter could not be routed");
                }
            }
            Housekeeping::Idle(group) => shared.registry.remove_if_idle(&shared, group),
        }
    }
}

#[cfg(test)]
mod tests;
