//! Cluster mode: a [`Broker`] over a NATS JetStream cluster, so that any number of Switchyard nodes
//! serve the same topics and groups and keep nothing that matters themselves.
//!
//! - A message that a group reads is a JetStream publish on `P.t.TOPIC` ([`subjects`]). That one
//!   publish reaches both paths: the stream `P` (Interest retention, replicated) stores it for
//!   every group whose filter matches, and subscribers on any node read it as a core NATS message.
//!   A batch that no group reads goes on `P.r.TOPIC`, outside the stream, to subscribers only:
//!   it spares a replicated write that Interest retention would throw away, as long as this node
//!   knows every group ([`view`]).
//! - A subscriber is a core subscription feeding the same bounded buffer the in-memory broker uses,
//!   so each node's `Gap`s are exact for its own subscribers ([`fanout`]).
//! - A group is a durable pull consumer, its settings in the consumer's metadata ([`groups`]).
//!   Each Switchyard consumer pulls what its prefetch allows; the node that delivered a message
//!   holds its ack handle until it is settled ([`consumer`]).
//! - A request that no group can take goes on `P.r.TOPIC` as a core request, so NATS's
//!   no-responders status answers at once; replies come back on the requesting node's inbox
//!   subscription ([`requests`]). A request that one shared group reads is handed straight to a
//!   node with a consumer of it that has room, and stored only if there is none ([`direct`]).
//!
//! docs/design/nats-backend.md gives the reasoning; the README's CLUSTERING section gives what
//! differs from the in-memory broker.

mod ack;
mod census;
mod codec;
mod consumer;
mod direct;
mod echo;
mod fanout;
mod forward;
mod groups;
mod leases;
mod publish;
mod pull;
mod requests;
mod subjects;
mod view;

use std::{sync::Arc, time::Duration};

use async_nats::jetstream::{self, stream};
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore},
    time::Instant,
};
use tokio_util::sync::CancellationToken;

use self::{consumer::Consumers, groups::Groups, leases::Leases, subjects::Subjects, view::View};
use crate::{
    broker::{
        Broker, BrokerStats, ConsumeSpec, ConsumerInfo, Delivery, EventStream, GroupInfo,
        GroupSpec, Outstanding, Published, Settlement, StagedPublish, SubscriptionEvent,
        SubscriptionInfo,
    },
    config::Config,
    error::BrokerError,
    memory::{
        replies::ReplyRouter,
        stats::{Subscriptions, Traffic},
    },
    message::{Message, NewMessage},
    topic::{GroupName, Pattern, Topic},
};

/// How long a start keeps trying to create or find the stream: a cluster that has just started
/// elects its JetStream leader within seconds.
const STREAM_WAIT: Duration = Duration::from_secs(30);
/// The oldest NATS server cluster mode runs on: groups keep their settings in consumer metadata,
/// which 2.10 introduced, and a batch is stored as an atomic batch, which 2.12 introduced.
const OLDEST_SERVER: (u64, u64) = (2, 12);
/// How long a JetStream call may take before it counts as the cluster being unavailable.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a publish that waits for room asks JetStream again what a full group holds: room
/// that a consumer on another node makes shows only there.
const ROOM_POLL: Duration = Duration::from_millis(50);

/// Why cluster mode could not start.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error("cannot connect to NATS at {servers} (--nats): {reason}")]
    Connect { servers: String, reason: String },
    #[error(
        "the NATS server at {servers} is {version}{jetstream}: cluster mode needs nats-server {}.{} or later with JetStream enabled",
        OLDEST_SERVER.0, OLDEST_SERVER.1
    )]
    Server {
        servers: String,
        version: String,
        jetstream: &'static str,
    },
    #[error(
        "--max-batch-messages is {0}, more than cluster mode can store at once: a batch is one \
         JetStream atomic batch, which holds at most {max} messages",
        max = publish::MAX_ATOMIC_BATCH
    )]
    BatchTooLarge(usize),
    #[error("cannot read a NATS setting's file: {0}")]
    File(#[source] std::io::Error),
    #[error(
        "cannot create or find the JetStream stream {stream} (is JetStream on, with {replicas} servers for --nats-replicas {replicas}?): {reason}"
    )]
    Stream {
        stream: String,
        replicas: usize,
        reason: String,
    },
}

/// A cheap `Clone` handle to one cluster-mode node.
#[derive(Debug, Clone)]
pub struct NatsBroker {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    config: Config,
    client: async_nats::Client,
    jetstream: jetstream::Context,
    stream: jetstream::stream::Stream,
    /// Exclusive groups' leases.
    leases: Leases,
    subjects: Subjects,
    /// This process's name among the nodes: its inboxes and delivery ids carry it.
    node: String,
    shutdown: CancellationToken,
    /// `max_subscriptions` permits, one held by each open subscription and consumer.
    stream_slots: Arc<Semaphore>,
    traffic: Traffic,
    subscriptions: Subscriptions,
    replies: Arc<ReplyRouter>,
    groups: Groups,
    /// Whether `groups` can say that no group reads a topic.
    view: Arc<View>,
    /// How many times the NATS connection was made: pulls watch it (pull.rs).
    reconnects: tokio::sync::watch::Sender<u64>,
    consumers: Consumers,
    /// This node's queue subscriptions for requests handed straight to its consumers.
    direct: direct::Routes,
    census_nodes: census::Nodes,
    /// Cancelled once every node has heard of this one, and it of them (`census::greet`).
    greeted: CancellationToken,
    echoes: echo::Echoes,
    /// Ended consumers giving back what they held, which shutdown waits for.
    give_backs: tokio_util::task::TaskTracker,
}

impl NatsBroker {
    /// Connects to the cluster `config.nats` names, and creates the stream if it is not there.
    pub async fn connect(config: Config) -> Result<Self, NatsError> {
        let servers = config.nats.clone().ok_or_else(|| NatsError::Connect {
            servers: String::new(),
            reason: "no servers given".into(),
        })?;
        if config.max_batch_messages > publish::MAX_ATOMIC_BATCH {
            return Err(NatsError::BatchTooLarge(config.max_batch_messages));
        }
        let node = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let view = Arc::new(View::default());
        let watched = Arc::clone(&view);
        let reconnects = tokio::sync::watch::Sender::new(0u64);
        let reconnected = reconnects.clone();
        let mut options = async_nats::ConnectOptions::new()
            .name(format!("switchyard {node}"))
            .connection_timeout(CALL_TIMEOUT)
            // A node keeps serving through a NATS outage and reconnects for as long as it runs.
            .max_reconnects(None)
            .event_callback(move |event| {
                let view = Arc::clone(&watched);
                let reconnected = reconnected.clone();
                async move {
                    match event {
                        // A group change told meanwhile, or dropped, is missed.
                        async_nats::Event::Disconnected | async_nats::Event::SlowConsumer(_) => {
                            view.lost()
                        }
                        async_nats::Event::Connected => {
                            view.wake();
                            // Pulls made before may be lost with the old connection (pull.rs).
                            reconnected.send_modify(|count| *count += 1);
                        }
                        _ => {}
                    }
                }
            });
        if let Some(path) = &config.nats_credentials {
            options = options
                .credentials_file(path)
                .await
                .map_err(NatsError::File)?;
        }
        if let Some(ca) = &config.nats_tls_ca {
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        if let (Some(cert), Some(key)) = (&config.nats_tls_cert, &config.nats_tls_key) {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        let client =
            options
                .connect(servers.addrs())
                .await
                .map_err(|error| NatsError::Connect {
                    servers: servers.to_string(),
                    reason: error.to_string(),
                })?;
        let info = client.server_info();
        let mut numbers = info
            .version
            .split('.')
            .map(|part| part.parse::<u64>().unwrap_or(0));
        let version = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
        if version < OLDEST_SERVER || !info.jetstream {
            return Err(NatsError::Server {
                servers: servers.to_string(),
                version: info.version,
                jetstream: if info.jetstream {
                    ""
                } else {
                    " without JetStream"
                },
            });
        }
        let mut jetstream = jetstream::new(client.clone());
        jetstream.set_timeout(CALL_TIMEOUT);
        let subjects = Subjects::new(config.nats_prefix.as_str());
        let stream = open_stream(&jetstream, &config, &subjects).await?;
        let leases = Leases::open(&jetstream, &config).await?;
        let shared = Arc::new(Shared {
            stream_slots: Arc::new(Semaphore::new(config.max_subscriptions)),
            client,
            jetstream,
            stream,
            leases,
            subjects,
            shutdown: CancellationToken::new(),
            traffic: Traffic::default(),
            subscriptions: Subscriptions::default(),
            replies: Arc::default(),
            groups: Groups::default(),
            view,
            reconnects,
            consumers: Consumers::new(&node),
            direct: direct::Routes::default(),
            census_nodes: census::Nodes::default(),
            greeted: CancellationToken::new(),
            echoes: echo::Echoes::default(),
            give_backs: tokio_util::task::TaskTracker::new(),
            node,
            config,
        });
        let listening = async {
            requests::listen(&shared).await?;
            echo::listen(&shared).await?;
            forward::listen(&shared).await?;
            census::listen(&shared).await
        };
        listening.await.map_err(|error| NatsError::Connect {
            servers: servers.to_string(),
            reason: error.to_string(),
        })?;
        groups::refresh(&shared).await;
        tokio::spawn(census::greet(Arc::clone(&shared)));
        tokio::spawn(groups::keep_up(Arc::downgrade(&shared)));
        tracing::info!(node = %shared.node, servers = %servers, stream = %shared.stream_name(), "cluster mode: connected to NATS");
        Ok(Self { shared })
    }

    fn check_running(&self) -> Result<(), BrokerError> {
        match self.shared.shutdown.is_cancelled() {
            true => Err(BrokerError::ShuttingDown),
            false => Ok(()),
        }
    }

    /// Publishes a batch in order, as one atomic batch, and returns once NATS has every message,
    /// with what to await for JetStream's acknowledgement. Replies to inboxes are core messages,
    /// sent at once, and need none; so is every message of a batch that no group reads, when this
    /// node can be sure of that. While a group is full, it waits for room until `room_by`, if
    /// given.
    async fn stage(
        &self,
        batch: Vec<NewMessage>,
        room_by: Option<Instant>,
    ) -> Result<StagedPublish, BrokerError> {
        self.check_running()?;
        let shared = &self.shared;
        let bytes: usize = batch.iter().map(|message| message.payload.len()).sum();
        let count = batch.len();
        let reached = self.admit(&batch, room_by).await?;
        // All or nothing, so that a subscriber sees the batch in order on one subject.
        let to_stream = reached.iter().any(|&groups| groups > 0) || !shared.view.trusted();
        let mut published = Vec::with_capacity(count);
        let mut stored = Vec::with_capacity(count);
        // Replies need no echo: no publish through another node is ordered after one.
        let mut echoed = false;
        for (new, groups) in batch.into_iter().zip(reached) {
            let message = Message::stamp(new);
            let inbox = message.topic().is_inbox();
            echoed |= !to_stream && !inbox;
            if inbox && requests::is_own(shared, message.topic()) {
                // A reply to a request made on this node: it waits here.
                shared.replies.deliver(&message);
            } else if to_stream && !inbox {
                stored.push(publish::Outgoing {
                    subject: shared.subjects.topic(message.topic()),
                    payload: message.payload_bytes(),
                    headers: codec::headers(&message),
                });
            } else {
                shared
                    .client
                    .publish_with_headers(
                        shared.subjects.core(message.topic()),
                        codec::headers(&message),
                        message.payload_bytes(),
                    )
                    .await
                    .map_err(unavailable)?;
            }
            published.push(Published {
                id: message.id(),
                subscribers: 0,
                groups,
            });
        }
        let sent = match stored.is_empty() {
            true => None,
            false => Some(publish::send_all(shared, stored).await?),
        };
        let shared = Arc::clone(shared);
        Ok(Box::pin(async move {
            if let Some(sent) = sent {
                sent.stored(&shared).await?;
            }
            if echoed {
                // Core messages are out once the server has them (echo.rs).
                echo::sent(&shared).await?;
            }
            shared.traffic.published(count, bytes);
            Ok(published)
        }))
    }

    /// Counts a batch into the groups it reaches, or refuses it whole with `GroupFull` if one of
    /// them has no room. The estimate errs high (what other nodes' consumers took since the last
    /// refresh still counts), so a refusal by it is checked against JetStream first. With
    /// `room_by`, a full group is asked again every [`ROOM_POLL`] until then.
    async fn admit(
        &self,
        batch: &[NewMessage],
        room_by: Option<Instant>,
    ) -> Result<Vec<u32>, BrokerError> {
        let groups = &self.shared.groups;
        let topics: Vec<&Topic> = batch.iter().map(|message| &message.topic).collect();
        let mut checked = false;
        loop {
            let over = match groups.admit(&topics) {
                Ok(reached) => return Ok(reached),
                Err(over) => over,
            };
            // The last poll ends a poll's length before `room_by`, so the refusal comes in time.
            let waits = room_by.is_some_and(|by| Instant::now() + ROOM_POLL < by);
            if over.never_fits || (checked && !waits) {
                return Err(BrokerError::GroupFull {
                    index: over.index,
                    group: over.group.group.to_string(),
                    max_length: over.group.settings.max_length,
                    never_fits: over.never_fits,
                });
            }
            if checked {
                tokio::select! {
                    () = self.shared.shutdown.cancelled() => return Err(BrokerError::ShuttingDown),
                    () = tokio::time::sleep(ROOM_POLL) => {}
                }
            }
            groups::reread_held(&self.shared, &over.group).await?;
            checked = true;
        }
    }

    /// Takes one of the `max_subscriptions` slots for a new stream.
    fn stream_slot(&self) -> Result<OwnedSemaphorePermit, BrokerError> {
        Arc::clone(&self.shared.stream_slots)
            .try_acquire_owned()
            .map_err(|_| BrokerError::TooManyStreams {
                limit: self.shared.config.max_subscriptions,
            })
    }
}

impl Shared {
    fn stream_name(&self) -> &str {
        self.config.nats_prefix.as_str()
    }
}

/// Creates the stream, or finds it as an earlier node created it, retrying while the cluster
/// elects its leader.
async fn open_stream(
    jetstream: &jetstream::Context,
    config: &Config,
    subjects: &Subjects,
) -> Result<jetstream::stream::Stream, NatsError> {
    let wanted = stream::Config {
        name: config.nats_prefix.to_string(),
        subjects: vec![subjects.stream()],
        // A message stays while a group that matched it has not acked it: the stream holds what
        // the groups hold, and nothing for topics no group reads.
        retention: stream::RetentionPolicy::Interest,
        storage: stream::StorageType::File,
        num_replicas: config.nats_replicas,
        discard: stream::DiscardPolicy::New,
        // Only dead letters carry a Nats-Msg-Id (publish.rs): one published again within this
        // window, by a node that died before it terminated the message, is stored once.
        duplicate_window: Duration::from_secs(120),
        allow_direct: true,
        // A batch is stored all or none (publish.rs).
        allow_atomic_publish: true,
        description: Some("Switchyard: every group's messages".into()),
        ..Default::default()
    };
    let deadline = tokio::time::Instant::now() + STREAM_WAIT;
    loop {
        let opened = async {
            let stream = jetstream.get_or_create_stream(wanted.clone()).await?;
            if stream.cached_info().config.allow_atomic_publish {
                return Ok(stream);
            }
            // Made by an earlier version, without atomic batches: turned on, nothing else.
            let mut config = stream.cached_info().config.clone();
            config.allow_atomic_publish = true;
            jetstream.update_stream(config).await?;
            Ok::<_, async_nats::Error>(jetstream.get_stream(&wanted.name).await?)
        };
        match opened.await {
            Ok(stream) => return Ok(stream),
            Err(error) if tokio::time::Instant::now() < deadline => {
                tracing::debug!(%error, "the stream is not ready yet; retrying");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(error) => {
                return Err(NatsError::Stream {
                    stream: wanted.name,
                    replicas: config.nats_replicas,
                    reason: error.to_string(),
                });
            }
        }
    }
}

/// A NATS call that failed, as what the caller is told.
fn unavailable(error: impl std::fmt::Display) -> BrokerError {
    BrokerError::ClusterUnavailable {
        reason: error.to_string(),
    }
}

impl Broker for NatsBroker {
    async fn publish(&self, batch: Vec<NewMessage>) -> Result<Vec<Published>, BrokerError> {
        self.stage(batch, None).await?.await
    }

    async fn publish_waiting(
        &self,
        batch: Vec<NewMessage>,
        wait: Duration,
    ) -> Result<Vec<Published>, BrokerError> {
        self.stage(batch, Some(Instant::now() + wait)).await?.await
    }

    async fn publish_staged(
        &self,
        batch: Vec<NewMessage>,
        wait: Option<Duration>,
    ) -> Result<StagedPublish, BrokerError> {
        self.stage(batch, wait.map(|wait| Instant::now() + wait))
            .await
    }

    async fn subscribe(
        &self,
        pattern: Pattern,
    ) -> Result<EventStream<SubscriptionEvent>, BrokerError> {
        self.check_running()?;
        let slot = self.stream_slot()?;
        fanout::subscribe(&self.shared, pattern, slot).await
    }

    async fn consume(&self, spec: ConsumeSpec) -> Result<EventStream<Delivery>, BrokerError> {
        self.check_running()?;
        let slot = self.stream_slot()?;
        consumer::consume(&self.shared, spec, slot).await
    }

    async fn settle(&self, settlement: Settlement) -> Result<Vec<String>, BrokerError> {
        self.check_running()?;
        consumer::settle(&self.shared, settlement).await
    }

    async fn request(
        &self,
        request: NewMessage,
        timeout: Duration,
    ) -> Result<Message, BrokerError> {
        self.check_running()?;
        // A group that a request reaches counts it like any message, and refuses it when full.
        self.admit(std::slice::from_ref(&request), None).await?;
        requests::request(&self.shared, request, timeout).await
    }

    fn delivery_pattern(&self, delivery_id: &str) -> Option<Pattern> {
        let shared = &self.shared;
        shared
            .consumers
            .pattern_of(delivery_id)
            .or_else(|| shared.groups.pattern_of(consumer::group_of(delivery_id)?))
    }

    fn outstanding(&self, delivery_id: &str) -> Option<Outstanding> {
        self.shared.consumers.outstanding(delivery_id)
    }

    async fn declare_group(&self, spec: GroupSpec) -> Result<(), BrokerError> {
        self.check_running()?;
        groups::declare(&self.shared, spec).await
    }

    async fn delete_group(&self, pattern: Pattern, group: GroupName) -> Result<(), BrokerError> {
        self.check_running()?;
        groups::delete(&self.shared, &pattern, &group).await
    }

    async fn list_groups(&self) -> Result<Vec<GroupInfo>, BrokerError> {
        groups::list(&self.shared).await
    }

    async fn list_consumers(
        &self,
        pattern: Pattern,
        group: GroupName,
    ) -> Result<Vec<ConsumerInfo>, BrokerError> {
        let known = groups::find(&self.shared, &pattern, &group).await?;
        let census = census::gather(&self.shared).await?;
        let mut consumers: Vec<ConsumerInfo> = census
            .groups
            .get(&known.consumer)
            .map(|group| group.consumers.iter().map(ConsumerInfo::from).collect())
            .unwrap_or_default();
        consumers.sort_by_key(|consumer| consumer.id);
        Ok(consumers)
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
            groups: shared.groups.counters(),
            // Nothing is held here but subscribers' buffers, which their own limits bound.
            memory_used: 0,
            memory_limit: shared.config.max_memory_bytes as u64,
            requests: shared.traffic.requests(shared.replies.unmatched()),
            journal: None,
        }
    }

    fn awaits_reply(&self, inbox: &Topic) -> bool {
        requests::awaits_reply(&self.shared, inbox)
    }

    fn shutdown(&self) {
        self.shared.shutdown.cancel();
    }

    /// Waits for the give-backs of the consumers that ended, then for the client to have written
    /// them out, for [`CALL_TIMEOUT`] at most: a nack lost with the process would leave its
    /// message waiting for the group's ack deadline instead of going to another consumer now.
    async fn closed(&self) {
        let shared = &self.shared;
        shared.give_backs.close();
        let written = async {
            shared.give_backs.wait().await;
            shared.client.flush().await
        };
        if tokio::time::timeout(CALL_TIMEOUT, written).await.is_err() {
            tracing::warn!("cluster mode: some deliveries were not given back before the end");
        }
    }
}
