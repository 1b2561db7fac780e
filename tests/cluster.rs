//! Cluster mode under faults, with real processes killed by SIGKILL: the NATS JetStream cluster
//! as the test harness starts it (tests/common/nats.rs), a Switchyard node killed while it holds
//! deliveries (and one stopped gracefully), a NATS server killed under load or under an idle
//! consumer's node, the whole NATS cluster restarted, and the holder of an exclusive group's
//! lease killed or frozen (SIGSTOP) past its lease, then thawed. Each fault
//! test checks what was acknowledged against what arrived: nothing lost, nothing unexpected,
//! duplicates counted.
//!
//! The behaviour suite runs in cluster mode too (tests/common/mod.rs, `SWITCHYARD_TEST_NATS`);
//! these are the faults it cannot show. Ignored by a plain `cargo test`, since they need
//! nats-server 2.14 or later; `.ci/run` installs one and runs them with `-- --ignored`.

mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use common::{
    http::try_get,
    nats::{CLUSTER_START, Deployment, NatsCluster, OwnedDeployment},
    process::BrokerProcess,
    *,
};
use serde_json::Value;
use switchyard::pb;
use tokio::time::Instant;

/// The meta group as node `node` sees it: its leader's name and its size, once it has a leader.
async fn meta(cluster: &NatsCluster, node: usize) -> Option<(String, u64)> {
    let (status, body) = try_get(cluster.monitor(node), "/jsz").await.ok()?;
    if status != 200 {
        return None;
    }
    let jsz: Value = serde_json::from_str(&body).ok()?;
    let meta = &jsz["meta_cluster"];
    let leader = meta["leader"]
        .as_str()
        .filter(|leader| !leader.is_empty())?;
    Some((leader.to_owned(), meta["cluster_size"].as_u64()?))
}

/// Polls node `node` until its meta group has a leader that `accept` takes, for at most `limit`.
async fn leader_until(
    cluster: &NatsCluster,
    node: usize,
    limit: Duration,
    accept: impl Fn(&str) -> bool,
) -> (String, u64) {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = meta(cluster, node).await
            && accept(&found.0)
        {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "node n{node} had no acceptable meta leader within {limit:?}: {:?}",
            meta(cluster, node).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
#[ignore = "needs nats-server 2.14+: bash .ci/run installs it"]
async fn three_nodes_elect_a_leader_keep_one_through_a_crash_and_take_the_node_back() {
    let mut cluster = within_for(CLUSTER_START, "a 3-node cluster", NatsCluster::start(3)).await;
    assert_eq!(cluster.urls().len(), 3);
    let (leader, size) = leader_until(&cluster, 0, Duration::from_secs(10), |_| true).await;
    assert_eq!(size, 3, "the meta group has every node");
    // Every node agrees on who leads.
    for node in 1..3 {
        let (seen, _) = leader_until(&cluster, node, Duration::from_secs(10), |_| true).await;
        assert_eq!(seen, leader, "n{node} sees the same leader");
    }

    let killed: usize = leader
        .trim_start_matches('n')
        .parse()
        .expect("nodes are named n0, n1, n2");
    cluster.kill(killed).await;
    let survivor = (killed + 1) % 3;
    let (new_leader, _) = leader_until(&cluster, survivor, Duration::from_secs(20), |name| {
        name != leader
    })
    .await;
    assert_ne!(new_leader, leader);

    within_for(
        Duration::from_secs(60),
        "the node's restart",
        cluster.restart(killed),
    )
    .await;
    let (seen, size) = leader_until(&cluster, killed, Duration::from_secs(20), |_| true).await;
    assert_eq!(
        (seen, size),
        (new_leader, 3),
        "the restarted node is back in the meta group"
    );
}

/// How long a fault test waits for what was acknowledged to arrive after the fault.
const RECOVERY: Duration = Duration::from_secs(45);
/// The groups' ack deadline in the fault tests: what a killed node held comes back after it.
const DEADLINE_MS: u32 = 2_000;

/// Starts a cluster-mode broker process of `deployment`.
async fn node_process(deployment: &Deployment) -> BrokerProcess {
    BrokerProcess::start(&[
        "--http",
        "off",
        "--nats",
        &deployment.urls,
        "--nats-prefix",
        &deployment.prefix,
    ])
    .await
}

/// What a fault test's consumer received, by message number: how many times each.
#[derive(Debug, Default)]
struct Received(BTreeMap<usize, u32>);

impl Received {
    fn add(&mut self, deliveries: &[pb::Delivery]) {
        for delivery in deliveries {
            *self.0.entry(delivery_number(delivery)).or_default() += 1;
        }
    }

    /// Checks the run: every acknowledged number arrived, nothing arrived that was not attempted,
    /// and returns how many arrived more than once.
    fn check(&self, acknowledged: &BTreeSet<usize>, attempted: &BTreeSet<usize>) -> u32 {
        let lost: Vec<&usize> = acknowledged
            .iter()
            .filter(|n| !self.0.contains_key(n))
            .collect();
        let unexpected: Vec<&usize> = self.0.keys().filter(|n| !attempted.contains(n)).collect();
        let duplicates = self.0.values().map(|times| times - 1).sum();
        println!(
            "acknowledged {}, received {} distinct, lost {}, unexpected {}, duplicates {duplicates}",
            acknowledged.len(),
            self.0.len(),
            lost.len(),
            unexpected.len()
        );
        assert!(lost.is_empty(), "lost {lost:?}");
        assert!(unexpected.is_empty(), "unexpected {unexpected:?}");
        duplicates
    }
}

/// Acks a delivery whatever comes of it: one whose deadline passed, or whose Ack failed, comes
/// back, and the checker counts it twice.
async fn ack(broker: &mut Broker, delivery: &pb::Delivery) {
    let request = pb::AckRequest {
        ack_ids: vec![delivery.delivery_id.clone()],
        ..Default::default()
    };
    let _ = tokio::time::timeout(WAIT, broker.ack(request)).await;
}

/// Receives and acks deliveries until every number in `wanted` has arrived, for at most
/// [`RECOVERY`].
async fn drain(
    broker: &mut Broker,
    stream: &mut tonic::Streaming<pb::Delivery>,
    received: &mut Received,
    wanted: &BTreeSet<usize>,
) {
    let deadline = Instant::now() + RECOVERY;
    while !wanted.iter().all(|n| received.0.contains_key(n)) && Instant::now() < deadline {
        let delivery = match tokio::time::timeout(SLACK, stream.message()).await {
            Ok(Ok(Some(delivery))) => delivery,
            Err(_) => continue,
            Ok(ended) => panic!("the consumer's stream ended: {ended:?}"),
        };
        received.add(std::slice::from_ref(&delivery));
        ack(broker, &delivery).await;
    }
}

/// A node process whose consumer of the group `workers` holds messages 0..10 unacked, with the
/// consumer's connection and stream.
struct Holding {
    node: BrokerProcess,
    holder: Broker,
    held: tonic::Streaming<pb::Delivery>,
}

/// Declares `workers` on `topic` with an ack deadline of `deadline_ms` through `survivor`, starts
/// a node process of `deployment` whose consumer takes the ten messages published through
/// `survivor`, and returns it holding them.
async fn holding_ten(
    deployment: &Deployment,
    survivor: &TestServer,
    topic: &str,
    deadline_ms: u32,
) -> Holding {
    let node = node_process(deployment).await;
    let mut admin = survivor.admin().await;
    let declare = pb::DeclareGroupRequest {
        ack_deadline_ms: deadline_ms,
        ..declaration(topic, "workers")
    };
    declare_ok(&mut admin, declare).await;
    let mut holder = Broker::new(node.channel().await);
    let mut held = consume_ok(&mut holder, consume_with(topic, "workers", 10, 0)).await;
    let mut publisher = survivor.broker().await;
    publish_ok(&mut publisher, numbered_batch(topic, 0..10)).await;
    let taken = next_deliveries(&mut held, 10).await;
    assert_eq!(sorted_numbers(&taken), (0..10).collect::<Vec<_>>());
    Holding { node, holder, held }
}

/// Consumes `workers` on `topic` through `survivor` until messages 0..10 have all come back, and
/// checks that each came back once.
async fn take_back_all_ten(survivor: &TestServer, topic: &str) {
    let mut rescuer = survivor.broker().await;
    let mut rescued = consume_ok(&mut rescuer, consume_with(topic, "workers", 100, 0)).await;
    let mut received = Received::default();
    let all: BTreeSet<usize> = (0..10).collect();
    drain(&mut rescuer, &mut rescued, &mut received, &all).await;
    assert_eq!(received.check(&all, &all), 0, "each came back once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server 2.14+: bash .ci/run installs it"]
async fn a_killed_node_s_unacked_deliveries_come_back_through_the_other_node() {
    let cluster = within_for(CLUSTER_START, "a 3-node cluster", NatsCluster::start(3)).await;
    let deployment = Deployment::new(&cluster.urls().join(","));
    let _stream = OwnedDeployment(deployment.clone());
    let survivor = TestServer::nodes_of(test_config(), &deployment, 1).await;
    let topic = unique("cluster.killed");
    let doomed = holding_ten(&deployment, &survivor, &topic, DEADLINE_MS).await;
    // Unacked, on a node that dies without a word.
    doomed.node.kill().await;
    let killed_at = Instant::now();

    take_back_all_ten(&survivor, &topic).await;
    println!(
        "the killed node's deliveries came back {:?} after the kill",
        killed_at.elapsed()
    );
    assert!(
        killed_at.elapsed() >= Duration::from_millis(u64::from(DEADLINE_MS)) - SLACK,
        "they come back once the group's ack deadline has passed"
    );
}

/// A node stopped with SIGTERM gives back what its consumers held before it exits, so another
/// node's consumer gets it at once, not after the group's ack deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server 2.14+: bash .ci/run installs it"]
async fn a_node_stopped_gracefully_gives_its_unacked_deliveries_back_before_it_exits() {
    const LONG_DEADLINE_MS: u32 = 30_000;
    let deployment = Deployment::new(common::nats::shared_urls());
    let _stream = OwnedDeployment(deployment.clone());
    let survivor = TestServer::nodes_of(test_config(), &deployment, 1).await;
    let topic = unique("cluster.stopped");
    let Holding {
        node: mut stopping,
        holder,
        held,
    } = holding_ten(&deployment, &survivor, &topic, LONG_DEADLINE_MS).await;
    let stopped_at = Instant::now();
    stopping.terminate();
    // The client goes too, so the server has no connection to wait for: the process would exit
    // at once, but for what it still owes NATS.
    drop((held, holder));
    let status = stopping.exit_within(Duration::from_secs(10)).await;
    assert!(status.success(), "the node exits cleanly: {status:?}");

    take_back_all_ten(&survivor, &topic).await;
    println!(
        "the stopped node's deliveries came back {:?} after SIGTERM",
        stopped_at.elapsed()
    );
    assert!(
        stopped_at.elapsed() < Duration::from_millis(u64::from(LONG_DEADLINE_MS) / 2),
        "they came back well before the group's ack deadline"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server 2.14+: bash .ci/run installs it"]
async fn killing_a_nats_server_under_load_loses_nothing_acknowledged_and_stores_batches_whole() {
    const BATCH: usize = 10;
    let mut cluster = within_for(CLUSTER_START, "a 3-node cluster", NatsCluster::start(3)).await;
    let deployment = Deployment::new(&cluster.urls().join(","));
    let _stream = OwnedDeployment(deployment.clone());
    let server = TestServer::nodes_of(test_config(), &deployment, 2).await;
    let topic = unique("cluster.load");
    let mut admin = server.admin().await;
    let declare = pb::DeclareGroupRequest {
        ack_deadline_ms: DEADLINE_MS,
        ..declaration(&topic, "workers")
    };
    declare_ok(&mut admin, declare).await;

    // A publisher on node 0, a consumer on node 1.
    let mut publisher = Broker::new(server.channel_to_node(0).await);
    let mut broker = Broker::new(server.channel_to_node(1).await);
    let mut stream = consume_ok(&mut broker, consume_with(&topic, "workers", 50, 0)).await;
    let published_topic = topic.clone();
    let publishing = tokio::spawn(async move {
        let topic = published_topic;
        let (mut acknowledged, mut attempted) = (BTreeSet::new(), BTreeSet::new());
        let started = Instant::now();
        let mut n = 0;
        while started.elapsed() < Duration::from_secs(6) {
            let batch: Vec<usize> = (n..n + BATCH).collect();
            attempted.extend(batch.iter().copied());
            let messages = batch.iter().map(|&n| numbered(&topic, n, 64)).collect();
            // A publish that fails, or takes too long, was not acknowledged: it may or may not
            // arrive.
            let request = pb::PublishRequest {
                messages,
                wait_for_room: false,
            };
            if let Ok(Ok(_)) = tokio::time::timeout(WAIT, publisher.publish(request)).await {
                acknowledged.extend(batch);
            }
            n += BATCH;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        (acknowledged, attempted)
    });
    let mut received = Received::default();
    let consuming_until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < consuming_until {
        if let Ok(Ok(Some(delivery))) = tokio::time::timeout(SLACK, stream.message()).await {
            received.add(std::slice::from_ref(&delivery));
            ack(&mut broker, &delivery).await;
        }
    }
    cluster.kill(0).await;
    let killed_at = Instant::now();
    let mut pumping = Box::pin(async {
        loop {
            if let Ok(Ok(Some(delivery))) = tokio::time::timeout(SLACK, stream.message()).await {
                // Recorded first: the loop may be dropped at any await.
                received.add(std::slice::from_ref(&delivery));
                ack(&mut broker, &delivery).await;
            }
        }
    });
    let (acknowledged, attempted) = tokio::select! {
        outcome = publishing => outcome.expect("the publisher did not panic"),
        () = &mut pumping => unreachable!("the pump never ends"),
    };
    drop(pumping);
    drain(&mut broker, &mut stream, &mut received, &acknowledged).await;
    // A batch is stored all or none, acknowledged or not: the rest of any batch of which some
    // arrived must come too.
    let touched: BTreeSet<usize> = received
        .0
        .keys()
        .flat_map(|n| {
            let first = n / BATCH * BATCH;
            first..first + BATCH
        })
        .collect();
    drain(&mut broker, &mut stream, &mut received, &touched).await;
    let partial: Vec<usize> = touched
        .iter()
        .step_by(BATCH)
        .filter(|first| !(**first..**first + BATCH).all(|n| received.0.contains_key(&n)))
        .copied()
        .collect();
    assert!(
        partial.is_empty(),
        "batches stored in part, by their first number: {partial:?}"
    );
    println!(
        "one NATS server killed under load; drained {:?} after the kill",
        killed_at.elapsed()
    );
    assert!(
        acknowledged.len() > 100,
        "publishing went on: {} acknowledged",
        acknowledged.len()
    );
    // Listing asks JetStream's API, which waits for a new meta leader if the kill took it: that
    // may take longer than one call's bound, but not long.
    let listed = within_for(NODE_START, "ListGroups to answer after the kill", async {
        loop {
            match admin.list_groups(pb::ListGroupsRequest {}).await {
                Ok(listed) => break listed.into_inner().groups,
                Err(status) => println!("ListGroups after the kill: {status:?}"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    println!("the groups at the end: {listed:?}");
    received.check(&acknowledged, &attempted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server 2.14+: bash .ci/run installs it"]
async fn a_restarted_nats_cluster_keeps_declared_groups_and_queued_messages() {
    let mut cluster = within_for(CLUSTER_START, "a 3-node cluster", NatsCluster::start(3)).await;
    let deployment = Deployment::new(&cluster.urls().join(","));
    let _stream = OwnedDeployment(deployment.clone());
    let server = TestServer::nodes_of(test_config(), &deployment, 2).await;
    let topic = unique("cluster.restart");
    let mut admin = server.admin().await;
    let declare = pb::DeclareGroupRequest {
        max_length: 500,
        max_deliveries: 4,
        ack_deadline_ms: DEADLINE_MS,
        ..declaration(&topic, "kept")
    };
    declare_ok(&mut admin, declare.clone()).await;
    let mut publisher = server.broker().await;
    publish_ok(&mut publisher, numbered_batch(&topic, 0..20)).await;

    within_for(RECOVERY, "the cluster's restart", cluster.restart_all()).await;

    // The same declaration is accepted unchanged: the group kept every setting.
    within_for(RECOVERY, "the group after the restart", async {
        loop {
            let mut admin = server.admin().await;
            let declared = admin.declare_group(declare.clone()).await;
            let info = group_info(&mut admin, &topic, "kept").await;
            if declared.is_ok() && info.is_some_and(|info| info.ready == 20) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    let mut broker = server.broker().await;
    let mut stream = consume_ok(&mut broker, consume_with(&topic, "kept", 100, 0)).await;
    let mut received = Received::default();
    let all: BTreeSet<usize> = (0..20).collect();
    drain(&mut broker, &mut stream, &mut received, &all).await;
    assert_eq!(received.check(&all, &all), 0);
}

/// The servers that lead stream `stream` or one of its consumers, once each has a leader, as
/// node `node` sees them.
async fn stream_leaders(
    cluster: &NatsCluster,
    node: usize,
    stream: &str,
) -> Option<BTreeSet<String>> {
    let path = "/jsz?accounts=true&streams=true&consumers=true";
    let (status, body) = try_get(cluster.monitor(node), path).await.ok()?;
    if status != 200 {
        return None;
    }
    let jsz: Value = serde_json::from_str(&body).ok()?;

    let detail = jsz["account_details"]
        .as_array()?
        .iter()
        .filter_map(|account| account["stream_detail"].as_array())
        .flatten()
        .find(|detail| detail["name"] == stream)?;
    let consumers = detail["consumer_detail"].as_array()?;
    let mut leaders = BTreeSet::new();
    for led in std::iter::once(detail).chain(consumers) {
        let leader = led["cluster"]["leader"]
            .as_str()
            .filter(|leader| !leader.is_empty())?;
        leaders.insert(leader.to_owned());
    }
    (!consumers.is_empty()).then_some(leaders)
}

/// A node whose NATS server dies reconnects to another, and its consumer pulls again as soon as
/// it has, rather than once the pull it had made would have expired (5 s): JetStream may have
/// dropped that pull with the old connection. The server killed leads neither the stream nor the
/// group, so nothing waits for an election.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server 2.14+: bash .ci/run installs it"]
async fn a_consumer_pulls_again_once_its_node_reconnects_to_another_nats_server() {
    let mut cluster = within_for(CLUSTER_START, "a 3-node cluster", NatsCluster::start(3)).await;
    let deployment = Deployment::new(&cluster.urls().join(","));
    let _stream = OwnedDeployment(deployment.clone());
    let publishing = TestServer::nodes_of(test_config(), &deployment, 1).await;
    let topic = unique("cluster.reconnect");
    let mut admin = publishing.admin().await;
    declare_ok(&mut admin, declaration(&topic, "workers")).await;
    let leaders = within_for(RECOVERY, "the stream's and the group's leaders", async {
        loop {
            if let Some(leaders) = stream_leaders(&cluster, 0, &deployment.prefix).await {
                return leaders;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let doomed = (0..3)
        .find(|node| !leaders.contains(&format!("n{node}")))
        .expect("three servers, at most two leaders");
    // The consuming node is given the doomed server alone, and learns the others from it.
    let consuming_deployment = Deployment {
        urls: cluster.urls()[doomed].clone(),
        ..deployment.clone()
    };
    let consuming = TestServer::nodes_of(test_config(), &consuming_deployment, 1).await;
    let mut publisher = publishing.broker().await;
    let mut broker = consuming.broker().await;
    let mut stream = consume_ok(&mut broker, consume_request(&topic, "workers")).await;
    publish_ok(&mut publisher, vec![numbered(&topic, 0, 8)]).await;
    let first = next_delivery(&mut stream).await;
    ack_all(&mut broker, &[first]).await;
    // The consumer's next pull is waiting at the server.
    tokio::time::sleep(Duration::from_millis(300)).await;

    cluster.kill(doomed).await;
    let killed_at = Instant::now();
    // Time for the node to reconnect. What is published while its pull cannot take it (the pull
    // was dropped, or its interest is not back yet) would wait out the group's AckWait: that is
    // not what this test is about.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    within_for(RECOVERY, "a publish after the kill", async {
        loop {
            let request = pb::PublishRequest {
                messages: vec![numbered(&topic, 1, 8)],
                wait_for_room: false,
            };
            if let Ok(Ok(_)) = tokio::time::timeout(WAIT, publisher.publish(request)).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let published_after = killed_at.elapsed();
    let second = within_for(
        RECOVERY,
        "the delivery after the kill",
        next_delivery(&mut stream),
    )
    .await;
    let delivered_after = killed_at.elapsed();
    println!("after the kill: published at {published_after:?}, delivered at {delivered_after:?}");
    assert_eq!(delivery_number(&second), 1);
    assert!(
        delivered_after < Duration::from_millis(2_500),
        "delivered {delivered_after:?} after the kill: the consumer waited for its old pull to expire"
    );
}

/// Sends `signal` (`STOP`, `CONT`) to the process `pid`.
fn signal(pid: u32, signal: &str) {
    let sent = std::process::Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success(), "kill -{signal} {pid}");
}

/// Receives `n` deliveries, for at most [`RECOVERY`]: a takeover after a lapse waits out the lease
/// and then the group's ack deadline.
async fn taken_over(stream: &mut tonic::Streaming<pb::Delivery>, n: usize) -> Vec<pb::Delivery> {
    within_for(RECOVERY, "the standby's deliveries", async {
        let mut deliveries = Vec::new();
        while deliveries.len() < n {
            match stream.message().await {
                Ok(Some(delivery)) => deliveries.push(delivery),
                ended => panic!("the standby's stream ended: {ended:?}"),
            }
        }
        deliveries
    })
    .await
}

/// An exclusive group (ack deadline [`DEADLINE_MS`]) whose lease a node process holds, with a
/// standby on an in-process node of the same deployment: what the exclusive fault tests start from.
struct ExclusivePair {
    /// The node process holding the lease, for the fault.
    node: BrokerProcess,
    holder: Broker,
    held: tonic::Streaming<pb::Delivery>,
    standby_client: Broker,
    standby: tonic::Streaming<pb::Delivery>,
    /// A client of the in-process node.
    publisher: Broker,
    topic: String,
    _survivor: TestServer,
    // Dropped before the cluster: it deletes the deployment's streams through it.
    _stream: OwnedDeployment,
    _cluster: NatsCluster,
}

impl ExclusivePair {
    /// Starts the cluster, both nodes and both consumers; the holder asks for `prefetch`.
    async fn start(prefetch: u32) -> Self {
        let cluster = within_for(CLUSTER_START, "a 3-node cluster", NatsCluster::start(3)).await;
        let deployment = Deployment::new(&cluster.urls().join(","));
        let stream = OwnedDeployment(deployment.clone());
        let node = node_process(&deployment).await;
        let survivor = TestServer::nodes_of(test_config(), &deployment, 1).await;
        let topic = unique("cluster.exclusive");
        let mut admin = survivor.admin().await;
        let declare = pb::DeclareGroupRequest {
            mode: pb::ConsumeMode::Exclusive.into(),
            ack_deadline_ms: DEADLINE_MS,
            ..declaration(&topic, "ledger")
        };
        declare_ok(&mut admin, declare).await;
        let mut holder = Broker::new(node.channel().await);
        let held = consume_ok(&mut holder, exclusive(&topic, "ledger", prefetch, false)).await;
        let mut standby_client = survivor.broker().await;
        let standby = consume_ok(&mut standby_client, exclusive(&topic, "ledger", 100, true)).await;
        wait_for_group(&mut admin, &topic, "ledger", "2 consumers", |g| {
            g.consumers == 2
        })
        .await;
        Self {
            publisher: survivor.broker().await,
            node,
            holder,
            held,
            standby_client,
            standby,
            topic,
            _survivor: survivor,
            _stream: stream,
            _cluster: cluster,
        }
    }
}

/// The node holding an exclusive group's lease freezes (SIGSTOP) with deliveries unacked, for longer
/// than the lease lives: the standby on the other node takes over and gets what the frozen node
/// held first, then the rest, in publish order. Thawed (SIGCONT), the old holder is fenced: it
/// cannot ack what it held, and its consumer's stream ends with UNAVAILABLE. Then it is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server 2.14+: bash .ci/run installs it"]
async fn a_frozen_exclusive_holder_is_fenced_and_the_standby_takes_over_in_order() {
    let ExclusivePair {
        node: frozen,
        mut holder,
        mut held,
        mut standby_client,
        mut standby,
        mut publisher,
        topic,
        // Bound, not `..`: what is not bound would be dropped here, the cluster with it.
        _survivor,
        _stream,
        _cluster,
    } = ExclusivePair::start(5).await;
    publish_ok(&mut publisher, numbered_batch(&topic, 0..10)).await;
    let first = next_deliveries(&mut held, 5).await;
    assert_eq!(numbers(&first), vec![0, 1, 2, 3, 4]);
    ack_all(&mut holder, &first[..2]).await;
    let more = next_deliveries(&mut held, 2).await;
    assert_eq!(numbers(&more), vec![5, 6]);

    signal(frozen.pid(), "STOP");
    let frozen_at = Instant::now();
    let taken = taken_over(&mut standby, 8).await;
    println!(
        "the standby took over {:?} after the holder froze",
        frozen_at.elapsed()
    );
    assert_eq!(
        numbers(&taken),
        vec![2, 3, 4, 5, 6, 7, 8, 9],
        "what the frozen holder held first, then the rest"
    );
    let attempts: Vec<u32> = taken.iter().map(|d| d.attempt).collect();
    assert_eq!(attempts, vec![2, 2, 2, 2, 2, 1, 1, 1]);
    ack_all(&mut standby_client, &taken).await;

    signal(frozen.pid(), "CONT");
    let stale: Vec<&str> = first[2..]
        .iter()
        .chain(&more)
        .map(|d| d.delivery_id.as_str())
        .collect();
    assert_eq!(
        ack_ids(&mut holder, &stale).await.len(),
        5,
        "a holder whose lease lapsed cannot ack"
    );
    let ended = within_for(WAIT, "the stale holder's stream to end", held.message()).await;
    assert!(
        matches!(&ended, Err(status) if status.code() == tonic::Code::Unavailable),
        "{ended:?}"
    );

    publish_ok(&mut publisher, numbered_batch(&topic, 10..12)).await;
    assert_eq!(
        numbers(&next_deliveries(&mut standby, 2).await),
        vec![10, 11]
    );
    frozen.kill().await;
}

/// The node holding an exclusive group's lease is killed (SIGKILL) with deliveries unacked: the
/// standby on the other node takes over once the lease lapses, and gets them first, in order, then
/// the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server 2.14+: bash .ci/run installs it"]
async fn a_killed_exclusive_holder_s_standby_on_the_other_node_takes_over_in_order() {
    let ExclusivePair {
        node: doomed,
        holder: _holder,
        mut held,
        mut standby_client,
        mut standby,
        mut publisher,
        topic,
        _survivor,
        _stream,
        _cluster,
    } = ExclusivePair::start(4).await;
    publish_ok(&mut publisher, numbered_batch(&topic, 0..8)).await;
    assert_eq!(
        numbers(&next_deliveries(&mut held, 4).await),
        vec![0, 1, 2, 3]
    );

    doomed.kill().await;
    let killed_at = Instant::now();
    let taken = taken_over(&mut standby, 8).await;
    println!(
        "the standby took over {:?} after the kill",
        killed_at.elapsed()
    );
    assert_eq!(
        numbers(&taken),
        (0..8).collect::<Vec<_>>(),
        "held first, in order"
    );
    let attempts: Vec<u32> = taken.iter().map(|d| d.attempt).collect();
    assert_eq!(attempts, vec![2, 2, 2, 2, 1, 1, 1, 1]);
    ack_all(&mut standby_client, &taken).await;
}
