//! The batching `Publisher`: it sends many messages in few Publish calls, keeps their order, fails a
//! refused batch as a whole, answers `flush` once everything before it is sent, and makes `publish`
//! wait for room instead of buffering without bound.

mod common;

use std::time::Duration;

use common::*;
use futures_util::FutureExt;
use switchyard::config::Config;
use switchyard_client::{Event, GroupConfig, OutgoingMessage, PendingPublish, Published};

/// 1000 messages through a Publisher with batches of 100 reach the broker in at most 10 Publish
/// calls: a subscriber whose broker buffer holds one message keeps at most one message per call (the
/// rest of each call is reported as a gap), and what it sees is in publish order.
// A current-thread runtime on purpose: the broker routes a whole Publish before the subscription
// stream can drain its buffer, so each call leaves at most one message in a buffer of one.
#[tokio::test(flavor = "current_thread")]
async fn many_messages_go_out_in_few_calls() {
    let config = Config {
        subscriber_buffer: 1,
        ..test_config()
    };
    let server = TestServer::with_config(config).await;
    let client = server.client().await;
    let topic = unique("metrics");
    let mut subscription = client.subscribe(topic.clone()).await.expect("subscribe");
    // A linger far longer than the test: a batch goes out only when it is full.
    let publisher = client
        .publisher()
        .max_batch(100)
        .linger(Duration::from_secs(60))
        .build();
    let mut pending = Vec::new();
    for n in 0..1000 {
        let message = OutgoingMessage::new(topic.clone(), n.to_string());
        pending.push(
            within("Publisher::publish", publisher.publish(message))
                .await
                .expect("queued"),
        );
    }
    let published = resolve_all(pending).await;
    assert_eq!(published.len(), 1000);

    let (mut kept, mut missed, mut last) = (0u64, 0u64, None::<u64>);
    while kept + missed < 1000 {
        match next_event(&mut subscription).await {
            Event::Message(message) => {
                let n: u64 = text(&message).parse().expect("a number");
                assert!(
                    last.is_none_or(|last| n > last),
                    "{n} after {last:?}: order kept"
                );
                assert_eq!(message.id, published[n as usize].id);
                last = Some(n);
                kept += 1;
            }
            Event::Gap { missed: gap } => missed += gap,
            Event::Disconnected { message, .. } => panic!("the subscription dropped: {message}"),
        }
    }
    assert_eq!(
        kept + missed,
        1000,
        "every message is either seen or counted"
    );
    assert!(
        kept <= 10,
        "{kept} messages kept: more than one Publish call per 100 messages"
    );
}

/// With a normal subscriber, every message of a batching Publisher arrives in publish order, and each
/// `PendingPublish` resolves to the id the subscriber sees.
#[tokio::test]
async fn order_is_kept_and_ids_match() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("ordered");
    let mut subscription = client.subscribe(topic.clone()).await.expect("subscribe");
    let publisher = client.publisher().max_batch(7).build();
    let mut pending = Vec::new();
    for n in 0..300 {
        let message = OutgoingMessage::new(topic.clone(), format!("m{n}"));
        pending.push(publisher.publish(message).await.expect("queued"));
    }
    let published = resolve_all(pending).await;
    for (n, message) in next_messages(&mut subscription, 300)
        .await
        .iter()
        .enumerate()
    {
        assert_eq!(
            text(message),
            format!("m{n}"),
            "message {n} in publish order"
        );
        assert_eq!(
            message.id, published[n].id,
            "PendingPublish {n} names message {n}"
        );
    }
}

/// `flush` sends a batch that would otherwise wait out its linger, and returns only once every message
/// queued before it has been answered.
#[tokio::test]
async fn flush_waits_for_everything_before_it() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("flushed");
    let mut subscription = client.subscribe(topic.clone()).await.expect("subscribe");
    let publisher = client.publisher().linger(Duration::from_secs(60)).build();
    let mut pending = Vec::new();
    for n in 0..5 {
        let message = OutgoingMessage::new(topic.clone(), format!("m{n}"));
        pending.push(publisher.publish(message).await.expect("queued"));
    }
    assert_quiet(&mut subscription, QUIET, "the subscription before flush").await;
    within("flush", publisher.flush()).await.expect("flush");
    for (n, outcome) in pending.into_iter().enumerate() {
        let outcome = outcome
            .now_or_never()
            .unwrap_or_else(|| panic!("message {n} is answered when flush returns"));
        outcome.unwrap_or_else(|error| panic!("message {n}: {error}"));
    }
    assert_eq!(next_messages(&mut subscription, 5).await.len(), 5);
}

/// A batch the broker refuses (a declared group would overflow) fails every message in it with the
/// broker's code and message, and stores none of them; the next batch is sent normally.
#[tokio::test]
async fn a_refused_batch_fails_every_message() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("full");
    let group = "bounded";
    within(
        "declare_group",
        client
            .admin()
            .declare_group(GroupConfig::new(topic.clone(), group).max_length(10)),
    )
    .await
    .expect("declare_group");
    let publisher = client
        .publisher()
        .max_batch(100)
        .linger(Duration::from_secs(60))
        .build();
    let mut pending = Vec::new();
    for n in 0..15 {
        let message = OutgoingMessage::new(topic.clone(), format!("m{n}"));
        pending.push(publisher.publish(message).await.expect("queued"));
    }
    within("flush", publisher.flush()).await.expect("flush");
    for (n, outcome) in pending.into_iter().enumerate() {
        let error = within("PendingPublish", outcome)
            .await
            .expect_err("the whole batch overflows the group");
        assert_eq!(
            error.code(),
            Some(tonic::Code::ResourceExhausted),
            "message {n}: {error}"
        );
        let text = error.to_string();
        assert_eq!(
            text.matches("resource").count(),
            1,
            "the code is named once, not repeated: {text}"
        );
    }
    let info = group_info(&client, &topic, group)
        .await
        .expect("the group exists");
    assert_eq!(info.ready, 0, "nothing of the refused batch was stored");

    let fits = publisher
        .publish(OutgoingMessage::new(topic.clone(), "fits"))
        .await
        .expect("queued");
    within("flush", publisher.flush()).await.expect("flush");
    let published = within("PendingPublish", fits)
        .await
        .expect("a batch that fits");
    assert_eq!(published.groups, 1);
}

/// Messages that are each within the broker's limits are not failed for being batched together: a
/// batch is cut before it would outgrow one gRPC message (4 MiB), so ten 700 KiB messages queued at
/// once are all published, in order.
#[tokio::test]
async fn big_messages_are_split_across_calls() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("videos");
    let mut subscription = client.subscribe(topic.clone()).await.expect("subscribe");
    let publisher = client
        .publisher()
        .max_batch(100)
        .linger(Duration::from_secs(60))
        .build();
    let mut pending = Vec::new();
    for n in 0..10u8 {
        let payload = vec![n; 700 * 1024];
        pending.push(
            publisher
                .publish(OutgoingMessage::new(topic.clone(), payload))
                .await
                .expect("queued"),
        );
    }
    within("flush", publisher.flush()).await.expect("flush");
    let published = resolve_all(pending).await;
    for (n, message) in next_messages(&mut subscription, 10)
        .await
        .iter()
        .enumerate()
    {
        assert_eq!(message.payload.len(), 700 * 1024);
        assert_eq!(message.payload[0], n as u8, "message {n} in order");
        assert_eq!(message.id, published[n].id);
    }
}

/// With `max_pending` small, `publish` waits for room: when it returns, only a bounded number of
/// messages are still unanswered, and every message is still published in the end.
#[tokio::test]
async fn publish_waits_for_room_and_completes() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("backpressure");
    let mut subscription = client.subscribe(topic.clone()).await.expect("subscribe");
    let (max_pending, max_batch, max_in_flight) = (4, 2, 3);
    let publisher = client
        .publisher()
        .max_pending(max_pending)
        .max_batch(max_batch)
        .max_in_flight(max_in_flight)
        .build();
    let mut pending = Vec::new();
    let mut answered = Vec::new();
    for n in 0..200 {
        let message = OutgoingMessage::new(topic.clone(), format!("m{n}"));
        pending.push(
            within("Publisher::publish", publisher.publish(message))
                .await
                .expect("queued"),
        );
        // Collect what is answered, in order, and count what is not.
        while let Some(first) = pending.first_mut() {
            match first.now_or_never() {
                Some(outcome) => {
                    answered.push(outcome.expect("published"));
                    pending.remove(0);
                }
                None => break,
            }
        }
        // The queue holds `max_pending`, the batches in flight `max_batch` each, plus the one just
        // queued.
        assert!(
            pending.len() <= max_pending + max_in_flight * max_batch + 1,
            "after message {n}, {} messages are unanswered: publish did not wait for room",
            pending.len()
        );
    }
    answered.extend(resolve_all(pending).await);
    assert_eq!(answered.len(), 200);
    assert_eq!(next_messages(&mut subscription, 200).await.len(), 200);
}

/// A publisher whose every clone is dropped still sends what was queued.
#[tokio::test]
async fn dropping_the_publisher_sends_what_is_queued() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("dropped");
    let mut subscription = client.subscribe(topic.clone()).await.expect("subscribe");
    let publisher = client.publisher().linger(Duration::from_secs(60)).build();
    let pending = publisher
        .publish(OutgoingMessage::new(topic.clone(), "last words"))
        .await
        .expect("queued");
    drop(publisher);
    within("PendingPublish", pending).await.expect("published");
    assert_eq!(text(&next_message(&mut subscription).await), "last words");
}

/// Awaits every pending publish, each within [`WAIT`], and returns the outcomes in order.
async fn resolve_all(pending: Vec<PendingPublish>) -> Vec<Published> {
    let mut published = Vec::with_capacity(pending.len());
    for (n, outcome) in pending.into_iter().enumerate() {
        let outcome = within("PendingPublish", outcome).await;
        published.push(outcome.unwrap_or_else(|error| panic!("message {n}: {error}")));
    }
    published
}

/// With `wait_for_room`, batches into a full group wait on the broker instead of failing, and all
/// of them go through, in order, as a consumer acks.
#[tokio::test]
async fn a_publisher_that_waits_for_room_gets_everything_through_a_full_group() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let topic = unique("waits");
    client
        .admin()
        .declare_group(GroupConfig::new(topic.clone(), "slow").max_length(2))
        .await
        .expect("declare");
    // Batches of at most 2 fit the group once it has room; a bigger one never could, and is refused
    // at once even when waiting.
    let publisher = client.publisher().max_batch(2).wait_for_room(true).build();
    let mut pending = Vec::new();
    for n in 0..10 {
        let message = OutgoingMessage::new(topic.clone(), format!("m{n}"));
        pending.push(publisher.publish(message).await.expect("queued"));
    }
    let mut consumer = client
        .consume(topic.clone(), "slow")
        .prefetch(1)
        .subscribe()
        .await
        .expect("consume");
    let mut received = Vec::new();
    for _ in 0..10 {
        let delivery = next_delivery(&mut consumer).await;
        received.push(text(delivery.message()).to_string());
        delivery.ack();
    }
    assert_eq!(
        received,
        (0..10).map(|n| format!("m{n}")).collect::<Vec<_>>()
    );
    assert_eq!(resolve_all(pending).await.len(), 10);
}
