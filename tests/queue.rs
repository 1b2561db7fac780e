//! Work queues: one delivery per group member, a copy per group, prefetch, hand-over when a consumer
//! goes away, messages waiting for consumers, and the group length limit. Settling (deadlines, nacks,
//! dead letters) is in `redelivery.rs`.

mod common;

use std::time::Duration;

use common::*;
use switchyard::{config::Config, pb};
use tonic::Code;

/// Each message goes to exactly one consumer of a group, and the group gets every message once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_message_goes_to_exactly_one_consumer_of_a_group() {
    const TOTAL: usize = 300;
    let server = TestServer::start().await;
    let topic = unique("queue.share");
    let (sink, mut deliveries) = tokio::sync::mpsc::unbounded_channel();
    let mut consumers = Vec::new();
    for _ in 0..3 {
        let mut client = server.broker().await;
        let mut stream = consume_ok(&mut client, consume_with(&topic, "workers", 1000, 0)).await;
        let sink = sink.clone();
        consumers.push(tokio::spawn(async move {
            while let Ok(Some(delivery)) = stream.message().await {
                ack_all(&mut client, std::slice::from_ref(&delivery)).await;
                if sink.send(delivery).is_err() {
                    break;
                }
            }
        }));
    }

    let mut broker = server.broker().await;
    let published = publish_ok(&mut broker, numbered_batch(&topic, 0..TOTAL)).await;
    assert!(
        published
            .iter()
            .all(|p| (p.subscribers, p.groups) == (0, 1)),
        "each message is stored by one group and offered to no subscriber: {:?}",
        published[0]
    );
    let mut seen = vec![0; TOTAL];
    within("every message to reach a consumer", async {
        for _ in 0..TOTAL {
            let delivery = deliveries
                .recv()
                .await
                .expect("the consumer tasks are running");
            assert_eq!(
                delivery.attempt, 1,
                "acked promptly, nothing is redelivered"
            );
            seen[delivery_number(&delivery)] += 1;
        }
    })
    .await;
    let counts: Vec<usize> = seen.iter().copied().filter(|&c| c != 1).collect();
    assert!(
        counts.is_empty(),
        "every message delivered exactly once: {seen:?}"
    );
    let extra = tokio::time::timeout(QUIET, deliveries.recv()).await;
    assert!(
        extra.is_err(),
        "no delivery beyond the {TOTAL} published: {extra:?}"
    );
    consumers.iter().for_each(tokio::task::JoinHandle::abort);
}

/// Every group matching a topic gets its own copy, next to the topic's subscribers.
#[tokio::test]
async fn every_group_gets_its_own_copy_counting_subscribers_except_in_cluster_mode() {
    let server = TestServer::start().await;
    let base = unique("queue.copies");
    let topic = format!("{base}.x");
    let mut broker = server.broker().await;
    let mut exact = consume_ok(&mut broker, consume_with(&topic, "billing", 100, 0)).await;
    let mut wildcard = consume_ok(
        &mut broker,
        consume_with(&format!("{base}.*"), "audit", 100, 0),
    )
    .await;
    let mut subscription = subscribe_ok(&mut broker, &topic).await;

    let published = publish_ok(&mut broker, numbered_batch(&topic, 0..10)).await;
    assert!(
        published
            .iter()
            .all(|p| (p.subscribers, p.groups) == (counted_subscribers(1), 2)),
        "two groups and one subscriber: {published:?}"
    );
    for (name, stream) in [("billing", &mut exact), ("audit", &mut wildcard)] {
        let got = next_deliveries(stream, 10).await;
        assert_eq!(
            sorted_numbers(&got),
            (0..10).collect::<Vec<_>>(),
            "group {name}"
        );
        ack_all(&mut broker, &got).await;
    }
    assert_eq!(next_messages(&mut subscription, 10).await.len(), 10);
}

/// A consumer has at most `prefetch` unacked deliveries; each ack lets exactly one more through.
#[tokio::test]
async fn prefetch_bounds_unacked_deliveries() {
    let server = TestServer::start().await;
    let topic = unique("queue.prefetch");
    let mut broker = server.broker().await;
    let mut admin = server.admin().await;
    let mut stream = consume_ok(&mut broker, consume_with(&topic, "slow", 3, 0)).await;
    publish_ok(&mut broker, numbered_batch(&topic, 0..10)).await;

    let mut held = next_deliveries(&mut stream, 3).await;
    assert_quiet(
        &mut stream,
        QUIET,
        "a consumer holding `prefetch` unacked deliveries",
    )
    .await;
    wait_for_group(&mut admin, &topic, "slow", "3 in flight, 7 ready", |g| {
        (g.in_flight, g.ready, g.consumers) == (3, 7, 1)
    })
    .await;

    let mut all = held.clone();
    while all.len() < 10 {
        ack_all(&mut broker, &held[..1]).await;
        held.remove(0);
        let next = next_delivery(&mut stream).await;
        held.push(next.clone());
        all.push(next);
        assert_quiet(
            &mut stream,
            Duration::from_millis(100),
            "a consumer back at its prefetch",
        )
        .await;
    }
    ack_all(&mut broker, &held).await;
    assert_eq!(sorted_numbers(&all), (0..10).collect::<Vec<_>>());
}

/// When a consumer's stream ends, every delivery it held goes to another consumer at once (long
/// before the ack deadline), with new ids; nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_a_consumer_stream_hands_its_deliveries_to_another() {
    let server = TestServer::start().await;
    let topic = unique("queue.handover");
    let mut leaving_client = server.broker().await;
    let mut leaving = consume_ok(
        &mut leaving_client,
        consume_with(&topic, "pool", 10, 30_000),
    )
    .await;
    let mut broker = server.broker().await;
    publish_ok(&mut broker, numbered_batch(&topic, 0..5)).await;
    let held = next_deliveries(&mut leaving, 5).await;

    let mut staying = consume_ok(&mut broker, consume_with(&topic, "pool", 10, 30_000)).await;
    assert_quiet(
        &mut staying,
        QUIET,
        "a second consumer while the first holds everything",
    )
    .await;
    drop(leaving);

    let taken = within_for(
        SLACK,
        "the held deliveries to move",
        next_deliveries(&mut staying, 5),
    )
    .await;
    assert_eq!(
        sorted_numbers(&taken),
        (0..5).collect::<Vec<_>>(),
        "none lost"
    );
    assert!(
        taken.iter().all(|d| d.attempt == 2),
        "each is a second delivery: {taken:?}"
    );
    let old: Vec<&str> = held.iter().map(|d| d.delivery_id.as_str()).collect();
    let mut unknown = ack_ids(&mut broker, &old).await;
    unknown.sort();
    let mut expected: Vec<String> = old.iter().map(|id| (*id).to_owned()).collect();
    expected.sort();
    assert_eq!(
        unknown, expected,
        "the departed consumer's delivery ids are no longer outstanding"
    );
    ack_all(&mut broker, &taken).await;

    publish_ok(&mut broker, numbered_batch(&topic, 5..8)).await;
    let later = next_deliveries(&mut staying, 3).await;
    assert_eq!(sorted_numbers(&later), vec![5, 6, 7]);
    assert!(later.iter().all(|d| d.attempt == 1));
}

/// Messages published while a group has no consumer wait in it, for a declared group and for one
/// created by an earlier Consume, and are first deliveries when a consumer comes.
#[tokio::test]
async fn messages_wait_in_a_group_without_consumers() {
    let server = TestServer::start().await;
    let mut broker = server.broker().await;
    let mut admin = server.admin().await;

    let declared = unique("queue.wait-declared");
    let request = pb::DeclareGroupRequest {
        topic: declared.clone(),
        group: "later".into(),
        ..Default::default()
    };
    declare_ok(&mut admin, request).await;
    let published = publish_ok(&mut broker, numbered_batch(&declared, 0..5)).await;
    assert!(published.iter().all(|p| p.groups == 1), "{published:?}");
    wait_for_group(&mut admin, &declared, "later", "5 ready", |g| g.ready == 5).await;
    let mut stream = consume_ok(&mut broker, consume_request(&declared, "later")).await;
    let got = next_deliveries(&mut stream, 5).await;
    assert_eq!(sorted_numbers(&got), (0..5).collect::<Vec<_>>());
    ack_all(&mut broker, &got).await;

    let created = unique("queue.wait-created");
    drop(consume_ok(&mut broker, consume_request(&created, "again")).await);
    wait_for_group(&mut admin, &created, "again", "no consumers", |g| {
        g.consumers == 0
    })
    .await;
    let published = publish_ok(&mut broker, numbered_batch(&created, 0..3)).await;
    assert!(published.iter().all(|p| p.groups == 1), "{published:?}");
    let mut stream = consume_ok(&mut broker, consume_request(&created, "again")).await;
    let got = next_deliveries(&mut stream, 3).await;
    assert_eq!(sorted_numbers(&got), vec![0, 1, 2]);
    // The consumer that went took none of them on its way out.
    assert!(got.iter().all(|d| d.attempt == 1), "{got:?}");
    ack_all(&mut broker, &got).await;
}

/// Once DeclareGroup returns, the group holds what any connection publishes to its topic, though
/// until then no group read the topic (in cluster mode such messages stay out of the stream); and
/// once DeleteGroup returns, no publish counts it.
#[tokio::test]
async fn a_group_holds_what_is_published_right_after_it_is_declared() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    // In cluster mode, connections take the nodes in turn: the declarations go through the first
    // node, and every other round publishes after it through the second.
    let (mut before, mut after) = (server.broker().await, server.broker().await);
    for round in 0..6 {
        let topic = unique("queue.declared-now");
        std::mem::swap(&mut before, &mut after);
        let (before, after) = (&mut before, &mut after);
        let published = publish_ok(before, vec![numbered(&topic, 0, 10)]).await;
        assert_eq!(published[0].groups, 0, "round {round}: no group yet");
        declare_ok(&mut admin, declaration(&topic, "now")).await;
        let published = publish_ok(after, vec![numbered(&topic, 1, 10)]).await;
        assert_eq!(published[0].groups, 1, "round {round}: the group counts");
        let mut stream = consume_ok(before, consume_request(&topic, "now")).await;
        let got = next_deliveries(&mut stream, 1).await;
        assert_eq!(numbers(&got), vec![1], "round {round}");
        ack_all(before, &got).await;
        drop(stream);
        delete_ok(&mut admin, &topic, "now").await;
        let published = publish_ok(after, vec![numbered(&topic, 2, 10)]).await;
        assert_eq!(published[0].groups, 0, "round {round}: the group is gone");
    }
}

/// A group holding `max_length` messages (in flight included) makes Publish fail with
/// RESOURCE_EXHAUSTED naming the message, and none of the batch is routed anywhere; an ack makes room.
#[tokio::test]
async fn a_full_group_rejects_the_whole_batch() {
    let server = TestServer::start().await;
    let base = unique("queue.full");
    let topic = format!("{base}.q");
    let mut broker = server.broker().await;
    let mut admin = server.admin().await;
    let request = pb::DeclareGroupRequest {
        topic: topic.clone(),
        group: "capped".into(),
        max_length: 3,
        ..Default::default()
    };
    declare_ok(&mut admin, request).await;
    let mut everything = subscribe_ok(&mut broker, &format!("{base}.>")).await;

    publish_ok(&mut broker, numbered_batch(&topic, 0..2)).await;
    let result = publish(&mut broker, numbered_batch(&topic, 2..5)).await;
    assert_status(result, Code::ResourceExhausted, &["messages[1]"]);
    publish_one(&mut broker, &format!("{base}.sentinel"), "sentinel").await;
    let seen: Vec<String> = next_messages(&mut everything, 3)
        .await
        .iter()
        .map(|m| String::from_utf8_lossy(&m.payload[..10.min(m.payload.len())]).into_owned())
        .collect();
    assert_eq!(
        seen,
        ["0000000000", "0000000001", "sentinel"],
        "the refused batch reached no subscriber"
    );
    wait_for_group(&mut admin, &topic, "capped", "2 ready", |g| g.ready == 2).await;

    // In-flight messages still count against the limit; settling one makes room for one.
    let mut stream = consume_ok(&mut broker, consume_with(&topic, "capped", 10, 0)).await;
    let held = next_deliveries(&mut stream, 2).await;
    publish_ok(&mut broker, numbered_batch(&topic, 10..11)).await;
    let result = publish(&mut broker, numbered_batch(&topic, 11..12)).await;
    assert_status(result, Code::ResourceExhausted, &["messages[0]"]);
    ack_all(&mut broker, &held[..1]).await;
    publish_ok(&mut broker, numbered_batch(&topic, 12..13)).await;
}

/// A Consume that leaves prefetch and ack deadline at 0 gets the server's defaults.
#[tokio::test]
async fn zero_prefetch_and_deadline_mean_the_server_defaults() {
    let config = Config {
        default_prefetch: 2,
        default_ack_deadline: Duration::from_millis(300),
        ..test_config()
    };
    let server = TestServer::with_config(config).await;
    let topic = unique("queue.defaults");
    let mut broker = server.broker().await;
    let mut stream = consume_ok(&mut broker, consume_request(&topic, "defaults")).await;
    let started = tokio::time::Instant::now();
    publish_ok(&mut broker, numbered_batch(&topic, 0..5)).await;

    let first = next_deliveries(&mut stream, 2).await;
    assert!(first.iter().all(|d| d.attempt == 1), "{first:?}");
    // The default prefetch holds back the rest until the default deadline hands the two back.
    let next = next_delivery(&mut stream).await;
    let elapsed = started.elapsed();
    assert_eq!(
        next.attempt, 2,
        "the first thing after the prefetch is a redelivery: {next:?}"
    );
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed <= Duration::from_millis(300) + SLACK,
        "redelivered {elapsed:?} after publishing, with a 300 ms default deadline"
    );
}
