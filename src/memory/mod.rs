//! The in-memory broker: routers as plain Rust behind the [`Broker`] seam.
//!
//! One index (a [`sublist::Sublist`]) maps patterns to subscriptions and queue groups. Publishing
//! takes the index's read lock only to collect targets, so publishers never exclude each other; each
//! group and each subscriber has its own small lock. A housekeeping task forwards dead letters and
//! removes idle groups, so groups never hold a handle to the broker.
//!
//! Given a [`Journal`], the same broker is durable: every change to a group is recorded, and
//! acknowledged only once the record is (see `route` and `group`). Its groups are rebuilt from the
//! journal's replay at start.

mod group;
/// Public for benchmarks and embedding: the queue group's state machine, usable without a runtime.
pub mod group_state;
mod registry;
/// Shared with cluster mode (`crate::nats`): requests waiting on their inboxes.
pub(crate) mod replies;
mod route;
/// Shared with cluster mode: publish and request counters, subscriptions by pattern.
pub(crate) mod stats;
/// Public for benchmarks and embedding: the subscription trie, usable on its own.
pub mod sublist;
/// Shared with cluster mode: a subscriber's bounded buffer and exact gaps.
pub(crate) mod subscriber;

use std::{
    sync::{
        Arc, Weak,
        atomic::{AtomicU64, Ordering},
    },
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
    group::{Forward, GroupContext, GroupParts, Housekeeping, QueueGroup},
    group_state::{ConsumerTerms, GroupState, Settle},
    registry::Registry,
    replies::ReplyRouter,
    route::{Admission, Leaving, Staged, Target},
    stats::{RequestEnd, Subscriptions, Traffic},
    sublist::{EntryId, Sublist},
    subscriber::{BufferLimits, SubscriberQueue, subscription_stream},
};
use crate::{
    broker::{
        Broker, BrokerStats, ConsumeSpec, ConsumerInfo, Delivery, EventStream, GroupInfo,
        GroupSpec, Outstanding, Published, Settlement, StagedPublish, SubscriptionEvent,
        SubscriptionInfo,
    },
    budget::MemoryBudget,
    config::Config,
    error::BrokerError,
    journal::{Event, Journal, Receipt, replay::Recovered},
    message::{Message, NewMessage},
    topic::{GroupName, Pattern, Topic},
};

/// Bits of a delivery number below the run's epoch: 2^40 deliveries per group and run.
const EPOCH_SHIFT: u32 = 40;
/// How often a durable broker looks at what its journal takes on disk.
const RECLAIM_CHECK: Duration = Duration::from_secs(1);
/// Journal files past which space is reclaimed whatever their size: each restart starts one.
const MAX_SEGMENTS: u64 = 64;

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
    /// What every group shares: the housekeeping channel and the journal, if any.
    groups: GroupContext,
    journal: Option<Arc<dyn Journal>>,
    /// This run's number (0 without a journal).
    epoch: u64,
    /// The journal's bytes and files right after the last restatement: what is live takes that much.
    restated_usage: AtomicU64,
    restated_segments: AtomicU64,
    /// Cancelled once, at shutdown: ends every stream and refuses new work.
    shutdown: CancellationToken,
    /// `max_subscriptions` permits, one held by each open subscription and consumer.
    stream_slots: Arc<Semaphore>,
    /// `max_memory_bytes`: what the messages held may take.
    budget: Arc<MemoryBudget>,
    /// Publishes and requests, counted for monitoring.
    traffic: Traffic,
    /// The subscriptions open, for monitoring.
    subscriptions: Subscriptions,
}

/// How often a publisher waiting for room looks again even if no message was released: an ack frees
/// room in its group while a subscriber may still hold the message.
const ROOM_POLL: Duration = Duration::from_millis(20);

impl MemoryBroker {
    /// Creates a broker and starts its housekeeping task. Needs a Tokio runtime.
    pub fn new(config: Config) -> Self {
        let budget = Arc::new(MemoryBudget::new(config.max_memory_bytes));
        Self::build(config, budget, None, 0)
    }

    /// Creates a durable broker: its groups are what `recovered` describes (its messages charged to
    /// `budget`), and every change is recorded in `journal` from here on. Needs a Tokio runtime.
    pub fn with_journal(
        config: Config,
        budget: Arc<MemoryBudget>,
        journal: Arc<dyn Journal>,
        recovered: Recovered,
    ) -> Self {
        let broker = Self::build(config, budget, Some(journal), recovered.epoch);
        let shared = &broker.shared;
        shared.registry.number_from(recovered.next_group);
        let (now, wall_now) = (Instant::now(), SystemTime::now());
        let mut exhausted = Vec::new();
        for (id, group) in recovered.groups {
            let (state, dead) = GroupState::restore(
                group.settings,
                now,
                wall_now,
                group.next_position,
                group.messages,
            );
            let parts = GroupParts {
                id,
                pattern: group.pattern,
                name: group.name,
                state: state.numbering_deliveries_from(shared.groups.first_delivery),
                declared: group.declared,
            };
            exhausted.push((shared.registry.restore(shared, parts), dead));
        }
        // Only once every group is back: a dead letter may be bound for any of them.
        for (group, dead) in exhausted {
            group.dispose_restored(dead);
        }
        tokio::spawn(run_reclaim(Arc::downgrade(shared)));
        broker
    }

    fn build(
        config: Config,
        budget: Arc<MemoryBudget>,
        journal: Option<Arc<dyn Journal>>,
        epoch: u64,
    ) -> Self {
        let (housekeeping, events) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            budget,
            stream_slots: Arc::new(Semaphore::new(
                config.max_subscriptions.min(Semaphore::MAX_PERMITS),
            )),
            groups: GroupContext {
                idle_timeout: config.group_idle_timeout,
                housekeeping,
                journal: journal.clone(),
                first_delivery: epoch << EPOCH_SHIFT,
            },
            journal,
            epoch,
            restated_usage: AtomicU64::new(0),
            restated_segments: AtomicU64::new(0),
            config,
            index: RwLock::new(Sublist::default()),
            registry: Registry::default(),
            replies: Arc::default(),
            shutdown: CancellationToken::new(),
            traffic: Traffic::default(),
            subscriptions: Subscriptions::default(),
        });
        tokio::spawn(run_housekeeping(Arc::downgrade(&shared), events));
        Self { shared }
    }

    /// Replies that arrived when no request was waiting for them.
    pub fn unmatched_replies(&self) -> u64 {
        self.shared.replies.unmatched()
    }

    /// Routes a batch; while the memory budget or a group it goes to is full, waits for room until
    /// `deadline` (if any) and tries again, then fails with what was full.
    async fn stage_until(
        &self,
        batch: Vec<NewMessage>,
        deadline: Option<Instant>,
    ) -> Result<Staged, BrokerError> {
        self.check_running()?;
        let budget = &self.shared.budget;
        let cost = batch.iter().map(NewMessage::footprint).sum();
        let (count, bytes) = (batch.len(), batch.iter().map(|new| new.payload.len()).sum());
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
            match self.shared.stage(&messages, Admission::Checked, None) {
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
                outcome => {
                    if outcome.is_ok() {
                        self.shared.traffic.published(count, bytes);
                    }
                    return outcome;
                }
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
        self.shared.subscriptions.closed(&self.pattern, self.entry);
    }
}

impl Broker for MemoryBroker {
    async fn publish(&self, batch: Vec<NewMessage>) -> Result<Vec<Published>, BrokerError> {
        self.stage_until(batch, None).await?.finish().await
    }

    async fn publish_waiting(
        &self,
        batch: Vec<NewMessage>,
        wait: Duration,
    ) -> Result<Vec<Published>, BrokerError> {
        let deadline = Instant::now() + wait;
        self.stage_until(batch, Some(deadline))
            .await?
            .finish()
            .await
    }

    async fn publish_staged(
        &self,
        batch: Vec<NewMessage>,
        wait: Option<Duration>,
    ) -> Result<StagedPublish, BrokerError> {
        let deadline = wait.map(|wait| Instant::now() + wait);
        let staged = self.stage_until(batch, deadline).await?;
        if staged.is_durable() {
            let published = staged.finish().await;
            return Ok(Box::pin(std::future::ready(published)));
        }
        // On a task of its own, so that subscribers get the batch once it is durable even while
        // the stream's answers wait for the publisher to read them.
        let finishing = tokio::spawn(staged.finish());
        Ok(Box::pin(async move {
            finishing.await.map_err(|_| BrokerError::ShuttingDown)?
        }))
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
        self.shared
            .subscriptions
            .opened(&pattern, entry, Arc::clone(&queue));
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

    fn outstanding(&self, delivery_id: &str) -> Option<Outstanding> {
        let (group, delivery) = QueueGroup::parse_delivery_id(delivery_id)?;
        let group = self.shared.registry.by_id(group)?;
        let message = group.in_flight_message(delivery)?;
        Some(Outstanding {
            group: group.name.clone(),
            message,
        })
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
        let mut receipt = Receipt::done();
        let mut forwards = Vec::new();
        let batches = [
            (ack, Settle::Ack),
            (nack, Settle::Nack { delay: nack_delay }),
            (reject, Settle::Reject),
            (extend, Settle::Extend),
        ];
        for (ids, action) in batches {
            // Consecutive ids of one group are settled together: one lock, one record.
            let mut rest = ids.as_slice();
            while let Some(first) = rest.first() {
                let Some((group_id, _)) = QueueGroup::parse_delivery_id(first) else {
                    unknown.push(first.clone());
                    rest = &rest[1..];
                    continue;
                };
                let run = rest
                    .iter()
                    .take_while(|id| {
                        QueueGroup::parse_delivery_id(id)
                            .is_some_and(|(group, _)| group == group_id)
                    })
                    .count();
                let (same, after) = rest.split_at(run);
                rest = after;
                let Some(group) = self.shared.registry.by_id(group_id) else {
                    unknown.extend(same.iter().cloned());
                    continue;
                };
                let deliveries: Vec<u64> = same
                    .iter()
                    .filter_map(|id| {
                        QueueGroup::parse_delivery_id(id).map(|(_, delivery)| delivery)
                    })
                    .collect();
                let outcome = group.settle(&deliveries, action);
                unknown.extend(outcome.unknown.iter().map(|&index| same[index].clone()));
                // The journal writes in order: the last record's receipt stands for all.
                if !outcome.receipt.is_done() {
                    receipt = outcome.receipt;
                }
                forwards.extend(outcome.forwards);
            }
        }
        // A rejected message is moved before the Settle returns, so an OK means it is moved. On a
        // task of its own: a caller that gives up waiting must not leave the letters half moved.
        if !forwards.is_empty() {
            let shared = Arc::clone(&self.shared);
            let moved = tokio::spawn(async move {
                for forward in forwards {
                    shared.forward(forward).await?;
                }
                Ok::<(), BrokerError>(())
            });
            moved.await.map_err(|_| BrokerError::ShuttingDown)??;
        }
        receipt.durable().await?;
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
        let traffic = &self.shared.traffic;
        if published
            .first()
            .is_none_or(|p| p.subscribers == 0 && p.groups == 0)
        {
            traffic.request_ended(RequestEnd::NoResponders);
            return Err(BrokerError::NoResponders { topic });
        }
        tokio::select! {
            reply = pending.reply() => {
                let reply = reply.ok_or(BrokerError::ShuttingDown)?;
                traffic.request_ended(RequestEnd::Answered);
                Ok(reply)
            }
            () = tokio::time::sleep(timeout) => {
                traffic.request_ended(RequestEnd::TimedOut);
                Err(BrokerError::RequestTimedOut(timeout))
            }
            () = self.shared.shutdown.cancelled() => Err(BrokerError::ShuttingDown),
        }
    }

    async fn declare_group(&self, spec: GroupSpec) -> Result<(), BrokerError> {
        // The declaration was checked by `validate::group`.
        self.check_running()?;
        let receipt = self.shared.registry.declare(&self.shared, spec)?;
        receipt.durable().await
    }

    async fn delete_group(&self, pattern: Pattern, group: GroupName) -> Result<(), BrokerError> {
        let receipt = self
            .shared
            .registry
            .delete(&self.shared, &pattern, &group)?;
        receipt.durable().await
    }

    async fn list_groups(&self) -> Result<Vec<GroupInfo>, BrokerError> {
        Ok(self.shared.registry.list())
    }

    async fn list_consumers(
        &self,
        pattern: Pattern,
        group: GroupName,
    ) -> Result<Vec<ConsumerInfo>, BrokerError> {
        self.shared.registry.consumers(&pattern, &group)
    }

    fn list_subscriptions(&self) -> Vec<SubscriptionInfo> {
        self.shared.subscriptions.list()
    }

    fn stats(&self) -> BrokerStats {
        let shared = &self.shared;
        let (published, published_bytes) = shared.traffic.publishes();
        BrokerStats {
            published,
            published_bytes,
            groups: shared.registry.totals(),
            memory_used: shared.budget.used() as u64,
            memory_limit: shared.budget.limit() as u64,
            requests: shared.traffic.requests(shared.replies.unmatched()),
            journal: shared.journal.as_ref().map(|journal| journal.stats()),
        }
    }

    fn awaits_reply(&self, inbox: &Topic) -> bool {
        self.shared.replies.is_waiting(inbox)
    }

    fn shutdown(&self) {
        self.shared.shutdown.cancel();
    }

    async fn failure(&self) -> String {
        match &self.shared.journal {
            Some(journal) => journal.failed().await,
            None => std::future::pending().await,
        }
    }
}

impl Shared {
    /// Makes the journal's space follow what is held, not what was ever published: seals the
    /// journal's current part, restates every group and what it holds after it, and once that is
    /// durable removes everything before. Changes made meanwhile are recorded around the
    /// restatement under each group's lock, so replay (restated state over the records before it)
    /// ends in the same state. A crash anywhere in between leaves a log that replays correctly:
    /// before the removal all of it is there, and the removal goes oldest first.
    async fn reclaim(&self) -> Result<(), BrokerError> {
        let Some(journal) = &self.journal else {
            return Ok(());
        };
        let before = journal.rotate().await?;
        let mut receipts = vec![
            journal.record(Event::Reclaiming { before }),
            journal.record(Event::Epoch(self.epoch)),
        ];
        // Listed under the registry lock, after the rotation: a group whose creation was recorded
        // before it is listed and restated; one created after it has its creation after it.
        for group in self.registry.groups() {
            receipts.extend(group.restate());
        }
        // Every one, not only the last: a record refused on its own would leave the rest in place.
        for receipt in receipts {
            receipt.durable().await?;
        }
        journal.remove_before(before).await?;
        let usage = journal.usage();
        self.restated_usage.store(usage.bytes, Ordering::Relaxed);
        self.restated_segments
            .store(usage.segments, Ordering::Relaxed);
        Ok(())
    }

    /// Whether the journal takes more than twice what is held plus a segment, or too many files.
    fn wants_reclaim(&self) -> bool {
        let Some(journal) = &self.journal else {
            return false;
        };
        let usage = journal.usage();
        // What is held, or what the last restatement took if more (a message held by several
        // groups is restated once for each, but charged to the budget once).
        let held = (self.budget.used() as u64).max(self.restated_usage.load(Ordering::Relaxed));
        let grown = usage.bytes
            > held
                .saturating_mul(2)
                .saturating_add(self.config.segment_bytes);
        let scattered =
            usage.segments > self.restated_segments.load(Ordering::Relaxed) + MAX_SEGMENTS;
        usage.segments > 1 && (grown || scattered)
    }

    /// Routes a dead letter to its topic and lets go of it in its source group, in one step.
    async fn forward(&self, forward: Forward) -> Result<(), BrokerError> {
        let Forward {
            source,
            position,
            letter,
            id,
        } = forward;
        self.budget.force_charge(letter.footprint());
        let message = Message::stamp_as(letter, id, SystemTime::now(), Some(&self.budget));
        let leaving = self
            .registry
            .by_id(source)
            .map(|group| Leaving { group, position });
        self.route(&[message], Admission::Forced, leaving)
            .await
            .map(drop)
    }
}

/// Reclaims journal space whenever it has grown past what is held, until the broker is dropped.
async fn run_reclaim(shared: Weak<Shared>) {
    let mut check = tokio::time::interval(RECLAIM_CHECK);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        check.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if shared.shutdown.is_cancelled() {
            return;
        }
        if shared.wants_reclaim() {
            let started = std::time::Instant::now();
            match shared.reclaim().await {
                Ok(()) => tracing::debug!(elapsed = ?started.elapsed(), "journal space reclaimed"),
                Err(error) => tracing::warn!(%error, "could not reclaim journal space"),
            }
        }
    }
}

/// Forwards dead letters and removes idle groups until the broker is dropped.
async fn run_housekeeping(shared: Weak<Shared>, mut events: mpsc::UnboundedReceiver<Housekeeping>) {
    while let Some(event) = events.recv().await {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        match event {
            Housekeeping::DeadLetter(forward) => {
                let id = forward.id;
                if let Err(error) = shared.forward(forward).await {
                    tracing::warn!(%id, %error, "dead letter could not be routed");
                }
            }
            Housekeeping::Idle(group) => shared.registry.remove_if_idle(&shared, group),
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
#[path = "journal_tests.rs"]
mod journal_tests;
