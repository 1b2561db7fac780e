//! The `Broker` seam: what the transport asks of a broker, in domain types only.
//!
//! The in-memory broker ([`crate::memory::MemoryBroker`]) implements it today; a durable store or a
//! NATS JetStream backend can implement it later without the gRPC edge changing.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    time::{Duration, SystemTime},
};

use futures_core::Stream;

use crate::{
    error::BrokerError,
    message::{Message, MessageId, NewMessage},
    topic::{GroupName, Pattern, Topic},
};

/// A stream of broker events that ends when the subscription or consumer is over. Dropping it
/// unsubscribes, or returns what the consumer held to its group.
pub type EventStream<T> = Pin<Box<dyn Stream<Item = Result<T, BrokerError>> + Send>>;

/// A publish that is routed, and so has its place among the broker's changes, but whose outcome
/// (for a durable broker: its fsync) is still to come.
pub type StagedPublish = Pin<Box<dyn Future<Output = Result<Vec<Published>, BrokerError>> + Send>>;

/// What a broker does. Every method is safe to call concurrently.
pub trait Broker: Clone + Send + Sync + 'static {
    /// Routes a batch, all or nothing, and returns one [`Published`] per message in order.
    fn publish(
        &self,
        batch: Vec<NewMessage>,
    ) -> impl Future<Output = Result<Vec<Published>, BrokerError>> + Send;

    /// Like [`Broker::publish`], but while a group or the broker's memory is full it waits up to `wait`
    /// for room instead of failing at once. A broker with no way to wait publishes once.
    fn publish_waiting(
        &self,
        batch: Vec<NewMessage>,
        wait: Duration,
    ) -> impl Future<Output = Result<Vec<Published>, BrokerError>> + Send {
        let _ = wait;
        self.publish(batch)
    }

    /// Routes a batch as [`Broker::publish`] (waiting up to `wait` for room, if given) and returns
    /// once it is routed, with what to await for its outcome: a stream of publishes can then route
    /// its batches in order while their writes overlap. A broker that cannot split the two finishes
    /// the publish here.
    fn publish_staged(
        &self,
        batch: Vec<NewMessage>,
        wait: Option<Duration>,
    ) -> impl Future<Output = Result<StagedPublish, BrokerError>> + Send {
        async move {
            let published = match wait {
                Some(wait) => self.publish_waiting(batch, wait).await,
                None => self.publish(batch).await,
            };
            Ok(Box::pin(std::future::ready(published)) as StagedPublish)
        }
    }

    /// Subscribes to a pattern. The subscription is active when this returns.
    fn subscribe(
        &self,
        pattern: Pattern,
    ) -> impl Future<Output = Result<EventStream<SubscriptionEvent>, BrokerError>> + Send;

    /// Joins (creating if needed) a queue group and streams this consumer's deliveries.
    fn consume(
        &self,
        spec: ConsumeSpec,
    ) -> impl Future<Output = Result<EventStream<Delivery>, BrokerError>> + Send;

    /// Settles deliveries by id and returns the ids that were not outstanding.
    fn settle(
        &self,
        settlement: Settlement,
    ) -> impl Future<Output = Result<Vec<String>, BrokerError>> + Send;

    /// Publishes a request with a fresh reply inbox and waits up to `timeout` for its reply.
    fn request(
        &self,
        request: NewMessage,
        timeout: Duration,
    ) -> impl Future<Output = Result<Message, BrokerError>> + Send;

    /// The pattern of the group that made `delivery_id`, while that group exists: what settling the
    /// delivery is authorized against (delivery ids are not secret).
    fn delivery_pattern(&self, delivery_id: &str) -> Option<Pattern>;

    /// The group and message of `delivery_id` while it is outstanding: what a settlement's span
    /// names and is parented on. A broker that cannot look a delivery up gives `None`, and its
    /// settlements get no spans.
    fn outstanding(&self, delivery_id: &str) -> Option<Outstanding> {
        let _ = delivery_id;
        None
    }

    /// Creates a group ahead of traffic; succeeds unchanged if an identical one exists.
    fn declare_group(
        &self,
        spec: GroupSpec,
    ) -> impl Future<Output = Result<(), BrokerError>> + Send;

    /// Deletes a group and its messages; its consumers' streams end with [`BrokerError::GroupDeleted`].
    fn delete_group(
        &self,
        pattern: Pattern,
        group: GroupName,
    ) -> impl Future<Output = Result<(), BrokerError>> + Send;

    fn list_groups(&self) -> impl Future<Output = Result<Vec<GroupInfo>, BrokerError>> + Send;

    /// The consumers attached to a group; [`BrokerError::GroupNotFound`] if there is no such group.
    fn list_consumers(
        &self,
        pattern: Pattern,
        group: GroupName,
    ) -> impl Future<Output = Result<Vec<ConsumerInfo>, BrokerError>> + Send;

    /// The subscriptions open now, one entry per pattern.
    fn list_subscriptions(&self) -> Vec<SubscriptionInfo>;

    /// Broker-wide counters and usage.
    fn stats(&self) -> BrokerStats;

    /// Whether a request is waiting for its reply on `inbox` right now. Authorization lets a reply
    /// through to such an inbox whatever the replier's publish permissions; a broker without
    /// request/reply waits on nothing.
    fn awaits_reply(&self, inbox: &Topic) -> bool {
        let _ = inbox;
        false
    }

    /// Ends every stream with [`BrokerError::ShuttingDown`] and refuses new ones.
    fn shutdown(&self);

    /// Resolves once what the broker still owes its backend for streams that ended (deliveries
    /// given back) has gone out, after [`Broker::shutdown`] and the server's end: the process
    /// may then exit without losing it. A broker that owes nothing elsewhere resolves at once.
    fn closed(&self) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }

    /// Resolves with the reason once the broker can no longer store anything (its disk failed), so
    /// the server can report it in its health. A broker that cannot fail this way never resolves.
    fn failure(&self) -> impl Future<Output = String> + Send {
        std::future::pending()
    }
}

/// The outcome of publishing one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub id: MessageId,
    /// Subscriptions, and waiting requesters, the message was offered to.
    pub subscribers: u32,
    /// Groups that stored a copy.
    pub groups: u32,
}

/// What a subscription yields.
#[derive(Debug, Clone, PartialEq)]
pub enum SubscriptionEvent {
    Message(Message),
    /// The subscriber's buffer overflowed: this many messages were dropped for it, right here.
    Gap {
        missed: u64,
    },
}

/// How a group hands out messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ConsumeMode {
    /// Competing consumers: each message to one of them.
    #[default]
    Shared,
    /// One active consumer at a time, in order; others are refused or stand by.
    Exclusive,
}

impl fmt::Display for ConsumeMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Shared => "shared",
            Self::Exclusive => "exclusive",
        })
    }
}

/// A consumer joining a group. `None` means "the default" for each option.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumeSpec {
    pub pattern: Pattern,
    pub group: GroupName,
    pub mode: ConsumeMode,
    pub prefetch: Option<u32>,
    pub ack_deadline: Option<Duration>,
    /// Exclusive groups only: wait to take over instead of being refused.
    pub standby: bool,
}

/// A group declared ahead of traffic. `None` means "the server default" for each option.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSpec {
    pub pattern: Pattern,
    pub group: GroupName,
    pub mode: ConsumeMode,
    pub max_length: Option<u32>,
    /// `None`: no limit in bytes (only `max_length`).
    pub max_bytes: Option<u64>,
    pub ack_deadline: Option<Duration>,
    /// `None`: redeliver forever.
    pub max_deliveries: Option<u32>,
    pub dead_letter_topic: Option<Topic>,
}

/// One message handed to one consumer, to be settled by `delivery_id`.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub message: Message,
    pub delivery_id: String,
    /// 1 on the first delivery.
    pub attempt: u32,
}

/// A delivery not settled yet, as [`Broker::outstanding`] finds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Outstanding {
    pub group: GroupName,
    pub message: Message,
}

/// A batch of settlements. Ids are kept as given so unknown ones come back verbatim.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settlement {
    pub ack: Vec<String>,
    pub nack: Vec<String>,
    pub nack_delay: Duration,
    pub reject: Vec<String>,
    pub extend: Vec<String>,
}

/// A group's settings and counters, for listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    pub pattern: Pattern,
    pub group: GroupName,
    pub mode: ConsumeMode,
    pub ready: u64,
    pub in_flight: u64,
    pub consumers: u32,
    /// Since the group was created (or, in durable mode, since the broker started).
    pub counters: GroupCounters,
    /// What the held messages are charged, as the memory budget counts them.
    pub bytes: u64,
    /// When the oldest message waiting to be delivered was published.
    pub oldest_ready: Option<SystemTime>,
    /// When the oldest message not yet acked (waiting or in flight) was published.
    pub oldest_unacked: Option<SystemTime>,
}

/// What happened to a group's messages, counted. Serializable, as cluster-mode nodes send theirs
/// to each other.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GroupCounters {
    /// Deliveries made, redeliveries included.
    pub delivered: u64,
    pub acked: u64,
    /// Deliveries nacked (a passed ack deadline or a consumer gone is not a nack, but is redelivered).
    pub nacked: u64,
    /// Deliveries that were not a message's first.
    pub redelivered: u64,
    /// Messages dead-lettered because they were rejected.
    pub rejected: u64,
    /// Messages dead-lettered because they used up `max_deliveries`.
    pub exhausted: u64,
}

impl GroupCounters {
    /// Messages that left as dead letters, for any reason.
    pub fn dead_lettered(&self) -> u64 {
        self.rejected + self.exhausted
    }

    /// Adds `other`'s counts: a broker's totals are its groups' sums.
    pub fn add(&mut self, other: &Self) {
        self.delivered += other.delivered;
        self.acked += other.acked;
        self.nacked += other.nacked;
        self.redelivered += other.redelivered;
        self.rejected += other.rejected;
        self.exhausted += other.exhausted;
    }
}

/// One consumer of a group, for listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerInfo {
    /// Unique within its group for the broker's run.
    pub id: u64,
    pub prefetch: u32,
    pub in_flight: u32,
    pub ack_deadline: Duration,
    /// False for an exclusive group's standbys.
    pub active: bool,
}

/// The subscriptions to one pattern, for listing. Counters cover every subscription to the pattern
/// since the first of those open now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionInfo {
    pub pattern: Pattern,
    pub subscribers: u32,
    /// Messages waiting in the subscribers' buffers.
    pub buffered: u64,
    pub delivered: u64,
    /// Messages dropped for subscribers that were too slow.
    pub gaps: u64,
    /// Times a subscriber's buffer overflowed (each starts a gap).
    pub slow_events: u64,
}

/// What a broker did since it started, and what it holds, for monitoring.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BrokerStats {
    /// Messages accepted by publishes (requests included), and their payload bytes.
    pub published: u64,
    pub published_bytes: u64,
    /// Every group's counters, deleted groups included.
    pub groups: GroupCounters,
    pub memory_used: u64,
    pub memory_limit: u64,
    pub requests: RequestStats,
    /// A durable broker's log; `None` in memory.
    pub journal: Option<JournalStats>,
}

/// How requests ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestStats {
    pub answered: u64,
    pub no_responders: u64,
    pub timed_out: u64,
    /// Replies that came when no request was waiting for them (too late, or a wrong correlation id).
    pub late_replies: u64,
}

/// A durable broker's log, for monitoring.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JournalStats {
    pub bytes: u64,
    pub segments: u64,
    pub records: u64,
    pub fsyncs: u64,
    /// Fsync latencies, as a histogram of seconds.
    pub fsync_seconds: Histogram,
    /// Records per fsync, as a histogram.
    pub batch_records: Histogram,
    /// How long replaying the log took at start.
    pub recovery: Duration,
}

/// A histogram: the count in each bucket (not cumulative) by its upper bound, the last infinite.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum: f64,
}
