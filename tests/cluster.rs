//! The NATS JetStream cluster that cluster mode runs on, as the test harness starts it
//! (tests/common/nats.rs): three nodes on loopback that elect a JetStream meta leader, keep one
//! when its node is killed, and take the node back when it restarts on its store.
//!
//! Ignored by a plain `cargo test`, since they need nats-server 2.14 or later; `.ci/run` installs
//! one and runs them with `-- --ignored`.

mod common;

use std::time::Duration;

use common::{http::try_get, nats::NatsCluster, within_for};
use serde_json::Value;
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
    let mut cluster = within_for(
        Duration::from_secs(60),
        "a 3-node cluster",
        NatsCluster::start(3),
    )
    .await;
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
