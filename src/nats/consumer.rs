//! Consumers in cluster mode: each Switchyard consumer pulls from its group's JetStream consumer
//! as much as its prefetch allows, and the node that delivered a message holds its ack handle
//! until the message is settled, its deadline passes or the consumer goes.
//!
//! - **Prefetch** is a window of permits: a delivery holds one until it is settled, and a pull
//!   asks for no more messages than the window has room for. So JetStream never hands a consumer
//!   more than its prefetch, and nothing waits in a node's buffer while another consumer idles.
//! - **Deadlines** are kept here per delivery, as in memory: one that passes is nacked, so the
//!   message is redelivered at once. A consumer's deadline longer than the group's (JetStream's
//!   AckWait) is kept alive with AckProgress; `extend` sends one and restarts the deadline.
//! - **A consumer that goes** (its stream dropped) nacks what it held. A node that dies holds
//!   nothing: JetStream redelivers its deliveries once the group's AckWait passes.
//! - **Redelivery limits and dead letters** are Switchyard's: past `max_deliveries` a message
//!   is published to the dead-letter topic (deduplicated by a message id of its own, should the
//!   node die in between) and then terminated in the group.
//!
//! - **Exclusive groups** add a lease ([`leases`]): a consumer pulls only while it holds its
//!   group's lease, and pulls, delivers, settles and extends only while the lease is valid. One
//!   that goes gives back what it held before it hands the lease on, so the next one gets it first.
//!
//! - **Requests handed straight to a consumer** ([`direct`](super::direct)) come in beside the
//!   pulls, each with a prefetch slot it took; they are settled here and go to the stream only
//!   if they must be delivered again.
//!
//! A delivery id is `NODE.CONSUMER.SEQ.GROUP` (`GROUP` the JetStream consumer's name): only the
//! node that made it holds its ack handle, and other nodes forward its settlement there
//! ([`forward`](super::forward)). Its group says, on any node, which pattern settling it takes.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc, Weak,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime},
};

use async_nats::jetstream::{AckKind, consumer::PullConsumer, context::ConsumerInfoErrorKind};
use dashmap::DashMap;
use parking_lot::Mutex;
use tokio::{
    sync::{Notify, OwnedSemaphorePermit, Semaphore},
    time::Instant,
};
use tokio_util::sync::CancellationToken;

use super::{
    Shared,
    ack::AckHandle,
    census::ConsumerCensus,
    codec, direct, forward,
    groups::{self, Known},
    leases::{self, Claim},
    publish,
    pull::{Pull, PullEnded},
    unavailable,
};
use crate::{
    broker::{ConsumeMode, ConsumeSpec, Delivery, EventStream, Outstanding, Settlement},
    error::BrokerError,
    memory::group_state::DeadLetterReason,
    message::Message,
    topic::Pattern,
};

/// How long one pull waits at the server for messages before it is made again. Pulls ask for no
/// idle heartbeats, so this also bounds how long a pull lost to a leader change or a reconnect
/// leaves a consumer waiting.
const PULL_EXPIRES: Duration = Duration::from_secs(5);
/// How long a consumer that goes waits for the server to close its last pull, reading what the
/// pull still delivers meanwhile.
const CLOSE_PULL_WITHIN: Duration = Duration::from_millis(500);
/// How long a settlement's round trip to JetStream may take.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);
/// What an exclusive consumer that took a lapsed lease waits beyond the group's AckWait, for
/// JetStream to notice the old holder's deliveries are due.
const LAPSE_SLACK: Duration = Duration::from_millis(500);
/// How long a consumer waits before pulling again after its pull failed.
const RETRY_PULL: Duration = Duration::from_millis(500);
/// How many times a Consume makes its group again if it goes while it is joined.
const JOIN_TRIES: u32 = 3;

/// The consumers attached on this node.
#[derive(Debug)]
pub struct Consumers {
    node: String,
    /// This node's mark in the high half of its consumers' listed ids.
    id_base: u64,
    by_id: DashMap<u64, Arc<Attached>>,
    next_id: AtomicU64,
    /// Where the search for a consumer with room for a direct request starts, so that they take
    /// turns.
    next_hand: AtomicUsize,
    /// Consumes on their way to their group, by its consumer name ([`Joining`]).
    joining: Mutex<HashMap<String, u32>>,
}

/// A Consume on its way to its group, counted in the census from before it makes the group until
/// its consumer is attached: a group that Consume has just made has neither consumers nor
/// messages yet, and no node may remove it as idle meanwhile (groups.rs, `keep_up`).
struct Joining<'a> {
    consumers: &'a Consumers,
    name: String,
}

impl Drop for Joining<'_> {
    fn drop(&mut self) {
        let mut joining = self.consumers.joining.lock();
        if let Some(count) = joining.get_mut(&self.name) {
            *count -= 1;
            if *count == 0 {
                joining.remove(&self.name);
            }
        }
    }
}

/// One consumer: its group, its terms and what it holds.
#[derive(Debug)]
struct Attached {
    /// Its number on this node, in its delivery ids.
    local_id: u64,
    /// Its number in the cluster, as listed: this node's mark in the high half.
    id: u64,
    group: Arc<Known>,
    prefetch: u32,
    ack_deadline: Duration,
    window: Arc<Semaphore>,
    held: Mutex<HashMap<u64, Held>>,
    next_seq: AtomicU64,
    /// Cancelled when the group is deleted from this node, or the consumer goes.
    ended: CancellationToken,
    /// An exclusive consumer's hold on its group's lease.
    claim: Option<Arc<Claim>>,
    /// Requests handed to it ([`direct`]) that it has not delivered yet.
    handed: Mutex<Inbox>,
    handed_ready: Notify,
}

/// What a consumer was handed and has not delivered yet.
#[derive(Debug, Default)]
struct Inbox {
    /// Each with the free prefetch slot it took.
    queue: VecDeque<Handed>,
    /// While the consumer waits on a pull with a slot in hand, that slot may be lent to one
    /// request: else a consumer with a prefetch of 1 would never have room for one.
    lendable: bool,
    /// The request the slot was lent to.
    lent: Option<Message>,
}

/// A request handed straight to a consumer, with the prefetch slot it took.
struct Handed {
    message: Message,
    permit: OwnedSemaphorePermit,
}

impl std::fmt::Debug for Handed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handed")
            .field("message", &self.message.id())
            .finish_non_exhaustive()
    }
}

/// Where a delivery came from, and so how it is settled.
#[derive(Debug)]
enum Source {
    /// Pulled from the group's JetStream consumer: settled there.
    Stream(Arc<AckHandle>),
    /// Handed straight to the consumer ([`direct`]): nothing else holds it.
    Direct,
}

impl Attached {
    /// False while an exclusive consumer's lease is not valid: it must not touch its group then.
    fn may_settle(&self) -> bool {
        self.claim.as_ref().is_none_or(|claim| claim.valid())
    }
}

/// A delivery not settled yet.
struct Held {
    source: Source,
    message: Message,
    attempt: u32,
    deadline: Instant,
    /// When JetStream last heard that this delivery is still being worked on.
    progressed: Instant,
    /// The delivery's place in its consumer's prefetch window, given up once the consumer has
    /// acked it (JetStream's confirmation is this node's to wait for, not the consumer's), or
    /// once JetStream has confirmed a nack.
    permit: Option<OwnedSemaphorePermit>,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("message", &self.message.id())
            .field("attempt", &self.attempt)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl Consumers {
    pub fn new(node: &str) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, node.as_bytes());
        let mark = digest.as_ref()[..4]
            .iter()
            .fold(0u64, |mark, byte| mark << 8 | u64::from(*byte));
        Self {
            node: node.to_owned(),
            id_base: mark << 32,
            by_id: DashMap::new(),
            next_id: AtomicU64::new(1),
            next_hand: AtomicUsize::new(0),
            joining: Mutex::default(),
        }
    }

    /// Counts a Consume on its way to the group whose consumer name is `name`, until dropped.
    fn join(&self, name: String) -> Joining<'_> {
        *self.joining.lock().entry(name.clone()).or_default() += 1;
        Joining {
            consumers: self,
            name,
        }
    }

    /// The Consumes on their way to each group, by its consumer name.
    pub fn joining(&self) -> Vec<(String, u32)> {
        let joining = self.joining.lock();
        joining
            .iter()
            .map(|(name, count)| (name.clone(), *count))
            .collect()
    }

    /// Hands a request to one of this node's consumers of the shared group whose JetStream
    /// consumer is `group` with a free prefetch slot, or gives it back if none has one.
    pub fn hand(&self, group: &str, message: Message) -> Result<(), Message> {
        let candidates: Vec<Arc<Attached>> = self
            .by_id
            .iter()
            .filter(|entry| entry.group.consumer == group && entry.claim.is_none())
            .map(|entry| Arc::clone(entry.value()))
            .collect();
        if candidates.is_empty() {
            return Err(message);
        }
        let start = self.next_hand.fetch_add(1, Ordering::Relaxed);
        // A free slot first, anywhere; a lent one only if there is none.
        for lending in [false, true] {
            for turn in 0..candidates.len() {
                let attached = &candidates[(start + turn) % candidates.len()];
                let mut inbox = attached.handed.lock();
                // One that goes takes what it was handed back under this lock, after it ended.
                if attached.ended.is_cancelled() {
                    continue;
                }
                if lending {
                    if !inbox.lendable {
                        continue;
                    }
                    inbox.lendable = false;
                    inbox.lent = Some(message);
                } else {
                    let Ok(permit) = Arc::clone(&attached.window).try_acquire_owned() else {
                        continue;
                    };
                    inbox.queue.push_back(Handed { message, permit });
                }
                drop(inbox);
                attached.handed_ready.notify_one();
                return Ok(());
            }
        }
        Err(message)
    }

    /// The consumer and sequence a delivery id names, if this node made it.
    fn parse(&self, delivery_id: &str) -> Option<(Arc<Attached>, u64)> {
        let mut parts = delivery_id.split('.');
        let (node, consumer, seq) = (parts.next()?, parts.next()?, parts.next()?);
        let _group = parts.next()?;
        if node != self.node || parts.next().is_some() {
            return None;
        }
        let consumer = self.by_id.get(&consumer.parse().ok()?)?;
        Some((Arc::clone(consumer.value()), seq.parse().ok()?))
    }

    pub fn pattern_of(&self, delivery_id: &str) -> Option<Pattern> {
        self.parse(delivery_id)
            .map(|(attached, _)| attached.group.pattern.clone())
    }

    pub fn outstanding(&self, delivery_id: &str) -> Option<Outstanding> {
        let (attached, seq) = self.parse(delivery_id)?;
        let held = attached.held.lock();
        held.get(&seq).map(|held| Outstanding {
            group: attached.group.group.clone(),
            message: held.message.clone(),
        })
    }

    /// This node's consumers, by their group's consumer name.
    pub fn census(&self) -> Vec<(String, ConsumerCensus)> {
        self.by_id
            .iter()
            .map(|entry| {
                let consumer = ConsumerCensus {
                    id: entry.id,
                    prefetch: entry.prefetch,
                    in_flight: u32::try_from(entry.held.lock().len()).unwrap_or(u32::MAX),
                    ack_deadline_ms: u64::try_from(entry.ack_deadline.as_millis())
                        .unwrap_or(u64::MAX),
                    active: entry.claim.as_ref().is_none_or(|claim| claim.is_held()),
                };
                (entry.group.consumer.clone(), consumer)
            })
            .collect()
    }

    /// Ends this node's consumers of a deleted group with `GroupDeleted`.
    pub fn group_deleted(&self, name: &str) {
        for entry in self.by_id.iter() {
            if entry.group.consumer == name {
                entry.ended.cancel();
            }
        }
    }
}

/// Joins `spec`'s group (creating it with the defaults) and streams this consumer's deliveries.
pub async fn consume(
    shared: &Arc<Shared>,
    spec: ConsumeSpec,
    slot: OwnedSemaphorePermit,
) -> Result<EventStream<Delivery>, BrokerError> {
    let joining = shared
        .consumers
        .join(groups::consumer_name(&spec.pattern, &spec.group));
    let (group, consumer) = join_group(shared, &spec).await?;
    let prefetch = spec
        .prefetch
        .unwrap_or(shared.config.default_prefetch)
        .max(1);
    let consumers = &shared.consumers;
    let local_id = consumers.next_id.fetch_add(1, Ordering::Relaxed);
    let claim = match group.settings.mode {
        ConsumeMode::Exclusive => {
            let holder = format!("{}.{local_id}", shared.node);
            let claim = shared
                .leases
                .claim(&group.consumer, group.group.as_str(), holder, spec.standby)
                .await?;
            Some(claim)
        }
        _ => None,
    };
    let attached = Arc::new(Attached {
        local_id,
        id: consumers.id_base | local_id,
        ack_deadline: spec.ack_deadline.unwrap_or(group.settings.ack_deadline),
        group,
        prefetch,
        window: Arc::new(Semaphore::new(prefetch as usize)),
        held: Mutex::new(HashMap::new()),
        next_seq: AtomicU64::new(1),
        ended: CancellationToken::new(),
        claim,
        handed: Mutex::default(),
        handed_ready: Notify::new(),
    });
    consumers.by_id.insert(local_id, Arc::clone(&attached));
    // Counted by `by_id` from here on.
    drop(joining);
    tokio::spawn(keep_deadlines(
        Arc::downgrade(shared),
        Arc::downgrade(&attached),
    ));
    let state = Pulling {
        shared: Arc::clone(shared),
        attached,
        consumer,
        batch: None,
        stashed: VecDeque::new(),
        started: false,
        _slot: slot,
    };
    // Once the consumer's `Drop` would close it, should this future be dropped meanwhile.
    if state.attached.claim.is_none() {
        direct::attach(shared, &state.attached.group.consumer).await;
    }
    Ok(Box::pin(futures_util::stream::unfold(
        Some(state),
        |state| async move {
            let mut state = state?;
            match state.next().await {
                Ok(delivery) => Some((Ok(delivery), Some(state))),
                Err(error) => Some((Err(error), None)),
            }
        },
    )))
}

/// `spec`'s group (made with the defaults if there is none) and its JetStream consumer. A group
/// removed between the two reads, as idle by a node that did not count this Consume (one of an
/// earlier version) or by its owner, is made again.
async fn join_group(
    shared: &Shared,
    spec: &ConsumeSpec,
) -> Result<(Arc<Known>, PullConsumer), BrokerError> {
    let mut tries = 0;
    loop {
        let group = groups::for_consumer(shared, &spec.pattern, &spec.group, spec.mode).await?;
        let error = match shared.stream.get_consumer(&group.consumer).await {
            Ok(consumer) => return Ok((group, consumer)),
            Err(error) => error,
        };
        tries += 1;
        let gone = matches!(
            shared.stream.consumer_info(&group.consumer).await,
            Err(info) if info.kind() == ConsumerInfoErrorKind::NotFound
        );
        if !gone || tries >= JOIN_TRIES {
            return Err(unavailable(error));
        }
        tracing::debug!(group = %group.group, "a group went while it was joined: making it again");
    }
}

/// A consumer's stream while it runs. Dropping it detaches the consumer and nacks what it held.
struct Pulling {
    shared: Arc<Shared>,
    attached: Arc<Attached>,
    consumer: PullConsumer,
    /// The pull under way: never for more messages than the window has room for.
    batch: Option<Pull>,
    /// Pulled messages that wait for a slot each, in order: one whose slot was lent to a
    /// request meanwhile, or what reached a pull closed as lost (`PullEnded::Lost`).
    stashed: VecDeque<async_nats::jetstream::Message>,
    /// Whether an exclusive consumer has waited for its lease (and, after a lapse, for the old
    /// holder's deliveries to come back).
    started: bool,
    _slot: OwnedSemaphorePermit,
}

impl Pulling {
    /// Waits for `until`, or for the broker or the consumer to end.
    async fn or_end<T>(&self, until: impl Future<Output = T>) -> Result<T, BrokerError> {
        let attached = &self.attached;
        let lost = async {
            match &attached.claim {
                Some(claim) => claim.lost.cancelled().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = self.shared.shutdown.cancelled() => Err(BrokerError::ShuttingDown),
            () = attached.ended.cancelled() => Err(BrokerError::GroupDeleted {
                group: attached.group.group.to_string(),
            }),
            () = lost => Err(attached.claim.as_ref().map_or(BrokerError::ShuttingDown, |claim| claim.lost_error())),
            value = until => Ok(value),
        }
    }

    /// An exclusive consumer's wait for its lease, once. One that took a lapsed lease while the
    /// group has pending deliveries waits out the group's AckWait: they may be the old holder's,
    /// and they come back first only once JetStream gives up on them.
    async fn start(&mut self) -> Result<(), BrokerError> {
        let Some(claim) = self.attached.claim.clone() else {
            return Ok(());
        };
        if std::mem::replace(&mut self.started, true) {
            return Ok(());
        }
        let after_lapse = self.or_end(claim.until_held()).await??;
        if after_lapse {
            let group = &self.attached.group;
            let info = self
                .or_end(self.shared.stream.consumer_info(&group.consumer))
                .await?
                .map_err(unavailable)?;
            if info.num_ack_pending > 0 {
                tracing::info!(group = %group.group, pending = info.num_ack_pending, "an exclusive group's lease lapsed: waiting out its AckWait before the first pull");
                let wait = group.settings.ack_deadline + LAPSE_SLACK;
                self.or_end(tokio::time::sleep(wait)).await?;
            }
        }
        Ok(())
    }

    /// Waits, if it must, until an exclusive consumer may touch its group.
    async fn fenced(&self) -> Result<(), BrokerError> {
        match &self.attached.claim {
            Some(claim) if !claim.valid() => self.or_end(claim.until_valid()).await?,
            _ => Ok(()),
        }
    }

    async fn next(&mut self) -> Result<Delivery, BrokerError> {
        let shared = Arc::clone(&self.shared);
        let attached = Arc::clone(&self.attached);
        self.start().await?;
        loop {
            // A request handed straight to this consumer took its slot already: it goes first.
            let handed = attached.handed.lock().queue.pop_front();
            if let Some(handed) = handed {
                return Ok(self.hold(Source::Direct, handed.message, 1, handed.permit));
            }
            let window = Arc::clone(&attached.window);
            let permit = tokio::select! {
                biased;
                () = attached.handed_ready.notified() => continue,
                permit = self.or_end(window.acquire_owned()) => {
                    permit?.map_err(|_| BrokerError::ShuttingDown)?
                }
            };
            attached.handed.lock().lendable = true;
            let pulled = self.pulled().await;
            let lent = {
                let mut inbox = attached.handed.lock();
                inbox.lendable = false;
                inbox.lent.take()
            };
            if let Some(request) = lent {
                match pulled {
                    // Delivered once a slot frees, before anything pulled later.
                    Ok(Some(message)) => self.stashed.push_front(message),
                    Ok(None) => {}
                    Err(error) => {
                        // The consumer ends: what it was lent goes back with what it held.
                        attached.handed.lock().lent = Some(request);
                        return Err(error);
                    }
                }
                return Ok(self.hold(Source::Direct, request, 1, permit));
            }
            let Some(message) = pulled? else {
                // A request was handed meanwhile, with a slot of its own.
                drop(permit);
                continue;
            };
            let delivered = message
                .info()
                .map(|info| u32::try_from(info.delivered).unwrap_or(u32::MAX))
                .unwrap_or(1)
                .max(1);
            // A request that was handed straight to a consumer before it was stored counts on.
            let before = codec::prior_attempts(message.headers.as_ref()).unwrap_or(0);
            let attempt = delivered.saturating_add(before);
            let Some(acker) = AckHandle::of(&shared.client, &message) else {
                // Not a JetStream delivery: there is nothing to settle, nor to deliver.
                continue;
            };
            let acker = Arc::new(acker);
            let message = message.message;
            let limits = shared.config.topic_limits();
            let decoded = shared
                .subjects
                .topic_of(message.subject.as_str())
                .ok_or_else(|| "not a topic's subject".to_string())
                .and_then(|topic| {
                    codec::decode(topic, message.payload, message.headers.as_ref(), limits)
                        .map_err(|error| error.to_string())
                });
            let message = match decoded {
                Ok(message) => message,
                Err(error) => {
                    tracing::warn!(%error, group = %attached.group.group, "terminated a message that is not a Switchyard message");
                    tokio::spawn(async move { acker.send(AckKind::Term).await });
                    continue;
                }
            };
            let group = &attached.group;
            if group
                .settings
                .max_deliveries
                .is_some_and(|max| attempt > max)
            {
                // Its last deadline passed: it has used up its deliveries.
                shared.groups.count(&group.consumer, |c| c.exhausted += 1);
                let letter = Letter {
                    message,
                    source: Source::Stream(acker),
                    reason: DeadLetterReason::MaxDeliveries,
                    attempts: attempt - 1,
                };
                tokio::spawn(dead_letter(Arc::clone(&shared), Arc::clone(group), letter));
                continue;
            }
            // A lease that lapsed while the message was on its way: it is not this consumer's.
            self.fenced().await?;
            return Ok(self.hold(Source::Stream(acker), message, attempt, permit));
        }
    }

    /// Holds a delivery until it is settled, and gives it its id.
    fn hold(
        &self,
        source: Source,
        message: Message,
        attempt: u32,
        permit: OwnedSemaphorePermit,
    ) -> Delivery {
        let (shared, attached) = (&self.shared, &self.attached);
        let group = &attached.group;
        shared.groups.count(&group.consumer, |c| {
            c.delivered += 1;
            c.redelivered += u64::from(attempt > 1);
        });
        let seq = attached.next_seq.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        attached.held.lock().insert(
            seq,
            Held {
                source,
                message: message.clone(),
                attempt,
                deadline: now + attached.ack_deadline,
                progressed: now,
                permit: Some(permit),
            },
        );
        Delivery {
            message,
            delivery_id: format!(
                "{}.{}.{seq}.{}",
                shared.node, attached.local_id, group.consumer
            ),
            attempt,
        }
    }

    /// The next message of the pull under way, or of a new one for as many messages as the
    /// window has room for (the one permit held, and those free); `None` as soon as a request is
    /// handed to the consumer instead.
    async fn pulled(&mut self) -> Result<Option<async_nats::jetstream::Message>, BrokerError> {
        let attached = Arc::clone(&self.attached);
        if let Some(message) = self.stashed.pop_front() {
            return Ok(Some(message));
        }
        loop {
            if self.batch.is_none() {
                self.fenced().await?;
                let room = self.attached.window.available_permits() + 1;
                let expires = match self.attached.claim {
                    Some(_) => leases::PULL_EXPIRES,
                    None => PULL_EXPIRES,
                };
                let shared = &self.shared;
                let pull = Pull::start(
                    &shared.client,
                    &shared.jetstream,
                    &self.consumer,
                    room,
                    expires,
                    shared.reconnects.subscribe(),
                );
                match self.or_end(pull).await? {
                    Ok(batch) => self.batch = Some(batch),
                    Err(error) => {
                        tracing::debug!(%error, group = %self.attached.group.group, "cannot pull; trying again");
                        self.or_end(tokio::time::sleep(RETRY_PULL)).await?;
                        continue;
                    }
                }
            }
            // The pull stays in `self` while it is awaited: a consumer dropped meanwhile gives
            // back what it still delivers (see `Drop`).
            let (shutdown, ended) = (self.shared.shutdown.clone(), self.attached.ended.clone());
            let Some(batch) = self.batch.as_mut() else {
                continue;
            };
            let next = tokio::select! {
                biased;
                () = shutdown.cancelled() => return Err(BrokerError::ShuttingDown),
                () = ended.cancelled() => return Err(BrokerError::GroupDeleted {
                    group: self.attached.group.group.to_string(),
                }),
                () = attached.handed_ready.notified() => return Ok(None),
                next = batch.next() => next,
            };
            match next {
                Some(Ok(message)) => return Ok(Some(message)),
                // The pull is done (all delivered, or expired): make the next one.
                None => self.batch = None,
                // The connection came back and the pull stayed quiet: it is closed at the server
                // (what reached it meanwhile waits its turn) and made again at once.
                Some(Err(PullEnded::Lost)) => {
                    tracing::debug!(group = %self.attached.group.group, "a pull may be lost with the old connection: pulling again");
                    if let Some(batch) = self.batch.take() {
                        self.stashed.extend(batch.close(CLOSE_PULL_WITHIN).await);
                    }
                }
                Some(Err(error)) => {
                    self.batch = None;
                    // A lost pull (a leader change, a reconnect), or the group is gone.
                    tracing::debug!(%error, group = %self.attached.group.group, "the pull ended");
                    let name = &self.attached.group.consumer;
                    if let Err(error) = self.shared.stream.consumer_info(name).await
                        && error.kind() == ConsumerInfoErrorKind::NotFound
                    {
                        return Err(BrokerError::GroupDeleted {
                            group: self.attached.group.group.to_string(),
                        });
                    }
                    self.or_end(tokio::time::sleep(RETRY_PULL)).await?;
                }
            }
        }
    }
}

impl Drop for Pulling {
    fn drop(&mut self) {
        let attached = &self.attached;
        attached.ended.cancel();
        self.shared.consumers.by_id.remove(&attached.local_id);
        if attached.claim.is_none() {
            direct::detach(&self.shared, &attached.group.consumer);
        }
        // Taken under the lock `Consumers::hand` checks `ended` under: nothing comes after.
        let (handed, lent) = {
            let mut inbox = attached.handed.lock();
            (inbox.queue.drain(..).collect::<Vec<_>>(), inbox.lent.take())
        };
        let handed: Vec<Message> = handed
            .into_iter()
            .map(|handed| handed.message)
            .chain(lent)
            .collect();
        let mut held: Vec<(u64, Held)> = attached.held.lock().drain().collect();
        // In delivery order: JetStream redelivers nacked messages in the order it hears of them.
        held.sort_by_key(|(seq, _)| *seq);
        // A pull still under way may yet deliver: its messages are taken and given back too,
        // or JetStream would hold them for this consumer until the group's AckWait passed.
        let batch = self.batch.take();
        let stashed = std::mem::take(&mut self.stashed);
        let claim = attached.claim.clone();
        if held.is_empty()
            && handed.is_empty()
            && batch.is_none()
            && stashed.is_empty()
            && claim.is_none()
        {
            return;
        }
        // An exclusive consumer whose lease is not valid is fenced: what it held comes back by
        // AckWait, to a holder that waits for it.
        let give_back = attached.may_settle();
        let shared = Arc::clone(&self.shared);
        // Given back at once, as in memory: JetStream redelivers a nacked message now. The pull
        // is closed at the server first (what it delivered meanwhile is taken), so that neither
        // what is nacked nor what is published next goes to it. An exclusive consumer has each
        // nack confirmed before it hands its lease on.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            self.shared.give_backs.spawn_on(
                async move {
                    let mut drained: Vec<_> = stashed.into_iter().collect();
                    if let Some(batch) = batch {
                        drained.extend(batch.close(CLOSE_PULL_WITHIN).await);
                    }
                    if give_back {
                        let confirmed = claim.is_some();
                        for (_, held) in held {
                            give_back_one(&shared, held, confirmed).await;
                        }
                        for handed in handed {
                            if let Err(error) = direct::store(&shared, &handed, 0).await {
                                tracing::warn!(%error, "cannot store a request a consumer that went was handed; its requester times out");
                            }
                        }
                        for message in drained {
                            if let Some(acker) = AckHandle::of(&shared.client, &message) {
                                let _ = give_back_to_stream(&acker, confirmed).await;
                            }
                        }
                    }
                    if let Some(claim) = claim {
                        claim.release().await;
                    }
                },
                &runtime,
            );
        }
    }
}

/// Gives back a delivery a consumer that goes held: nacks it, where `confirmed` waits for
/// JetStream to have the nack, or stores a request that was handed straight to it.
async fn give_back_one(shared: &Shared, held: Held, confirmed: bool) {
    let given = match &held.source {
        Source::Stream(acker) => give_back_to_stream(acker, confirmed).await,
        Source::Direct => direct::store(shared, &held.message, held.attempt).await,
    };
    if let Err(error) = given {
        tracing::debug!(%error, "cannot give back a delivery; it comes back after the group's ack deadline, if it was stored");
    }
}

/// Nacks a delivery; `confirmed` waits for JetStream to have it.
async fn give_back_to_stream(acker: &AckHandle, confirmed: bool) -> Result<(), BrokerError> {
    match confirmed {
        true => acker.confirm(AckKind::Nak(None)).await,
        false => acker.send(AckKind::Nak(None)).await,
    }
}

/// Nacks a consumer's deliveries whose deadline passed, and keeps JetStream from redelivering
/// those whose deadline is longer than the group's AckWait, until the consumer goes.
async fn keep_deadlines(shared: Weak<Shared>, attached: Weak<Attached>) {
    let Some(tick) = attached.upgrade().map(|attached| {
        (attached.ack_deadline / 4).clamp(Duration::from_millis(10), Duration::from_millis(250))
    }) else {
        return;
    };
    let mut ticks = tokio::time::interval(tick);
    loop {
        ticks.tick().await;
        let (Some(shared), Some(attached)) = (shared.upgrade(), attached.upgrade()) else {
            return;
        };
        if attached.ended.is_cancelled() {
            return;
        }
        if !attached.may_settle() {
            continue;
        }
        let now = Instant::now();
        let ack_wait = attached.group.settings.ack_deadline;
        let mut progress = Vec::new();
        let expired: Vec<Held> = {
            let mut held = attached.held.lock();
            let due: Vec<u64> = held
                .iter()
                .filter(|(_, held)| held.deadline <= now)
                .map(|(seq, _)| *seq)
                .collect();
            for held in held.values_mut() {
                let Source::Stream(acker) = &held.source else {
                    continue;
                };
                if held.deadline > now && now.duration_since(held.progressed) >= ack_wait / 2 {
                    held.progressed = now;
                    progress.push(Arc::clone(acker));
                }
            }
            due.iter().filter_map(|seq| held.remove(seq)).collect()
        };
        // Each nack is confirmed before its permit is given back: the consumer's next pull then
        // reaches JetStream after it has queued the redelivery, which so comes before anything
        // newer, as in memory. (JetStream reads a consumer's acks and its pulls from two queues,
        // in no set order, so a nack merely sent first may be read after the pull.)
        let nacked = expired
            .into_iter()
            .map(|held| give_back_one(&shared, held, true));
        futures_util::future::join_all(nacked).await;
        for acker in progress {
            tokio::spawn(async move { acker.send(AckKind::Progress).await });
        }
    }
}

/// What a settlement does to one delivery.
#[derive(Debug, Clone, Copy)]
enum Action {
    Ack,
    Nack(Duration),
    Reject,
}

/// Settles deliveries made by any node: this node's here, the others' forwarded to them. Returns
/// the ids no node holds.
pub async fn settle(
    shared: &Arc<Shared>,
    settlement: Settlement,
) -> Result<Vec<String>, BrokerError> {
    let (own, others) = forward::split(&shared.node, settlement);
    let forwarded = others
        .into_iter()
        .map(|(node, part)| async move { forward::forward(shared, &node, part).await });
    let (own, forwarded) = futures_util::future::join(
        settle_own(shared, own),
        futures_util::future::join_all(forwarded),
    )
    .await;
    let mut unknown = own?;
    for part in forwarded {
        unknown.extend(part?);
    }
    Ok(unknown)
}

/// The group a delivery id names, on any node: the pattern settling it takes.
pub fn group_of(delivery_id: &str) -> Option<&str> {
    delivery_id.split('.').nth(3)
}

/// Settles what this node delivered and returns the ids it does not hold.
pub async fn settle_own(
    shared: &Arc<Shared>,
    settlement: Settlement,
) -> Result<Vec<String>, BrokerError> {
    let Settlement {
        ack,
        nack,
        nack_delay,
        reject,
        extend,
    } = settlement;
    let mut unknown = Vec::new();
    let mut actions = Vec::new();
    for (ids, action) in [
        (ack, Action::Ack),
        (nack, Action::Nack(nack_delay)),
        (reject, Action::Reject),
    ] {
        for id in ids {
            let taken = shared.consumers.parse(&id).and_then(|(attached, seq)| {
                if !attached.may_settle() {
                    return None;
                }
                let mut held = attached.held.lock().remove(&seq)?;
                // An acked delivery's place frees at once. A nacked or rejected one keeps it
                // until JetStream confirms: the next pull must not reach JetStream before the
                // nack, or something newer would come before the redelivery.
                if matches!(action, Action::Ack) {
                    held.permit = None;
                }
                Some((attached, held))
            });
            match taken {
                Some((attached, held)) => actions.push((attached, held, action)),
                None => unknown.push(id),
            }
        }
    }
    let now = Instant::now();
    let mut progress = Vec::new();
    for id in extend {
        let extended = shared.consumers.parse(&id).and_then(|(attached, seq)| {
            if !attached.may_settle() {
                return None;
            }
            let mut held = attached.held.lock();
            let held = held.get_mut(&seq)?;
            held.deadline = now + attached.ack_deadline;
            held.progressed = now;
            // Only JetStream has a deadline of its own to put off.
            Some(match &held.source {
                Source::Stream(acker) => Some(Arc::clone(acker)),
                Source::Direct => None,
            })
        });
        match extended {
            Some(acker) => progress.extend(acker),
            None => unknown.push(id),
        }
    }
    let settled = actions
        .into_iter()
        .map(|(attached, held, action)| apply(Arc::clone(shared), attached, held, action));
    let progressed = progress
        .into_iter()
        .map(|acker| async move { acker.send(AckKind::Progress).await });
    let work = async {
        let (settled, progressed) = futures_util::future::join(
            futures_util::future::join_all(settled),
            futures_util::future::join_all(progressed),
        )
        .await;
        let progressed = progressed
            .into_iter()
            .map(|sent| sent.map(|()| Sent::Unconfirmed));
        let sent: Vec<_> = settled.into_iter().chain(progressed).collect();
        // Acks and AckProgress are sent unconfirmed: the answer waits until they are written to
        // the server, so a node that dies after answering has not lost them, whatever else
        // failed.
        if sent
            .iter()
            .any(|sent| matches!(sent, Ok(Sent::Unconfirmed)))
        {
            shared.client.flush().await.map_err(unavailable)?;
        }
        sent.into_iter().try_for_each(|sent| sent.map(drop))
    };
    match tokio::time::timeout(SETTLE_TIMEOUT, work).await {
        Ok(result) => result.map(|()| unknown),
        Err(_) => Err(unavailable(
            "JetStream did not confirm the settlements in time",
        )),
    }
}

/// What settling a delivery sent to JetStream.
enum Sent {
    /// Nothing, or only what JetStream confirmed.
    Confirmed,
    /// A message sent without waiting for JetStream, which must be flushed before the answer.
    Unconfirmed,
}

/// Settles one delivery.
async fn apply(
    shared: Arc<Shared>,
    attached: Arc<Attached>,
    held: Held,
    action: Action,
) -> Result<Sent, BrokerError> {
    let group = Arc::clone(&attached.group);
    let nack = match action {
        Action::Ack => return ack(&shared, &group, &held).await,
        Action::Nack(delay) => Some(delay),
        Action::Reject => None,
    };
    refuse(shared, group, held, nack)
        .await
        .map(|()| Sent::Confirmed)
}

/// Acks one delivery. Sent, not confirmed, as NATS clients' `ack()` sends it: a confirmation per
/// ack was about a tenth of the cluster's CPU per message. `settle_own` flushes it before it
/// answers. One lost in a leader change brings the message back after AckWait: a duplicate, never
/// a loss. What is outstanding is decided here, not by JetStream.
async fn ack(shared: &Shared, group: &Known, held: &Held) -> Result<Sent, BrokerError> {
    shared.groups.count(&group.consumer, |c| c.acked += 1);
    let sent = match &held.source {
        Source::Stream(acker) => {
            acker.send(AckKind::Ack).await?;
            Sent::Unconfirmed
        }
        Source::Direct => Sent::Confirmed,
    };
    shared.groups.released(&group.consumer);
    Ok(sent)
}

/// Nacks one delivery after `nack`'s delay, or with `None` rejects it: back to its group, or out
/// as a dead letter.
async fn refuse(
    shared: Arc<Shared>,
    group: Arc<Known>,
    held: Held,
    nack: Option<Duration>,
) -> Result<(), BrokerError> {
    let count =
        |add: fn(&mut crate::broker::GroupCounters)| shared.groups.count(&group.consumer, add);
    match nack {
        Some(_)
            if group
                .settings
                .max_deliveries
                .is_some_and(|max| held.attempt >= max) =>
        {
            count(|c| {
                c.nacked += 1;
                c.exhausted += 1;
            });
            let letter = Letter::of(held, DeadLetterReason::MaxDeliveries);
            dead_letter(Arc::clone(&shared), group, letter).await
        }
        Some(delay) => {
            count(|c| c.nacked += 1);
            match &held.source {
                Source::Stream(acker) => {
                    let delay = (!delay.is_zero()).then_some(delay);
                    acker.confirm(AckKind::Nak(delay)).await
                }
                // Stored before its slot frees, as a nack is confirmed first (`keep_deadlines`).
                Source::Direct if delay.is_zero() => {
                    direct::store(&shared, &held.message, held.attempt).await
                }
                Source::Direct => {
                    let Held {
                        message, attempt, ..
                    } = held;
                    let later = direct::store_after(Arc::clone(&shared), message, attempt, delay);
                    shared.give_backs.spawn(later);
                    Ok(())
                }
            }
        }
        None => {
            count(|c| c.rejected += 1);
            let letter = Letter::of(held, DeadLetterReason::Rejected);
            dead_letter(Arc::clone(&shared), group, letter).await
        }
    }
}

/// A message leaving its group as a dead letter.
struct Letter {
    message: Message,
    source: Source,
    reason: DeadLetterReason,
    /// Deliveries it had.
    attempts: u32,
}

impl Letter {
    fn of(held: Held, reason: DeadLetterReason) -> Self {
        Self {
            message: held.message,
            source: held.source,
            reason,
            attempts: held.attempt,
        }
    }
}

/// Publishes a dead letter to its group's dead-letter topic, if it has one, with the headers the
/// in-memory broker gives it, then terminates the message in the group. If the publish fails the
/// message stays in the group, to be dead-lettered when it comes back; the publish's own message
/// id keeps a retry from storing it twice.
async fn dead_letter(
    shared: Arc<Shared>,
    group: Arc<Known>,
    letter: Letter,
) -> Result<(), BrokerError> {
    if let Some(topic) = &group.settings.dead_letter_topic {
        let new = letter
            .reason
            .letter(&letter.message, topic, &group.group, letter.attempts);
        let message = Message::stamp_as(new, letter.message.id(), SystemTime::now(), None);
        let published = async {
            let id = format!("dl-{}-{}", group.consumer, message.id());
            let headers = codec::headers(&message);
            let subject = shared.subjects.topic(topic);
            let outgoing = publish::Outgoing {
                subject,
                payload: message.payload_bytes(),
                headers,
            };
            publish::send_one(&shared, outgoing, Some(id))
                .await?
                .stored(&shared)
                .await
        };
        if let Err(error) = published.await {
            tracing::warn!(%error, group = %group.group, "cannot publish a dead letter; it stays in the group");
            return Err(error);
        }
    }
    if let Source::Stream(acker) = &letter.source {
        acker.confirm(AckKind::Term).await?;
    }
    shared.groups.released(&group.consumer);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_counts_its_joining_consumes_until_each_is_dropped() {
        let consumers = Consumers::new("node-a");
        let first = consumers.join("sy-1".into());
        let second = consumers.join("sy-1".into());
        let other = consumers.join("sy-2".into());
        let mut joining = consumers.joining();
        joining.sort();
        assert_eq!(joining, [("sy-1".to_owned(), 2), ("sy-2".to_owned(), 1)]);
        drop(first);
        drop(other);
        assert_eq!(consumers.joining(), [("sy-1".to_owned(), 1)]);
        drop(second);
        assert!(consumers.joining().is_empty());
    }
}
