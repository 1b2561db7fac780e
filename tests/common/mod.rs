//! Shared pieces of the integration tests: a real Switchyard on `127.0.0.1:0`, connected clients, and
//! the steps most scenarios repeat (publish, subscribe, consume, settle, read a stream with a timeout).
//! Child processes (the broker, the command line, anything else) are started only through
//! [`child`] and [`process`].
//!
//! Every wait in here is bounded: a helper that reads from a stream gives up after [`step_limit`]
//! and panics with what it was waiting for, so a broken server fails a test instead of hanging the
//! suite.

// Each test file is its own crate and uses a different subset of these helpers.
#![allow(dead_code)]

pub mod child;
pub mod faults;
pub mod http;
pub mod nats;
pub mod pki;
pub mod process;
pub mod proxy;

use std::{fmt::Debug, future::Future, net::SocketAddr, time::Duration};

use bytes::Bytes;
use switchyard::{config::Config, pb, server};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle, time::Instant};
use tonic::{
    Code, Status, Streaming,
    transport::{Channel, Endpoint},
};

pub use pb::subscribe_response::Event;

pub type Broker = pb::broker_client::BrokerClient<Channel>;
pub type Admin = pb::admin_client::AdminClient<Channel>;
pub type Health = tonic_health::pb::health_client::HealthClient<Channel>;

/// The longest any single expected step (a call, the next event on a stream) may take.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long a test watches a stream before concluding that nothing (more) arrives.
pub const QUIET: Duration = Duration::from_millis(300);
/// Slack allowed on top of a deadline or delay before its effect counts as late.
pub const SLACK: Duration = Duration::from_secs(2);

/// A Switchyard serving on an ephemeral loopback port for the length of one test.
///
/// Dropping it (or calling [`TestServer::shutdown`]) resolves the shutdown future given to
/// `server::run`.
pub struct TestServer {
    /// The first node's address (the only one, but in cluster mode).
    pub addr: SocketAddr,
    nodes: Vec<Node>,
    /// Which node the next [`TestServer::channel`] goes to.
    next_node: std::sync::atomic::AtomicUsize,
    /// The data directory of a durable run (see [`DURABLE`]), or a cluster-mode deployment's
    /// ready files, removed with the server.
    _data_dir: Option<tempfile::TempDir>,
    /// A cluster-mode deployment's stream, deleted with the server.
    _deployment: Option<nats::OwnedDeployment>,
}

/// One `server::run` of a [`TestServer`].
struct Node {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), server::ServerError>>>,
}

impl Node {
    async fn start(config: Config) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a test listener on 127.0.0.1:0");
        let addr = listener
            .local_addr()
            .expect("local address of the test listener");
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            // A dropped sender means the `TestServer` is gone: stop as well.
            let _ = stopped.await;
        };
        let task = tokio::spawn(server::run(listener, config, shutdown));
        Self {
            addr,
            shutdown: Some(stop),
            task: Some(task),
        }
    }
}

/// Set (to anything), every [`TestServer`] without a data directory of its own gets a fresh one:
/// the same behaviour tests then run against the durable broker. `.ci/run` runs them both ways.
pub const DURABLE: &str = "SWITCHYARD_TEST_DURABLE";

/// Set (to anything), every [`TestServer`] without a data directory or NATS servers of its own is
/// a cluster-mode deployment of [`CLUSTER_NODES`] nodes over this test binary's shared NATS
/// cluster ([`nats::shared_urls`]), and its clients alternate between the nodes: the same
/// behaviour tests then run in cluster mode, publishers and consumers on different nodes.
pub const NATS: &str = "SWITCHYARD_TEST_NATS";

/// How long a cluster-mode node may take to serve: it reaches NATS and creates the stream first.
pub const NODE_START: Duration = Duration::from_secs(30);

/// The nodes of a cluster-mode [`TestServer`].
pub const CLUSTER_NODES: usize = 2;

/// Whether this run's test servers are in cluster mode (see [`NATS`]). A behaviour test that asks,
/// to check a documented difference, says so in its name (tests/naming.rs).
pub fn cluster_mode() -> bool {
    std::env::var_os(NATS).is_some()
}

/// What `Published.subscribers` says of a message that reached `n` subscribers: `n`, but 0 in
/// cluster mode, where subscribers are on every node and publishes do not count them (a
/// documented difference: README, CLUSTERING). A test that asks says so in its name
/// (tests/naming.rs).
pub fn counted_subscribers(n: u32) -> u32 {
    if cluster_mode() { 0 } else { n }
}

/// The configuration the tests start from: the defaults, with a short shutdown grace so a test that
/// stops its server does not wait long for connections it still holds.
pub fn test_config() -> Config {
    Config {
        shutdown_grace: Duration::from_millis(500),
        // Parallel tests would all want its default port; tests/http.rs asks for one.
        http: switchyard::config::HttpListen::OFF,
        ..Config::default()
    }
}

impl TestServer {
    /// Starts a server with [`test_config`].
    pub async fn start() -> Self {
        Self::with_config(test_config()).await
    }

    /// Starts a server with `config` on `127.0.0.1:0`.
    pub async fn with_config(mut config: Config) -> Self {
        if config.data_dir.is_none() && config.nats.is_none() && cluster_mode() {
            return Self::cluster(config, CLUSTER_NODES).await;
        }
        let data_dir =
            (config.data_dir.is_none() && std::env::var_os(DURABLE).is_some()).then(|| {
                let dir = tempfile::tempdir().expect("a temporary data directory");
                config.data_dir = Some(dir.path().to_owned());
                dir
            });
        let node = Node::start(config).await;
        Self {
            addr: node.addr,
            nodes: vec![node],
            next_node: Default::default(),
            _data_dir: data_dir,
            _deployment: None,
        }
    }

    /// Starts `nodes` cluster-mode nodes of one new deployment (a stream of its own) over this
    /// binary's shared NATS cluster.
    pub async fn cluster(config: Config, nodes: usize) -> Self {
        let deployment = nats::Deployment::new(nats::shared_urls());
        let mut server = Self::nodes_of(config, &deployment, nodes).await;
        server._deployment = Some(nats::OwnedDeployment(deployment));
        server
    }

    /// Starts `nodes` nodes of `deployment`, which outlives them.
    pub async fn nodes_of(mut config: Config, deployment: &nats::Deployment, nodes: usize) -> Self {
        deployment.configure(&mut config);
        // A node serves once it has reached NATS and found (or made) the stream, and then writes
        // its ready file: a test's own waits should not pay for the start. The file works
        // whatever the node speaks (TLS, mutual TLS, tokens).
        let ready_dir = tempfile::tempdir().expect("a temporary directory for the ready files");
        let mut started = Vec::with_capacity(nodes);
        for index in 0..nodes {
            let ready = ready_dir.path().join(format!("node{index}.ready"));
            let config = Config {
                ready_file: Some(ready.clone()),
                ..config.clone()
            };
            let node = Node::start(config).await;
            within_for(NODE_START, "a cluster-mode node to serve", async {
                while !ready.exists() {
                    assert!(
                        !node.task.as_ref().is_some_and(JoinHandle::is_finished),
                        "cluster-mode node {index} stopped while starting"
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
            .await;
            started.push(node);
        }
        Self {
            addr: started[0].addr,
            nodes: started,
            next_node: Default::default(),
            _data_dir: Some(ready_dir),
            _deployment: None,
        }
    }

    /// Every node's address: one, but in cluster mode.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(|node| node.addr).collect()
    }

    /// A new HTTP/2 connection to the server, with the endpoint tuned by `tune`. In cluster mode
    /// each new connection goes to the next node.
    pub async fn channel_with(&self, tune: impl FnOnce(Endpoint) -> Endpoint) -> Channel {
        let next = self
            .next_node
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let node = &self.nodes[next % self.nodes.len()];
        self.channel_to(node, tune).await
    }

    /// A new HTTP/2 connection to node `index`.
    pub async fn channel_to_node(&self, index: usize) -> Channel {
        self.channel_to(&self.nodes[index], |endpoint| endpoint)
            .await
    }

    async fn channel_to(&self, node: &Node, tune: impl FnOnce(Endpoint) -> Endpoint) -> Channel {
        let endpoint = Endpoint::from_shared(format!("http://{}", node.addr))
            .expect("a valid endpoint URI")
            .connect_timeout(Duration::from_secs(1));
        let endpoint = tune(endpoint);
        let deadline = Instant::now() + WAIT;
        loop {
            match tokio::time::timeout(WAIT, endpoint.connect()).await {
                Ok(Ok(channel)) => return channel,
                Ok(Err(_)) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                outcome => {
                    let finished = node.task.as_ref().is_none_or(JoinHandle::is_finished);
                    panic!(
                        "could not connect to the test server at {} ({outcome:?}); server task finished: {finished}",
                        node.addr
                    )
                }
            }
        }
    }

    /// A new HTTP/2 connection with tonic's defaults.
    pub async fn channel(&self) -> Channel {
        self.channel_with(|endpoint| endpoint).await
    }

    pub async fn broker(&self) -> Broker {
        Broker::new(self.channel().await)
    }

    pub async fn admin(&self) -> Admin {
        Admin::new(self.channel().await)
    }

    pub async fn health(&self) -> Health {
        Health::new(self.channel().await)
    }

    /// Resolves every node's shutdown future and returns what `server::run` returned (the first
    /// error, if any), waiting at most [`WAIT`] for each.
    pub async fn shutdown(mut self) -> Result<(), server::ServerError> {
        for node in &mut self.nodes {
            if let Some(stop) = node.shutdown.take() {
                let _ = stop.send(());
            }
        }
        let mut outcome = Ok(());
        for node in &mut self.nodes {
            let task = node
                .task
                .take()
                .expect("the server task is only taken here");
            let ended = within("server::run to return after shutdown", task)
                .await
                .expect("the server task did not panic");
            outcome = outcome.and(ended);
        }
        outcome
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(stop) = node.shutdown.take() {
                let _ = stop.send(());
            }
        }
    }
}

/// Awaits `future` for at most [`step_limit`], panicking with `what` if it takes longer.
pub async fn within<F: Future>(what: &str, future: F) -> F::Output {
    within_for(step_limit(), what, future).await
}

/// How long one call or awaited event may take: [`WAIT`], or three times that in cluster mode.
/// There a call may have JetStream create a replicated consumer, which has taken more than 5 s
/// on a fresh cluster that a whole test binary's servers start on at once (two busy cores): the
/// meta leader's proposals queue, and each new consumer elects a leader of its own.
pub fn step_limit() -> Duration {
    if cluster_mode() { WAIT * 3 } else { WAIT }
}

/// Awaits `future` for at most `limit`, panicking with `what` if it takes longer.
pub async fn within_for<F: Future>(limit: Duration, what: &str, future: F) -> F::Output {
    match tokio::time::timeout(limit, future).await {
        Ok(output) => output,
        Err(_) => panic!("timed out after {limit:?} waiting for {what}"),
    }
}

/// A topic no other test uses: `prefix` followed by a fresh token.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}.{}", uuid::Uuid::now_v7().simple())
}

/// A message as a client writes it: only topic and payload.
pub fn message(topic: &str, payload: impl Into<Bytes>) -> pb::Message {
    pb::Message {
        topic: topic.to_owned(),
        payload: payload.into(),
        ..Default::default()
    }
}

/// Message number `n` on `topic`: a payload of at least `size` bytes that starts with `n` in ten digits.
pub fn numbered(topic: &str, n: usize, size: usize) -> pb::Message {
    let mut payload = format!("{n:010}").into_bytes();
    payload.resize(size.max(payload.len()), b'.');
    message(topic, payload)
}

/// Messages `range` on `topic`, as [`numbered`] with ten-byte payloads.
pub fn numbered_batch(topic: &str, range: std::ops::Range<usize>) -> Vec<pb::Message> {
    range.map(|n| numbered(topic, n, 0)).collect()
}

/// The number a [`numbered`] payload starts with.
pub fn number_of(message: &pb::Message) -> usize {
    let digits = message
        .payload
        .get(..10)
        .unwrap_or_else(|| panic!("payload {:?} is not a numbered payload", message.payload));
    std::str::from_utf8(digits)
        .ok()
        .and_then(|digits| digits.parse().ok())
        .unwrap_or_else(|| panic!("payload {:?} is not a numbered payload", message.payload))
}

/// The number carried by the message of a delivery.
pub fn delivery_number(delivery: &pb::Delivery) -> usize {
    number_of(
        delivery
            .message
            .as_ref()
            .expect("a delivery carries a message"),
    )
}

/// The numbers carried by `deliveries`, sorted.
pub fn sorted_numbers(deliveries: &[pb::Delivery]) -> Vec<usize> {
    let mut numbers: Vec<usize> = deliveries.iter().map(delivery_number).collect();
    numbers.sort_unstable();
    numbers
}

/// Publishes `messages` as one batch, bounded by [`WAIT`].
pub async fn publish(
    broker: &mut Broker,
    messages: Vec<pb::Message>,
) -> Result<Vec<pb::Published>, Status> {
    let request = pb::PublishRequest {
        messages,
        wait_for_room: false,
    };
    within("Publish", broker.publish(request))
        .await
        .map(|response| response.into_inner().published)
}

/// Publishes `messages` as one batch that must succeed with one `Published` per message.
pub async fn publish_ok(broker: &mut Broker, messages: Vec<pb::Message>) -> Vec<pb::Published> {
    let count = messages.len();
    let published = publish(broker, messages)
        .await
        .unwrap_or_else(|status| panic!("Publish of {count} messages failed: {status:?}"));
    assert_eq!(published.len(), count, "one Published per message");
    published
}

/// Publishes one message that must succeed.
pub async fn publish_one(
    broker: &mut Broker,
    topic: &str,
    payload: impl Into<Bytes>,
) -> pb::Published {
    publish_ok(broker, vec![message(topic, payload)])
        .await
        .remove(0)
}

/// Sends `message` as a unary Request on a connection of its own, in the background: the task ends
/// with the reply (bounded by [`WAIT`]), so the test can answer it meanwhile.
pub async fn request_in_background(
    server: &TestServer,
    message: pb::Message,
) -> JoinHandle<Result<pb::Message, Status>> {
    let mut requester = server.broker().await;
    let request = pb::RequestRequest {
        message: Some(message),
        timeout_ms: 5000,
    };
    tokio::spawn(async move {
        let response = within("Request", requester.request(request)).await?;
        Ok(response
            .into_inner()
            .reply
            .expect("a RequestResponse carries the reply"))
    })
}

/// Subscribes to `pattern`; the subscription is active when this returns.
pub async fn subscribe(
    broker: &mut Broker,
    pattern: &str,
) -> Result<Streaming<pb::SubscribeResponse>, Status> {
    let request = pb::SubscribeRequest {
        topic: pattern.to_owned(),
    };
    within("Subscribe", broker.subscribe(request))
        .await
        .map(tonic::Response::into_inner)
}

/// Subscribes to `pattern`, which must succeed.
pub async fn subscribe_ok(broker: &mut Broker, pattern: &str) -> Streaming<pb::SubscribeResponse> {
    subscribe(broker, pattern)
        .await
        .unwrap_or_else(|status| panic!("Subscribe to {pattern:?} failed: {status:?}"))
}

/// The next item of a server stream, which must arrive within [`WAIT`] and not end the stream.
pub async fn next_item<T>(stream: &mut Streaming<T>, what: &str) -> T {
    match within(what, stream.message()).await {
        Ok(Some(item)) => item,
        Ok(None) => panic!("the stream ended while waiting for {what}"),
        Err(status) => panic!("the stream failed while waiting for {what}: {status:?}"),
    }
}

/// The next event of a subscription.
pub async fn next_event(stream: &mut Streaming<pb::SubscribeResponse>) -> Event {
    next_item(stream, "a subscription event")
        .await
        .event
        .expect("a SubscribeResponse carries an event")
}

/// The next event of a subscription, which must be a message (not a gap).
pub async fn next_message(stream: &mut Streaming<pb::SubscribeResponse>) -> pb::Message {
    match next_event(stream).await {
        Event::Message(message) => message,
        Event::Gap(gap) => panic!("expected a message, got {gap:?}"),
    }
}

/// The next `n` events of a subscription, which must all be messages.
pub async fn next_messages(
    stream: &mut Streaming<pb::SubscribeResponse>,
    n: usize,
) -> Vec<pb::Message> {
    let mut messages = Vec::with_capacity(n);
    while messages.len() < n {
        messages.push(next_message(stream).await);
    }
    messages
}

/// Asserts that nothing arrives on `stream` for `quiet`.
pub async fn assert_quiet<T: Debug>(stream: &mut Streaming<T>, quiet: Duration, what: &str) {
    if let Ok(outcome) = tokio::time::timeout(quiet, stream.message()).await {
        panic!("expected nothing on {what} for {quiet:?}, got {outcome:?}");
    }
}

/// The status a stream ends with: the next read must fail within [`WAIT`].
pub async fn end_status<T: Debug>(stream: &mut Streaming<T>, what: &str) -> Status {
    loop {
        match within(what, stream.message()).await {
            Err(status) => return status,
            Ok(None) => panic!("{what}: the stream ended without an error status"),
            // Items already on their way may still arrive before the status.
            Ok(Some(_)) => continue,
        }
    }
}

/// A Consume request for a shared group with the server's default prefetch and ack deadline.
pub fn consume_request(topic: &str, group: &str) -> pb::ConsumeRequest {
    pb::ConsumeRequest {
        topic: topic.to_owned(),
        group: group.to_owned(),
        ..Default::default()
    }
}

/// An exclusive consume request.
pub fn exclusive(topic: &str, group: &str, prefetch: u32, standby: bool) -> pb::ConsumeRequest {
    pb::ConsumeRequest {
        mode: pb::ConsumeMode::Exclusive.into(),
        prefetch,
        standby,
        ..consume_request(topic, group)
    }
}

/// The numbers carried by `deliveries`, in delivery order.
pub fn numbers(deliveries: &[pb::Delivery]) -> Vec<usize> {
    deliveries.iter().map(delivery_number).collect()
}

/// A declaration of `group` on `topic` with every setting at the server's default.
pub fn declaration(topic: &str, group: &str) -> pb::DeclareGroupRequest {
    pb::DeclareGroupRequest {
        topic: topic.to_owned(),
        group: group.to_owned(),
        ..Default::default()
    }
}

/// A Consume request for a shared group with an explicit prefetch and ack deadline.
pub fn consume_with(
    topic: &str,
    group: &str,
    prefetch: u32,
    ack_deadline_ms: u32,
) -> pb::ConsumeRequest {
    pb::ConsumeRequest {
        prefetch,
        ack_deadline_ms,
        ..consume_request(topic, group)
    }
}

/// Joins a group; Consume's errors come back from this call itself.
pub async fn consume(
    broker: &mut Broker,
    request: pb::ConsumeRequest,
) -> Result<Streaming<pb::Delivery>, Status> {
    within("Consume", broker.consume(request))
        .await
        .map(tonic::Response::into_inner)
}

/// Joins a group, which must succeed.
pub async fn consume_ok(
    broker: &mut Broker,
    request: pb::ConsumeRequest,
) -> Streaming<pb::Delivery> {
    let described = format!("{request:?}");
    consume(broker, request)
        .await
        .unwrap_or_else(|status| panic!("Consume {described} failed: {status:?}"))
}

/// The next delivery of a consumer stream.
pub async fn next_delivery(stream: &mut Streaming<pb::Delivery>) -> pb::Delivery {
    next_item(stream, "a delivery").await
}

/// The next `n` deliveries of a consumer stream.
pub async fn next_deliveries(stream: &mut Streaming<pb::Delivery>, n: usize) -> Vec<pb::Delivery> {
    let mut deliveries = Vec::with_capacity(n);
    while deliveries.len() < n {
        deliveries.push(next_delivery(stream).await);
    }
    deliveries
}

/// Sends one Ack call.
pub async fn settle(broker: &mut Broker, request: pb::AckRequest) -> Result<Vec<String>, Status> {
    within("Ack", broker.ack(request))
        .await
        .map(|response| response.into_inner().unknown_ids)
}

/// Acks `deliveries`, all of which must still be outstanding.
pub async fn ack_all(broker: &mut Broker, deliveries: &[pb::Delivery]) {
    let request = pb::AckRequest {
        ack_ids: deliveries.iter().map(|d| d.delivery_id.clone()).collect(),
        ..Default::default()
    };
    let unknown = settle(broker, request).await.expect("Ack succeeds");
    assert!(
        unknown.is_empty(),
        "acked outstanding deliveries, but these were unknown: {unknown:?}"
    );
}

/// Acks the delivery ids `ids` and returns the ones the broker did not know.
pub async fn ack_ids(broker: &mut Broker, ids: &[&str]) -> Vec<String> {
    let request = pb::AckRequest {
        ack_ids: ids.iter().map(|id| (*id).to_owned()).collect(),
        ..Default::default()
    };
    settle(broker, request).await.expect("Ack succeeds")
}

/// Nacks one delivery with `delay_ms`.
pub async fn nack(broker: &mut Broker, delivery: &pb::Delivery, delay_ms: u32) {
    let request = pb::AckRequest {
        nack_ids: vec![delivery.delivery_id.clone()],
        nack_delay_ms: delay_ms,
        ..Default::default()
    };
    let unknown = settle(broker, request)
        .await
        .expect("Ack with a nack succeeds");
    assert!(
        unknown.is_empty(),
        "nacked an outstanding delivery, but it was unknown: {unknown:?}"
    );
}

/// Declares a group, which must succeed.
pub async fn declare_ok(admin: &mut Admin, request: pb::DeclareGroupRequest) {
    let described = format!("{request:?}");
    within("DeclareGroup", admin.declare_group(request))
        .await
        .unwrap_or_else(|status| panic!("DeclareGroup {described} failed: {status:?}"));
}

/// Deletes a group, which must succeed.
pub async fn delete_ok(admin: &mut Admin, topic: &str, group: &str) {
    let request = pb::DeleteGroupRequest {
        topic: topic.to_owned(),
        group: group.to_owned(),
    };
    within("DeleteGroup", admin.delete_group(request))
        .await
        .unwrap_or_else(|status| panic!("DeleteGroup {group} on {topic} failed: {status:?}"));
}

/// The listed state of one group, if it is listed.
pub async fn group_info(admin: &mut Admin, topic: &str, group: &str) -> Option<pb::GroupInfo> {
    within("ListGroups", admin.list_groups(pb::ListGroupsRequest {}))
        .await
        .expect("ListGroups succeeds")
        .into_inner()
        .groups
        .into_iter()
        .find(|info| info.topic == topic && info.group == group)
}

/// Polls ListGroups until the group's state satisfies `expected`, for at most [`step_limit`].
pub async fn wait_for_group(
    admin: &mut Admin,
    topic: &str,
    group: &str,
    what: &str,
    expected: impl Fn(&pb::GroupInfo) -> bool,
) -> pb::GroupInfo {
    let deadline = Instant::now() + step_limit();
    loop {
        let info = group_info(admin, topic, group).await;
        match info {
            Some(info) if expected(&info) => return info,
            _ if Instant::now() >= deadline => {
                panic!("group {group} on {topic} never reached {what}; last listed as {info:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// Asserts that `result` failed with `code` and a message containing every one of `needles`.
pub fn assert_status<T: Debug>(result: Result<T, Status>, code: Code, needles: &[&str]) -> Status {
    let status = match result {
        Ok(value) => panic!("expected {code:?} mentioning {needles:?}, got Ok({value:?})"),
        Err(status) => status,
    };
    assert_eq!(status.code(), code, "unexpected code in {status:?}");
    for needle in needles {
        assert!(
            status.message().contains(needle),
            "expected the message of {status:?} to contain {needle:?}"
        );
    }
    status
}
