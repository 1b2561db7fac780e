//! Exclusive groups: one active consumer receiving in publish order, rejected rivals, mode mismatches,
//! and standbys that take over everything unacked, in order, when the active consumer goes away.

mod common;

use common::*;
use switchyard::pb;
use tonic::Code;

/// The exclusive consumer gets every message in publish order.
#[tokio::test]
async fn exclusive_consumer_gets_messages_in_publish_order() {
    let server = TestServer::start().await;
    let topic = unique("exclusive.order");
    let mut broker = server.broker().await;
    let mut stream = consume_ok(&mut broker, exclusive(&topic, "ledger", 1000, false)).await;
    for start in (0..100).step_by(10) {
        publish_ok(&mut broker, numbered_batch(&topic, start..start + 10)).await;
    }
    let got = next_deliveries(&mut stream, 100).await;
    assert_eq!(numbers(&got), (0..100).collect::<Vec<_>>());
    assert!(got.iter().all(|d| d.attempt == 1));
    ack_all(&mut broker, &got).await;
}

/// A second active consumer of an exclusive group is FAILED_PRECONDITION naming the group, and the
/// first one keeps receiving.
#[tokio::test]
async fn second_exclusive_consumer_is_rejected() {
    let server = TestServer::start().await;
    let topic = unique("exclusive.rival");
    let mut broker = server.broker().await;
    let mut first = consume_ok(&mut broker, exclusive(&topic, "singleton", 10, false)).await;
    let mut rival_client = server.broker().await;
    let result = consume(&mut rival_client, exclusive(&topic, "singleton", 10, false)).await;
    assert_status(result, Code::FailedPrecondition, &["singleton"]);

    publish_one(&mut broker, &topic, "still mine").await;
    let delivery = next_delivery(&mut first).await;
    assert_eq!(
        &delivery.message.as_ref().expect("a message").payload[..],
        b"still mine"
    );
}

/// Consuming a group in a different mode than it has is FAILED_PRECONDITION, both ways, and for a
/// group whose mode was declared.
#[tokio::test]
async fn consume_with_a_different_mode_is_rejected() {
    let server = TestServer::start().await;
    let mut broker = server.broker().await;
    let mut admin = server.admin().await;

    let shared_topic = unique("exclusive.mode-shared");
    let _shared = consume_ok(&mut broker, consume_request(&shared_topic, "shared-one")).await;
    let result = consume(
        &mut broker,
        exclusive(&shared_topic, "shared-one", 0, false),
    )
    .await;
    assert_status(result, Code::FailedPrecondition, &[]);
    let result = consume(&mut broker, exclusive(&shared_topic, "shared-one", 0, true)).await;
    assert_status(result, Code::FailedPrecondition, &[]);

    let exclusive_topic = unique("exclusive.mode-exclusive");
    let _active = consume_ok(&mut broker, exclusive(&exclusive_topic, "solo", 0, false)).await;
    let result = consume(&mut broker, consume_request(&exclusive_topic, "solo")).await;
    assert_status(result, Code::FailedPrecondition, &[]);

    let declared_topic = unique("exclusive.mode-declared");
    let request = pb::DeclareGroupRequest {
        topic: declared_topic.clone(),
        group: "declared".into(),
        mode: pb::ConsumeMode::Exclusive.into(),
        ..Default::default()
    };
    declare_ok(&mut admin, request).await;
    let shared = pb::ConsumeRequest {
        mode: pb::ConsumeMode::Shared.into(),
        ..consume_request(&declared_topic, "declared")
    };
    assert_status(
        consume(&mut broker, shared).await,
        Code::FailedPrecondition,
        &[],
    );
    let unspecified = consume_request(&declared_topic, "declared");
    assert_status(
        consume(&mut broker, unspecified).await,
        Code::FailedPrecondition,
        &[],
    );
    let _ok = consume_ok(
        &mut broker,
        exclusive(&declared_topic, "declared", 0, false),
    )
    .await;
}

/// A standby gets nothing while the active consumer lives; when its stream ends the standby takes
/// over the unacked deliveries first, in order, then the rest, in order; nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standby_takes_over_unacked_messages_then_the_rest_in_order() {
    let server = TestServer::start().await;
    let topic = unique("exclusive.standby");
    let mut active_client = server.broker().await;
    let mut active = consume_ok(&mut active_client, exclusive(&topic, "primary", 5, false)).await;
    let mut standby_client = server.broker().await;
    let mut standby =
        consume_ok(&mut standby_client, exclusive(&topic, "primary", 100, true)).await;
    let mut admin = server.admin().await;
    wait_for_group(&mut admin, &topic, "primary", "2 consumers", |g| {
        g.consumers == 2
    })
    .await;

    let mut broker = server.broker().await;
    publish_ok(&mut broker, numbered_batch(&topic, 0..10)).await;
    let held = next_deliveries(&mut active, 5).await;
    assert_eq!(numbers(&held), vec![0, 1, 2, 3, 4]);
    ack_all(&mut broker, &held[..2]).await;
    // Two acks made room: the active consumer, not the standby, gets the next two.
    let more = next_deliveries(&mut active, 2).await;
    assert_eq!(numbers(&more), vec![5, 6]);
    assert_quiet(
        &mut standby,
        QUIET,
        "a standby while the active consumer lives",
    )
    .await;

    drop(active);
    let taken = next_deliveries(&mut standby, 8).await;
    assert_eq!(
        numbers(&taken),
        vec![2, 3, 4, 5, 6, 7, 8, 9],
        "unacked first, then the rest"
    );
    let attempts: Vec<u32> = taken.iter().map(|d| d.attempt).collect();
    assert_eq!(attempts, vec![2, 2, 2, 2, 2, 1, 1, 1]);
    let old_ids: Vec<&str> = held[2..]
        .iter()
        .chain(&more)
        .map(|d| d.delivery_id.as_str())
        .collect();
    assert_eq!(
        ack_ids(&mut broker, &old_ids).await.len(),
        5,
        "the old delivery ids are unknown now"
    );
    ack_all(&mut broker, &taken).await;

    publish_ok(&mut broker, numbered_batch(&topic, 10..12)).await;
    assert_eq!(
        numbers(&next_deliveries(&mut standby, 2).await),
        vec![10, 11]
    );

    // The standby is now the active consumer: a newcomer that is not a standby is refused.
    let result = consume(&mut broker, exclusive(&topic, "primary", 5, false)).await;
    assert_status(result, Code::FailedPrecondition, &["primary"]);
}

/// Several standbys queue up: each takes over in turn, and the order of the messages survives both
/// hand-overs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standbys_take_over_one_after_another() {
    let server = TestServer::start().await;
    let topic = unique("exclusive.chain");
    let mut clients = Vec::new();
    let mut streams = Vec::new();
    for index in 0..3 {
        let mut client = server.broker().await;
        streams.push(consume_ok(&mut client, exclusive(&topic, "chain", 3, index > 0)).await);
        clients.push(client);
    }
    let mut broker = server.broker().await;
    publish_ok(&mut broker, numbered_batch(&topic, 0..9)).await;

    let mut received = Vec::new();
    let mut streams = streams.into_iter();
    let mut current = streams.next().expect("three consumers");
    for next in streams {
        let held = next_deliveries(&mut current, 3).await;
        ack_all(&mut broker, &held[..1]).await;
        received.push(numbers(&held[..1])[0]);
        let _ = next_delivery(&mut current).await;
        drop(current);
        current = next;
    }
    while received.len() < 9 {
        // Acking each one keeps the last consumer under its prefetch of 3.
        let delivery = next_delivery(&mut current).await;
        ack_all(&mut broker, std::slice::from_ref(&delivery)).await;
        received.push(delivery_number(&delivery));
    }
    assert_eq!(
        received,
        (0..9).collect::<Vec<_>>(),
        "order kept across two hand-overs"
    );
}
